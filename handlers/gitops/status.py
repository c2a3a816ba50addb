"""Block Kit for `/gitops status`: one app in detail, or many apps compactly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from handlers import messages as msg
from handlers.blocks import (
    Block,
    Reply,
    actions,
    context,
    divider,
    escape,
    fields_section,
    header,
    link_button,
    message,
    section,
)
from handlers.cards import cluster_text, health_text, lock_line, operation_text, short_rev, sync_text
from services.access.locks import Lock
from services.backend import AppRow, AppStatus

_LINES_PER_SECTION = 35  # keeps each section well under Slack's 3000 characters
_MAX_LISTED = 150  # beyond this, say how many more instead of listing


def status_detail(status: AppStatus, *, locks: Sequence[Lock] = ()) -> Reply:
    ref = status.ref
    fields = [
        f"*Sync*\n{sync_text(status)}",
        f"*Health*\n{health_text(status)}",
        f"*Revision*\n`{escape(short_rev(status.revision))}`"
        + (f" (target `{escape(short_rev(status.target_revision))}`)" if status.target_revision else ""),
        f"*Auto-sync*\n{'on' if status.auto_sync else 'off'}" + (" · suspended" if status.suspended else ""),
    ]
    blocks: list[Block] = [header(f"{ref.name} ({ref.instance})"), fields_section(fields)]
    if status.health_message:
        blocks.append(section(f"*Health message*\n{cluster_text(status.health_message, 500)}"))
    if status.images:
        shown = "\n".join(f"`{escape(i)}`" for i in status.images[:8])
        more = f"\n… {len(status.images) - 8} more" if len(status.images) > 8 else ""
        blocks.append(section(f"*Images*\n{shown}{more}"))
    if status.conditions:
        lines = [f"• *{escape(c.type)}*: {cluster_text(c.message, 300)}" for c in status.conditions[:6]]
        blocks.append(section("*Conditions*\n" + "\n".join(lines)))
    unhealthy = [r for r in status.resources if r.health not in ("", "Healthy") or r.sync == "OutOfSync"]
    if unhealthy:
        lines = [
            f"• `{escape(r.kind)}/{escape(r.name)}` {escape(r.sync)} {escape(r.health)}"
            + (f": {cluster_text(r.message, 200)}" if r.message else "")
            for r in unhealthy[:10]
        ]
        blocks.append(section("*Resources needing attention*\n" + "\n".join(lines)))
    if status.operation:
        blocks.append(section(f"*Last operation*\n{operation_text(status.operation)}"))
    if locks:
        blocks.append(section("\n".join(lock_line(lock) for lock in locks[:5])))
    if status.ui_url:
        blocks.append(actions(link_button(msg.STATUS_OPEN_UI, status.ui_url, "open_ui")))
    blocks.append(
        context(f"`{escape(ref.display)}`" + (f" · project `{escape(ref.project)}`" if ref.project else ""))
    )
    text = f"{ref.name}: {status.sync}, {status.health}"
    return message(text, blocks, detail=f"revision {short_rev(status.revision)}")


def status_overview(
    apps: Sequence[AppRow] | Sequence[AppStatus],
    unreachable: Sequence[str],
    title: str,
    *,
    locks: Sequence[Lock] = (),
) -> Reply:
    """Counts, then the apps that are not Synced + Healthy: everything shown is on a row."""
    rows = [a if isinstance(a, AppRow) else AppRow.of(a) for a in apps]
    return _overview(rows, unreachable, title, locks)


def _overview(apps: Sequence[AppRow], unreachable: Sequence[str], title: str, locks: Sequence[Lock]) -> Reply:
    health = Counter(a.health for a in apps)
    sync = Counter(a.sync for a in apps)
    counts = " · ".join(f"{msg.HEALTH_ICON.get(h, '')} {escape(h)} {n:,}" for h, n in health.most_common())
    counts += "\n" + " · ".join(
        f"{msg.SYNC_ICON.get(s, '')} {escape(s)} {n:,}" for s, n in sync.most_common()
    )
    blocks: list[Block] = [header(title), section(counts if apps else msg.STATUS_NONE)]
    if locks:
        blocks.append(section("\n".join(lock_line(lock) for lock in locks[:10])))
    attention = sorted(
        (a for a in apps if not a.healthy), key=lambda a: (a.health == "Healthy", a.ref.display)
    )
    if apps and not attention:
        blocks.append(section(msg.STATUS_ALL_GOOD))
    if attention:
        blocks.append(divider())
        lines = [
            f"`{escape(a.ref.display)}` {sync_text(a)} · {health_text(a)}"
            + (f" · {escape(a.running)}" if a.running is not None else "")
            for a in attention[:_MAX_LISTED]
        ]
        for start in range(0, len(lines), _LINES_PER_SECTION):
            blocks.append(section("\n".join(lines[start : start + _LINES_PER_SECTION])))
        if len(attention) > _MAX_LISTED:
            blocks.append(
                context(f"… and {len(attention) - _MAX_LISTED:,} more that are not Synced and Healthy")
            )
    if unreachable:
        blocks.append(context(msg.STATUS_UNREACHABLE.format(names=", ".join(escape(u) for u in unreachable))))
    text = f"{title}: {len(apps):,} apps, {len(attention):,} need attention"
    return message(text, blocks, detail=f"{len(apps)} apps, {len(attention)} not Synced+Healthy")
