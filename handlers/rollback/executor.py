"""`/gitops rollback`: a confirm card first; the buttons run the rollback (and the auto-sync hold)."""

from __future__ import annotations

from dataclasses import asdict

from slack_bolt import App

from handlers import messages as msg
from handlers.blocks import Reply, escape, plain_notice
from handlers.caller import Caller
from handlers.cards import short_rev
from handlers.clicks import Click, register_click
from handlers.conversation import Conversation
from handlers.deps import Deps, Executor
from handlers.follow import start_and_follow
from handlers.grammar.parser import CommandRequest
from handlers.recording import target_of
from handlers.rollback.pull_request import Route, route_of, suspend_after, switched, through_pull_request
from handlers.rollback.views import (
    ACTION_CANCEL,
    ACTION_CONFIRM,
    ACTION_DISABLE_AUTOSYNC,
    ACTION_HOLD_RELEASE,
    rollback_confirm,
    rollback_run_title,
    rollback_summary,
)
from services.backend import AppRef, AppStatus, RollbackPlan, SyncRequest
from services.errors import PermissionDenied, UserError
from services.git.errors import ProtectedBranch
from services.operations import HOLD_SUSPEND, GitOpsService
from services.pending import ButtonExpired, PendingAction, PendingActions

KIND = "rollback"


