"""Every `/gitops …` command the bot shows must run as written.

`unrunnable` reads every message the fake Slack received (posts, edits, response_url replies and
acks, intermediate versions included) and parses each command in backticks with the real grammar.
Usage lines of `help` (with `[optional]` parts) are templates, not suggestions; anywhere else a
placeholder (`APP`, `<sha>`, `ID`) is a command nobody can run. With the settings, a configured app
that runs in several environments must also be named with its environment.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from handlers.grammar.parser import parse_command
from handlers.grammar.spec import SUBCOMMANDS
from sandbox.slack_api import FakeSlack
from services.errors import UserError
from services.settings.model import Settings

_SPAN = re.compile(r"`(/gitops(?:\s[^`]*)?)`")
_USAGE = re.compile(r"\[")  # help's usage syntax
_PLACEHOLDER = re.compile(r"<[a-z]+>|\b(?:APP|ENV|ID|SHA|SUBCOMMAND|NAME|TEXT|USER|ACTION|DURATION)\b")
_MESSAGES = ("chat.postMessage", "chat.update", "chat.postEphemeral", "response_url", "ack")
_TAKES_ENV = frozenset(name for name, spec in SUBCOMMANDS.items() if "APP [ENV]" in spec.usage)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def suggested(fake: FakeSlack) -> list[str]:
    """Every distinct `/gitops …` span in what the bot sent, in order."""
    seen: dict[str, None] = {}
    for call in fake.recorded():
        if call.method not in _MESSAGES:
            continue
        for text in _strings({k: v for k, v in call.args.items() if k in ("text", "blocks")}):
            for span in _SPAN.findall(text):
                seen.setdefault(html.unescape(span), None)
    return list(seen)


def unrunnable(fake: FakeSlack, settings: Settings | None = None) -> list[str]:
    problems = []
    for command in suggested(fake):
        if _USAGE.search(command):
            continue
        if _PLACEHOLDER.search(command):
            problems.append(f"{command}: a placeholder, not a command")
            continue
        try:
            request = parse_command(command.removeprefix("/gitops").strip(), now=datetime.now(UTC))
        except UserError as exc:
            problems.append(f"{command}: {exc.message}")
            continue
        app = settings.app(request.app) if settings is not None and request.app else None
        needs_env = request.subcommand in _TAKES_ENV and request.subcommand != "status"
        if app is not None and needs_env and request.env is None and len(app.environments) > 1:
            problems.append(f"{command}: `{request.app}` runs in several environments")
    return problems
