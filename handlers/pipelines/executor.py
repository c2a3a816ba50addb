"""`/gitops pipelines` (the latest runs) and `/gitops pipeline` (a confirm card, then a run started
as `tkn pipeline start` builds it and followed in one channel message), and the card's buttons:
Start, Cancel (nothing started), and a running run's Cancel run (`spec.status: CancelledRunFinally`).

Every button is checked at click time for whoever clicked: Start by the requester only and with
`pipeline_run` still held; Cancel run by anyone holding `pipeline_cancel` for the app there.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_bolt import Ack, App

from handlers import messages as msg
from handlers.authz import pipeline_env
from handlers.blocks import Reply, escape, plain_notice
from handlers.caller import Caller
from handlers.clicks import Click, register_click
from handlers.conversation import Conversation
from handlers.deps import Deps, Executor
from handlers.grammar.parser import CommandRequest
from handlers.pipelines.follow import (
    KIND_CANCEL,
    start_and_follow,
    target_from,
    target_payload,
)
from handlers.pipelines.views import (
    ACTION_CANCEL,
    ACTION_DASHBOARD,
    ACTION_DISMISS,
    ACTION_START,
    runs_list,
    start_confirm,
)
from services.correlation import current_correlation_id
from services.errors import BackendUnavailable, PermissionDenied, UserError
from services.pending import ButtonExpired, PendingAction, PendingActions
from services.pipelines import PipelineRuns, PipelineTarget, RunRef
from services.tekton.dashboard import pipelinerun_url
from services.tekton.runs import ParamValue, StartedBy

KIND_START = "pipeline_start"


def pipelines_executor(deps: Deps, pipelines: PipelineRuns) -> Executor:
    def run(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        targets = pipelines.targets.of(request.app, request.env)
        if not targets:
            what = " ".join(f"`{p}`" for p in (request.app, request.env) if p) or "any app"
            raise UserError(msg.PIPELINES_NONE.format(what=what), hint=msg.PIPELINES_NONE_HINT)
        latest = pipelines.latest(targets)
        if not latest.runs and latest.unreachable:  # nothing to show: say why, as a failure
            raise BackendUnavailable("Tekton", "; ".join(latest.unreachable)[:400])
        links: dict[tuple[str, str, str], str] = {}
        for target, summary in latest.runs:
            base = pipelines.dashboard_base(target.cluster)
            if base:
                links[(target.cluster, summary.namespace, summary.name)] = pipelinerun_url(
                    base, summary.namespace, summary.name
                )
        scope = " · ".join(p for p in (request.app, request.env) if p)
        title = f"{msg.PIPELINES_TITLE}: {scope}" if scope else msg.PIPELINES_TITLE
        return runs_list(latest, now=deps.clock(), title=title, links=links)

    return run


def pipeline_executor(deps: Deps, pipelines: PipelineRuns) -> Executor:
    def run(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        assert request.app is not None
        assert deps.pending is not None
        target = pipelines.targets.resolve(request.app, request.env, request.namespace)
        if deps.authz is not None:
            deps.authz.pipeline(caller, "pipeline_run", target)
        shown = checked_params(pipelines, target, request.params)  # a bad --param fails before the card
        pending = deps.pending.create(
            KIND_START,
            {"target": target_payload(target), "params": list(request.params)},
            requester=caller.user_id,
            channel=caller.channel_id,
            ttl=deps.settings.operations.confirm_ttl,
        )
        return start_confirm(target, shown, pending.id)

    return run


def checked_params(
    pipelines: PipelineRuns, target: PipelineTarget, args: Sequence[str]
) -> list[tuple[str, str]]:
    """The params the run would get — configured ones with the user's on top — checked against
    what the Pipeline declares, as `PipelineRuns.start` checks them again at Start."""
    values = pipelines.params(target, args)
    return [(name, _shown(values[name])) for name in sorted(values)]


def _shown(value: ParamValue) -> str:
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}:{v}" for k, v in value.items())
    return value


def register(app: App, deps: Deps) -> None:
    register_click(app, deps, ACTION_START, _start, slow=True, changes=True, locate=_locate)
    register_click(app, deps, ACTION_DISMISS, _dismiss, locate=_locate)
    register_click(app, deps, ACTION_CANCEL, _cancel, slow=True, changes=True, locate=_locate)

    @app.action(ACTION_DASHBOARD)
    def on_dashboard(ack: Ack) -> None:
        ack()  # a link button: Slack opens the URL and still tells the bot; nothing to do


def _locate(click: Click, deps: Deps) -> str:
    stored = deps.pending.get(click.value) if deps.pending is not None else None
    if stored is None or deps.pipelines is None:
        return ""
    return audit_target(deps, target_from(deps.pipelines, stored.payload["target"]))


def audit_target(deps: Deps, target: PipelineTarget) -> str:
    """The app's one audit target (`app/env`), as commands name it."""
    env = pipeline_env(target)
    if deps.ops is not None:
        return deps.ops.resolver.typed_target(target.app, env)
    return "/".join(p for p in (target.app, env) if p)