def rollback_executor(deps: Deps, ops: GitOpsService) -> Executor:
    def run(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        assert request.app is not None
        assert deps.pending is not None
        ref = ops.resolve(request.app, request.env)
        if deps.authz is not None:
            deps.authz.target(caller, "rollback", ref, force=request.force, now=deps.clock())
        plan = ops.plan_rollback(ref, request.to)
        pending = deps.pending.create(
            KIND,
            {"ref": asdict(ref), "to": plan.to.id, "suspend": request.suspend, "force": request.force},
            requester=caller.user_id,
            channel=caller.channel_id,
            ttl=deps.settings.operations.confirm_ttl,
        )
        return rollback_confirm(plan, pending.id)

    return run


def register(app: App, deps: Deps) -> None:
    register_click(app, deps, ACTION_CONFIRM, _confirm, slow=True, changes=True, locate=_locate)
    register_click(app, deps, ACTION_DISABLE_AUTOSYNC, _confirm, slow=True, changes=True, locate=_locate)
    register_click(app, deps, ACTION_CANCEL, _cancel, locate=_locate)
    register_click(app, deps, ACTION_HOLD_RELEASE, _release, locate=_locate_hold)


def _locate(click: Click, deps: Deps) -> str:
    stored = deps.pending.get(click.value) if deps.pending is not None else None
    return target_of(deps, AppRef(**stored.payload["ref"])) if stored is not None else ""


def _locate_hold(click: Click, deps: Deps) -> str:
    hold = deps.ops.holds.get(int(click.value)) if deps.ops is not None and click.value.isdigit() else None
    return target_of(deps, AppRef(**hold.ref)) if hold is not None else ""


def _stored(click: Click, pending: PendingActions) -> PendingAction:
    stored = pending.get(click.value)
    if stored is None:
        raise ButtonExpired("This button is no longer known to the bot. Run the command again.")
    if stored.requester != click.caller.user_id and stored.consumed_at is None:
        raise PermissionDenied(
            msg.ROLLBACK_NOT_YOURS.format(user=stored.requester), mentions=[stored.requester]
        )
    return stored


def _claim(click: Click, pending: PendingActions) -> PendingAction:
    _stored(click, pending)
    return pending.claim(click.value, kind=KIND, by=click.caller.user_id)


def _confirm(click: Click, deps: Deps, conversation: Conversation) -> tuple[Reply, str]:
    assert deps.pending is not None
    assert deps.ops is not None
    ops = deps.ops
    stored = _stored(click, deps.pending)
    ref = AppRef(**stored.payload["ref"])
    note = None
    if deps.authz is not None:  # at click time, for whoever clicked: roles and locks may have changed
        force = bool(stored.payload.get("force"))
        note = deps.authz.target(click.caller, "rollback", ref, force=force, now=deps.clock()).note or None
    action = _claim(click, deps.pending)
    plan = ops.plan_rollback(ref, str(action.payload["to"]))  # fresh: history may have moved
    user = click.caller.user_id
    if click.action_id == ACTION_DISABLE_AUTOSYNC and plan.auto_sync:
        hold = ops.disable_autosync_for_rollback(plan, user=user, channel=action.channel)
        note = (
            f"Auto-sync turned off (hold #{hold.id}); the bot will remind this channel until it is back on."
        )
    elif plan.auto_sync:
        raise UserError(msg.ROLLBACK_AUTOSYNC.format(app=escape(ref.name)))
    # A Flux rollback is a new commit, not a sync to `plan.to`: its card names no --revision.
    revision = None if ref.backend == "flux" else plan.to.revision
    request = SyncRequest(revision=revision, initiated_by=click.caller.user_name or user)
    before = plan.current.revision if plan.current else None
    title = rollback_run_title(plan)

    suspend = bool(action.payload.get("suspend"))
    after = suspend_after(deps, ref, suspend=suspend, user=user, channel=action.channel)

    def label(started: AppStatus) -> str:
        what = rollback_summary(plan).lower() if ref.backend == "flux" else f"rollback to #{plan.to.id}"
        return f"{what}: {short_rev(before)} → {short_rev(_revision_after(plan, started))}"

    # The confirm card (ephemeral) then points at the public card instead of offering its buttons.
    by = click.caller.user_name or user
    pointer = plain_notice(msg.ROLLBACK_STARTED.format(app=escape(ref.name)))
    route = route_of(deps, plan)  # a Flux rollback into a protected branch goes through a PR / MR

    def through_pr(way: Route, lead: str) -> Reply:
        shown = "\n".join(n for n in (lead, note) if n)
        return through_pull_request(
            deps, way, conversation, plan, rollback_id=action.id, user=user, by=by, title=title, note=shown,
            suspend=suspend, channel=action.channel, pointer=pointer,
        )  # fmt: skip

    if route is not None and route.host is not None:
        return through_pr(route, ""), ref.display
    try:
        reply = start_and_follow(
            deps, conversation, ref, lambda: ops.start_rollback(plan, initiated_by=by),
            request=request, user=user, before=before, note=note, title=title, after=after,
            label=label, pointer=pointer,
        )  # fmt: skip
    except ProtectedBranch as refused:
        if route is None or route.repo.mode != "auto":
            raise
        way, lead = switched(deps, route, plan, refused, rollback_id=action.id, channel=action.channel)
        return through_pr(way, lead), ref.display
    return reply, ref.display


def _revision_after(plan: RollbackPlan, started: AppStatus) -> str | None:
    """Argo CD deploys the chosen history entry; a Flux rollback deploys the commit it pushed (after
    a revert that is the new revert commit, never the commit it reverted)."""
    op = started.operation
    if plan.ref.backend == "flux" and op is not None and op.revision:
        return op.revision
    return plan.to.revision


def _cancel(click: Click, deps: Deps, conversation: Conversation) -> tuple[Reply, str]:
    assert deps.pending is not None
    action = _claim(click, deps.pending)
    ref = AppRef(**action.payload["ref"])
    text = msg.ROLLBACK_CANCELLED.format(app=escape(ref.name), user=click.caller.user_id)
    return plain_notice(text, detail="cancelled"), ref.display


def _release(click: Click, deps: Deps, conversation: Conversation) -> tuple[Reply, str]:
    assert deps.ops is not None
    hold = deps.ops.holds.get(int(click.value)) if click.value.isdigit() else None
    if hold is None:
        raise UserError("This reminder is no longer known to the bot.")
    app = hold.target.split("/")[-1]
    if deps.authz is not None:
        action = "resume" if hold.kind == HOLD_SUSPEND else "sync"
        deps.authz.target(click.caller, action, AppRef(**hold.ref), now=deps.clock())
    if not deps.ops.release_hold(hold, user=click.caller.user_id):
        return plain_notice(msg.HOLD_ALREADY.format(app=escape(app))), hold.target
    released = msg.HOLD_RESUMED if hold.kind == HOLD_SUSPEND else msg.HOLD_RELEASED
    text = released.format(app=escape(app), user=click.caller.user_id)
    return plain_notice(text, in_channel=True, detail=f"auto-sync re-enabled, hold #{hold.id}"), hold.target
