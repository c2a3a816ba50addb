"""Following a started PipelineRun to its end without holding a worker (handlers/follow.py is the
AppStatus version of the same idea).

The Start click creates the run, posts its card, and returns `follow(...)`: the job ends there.
The shared watcher polls the run (`PipelineRuns.read`: the run and its TaskRuns); each change edits
the card, and the end completes the request — the final card with the failing step's log tail,
and the audit row — through the completion the pipeline put on the conversation. The `spec` names
the run, the target and the Cancel button, so a restarted bot can pick the run up (`resume`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from handlers import messages as msg
from handlers.blocks import Reply, escape, plain_notice
from handlers.conversation import Conversation
from handlers.deps import Deps
from handlers.follow import DEFERRED, complete
from handlers.pipelines.views import run_card
from services.errors import UserError
from services.pipelines import PipelineRuns, PipelineTarget, RunRef
from services.settings.model import Settings
from services.settings.types import format_duration
from services.tekton.model import PipelineRunDetail
from services.tekton.runs import StartedBy
from services.watcher import Reservation

KIND_CANCEL = "pipeline_cancel"  # the pending action behind a running run's Cancel button
SPEC_KIND = "pipeline"  # `watch` specs of followed runs (handlers/resume.py dispatches on it)
POLL_SECONDS = 2.0  # a run's steps take seconds to minutes; the watcher backs off while none moves
DEFAULT_TIMEOUT = timedelta(hours=1)  # Tekton's default `timeouts.pipeline`
MARGIN = timedelta(minutes=5)  # finally tasks and the controller's own timeout handling
CANCEL_SPEC_VALUES = frozenset({"Cancelled", "CancelledRunFinally", "StoppedRunFinally"})

# a run's state (None: not read yet), an extra note → the card
Render = Callable[[PipelineRunDetail | None, str], Reply]


def target_payload(target: PipelineTarget) -> dict[str, Any]:
    """What a pending action or a watch spec stores to find the target again."""
    return {"app": target.app, "pipeline": target.pipeline, "namespace": target.namespace,
            "cluster": target.cluster, "env": target.env}  # fmt: skip


def target_from(pipelines: PipelineRuns, payload: Mapping[str, Any]) -> PipelineTarget:
    """The configured target a payload names (UserError when the config no longer has it)."""
    key = (payload["app"], payload["pipeline"], payload["namespace"], payload["cluster"])
    for t in pipelines.targets.all:
        if (t.app, t.pipeline, t.namespace, t.cluster) == key:
            env = payload.get("env")
            return PipelineTarget(t.app, t.pipeline, t.namespace, t.cluster, t.config, env)
    raise UserError(msg.PIPELINE_GONE.format(pipeline=key[1], app=key[0]))


def check_command(target: Mapping[str, Any]) -> str:
    """`/gitops pipelines APP [ENV]`: how to look at the run once the bot no longer follows it."""
    env = target.get("env")
    return f"/gitops pipelines {target['app']}" + (f" {env}" if env else "")


def follow_timeout(settings: Settings, target: PipelineTarget) -> float:
    """How long to follow: the pipeline's own timeout (Tekton's default when unset or 0), a
    margin for finally tasks, and never less than `operations.sync_timeout`."""
    configured = target.config.timeout or DEFAULT_TIMEOUT
    return max(configured + MARGIN, settings.operations.sync_timeout).total_seconds()


def progress_key(detail: PipelineRunDetail) -> object:
    """What makes the card worth editing: the run's state and each task's word."""
    status = detail.status
    tasks = tuple((t.pipeline_task, t.word) for t in detail.all_tasks)
    return (status.kind, status.label, detail.summary.spec_status, tasks)


def start_and_follow(
    deps: Deps,
    conversation: Conversation,
    target: PipelineTarget,
    args: tuple[str, ...],
    *,
    started_by: StartedBy,
    pointer: Reply | None = None,
) -> Reply:
    """Create the run, post its card (with a Cancel button), and follow it. A full watcher refuses
    before anything is created; a refused create posts nothing."""
    assert deps.ops is not None
    assert deps.pipelines is not None
    assert deps.pending is not None
    reservation = deps.ops.watcher.reserve()
    try:
        detail = deps.pipelines.start(target, args, started_by)
        ref = RunRef(target.cluster, detail.namespace, detail.name)
        timeout = follow_timeout(deps.settings, target)
        payload = target_payload(target)
        cancel = deps.pending.create(
            KIND_CANCEL, {"run": asdict(ref), "target": payload}, requester=started_by.user_id,
            channel=conversation.channel, ttl=timedelta(seconds=timeout),
        )  # fmt: skip
        spec = {"kind": SPEC_KIND, "what": f"Tekton {ref.cluster}", "run": asdict(ref), "target": payload,
                "user": started_by.user_id, "cancel": cancel.id, "timeout": timeout}  # fmt: skip
        conversation.announce(renderer(deps, spec)(detail, ""), pointer=pointer)
        return follow(deps, conversation, reservation, spec, first=detail)
    except BaseException:
        reservation.release()  # a no-op once the watch holds it
        raise


def follow(
    deps: Deps,
    conversation: Conversation,
    reservation: Reservation,
    spec: Mapping[str, Any],
    *,
    first: PipelineRunDetail | None = None,
) -> Reply:
    """Hand the run to the watcher; returns DEFERRED for the pipeline. Also how a restarted bot
    picks a run up again (`spec` from the in-flight row)."""
    assert deps.ops is not None
    assert deps.pipelines is not None
    pipelines = deps.pipelines
    ref = RunRef(**spec["run"])
    render = renderer(deps, spec)
    last: list[PipelineRunDetail | None] = [first]
    timeout = float(spec.get("timeout") or DEFAULT_TIMEOUT.total_seconds())

    def progress(detail: PipelineRunDetail) -> None:
        last[0] = detail
        conversation.update(render(detail, ""))

    def done(detail: PipelineRunDetail) -> None:
        complete(conversation, lambda: render(detail, ""))

    def ended(exc: BaseException) -> None:
        note = msg.PIPELINE_FOLLOW_ENDED.format(
            timeout=format_duration(timedelta(seconds=timeout)), reason=str(exc)[:300],
            check=check_command(spec["target"]),
        )  # fmt: skip
        complete(conversation, lambda: render(last[0], note), outcome="unknown")

    if conversation.on_watch is not None:
        conversation.on_watch(dict(spec))
    deps.ops.watcher.watch(
        reservation, None, lambda: pipelines.read(ref), what=str(spec.get("what") or "Tekton"),
        interval=POLL_SECONDS, timeout=timeout, on_progress=progress, on_done=done, on_error=ended,
        finished=lambda d: bool(d.status.done), progress_key=progress_key, name=ref.display,
    )  # fmt: skip
    return DEFERRED


def renderer(deps: Deps, spec: Mapping[str, Any]) -> Render:
    """The run card from its spec: Cancel while it runs and nobody cancelled it yet, who cancelled
    it, and at the end of a failed run the failing step's log tail (read once, scrubbed)."""
    assert deps.pipelines is not None
    pipelines = deps.pipelines
    ref = RunRef(**spec["run"])
    user = str(spec.get("user") or "") or None
    cancel_id = str(spec.get("cancel") or "") or None
    target = _target_or_none(pipelines, spec["target"])

    def cancelled_by() -> str | None:
        stored = deps.pending.get(cancel_id) if deps.pending is not None and cancel_id else None
        return stored.consumed_by if stored is not None else None

    def render(detail: PipelineRunDetail | None, note: str) -> Reply:
        if detail is None:  # followed again after a restart and never read
            text = msg.PIPELINE_FOLLOW_CUT.format(run=escape(ref.name), check=check_command(spec["target"]))
            return plain_notice("\n".join(n for n in (text, note) if n), in_channel=True, detail=ref.display)
        status = detail.status
        by = cancelled_by() if detail.summary.spec_status in CANCEL_SPEC_VALUES else None
        notes = []
        if by and not status.done:
            notes.append(msg.PIPELINE_CANCEL_REQUESTED.format(user=by))
        elif by and status.kind == "cancelled":
            notes.append(msg.PIPELINE_CANCELLED_BY.format(user=by))
        if note:
            notes.append(note)
        log = pipelines.failure_log(detail, ref.cluster) if status.done and detail.failure else None
        cancel = (
            cancel_id if not status.done and detail.summary.spec_status not in CANCEL_SPEC_VALUES else None
        )
        return run_card(
            detail, now=deps.clock(), target=target, log=log, started_by=user, cancel_value=cancel,
            note="\n".join(notes) or None, mentions=[by] if by else (),
        )  # fmt: skip

    return render


def _target_or_none(pipelines: PipelineRuns, payload: Mapping[str, Any]) -> PipelineTarget | None:
    try:
        return target_from(pipelines, payload)
    except (UserError, KeyError):
        return None  # the config changed meanwhile: the card shows the run without its app


def resume(
    deps: Deps, conversation: Conversation, spec: Mapping[str, Any], reservation: Reservation
) -> Reply:
    """Follow a run again after a restart (handlers/resume.py calls this for SPEC_KIND)."""
    if deps.pipelines is None:
        raise UserError("Tekton is no longer configured (`tekton:`); the run is not followed.")
    return follow(deps, conversation, reservation, spec)
