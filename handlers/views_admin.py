"""Block Kit for locks and audit queries."""

from __future__ import annotations

import re
from collections.abc import Sequence

from handlers import messages as msg
from handlers.blocks import Block, Reply, actions, button, context, escape, message, section, truncate
from services.audit import AuditEvent
from services.locks import Lock

ACTION_AUDIT_MORE = "audit_more"
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")  # other rows (e.g. the bot's own) are not mentions

_OUTCOME_ICON = {
    "ok": ":white_check_mark:",
    "denied": ":no_entry:",
    "failed": ":warning:",
    "error": ":boom:",
    "started": ":hourglass_flowing_sand:",
    "unknown": ":grey_question:",
}
_OUTCOME_WORD = {"started": " (started)", "unknown": " (outcome unknown)"}  # the others: the icon says it


def lock_line(lock: Lock) -> str:
    until = f" until {lock.expires_at:%Y-%m-%d %H:%M} UTC" if lock.expires_at else ""
    reason = escape(truncate(lock.reason, 300))
    return f":lock: `{escape(lock.scope)}` by <@{escape(lock.created_by)}>{until}: {reason}"


def lock_announcement(lock: Lock) -> Reply:
    until = msg.LOCK_UNTIL.format(when=f"{lock.expires_at:%Y-%m-%d %H:%M}") if lock.expires_at else ""
    text = msg.LOCKED_ANNOUNCE.format(
        user=escape(lock.created_by), scope=escape(lock.scope), until=until, reason=escape(lock.reason)
    )
    return message(text, [section(text)], in_channel=True, detail=f"locked {lock.scope}")


def unlock_announcement(lock: Lock, user: str) -> Reply:
    text = msg.UNLOCKED_ANNOUNCE.format(user=escape(user), scope=escape(lock.scope))
    return message(text, [section(text)], in_channel=True, detail=f"unlocked {lock.scope}")


def lock_expired(lock: Lock) -> Reply:
    text = msg.LOCK_EXPIRED.format(
        scope=escape(lock.scope), user=escape(lock.created_by), reason=escape(truncate(lock.reason, 300))
    )
    return message(text, [section(text)], in_channel=True)


def locks_section(locks: Sequence[Lock]) -> Block | None:
    if not locks:
        return None
    return section("\n".join(lock_line(lock) for lock in locks[:10]))


def audit_page(events: Sequence[AuditEvent], *, filters: str, next_cursor: str | None) -> Reply:
    title = msg.AUDIT_TITLE.format(filters=f" {escape(filters)}" if filters else "")
    if not events:
        return message(title, [section(f"*{title}*\n{msg.AUDIT_EMPTY}")])
    # A `started` row whose result is on the same page says nothing the result does not.
    finished = {e.request_id for e in events if e.request_id is not None}
    shown = [e for e in events if not (e.outcome == "started" and e.id in finished)]
    lines = []
    for event in shown:
        when = f"{event.ts:%Y-%m-%d %H:%M:%S}" if event.ts else "—"
        icon = _OUTCOME_ICON.get(event.outcome, "")
        target = f" `{escape(event.target)}`" if event.target else ""
        detail = f": {escape(truncate(event.detail, 120))}" if event.detail else ""
        who = f"<@{event.user_id}>" if _SLACK_ID.match(event.user_id) else escape(event.user_id)
        word = _OUTCOME_WORD.get(event.outcome, "")
        lines.append(f"{icon} {when} {who} *{escape(event.action)}*{target}{word}{detail}")
    blocks: list[Block] = [section(f"*{title}*")]
    for start in range(0, len(lines), 10):
        blocks.append(section("\n".join(lines[start : start + 10])))
    blocks.append(context(msg.AUDIT_PAGE.format(count=len(shown))))
    if next_cursor:
        blocks.append(
            actions(button(msg.AUDIT_MORE, ACTION_AUDIT_MORE, next_cursor), block_id=f"audit-{next_cursor}")
        )
    return message(title, blocks)
