"""Block Kit for rollback: the confirm card, the auto-sync offer, and the hold reminder."""

from __future__ import annotations

from handlers import messages as msg
from handlers.blocks import Block, Reply, actions, button, context, escape, header, message, section
from handlers.cards import short_rev
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


def _reverts(plan: RollbackPlan) -> bool:
    """A Flux plan that targets the deployed commit reverts it; any other Flux plan restores."""
    return plan.current is not None and plan.current.id == plan.to.id


def rollback_summary(plan: RollbackPlan) -> str:
    """What the rollback does, for the button and the audit: Argo CD `Roll back to #3`; Flux
    `Revert 840f65c` (the app then runs its parent) or `Restore to 840f65c`."""
    if plan.ref.backend != "flux":
        return msg.ROLLBACK_CONFIRM + f" to #{plan.to.id}"
    template = msg.FLUX_REVERT_LABEL if _reverts(plan) else msg.FLUX_RESTORE_LABEL
    return template.format(sha=short_rev(plan.to.revision))


def rollback_run_title(plan: RollbackPlan) -> str:
    """The title of the card that follows the rollback to its end."""
    app = plan.ref.name
    if plan.ref.backend != "flux":
        return msg.ROLLBACK_RUN_TITLE.format(app=app, id=plan.to.id)
    template = msg.FLUX_REVERT_RUN_TITLE if _reverts(plan) else msg.FLUX_RESTORE_RUN_TITLE
    return template.format(app=app, sha=short_rev(plan.to.revision))


def _dialog(plan: RollbackPlan, app: str) -> tuple[str, str, str]:
    if plan.ref.backend != "flux":
        title, text, ok = msg.ROLLBACK_CONFIRM_DIALOG
        return title, text.format(app=app, id=escape(plan.to.id)), ok
    sha = short_rev(plan.to.revision)
    title, text, ok = msg.FLUX_REVERT_DIALOG if _reverts(plan) else msg.FLUX_RESTORE_DIALOG
    return title.format(sha=sha), text.format(sha=sha, app=app, path=escape(plan.path or ".")), ok


def rollback_confirm(plan: RollbackPlan, pending_id: str) -> Reply:
    app = escape(plan.ref.name)
    when = f", deployed {plan.to.deployed_at:%Y-%m-%d %H:%M} UTC" if plan.to.deployed_at else ""
    subject = f" ({escape(plan.to.message.splitlines()[0][:120])})" if plan.to.message else ""
    revision = f"`{escape(short_rev(plan.to.revision))}`{subject}"
    if plan.ref.backend == "flux":
        template = msg.FLUX_ROLLBACK_REVERT if _reverts(plan) else msg.FLUX_ROLLBACK_RESTORE
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
        title, text, ok = msg.ROLLBACK_DISABLE_DIALOG
        go = button(
            msg.ROLLBACK_DISABLE,
            ACTION_DISABLE_AUTOSYNC,
            pending_id,
            style="danger",
            confirm=(title, text.format(app=app), ok),
        )
    else:
        go = button(
            rollback_summary(plan), ACTION_CONFIRM, pending_id, style="danger", confirm=_dialog(plan, app)
        )
    blocks.append(actions(go, cancel, block_id=f"rollback-{pending_id}"))
    blocks.append(context(f"`{escape(plan.ref.display)}`"))
    if plan.ref.backend == "flux":
        summary = rollback_summary(plan)
        return message(f"{rollback_run_title(plan)}?", blocks, detail=summary[0].lower() + summary[1:])
    return message(f"Roll back {plan.ref.name} to #{plan.to.id}?", blocks, detail=f"to #{plan.to.id}")


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
