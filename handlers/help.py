"""`/gitops help` and `/gitops help SUBCOMMAND`, rendered from the one subcommand table."""

from __future__ import annotations

from handlers import messages as msg
from handlers.blocks import Reply, context, divider, escape, header, message, section
from handlers.grammar.spec import SUBCOMMANDS, SubcommandSpec


def help_reply(topic: str | None, allowed: frozenset[str] | None = None) -> Reply:
    """`allowed`: the caller's actions when access control is on (help lists only those)."""
    if topic is None:
        return _overview(allowed)
    return _detail(SUBCOMMANDS[topic])


def _overview(allowed: frozenset[str] | None) -> Reply:
    specs = [
        s
        for s in SUBCOMMANDS.values()
        if allowed is None or s.permission in allowed or s.name in ("help", "whoami")
    ]
    lines = [f"`/gitops {spec.usage}`\n{escape(spec.summary)}" for spec in specs]
    # Two sections keep each under Slack's 3000-character section limit.
    half = (len(lines) + 1) // 2
    blocks = [
        header(msg.HELP_TITLE),
        section(escape(msg.HELP_INTRO)),
        divider(),
        section("\n".join(lines[:half])),
        section("\n".join(lines[half:])),
        context(msg.HELP_FOOTER + (" " + msg.HELP_FILTERED if allowed is not None else "")),
    ]
    return message(msg.HELP_TITLE, blocks)


def _detail(spec: SubcommandSpec) -> Reply:
    blocks = [
        header(f"/gitops {spec.name}"),
        section(f"{escape(spec.summary)}\n{escape(spec.details)}"),
        section(f"{msg.HELP_USAGE}\n`/gitops {escape(spec.usage)}`"),
    ]
    if spec.flags:
        flag_lines = [
            f"`{flag.name}{' ' + flag.metavar if flag.metavar else ''}`  {escape(flag.help)}"
            for flag in spec.flags
        ]
        blocks.append(section(msg.HELP_FLAGS + "\n" + "\n".join(flag_lines)))
    blocks.append(section(msg.HELP_EXAMPLES + "\n" + "\n".join(f"`{escape(e)}`" for e in spec.examples)))
    blocks.append(context(msg.HELP_FOOTER))
    return message(f"/gitops {spec.name}: {spec.summary}", blocks)
