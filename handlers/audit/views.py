"""Block Kit for `/gitops audit`: a page of rows, newest first, with a More button."""

from __future__ import annotations

import re
from collections.abc import Sequence

from handlers import messages as msg
from handlers.blocks import Block, Reply, actions, button, context, escape, message, section, truncate
from services.audit.chain import AuditEvent

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
