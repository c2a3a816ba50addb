"""Parse the text of a `/gitops …` slash command into a typed `CommandRequest`.

Slack sends everything after `/gitops` as one string. We tokenize it like a POSIX shell (without
ever running one), match the subcommand and flags against `handlers.grammar.spec`, and run every value
through `services.validation`. Anything wrong becomes a `UserError` that says how to fix it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from handlers.grammar.rules import (
    POSITIONALS,
    Converter,
    bool_field,
    check_combination,
    flag_target,
    lookup_subcommand,
    unknown_flag,
    usage_error,
)
from handlers.grammar.spec import SUBCOMMANDS, SubcommandSpec
from services.errors import UserError
from services.validation import LabelRequirement, UserRef, display_value, is_option_like

MAX_TEXT = 2000
# Slack (and phones) turn quotes into typographic ones and `--` into a dash; undo both.
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})
_DASH_FLAG = re.compile(r"^[—–]-?(?=[A-Za-z])")


@dataclass(frozen=True)
class CommandRequest:
    """A fully validated `/gitops` command; field names follow the flags."""

    subcommand: str
    raw_text: str
    app: str | None = None
    env: str | None = None
    topic: str | None = None  # help's SUBCOMMAND
    all: bool = False
    prune: bool = False
    dry_run: bool = False
    force: bool = False
    suspend: bool = False
    revision: str | None = None
    to: str | None = None  # promote: an env; rollback: a history id or git SHA
    from_env: str | None = None
    reason: str | None = None
    ttl: timedelta | None = None
    since: datetime | None = None
    selector: tuple[LabelRequirement, ...] = ()
    project: str | None = None
    lock_app: str | None = None  # lock/unlock --app
    user: UserRef | None = None
    action: str | None = None
    strategy: str | None = None  # sync --selector: a batch strategy's name (checked when it runs)
    stop_on_failure: bool = False  # sync --selector
    params: tuple[str, ...] = ()  # pipeline --param: `name=value`, in the order given
    namespace: str | None = None  # pipeline --namespace


def tokenize(text: str) -> list[str]:
    """Split like a POSIX shell after undoing Slack's HTML escaping and smart punctuation."""
    if len(text) > MAX_TEXT:
        raise UserError(f"That command is {len(text):,} characters long; the limit is {MAX_TEXT:,}.")
    # `&amp;` last, so `&amp;lt;` stays the literal text `&lt;`.
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    try:
        tokens = shlex.split(text.translate(_SMART_QUOTES), posix=True)
    except ValueError:
        raise UserError(
            "Unbalanced quotes in the command.",
            hint='Close every quote, e.g. `--reason "release freeze"`, or put `\'` inside `"…"`.',
        ) from None
    return [_DASH_FLAG.sub("--", token) for token in tokens]


def parse_command(text: str, *, now: datetime) -> CommandRequest:
    """Parse the slash-command text; raises `UserError` for anything that is not a valid command.

    `now` (timezone-aware) anchors relative times such as `--since 7d`.
    """
    tokens = tokenize(text)
    raw = text.strip()
    if not tokens:
        return CommandRequest(subcommand="help", raw_text=raw)
    if tokens[0].lower() == "--help":  # `/gitops --help [sub]` reads as `help [sub]`
        topic = lookup_subcommand(tokens[1]) if len(tokens) > 1 else None
        return CommandRequest(subcommand="help", raw_text=raw, topic=topic)
    spec = SUBCOMMANDS[lookup_subcommand(tokens[0])]
    if "--help" in (t.lower() for t in tokens[1:]):
        return CommandRequest(subcommand="help", raw_text=raw, topic=spec.name)
    fields = _collect(spec, tokens[1:], now)
    check_combination(spec, fields)
    return replace(CommandRequest(subcommand=spec.name, raw_text=raw), **fields)


def _collect(spec: SubcommandSpec, args: list[str], now: datetime) -> dict[str, Any]:
    """Walk the arguments once, validating each value as it is consumed."""
    fields: dict[str, Any] = {}
    seen: set[str] = set()
    positional = 0
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if not is_option_like(token):
            if positional >= len(spec.positionals):
                raise usage_error(spec, f"Too many arguments for `{spec.name}`: {display_value(token)}.")
            field, convert = POSITIONALS[spec.positionals[positional].kind]
            fields[field] = _convert(spec, convert, token, now)
            positional += 1
            continue
        name, has_inline, inline = token.partition("=")
        name = name.lower()
        flag = spec.flag(name)
        if flag is None:
            raise unknown_flag(spec, name)
        if name in seen and not flag.repeatable:
            raise usage_error(spec, f"`{name}` is given twice.")
        seen.add(name)
        if not flag.takes_value:
            if has_inline:
                raise usage_error(spec, f"`{name}` takes no value; drop {display_value('=' + inline)}.")
            fields[bool_field(name)] = True
            continue
        if not has_inline:
            inline = args[i] if i < len(args) else ""
            i += 1
        if inline == "" or is_option_like(inline):
            got = f", not {display_value(inline)}" if inline else ""
            raise usage_error(spec, f"`{name}` needs a value ({flag.metavar}){got}.")
        target = flag_target(spec.name, name)
        if target is None:  # a table bug, caught by tests: every value flag has a converter
            raise LookupError(f"no converter for {spec.name} {name}")
        field, convert = target
        value = _convert(spec, convert, inline, now)
        fields[field] = (*fields.get(field, ()), value) if flag.repeatable else value
    return fields


def _convert(spec: SubcommandSpec, convert: Converter, value: str, now: datetime) -> object:
    """Validate one value; a refusal without its own hint gets the usage line as hint."""
    try:
        return convert(value, now)
    except UserError as exc:
        if exc.hint is None:
            exc.hint = f"Usage: /gitops {spec.usage}"
        raise
