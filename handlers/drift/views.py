"""Block Kit for drift incidents: one message per incident, edited as it evolves."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from handlers import messages as msg
from handlers.blocks import Block, Reply, actions, button, context, escape, header, message, section, truncate
from services.drift.store import Incident
from services.revisions import shorten_revisions

ACTION_SYNC = "drift_sync"
ACTION_DIFF = "drift_diff"
ACTION_SNOOZE_1H = "drift_snooze_1h"
ACTION_SNOOZE_24H = "drift_snooze_24h"
ACTION_ACK = "drift_ack"


def duration_text(start: datetime, end: datetime) -> str:
    minutes = max(0, int((end - start).total_seconds() // 60))
    if minutes == 0:
        return "under a minute"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def incident_card(incident: Incident, *, now: datetime) -> Reply:
    kind = msg.DRIFT_KIND.get(incident.kind, incident.kind)
    resolved = incident.status == "resolved"
    icon = ":white_check_mark:" if resolved else ":rotating_light:"
    title = f"{kind}: {incident.app}"
    blocks: list[Block] = [
        header(f"{'Resolved: ' if resolved else ''}{title}"),
        section(f"{icon} *{_text(incident.title, 300)}*\n{_text(incident.detail, 1500)}"),
    ]
    if incident.resources:
        blocks.append(section("\n".join(f"• `{escape(r)}`" for r in incident.resources[:10])))
    seen = f"first seen {incident.first_seen:%Y-%m-%d %H:%M} UTC · last seen {incident.last_seen:%H:%M} UTC"
    seen += f" · seen in {incident.count} scan{'s' if incident.count != 1 else ''}"
    if incident.flap_count:
        seen += f" · flapped {incident.flap_count}×"
    notes = [seen]
    if incident.acknowledged_by:
        notes.append(msg.DRIFT_ACKED.format(user=escape(incident.acknowledged_by)))
    if incident.snoozed_until and incident.snoozed_until > now:
        notes.append(
            msg.DRIFT_SNOOZED.format(
                until=f"{incident.snoozed_until:%Y-%m-%d %H:%M}",
                user=escape(incident.snoozed_by or "someone"),
            )
        )
    if resolved and incident.resolved_at:
        notes.append(
            msg.DRIFT_RESOLVED.format(duration=duration_text(incident.first_seen, incident.resolved_at))
        )
    blocks.append(context(*notes))
    if not resolved:
        value = str(incident.id)
        blocks.append(
            actions(
                button(msg.DRIFT_SYNC_NOW, ACTION_SYNC, value, style="primary"),
                button(msg.DRIFT_SHOW_DIFF, ACTION_DIFF, value),
                button(msg.DRIFT_SNOOZE_1H, ACTION_SNOOZE_1H, value),
                button(msg.DRIFT_SNOOZE_24H, ACTION_SNOOZE_24H, value),
                button(msg.DRIFT_ACK, ACTION_ACK, value),
                block_id=f"drift-{incident.id}-{incident.count}",
            )
        )
    return message(f"{'Resolved: ' if resolved else ''}{title}", blocks, in_channel=True)


def digest_card(incidents: Sequence[Incident]) -> Reply:
    """One message for a storm of new incidents. Redrawn from all of them as they change: each
    stays listed, struck through once resolved, until the title says all are."""
    resolved = [i for i in incidents if not i.is_open]
    if incidents and len(resolved) == len(incidents):
        title = msg.DRIFT_DIGEST_ALL_RESOLVED.format(count=len(incidents))
    else:
        title = msg.DRIFT_DIGEST_TITLE.format(count=len(incidents))
        if resolved:
            title += " · " + msg.DRIFT_DIGEST_PROGRESS.format(resolved=len(resolved), count=len(incidents))
    lines = [_digest_line(i) for i in incidents]
    blocks: list[Block] = [section(f"*{title}*")]
    for start in range(0, min(len(lines), 200), 25):
        blocks.append(section("\n".join(lines[start : start + 25])))
    blocks.append(context(msg.DRIFT_DIGEST_FOOTER))
    return message(title, blocks, in_channel=True)


def _digest_line(incident: Incident) -> str:
    kind = escape(msg.DRIFT_KIND.get(incident.kind, incident.kind))
    item = f"*{escape(incident.app)}*: {kind}: {_text(incident.title, 150)}"
    if incident.is_open or incident.resolved_at is None:
        return f"• {item}"
    took = msg.DRIFT_DIGEST_ITEM_RESOLVED.format(
        duration=duration_text(incident.first_seen, incident.resolved_at)
    )
    return f"• :white_check_mark: ~{item}~ {took}"


def _text(value: str, limit: int) -> str:
    # Titles and details come from the cluster; Flux revisions in them read as `flux get` shows them.
    return escape(truncate(shorten_revisions(value), limit))


def open_incidents_reply(incidents: Sequence[Incident]) -> Reply:
    if not incidents:
        return message(msg.DRIFT_NONE, [section(msg.DRIFT_NONE)])
    lines = [
        f"• *{escape(i.app)}* {escape(msg.DRIFT_KIND.get(i.kind, i.kind))}: {_text(i.title, 150)}"
        f" (since {i.first_seen:%m-%d %H:%M} UTC)"
        for i in incidents
    ]
    blocks: list[Block] = [header(f"{len(incidents)} open drift incidents")]
    for start in range(0, min(len(lines), 200), 25):
        blocks.append(section("\n".join(lines[start : start + 25])))
    return message(f"{len(incidents)} open drift incidents", blocks)
