"""Block Kit pieces several subcommands share: how an app's state, a revision, a lock and a running
operation (sync, rollback, resume, a drift alert's "Sync now") read. Pure functions."""

from __future__ import annotations

from handlers import messages as msg
from handlers.blocks import (
    Block,
    Reply,
    context,
    escape,
    fields_section,
    header,
    message,
    section,
    truncate,
)
from services.access.locks import Lock
from services.backend import AppRef, AppRow, AppStatus, Operation, SyncRequest
from services.revisions import short_revision, shorten_revisions


def short_rev(revision: str | None) -> str:
    """A revision as `flux get` / `git log --oneline` show it (`main@sha1:0123abcd`, `0123abc`)."""
    if not revision:
        return "—"
    return truncate(short_revision(revision), 40)


def cluster_text(text: str, limit: int) -> str:
    """A message from the cluster, escaped, its Flux revisions shortened (they are 50+ characters)."""
    return escape(truncate(shorten_revisions(text), limit))


def health_text(status: AppStatus | AppRow) -> str:
    return f"{msg.HEALTH_ICON.get(status.health, ':white_circle:')} {escape(status.health)}"


def sync_text(status: AppStatus | AppRow) -> str:
    return f"{msg.SYNC_ICON.get(status.sync, ':grey_question:')} {escape(status.sync)}"


def operation_text(op: Operation) -> str:
    icon = msg.PHASE_ICON.get(op.phase, ":grey_question:")
    who = f" by {escape(op.initiated_by)}" if op.initiated_by else (" (automated)" if op.automated else "")
    text = f"{icon} {escape(op.phase)}{who}"
    if op.message:
        text += f": {cluster_text(op.message, 300)}"
    return text


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


def lock_line(lock: Lock) -> str:
    until = f" until {lock.expires_at:%Y-%m-%d %H:%M} UTC" if lock.expires_at else ""
    reason = escape(truncate(lock.reason, 300))
    return f":lock: `{escape(lock.scope)}` by <@{escape(lock.created_by)}>{until}: {reason}"
