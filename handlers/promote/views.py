"""Block Kit for promotions: the preview card, with Approve / Reject when the target needs approval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from handlers import messages as msg
from handlers.blocks import (
    Block,
    Reply,
    actions,
    button,
    code,
    context,
    escape,
    fields_section,
    header,
    message,
    section,
    truncate,
)
from handlers.cards import health_text, lock_line, sync_text
from handlers.promote.checks import finding_lines
from services.access.locks import Lock
from services.backend import AppStatus
from services.extensions.model import Finding
from services.githost.model import HOST_LABEL, NOUN, SIGIL, HostKind
from services.promotion.model import ChangeRequestRecord

ACTION_APPROVE = "promotion_approve"
ACTION_REJECT = "promotion_reject"
INPUT_REASON = "reject_reason"


@dataclass(frozen=True)
class PromotionView:
    id: str
    app: str
    source: str
    target: str
    summary: str
    diff: str
    requester: str
    source_status: AppStatus | None
    running_since: datetime | None
    target_auto_sync: bool | None
    locks: Sequence[Lock]
    approvals: Sequence[str]
    approvals_required: int
    expires_at: datetime | None
    state: str  # pending, approved, rejected, expired, committed, failed, superseded, blocked, direct
    note: str = ""
    findings: Sequence[Finding] = ()  # what validators say; a blocking one removes Approve
    change_request: str = ""  # the pull / merge request the promotion goes through (mrkdwn)

    @property
    def blocked(self) -> bool:
        return any(f.blocks for f in self.findings)


def promotion_card(view: PromotionView) -> Reply:
    title = msg.PROMOTE_TITLE.format(app=view.app, source=view.source, target=view.target)
    blocks: list[Block] = [
        header(title),
        section(f"<@{escape(view.requester)}> asks to promote: *{escape(truncate(view.summary, 500))}*"),
    ]
    fields = []
    if view.source_status is not None:
        since = f"\nsince {view.running_since:%Y-%m-%d %H:%M} UTC" if view.running_since else ""
        state = f"{sync_text(view.source_status)} · {health_text(view.source_status)}"
        fields.append(f"*{escape(view.source)} now*\n{state}{since}")
    if view.target_auto_sync is not None:
        fields.append(f"*{escape(view.target)} auto-sync*\n{'on' if view.target_auto_sync else 'off'}")
    if view.approvals_required:
        have = len(view.approvals)
        fields.append(msg.PROMOTE_APPROVALS.format(have=have, need=view.approvals_required))
    if fields:
        blocks.append(fields_section(fields))
    if view.change_request:
        blocks.append(section(view.change_request))
    if view.locks:
        blocks.append(section("\n".join(lock_line(lock) for lock in view.locks[:5])))
    blocks.append(section(code(view.diff, limit=2000)))
    if view.approvals:
        users = ", ".join(f"<@{escape(u)}>" for u in view.approvals)
        blocks.append(context(msg.PROMOTE_APPROVED_BY.format(users=users)))
    if view.findings:
        blocks.append(section(f"{msg.PROMOTE_FINDINGS_TITLE}\n{finding_lines(view.findings)}"))
    if view.note:
        blocks.append(section(view.note))
    if view.state in ("pending", "superseded"):
        blocks.append(
            {
                "type": "input",
                "block_id": f"reason-{view.id}"[:255],
                "optional": True,
                "label": {"type": "plain_text", "text": msg.PROMOTE_REASON_LABEL},
                "element": {"type": "plain_text_input", "action_id": INPUT_REASON},
            }
        )
        approve = button(
            msg.PROMOTE_APPROVE,
            ACTION_APPROVE,
            view.id,
            style="primary",
            confirm=(
                "Approve promotion?",
                f"{view.app} goes to {view.target}: {view.summary}"[:290],
                "Approve",
            ),
        )
        reject = button(msg.PROMOTE_REJECT, ACTION_REJECT, view.id, style="danger")
        shown = (reject,) if view.blocked else (approve, reject)  # a blocking check: nothing to approve
        blocks.append(actions(*shown, block_id=f"promote-{view.id}-{len(view.approvals)}"))
    expires = (
        f" · expires {view.expires_at:%Y-%m-%d %H:%M} UTC"
        if view.expires_at and view.state == "pending"
        else ""
    )
    blocks.append(context(f"promotion `{escape(view.id)}` · {escape(view.state)}{expires}"))
    failed = view.state in ("failed", "rejected", "expired", "blocked")
    return message(
        title, blocks, in_channel=True, detail=f"promotion {view.id}: {view.summary}", failed=failed
    )


def change_request_text(record: ChangeRequestRecord) -> str:
    """The PR / MR line of the card: link, branch, checks, and what the host still needs."""
    kind: HostKind = "gitlab" if record.host == "gitlab" else "github"
    host, noun = HOST_LABEL[kind], NOUN[kind]
    ref = f"{noun} {SIGIL[kind]}{record.number}"
    lines = [
        msg.PROMOTE_PR_LINE.format(
            host=host, noun=noun, url=record.url, ref=ref, branch=escape(record.branch)
        )
    ]
    if record.checks:
        lines.append(msg.PROMOTE_PR_CHECKS.format(checks=escape(record.checks)))
    said = msg.PROMOTE_PR_READINESS.get(record.readiness or record.state)
    if said:
        lines.append(said.format(host=host))
    if record.readiness == "blocked" and record.missing:
        lines += [f"• {escape(line)}" for line in record.missing.splitlines()[:8]]
    return "\n".join(lines)
