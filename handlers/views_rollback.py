"""Block Kit for rollback: the confirm card, the auto-sync offer, and the hold reminder."""

from __future__ import annotations

from handlers import messages as msg
from handlers.blocks import Block, Reply, actions, button, context, escape, header, message, section
from handlers.views_status import short_rev
from services.backend import HistoryEntry, RollbackPlan
from services.holds import Hold
from services.operations import HOLD_SUSPEND

ACTION_CONFIRM = "rollback_confirm"
ACTION_DISABLE_AUTOSYNC = "rollback_disable_autosync"
ACTION_CANCEL = "rollback_cancel"
ACTION_HOLD_RELEASE = "hold_release"


def _entry(entry: HistoryEntry | None) -> str:
    if entry is None:
        return "the current deployment"
    return f"#{escape(entry.id)} `{escape(short_rev(entry.revision))}`"


def rollback_confirm(plan: RollbackPlan, pending_id: str) -> Reply:
    app = escape(plan.ref.name)
    when = f", deployed {plan.to.deployed_at:%Y-%m-%d %H:%M} UTC" if plan.to.deployed_at else ""
    subject = f" ({escape(plan.to.message.splitlines()[0][:120])})" if plan.to.message else ""
    revision = f"`{escape(short_rev(plan.to.revision))}`{subject}"
    if plan.ref.backend == "flux":
        reverting = plan.current is not None and plan.current.id == plan.to.id
        template = msg.FLUX_ROLLBACK_REVERT if reverting else msg.FLUX_ROLLBACK_RESTORE
        body = template.format(revision=revision, path=escape(plan.path or "."), app=app)
    else:
        body = msg.ROLLBACK_BODY.format(
            app=app, current=_entry(plan.current), id=escape(plan.to.id), revision=revision, when=when
        )
    blocks: list[Block] = [header(msg.ROLLBACK_TITLE.format(app=plan.ref.name)), section(body)]
    cancel = button(msg.ROLLBACK_CANCEL, ACTION_CANCEL, pending_id)
    if plan.auto_sync:
        blocks.append(section(msg.ROLLBACK_AUTOSYNC.format(app=app)))
        blocks.append(section(msg.ROLLBACK_AUTOSYNC_OFFER))
        go = button(
            msg.ROLLBACK_DISABLE,
            ACTION_DISABLE_AUTOSYNC,
            pending_id,
            style="danger",
            confirm=(
                "Disable auto-sync?",
                f"Auto-sync stays off for {app} until someone turns it back on.",
                "Do it",
            ),
        )
    else:
        go = button(
            msg.ROLLBACK_CONFIRM + f" to #{plan.to.id}",
            ACTION_CONFIRM,
            pending_id,
            style="danger",
            confirm=("Roll back?", f"{app} goes back to deployment #{escape(plan.to.id)}.", "Roll back"),
        )
    blocks.append(actions(go, cancel, block_id=f"rollback-{pending_id}"))
    blocks.append(context(f"`{escape(plan.ref.display)}`"))
    return message(f"Roll back {plan.ref.name} to #{plan.to.id}?", blocks, detail=f"to #{plan.to.id}")


def plain_notice(text: str, *, in_channel: bool = False, detail: str = "", failed: bool = False) -> Reply:
    return message(text, [section(text)], in_channel=in_channel, detail=detail, failed=failed)


def hold_reminder(hold: Hold) -> Reply:
    since = f"{hold.created_at:%Y-%m-%d %H:%M} UTC"
    app = hold.target.split("/")[-1]
    suspended = hold.kind == HOLD_SUSPEND
    template = msg.HOLD_SUSPENDED_REMINDER if suspended else msg.HOLD_REMINDER
    text = template.format(app=escape(app), since=since, user=escape(hold.created_by))
    label = msg.HOLD_RESUME if suspended else msg.HOLD_REENABLE
    blocks: list[Block] = [
        section(text),
        actions(
            button(label, ACTION_HOLD_RELEASE, str(hold.id), style="primary"),
            block_id=f"hold-{hold.id}",
        ),
        context(f"`{escape(hold.target)}`"),
    ]
    return message(text, blocks, in_channel=True)