def _stored(click: Click, pending: PendingActions, kind: str) -> PendingAction:
    stored = pending.get(click.value)
    if stored is None or stored.kind != kind:
        raise ButtonExpired("This button is no longer known to the bot. Run the command again.")
    return stored


def _own(click: Click, pending: PendingActions) -> PendingAction:
    """A confirm card's action: only its requester may press its buttons."""
    stored = _stored(click, pending, KIND_START)
    if stored.requester != click.caller.user_id and stored.consumed_at is None:
        raise PermissionDenied(
            msg.PIPELINE_NOT_YOURS.format(user=stored.requester), mentions=[stored.requester]
        )
    return stored


def _start(click: Click, deps: Deps, conversation: Conversation) -> tuple[Reply, str]:
    assert deps.pending is not None
    assert deps.pipelines is not None
    stored = _own(click, deps.pending)
    target = target_from(deps.pipelines, stored.payload["target"])
    if deps.authz is not None:  # at click time: roles may have changed since the card was shown
        deps.authz.pipeline(click.caller, "pipeline_run", target)
    action = deps.pending.claim(click.value, kind=KIND_START, by=click.caller.user_id)
    user = click.caller.user_id
    cid = current_correlation_id()  # the click's: the run's annotation points at its audit rows
    started_by = StartedBy(user, click.caller.user_name or None, cid if cid != "-" else None)
    pointer = plain_notice(
        msg.PIPELINE_STARTED.format(pipeline=escape(target.pipeline), app=escape(target.app))
    )
    reply = start_and_follow(
        deps, conversation, target, tuple(str(a) for a in action.payload.get("params") or ()),
        started_by=started_by, pointer=pointer,
    )  # fmt: skip
    return reply, audit_target(deps, target)


def _dismiss(click: Click, deps: Deps, conversation: Conversation) -> tuple[Reply, str]:
    assert deps.pending is not None
    assert deps.pipelines is not None
    _own(click, deps.pending)
    action = deps.pending.claim(click.value, kind=KIND_START, by=click.caller.user_id)
    pipeline = str(action.payload["target"]["pipeline"])
    text = msg.PIPELINE_DISMISSED.format(pipeline=escape(pipeline), user=click.caller.user_id)
    return plain_notice(text, detail="not started"), ""


def _cancel(click: Click, deps: Deps, conversation: Conversation) -> tuple[Reply, str]:
    """Anyone holding `pipeline_cancel` for the app may stop the run; once (the first click)."""
    assert deps.pending is not None
    assert deps.pipelines is not None
    stored = _stored(click, deps.pending, KIND_CANCEL)
    ref = RunRef(**stored.payload["run"])
    if stored.consumed_at is not None:
        raise _already(ref, stored)
    if stored.expires_at <= deps.clock():
        raise ButtonExpired("This button has expired; the bot no longer follows this run.")
    target = target_from(deps.pipelines, stored.payload["target"])
    if deps.authz is not None:
        deps.authz.pipeline(click.caller, "pipeline_cancel", target)
    # Patch first: a refused or failed cancel leaves the button working. Two clicks at the same
    # moment both patch the same `spec.status` (harmless); only the first claims the button.
    deps.pipelines.cancel(ref)
    try:
        deps.pending.claim(click.value, kind=KIND_CANCEL, by=click.caller.user_id)
    except ButtonExpired:
        again = deps.pending.get(click.value)
        if again is not None and again.consumed_by:
            raise _already(ref, again) from None
        raise
    text = msg.PIPELINE_CANCELLING.format(run=escape(ref.name))
    return plain_notice(text, detail=f"cancel {ref.display}"), audit_target(deps, target)


def _already(ref: RunRef, stored: PendingAction) -> UserError:
    by = stored.consumed_by or "someone"
    return UserError(msg.PIPELINE_ALREADY_CANCELLED.format(run=ref.name, user=by), mentions=[by])
