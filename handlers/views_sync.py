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
from handlers.views_status import cluster_text, health_text, short_rev, sync_text
from services.backend import AppRef, AppStatus, SyncRequest


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def sync_card(
    ref: AppRef,
    request: SyncRequest,
    *,
    user: str,
    status: AppStatus | None = None,
    note: str | None = None,
    before: str | None = None,
    title: str | None = None,
) -> Reply:
    if title is None:
        template = msg.SYNC_DRY_TITLE if request.dry_run else msg.SYNC_TITLE
        title = template.format(app=ref.name)
        if ref.backend == "flux":
            title = title.replace("Sync", "Reconcile", 1)
    op = status.operation if status else None
    phase = op.phase if op else "Requested"
    icon = msg.PHASE_ICON.get(phase, ":grey_question:")
    options = [flag for flag, on in (("--prune", request.prune), ("--dry-run", request.dry_run)) if on]
    if request.revision:
        options.append(f"--revision {short_rev(request.revision)}")
    fields = [
        f"*Phase*\n{icon} {escape(phase)}",
        f"*Requested by*\n<@{escape(user)}>",
        f"*Revision*\n`{escape(short_rev(_shown_revision(status, before)))}`",
    ]
    if op and op.resources_total:
        fields.append(f"*Resources*\n{op.resources_done} / {op.resources_total}")
    if op and op.finished:
        fields.append(f"*Took*\n{_duration(op.duration_seconds)}")
    blocks: list[Block] = [header(title), fields_section(fields)]
    if op and op.message:
        blocks.append(section(cluster_text(op.message, 1000)))
    if op and op.failed_resources:
        lines = "\n".join(f"• {escape(truncate(r, 300))}" for r in op.failed_resources[:10])
        blocks.append(section(f"*Failed*\n{lines}"))
    if status and op and op.finished:
        blocks.append(section(f"Now {sync_text(status)} · {health_text(status)}"))
    if note:
        blocks.append(section(escape(note)))
    blocks.append(
        context(f"`{escape(ref.display)}`" + (f" · {escape(' '.join(options))}" if options else ""))
    )
    failed = bool(op and op.finished and op.phase != "Succeeded")
    after = short_rev(op.revision) if op and op.revision else "—"
    detail = f"revision {short_rev(before)} → {after}; phase {phase}" + (f"; {note}" if note else "")
    return message(f"{title}: {phase}", blocks, in_channel=True, detail=detail, failed=failed)


def _shown_revision(status: AppStatus | None, before: str | None) -> str | None:
    op = status.operation if status else None
    if op and op.revision:
        return op.revision
    return status.revision if status else before


@dataclass(frozen=True)
class BatchItem:
    ref: AppRef
    phase: str  # Requested, Running, Succeeded, Failed, Error, Skipped
    message: str = ""
    mentions: tuple[str, ...] = ()  # user ids the bot wrote into `message` (a lock's owner)


def batch_card(selector: str, items: Sequence[BatchItem], *, user: str, dry_run: bool) -> Reply:
    done = [i for i in items if i.phase not in ("Requested", "Running")]
    failed = [i for i in items if i.phase in ("Failed", "Error", "Skipped")]
    title = msg.BATCH_TITLE.format(count=len(items), selector=selector) + (" (dry run)" if dry_run else "")
    fields = [
        f"*Done*\n{len(done)} / {len(items)}",
        f"*Failed*\n{len(failed)}",
        f"*Requested by*\n<@{escape(user)}>",
    ]
    lines = [
        f"{msg.PHASE_ICON.get(i.phase, ':grey_question:')} `{escape(i.ref.display)}` {escape(i.phase)}"
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
    detail = f"{len(items)} apps, {len(failed)} failed"
    return message(
        title, blocks, in_channel=True, detail=detail, failed=bool(failed) and len(done) == len(items)
    )
