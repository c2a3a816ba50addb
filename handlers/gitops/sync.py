"""Block Kit for sync: one message that moves requested → running → Succeeded / Failed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from handlers import messages as msg
from handlers.blocks import (
    Block,
    Reply,
    context,
    escape,
    escape_except_mentions,
    fields_section,
    header,
    message,
    section,
    truncate,
)
from services.backend import AppRef


@dataclass(frozen=True)
class BatchItem:
    ref: AppRef
    phase: str  # Requested, Running, Succeeded, Failed, Error, Skipped
    message: str = ""
    mentions: tuple[str, ...] = ()  # user ids the bot wrote into `message` (a lock's owner)
    wave: str = ""  # the batch strategy's wave ("0", "canary"); shown when there are several


def batch_card(
    selector: str,
    items: Sequence[BatchItem],
    *,
    user: str,
    dry_run: bool,
    strategy: str = "parallel",
    stop_on_failure: bool = False,
) -> Reply:
    done = [i for i in items if i.phase not in ("Requested", "Running")]
    failed = [i for i in items if i.phase in ("Failed", "Error", "Skipped")]
    title = msg.BATCH_TITLE.format(count=len(items), selector=selector) + (" (dry run)" if dry_run else "")
    shown = escape(strategy) + (msg.BATCH_STOP_ON_FAILURE if stop_on_failure else "")
    fields = [
        f"*Done*\n{len(done)} / {len(items)}",
        f"*Failed*\n{len(failed)}",
        f"*Requested by*\n<@{escape(user)}>",
        msg.BATCH_STRATEGY_FIELD.format(strategy=shown),
    ]
    waves = len({i.wave for i in items if i.wave}) > 1  # one wave (parallel): nothing to tell apart
    lines = [
        f"{msg.PHASE_ICON.get(i.phase, ':grey_question:')} `{escape(i.ref.display)}` {escape(i.phase)}"
        + (f" · {escape(msg.BATCH_WAVE.format(name=i.wave))}" if waves and i.wave else "")
        + (
            f": {escape_except_mentions(truncate(i.message, 150), i.mentions)}"
            if i.message and i.phase != "Succeeded"
            else ""
        )
        for i in items
    ]
    blocks: list[Block] = [header(title), fields_section(fields)]
    for start in range(0, min(len(lines), 120), 30):
        blocks.append(section("\n".join(lines[start : start + 30])))
    if len(lines) > 120:
        blocks.append(context(f"… {len(lines) - 120} more"))
    detail = f"{len(items)} apps, {len(failed)} failed, {strategy}" + (
        msg.BATCH_STOP_ON_FAILURE if stop_on_failure else ""
    )
    return message(
        title, blocks, in_channel=True, detail=detail, failed=bool(failed) and len(done) == len(items)
    )
