"""Pure Block Kit builders: no I/O, no clock, no globals.

Every builder respects Slack's limits (docs/slack.md (d)) by truncating on its own, so a
long condition message or app list can never make Slack reject the whole reply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Block = dict[str, Any]

MAX_BLOCKS = 50
SECTION_TEXT = 3000
FIELD_TEXT = 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
FALLBACK_TEXT = 3000  # the notification text; Slack allows 40k but nobody reads that much
TOTAL_TEXT_BUDGET = 11000  # stay under the undocumented ~12k total (bolt-js #2509)
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


@dataclass(frozen=True)
class Reply:
    """A message: `text` is the notification / screen-reader fallback, `blocks` the body."""

    text: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)
    response_type: Literal["ephemeral", "in_channel"] = "ephemeral"
    # For the audit row: what happened (revisions before → after), and whether it failed
    # without raising (a sync that ended Failed).
    detail: str = field(default="", compare=False)
    failed: bool = field(default=False, compare=False)
    # For answers to a click: False leaves the clicked message alone and answers the clicker.
    replace_original: bool = field(default=True, compare=False)
    # The operation goes on in the watcher, which completes the request when it ends (handlers/follow).
    deferred: bool = field(default=False, compare=False)

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": list(self.blocks), "response_type": self.response_type}


def escape(text: str) -> str:
    """Escape the three characters Slack treats as markup, so user text cannot ping or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_except_mentions(text: str, mentions: Iterable[str]) -> str:
    """Escape `text`, then restore the `<@U…>` mentions the bot itself put there (and only those)."""
    escaped = escape(text)
    for user in dict.fromkeys(mentions):
        if _USER_ID.fullmatch(user):
            escaped = escaped.replace(f"&lt;@{user}&gt;", f"<@{user}>")
    return escaped


def truncate(text: str, limit: int, *, marker: str = "…") -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(marker)] + marker


def plain(text: str, *, limit: int = HEADER_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit) or " ", "emoji": True}


def mrkdwn(text: str, *, limit: int = SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(text, limit) or " "}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text)}


def section(text: str, *, fields: Sequence[str] = ()) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if fields:
        block["fields"] = [mrkdwn(f, limit=FIELD_TEXT) for f in fields[:10]]
    return block


def fields_section(fields: Sequence[str]) -> Block:
    return {"type": "section", "fields": [mrkdwn(f, limit=FIELD_TEXT) for f in fields[:10]]}


def context(*items: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(i, limit=FIELD_TEXT) for i in items[:CONTEXT_ELEMENTS]]}


def divider() -> Block:
    return {"type": "divider"}


def code(text: str, *, limit: int = SECTION_TEXT - 8) -> str:
    """A fenced block; truncated on a line boundary with a note of what was left out."""
    body = escape(text)
    if len(body) > limit:
        lines = body.splitlines()
        kept: list[str] = []
        size = 0
        for line in lines:
            if size + len(line) + 1 > limit - 40:
                break
            kept.append(line)
            size += len(line) + 1
        body = "\n".join(kept) + f"\n… {len(lines) - len(kept)} more lines"
    return f"```\n{body}\n```"


def fit(blocks: Sequence[Block]) -> tuple[Block, ...]:
    """Drop trailing blocks past Slack's per-message count and total-text budget, saying so."""
    kept: list[Block] = []
    total = 0
    for index, block in enumerate(blocks):
        size = _text_size(block)
        if len(kept) >= MAX_BLOCKS - 1 or total + size > TOTAL_TEXT_BUDGET:
            kept.append(context(f"… {len(blocks) - index} more not shown"))
            break
        kept.append(block)
        total += size
    return tuple(kept)


def message(
    text: str,
    blocks: Sequence[Block],
    *,
    in_channel: bool = False,
    detail: str = "",
    failed: bool = False,
    replace_original: bool = True,
) -> Reply:
    return Reply(
        text=truncate(text, FALLBACK_TEXT),
        blocks=fit(blocks),
        response_type="in_channel" if in_channel else "ephemeral",
        detail=detail,
        failed=failed,
        replace_original=replace_original,
    )


def button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: Literal["primary", "danger"] | None = None,
    confirm: tuple[str, str, str] | None = None,
) -> Block:
    """A button; `confirm` = (title, text, confirm-label) shows Slack's native dialog first."""
    element: Block = {"type": "button", "text": plain(text, limit=75), "action_id": action_id, "value": value}
    if style:
        element["style"] = style
    if confirm:
        title, body, ok = confirm
        element["confirm"] = {
            "title": plain(title, limit=100),
            "text": mrkdwn(body, limit=300),
            "confirm": plain(ok, limit=30),
            "deny": plain("Cancel", limit=30),
        }
        if style == "danger":
            element["confirm"]["style"] = "danger"
    return element


def link_button(text: str, url: str, action_id: str) -> Block:
    return {"type": "button", "text": plain(text, limit=75), "url": url[:3000], "action_id": action_id}


def actions(*elements: Block, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements[:25])}
    if block_id:
        block["block_id"] = block_id[:255]
    return block


def _text_size(value: Any) -> int:
    if isinstance(value, dict):
        return sum(len(v) if k == "text" and isinstance(v, str) else _text_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_text_size(v) for v in value)
    return 0


def plain_notice(text: str, *, in_channel: bool = False, detail: str = "", failed: bool = False) -> Reply:
    return message(text, [section(text)], in_channel=in_channel, detail=detail, failed=failed)
