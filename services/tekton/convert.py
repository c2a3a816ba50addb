"""Tekton API objects (v1 and v1beta1, as plain JSON dicts) → the records of `services.tekton.model`.

Reads defensively: a run the controller has not reconciled has no `status`; webhook defaults
(timeouts, service account) may be missing; v1beta1 objects from old controllers carry child
status in the `status.taskRuns` map instead of `childReferences` (docs/tekton-api.md §8, §9).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.tekton.dashboard import pipelinerun_url
from services.tekton.model import (
    MARK_RUNNING,
    MARK_SKIPPED,
    MARK_UNKNOWN,
    Failure,
    PipelineRunDetail,
    PipelineRunSummary,
    RunStatus,
    SkippedTask,
    StepState,
    TaskState,
)
from services.tekton.reasons import PIPELINERUN_REASONS, TASKRUN_REASONS, classify, tkn_word
from services.tekton.runs import ANNOTATION_STARTED_BY_NAME, LABEL_STARTED_BY
from services.tekton.timefmt import parse_time

Json = Mapping[str, Any]
CANCEL_SPEC_VALUES = ("Cancelled", "CancelledRunFinally", "StoppedRunFinally")
USER_ERROR_PREFIX = "[User error] "  # MarkFailed's LabelUserError; noise in chat (§8.12)
TIMED_OUT_MARKER = "has timed out"  # spec.statusMessage of children of a timed-out run (§8.3)


def _map(value: object) -> Json:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Json]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def condition(obj: Json) -> Json | None:
    """The `Succeeded` condition (tkn reads conditions[0]; runs have exactly one)."""
    conditions = _list(_map(obj.get("status")).get("conditions"))
    found = next((c for c in conditions if c.get("type") == "Succeeded"), None)
    return found if found is not None else (conditions[0] if conditions else None)


def _message(cond: Json) -> str:
    return _str(cond.get("message")).removeprefix(USER_ERROR_PREFIX)


def pipelinerun_status(obj: Json) -> RunStatus:
    """§3.6: no condition → queued (or pending / cancelling from spec.status); else the reason table."""
    spec_status = _str(_map(obj.get("spec")).get("status"))
    cond = condition(obj)
    if cond is None:
        if spec_status == "PipelineRunPending":
            return RunStatus("pending", "pending", "---")
        if spec_status in CANCEL_SPEC_VALUES:
            return RunStatus("pending", "cancelling", "---")
        return RunStatus("pending", "queued", "---")
    status, reason = _str(cond.get("status")), _str(cond.get("reason"))
    kind, label = classify(PIPELINERUN_REASONS, status, reason)
    if status == "Unknown" and spec_status in CANCEL_SPEC_VALUES and kind != "pending":
        kind, label = "running", "stopping" if spec_status == "StoppedRunFinally" else "cancelling"
    return RunStatus(kind, label, tkn_word(status, reason), status, reason, _message(cond))


def taskrun_status(obj: Json) -> RunStatus:
    spec = _map(obj.get("spec"))
    cond = condition(obj)
    if cond is None:
        label = "pending" if spec.get("status") == "TaskRunPending" else "queued"
        return RunStatus("pending", label, "---")
    status, reason = _str(cond.get("status")), _str(cond.get("reason"))
    kind, label = classify(TASKRUN_REASONS, status, reason)
    message = _message(cond)
    if kind == "cancelled" and TIMED_OUT_MARKER in (_str(spec.get("statusMessage")) or message):
        kind, label = "timed out", "timed out (pipeline timeout)"
    return RunStatus(kind, label, tkn_word(status, reason), status, reason, message)


def step_state(raw: Json) -> StepState:
    name = _str(raw.get("name"))
    container = _str(raw.get("container")) or f"step-{name}"
    term_reason = _str(raw.get("terminationReason"))
    if isinstance(raw.get("terminated"), Mapping):
        t = _map(raw.get("terminated"))
        code = t.get("exitCode")
        reason = _str(t.get("reason"))
        return StepState(
            name,
            container,
            "terminated",
            reason or "---",
            exit_code=code if isinstance(code, int) else None,
            reason=reason,
            termination_reason=term_reason,
            message=_str(t.get("message")),
            started_at=parse_time(t.get("startedAt")),
            finished_at=parse_time(t.get("finishedAt")),
        )
    if isinstance(raw.get("running"), Mapping):
        started = parse_time(_map(raw.get("running")).get("startedAt"))
        return StepState(name, container, "running", "Running", started_at=started)
    if isinstance(raw.get("waiting"), Mapping):
        w = _map(raw.get("waiting"))
        reason = _str(w.get("reason"))
        return StepState(
            name, container, "waiting", reason or "---", reason=reason, message=_str(w.get("message"))
        )
    return StepState(name, container, "", "---")


def _params(spec: Json) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for p in _list(spec.get("params")):
        value = p.get("value")
        if isinstance(value, list):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, Mapping):
            text = ", ".join(f"{k}:{v}" for k, v in value.items())
        else:
            text = str(value) if value is not None else ""
        out.append((_str(p.get("name")), text))
    return tuple(out)


def _labels(meta: Json) -> dict[str, str]:
    return {k: v for k, v in _map(meta.get("labels")).items() if isinstance(k, str) and isinstance(v, str)}


def summary(obj: Json) -> PipelineRunSummary:
    meta, spec, status = _map(obj.get("metadata")), _map(obj.get("spec")), _map(obj.get("status"))
    labels = _labels(meta)
    pipeline = labels.get("tekton.dev/pipeline") or _str(_map(spec.get("pipelineRef")).get("name"))
    return PipelineRunSummary(
        name=_str(meta.get("name")),
        namespace=_str(meta.get("namespace")),
        pipeline=pipeline,
        status=pipelinerun_status(obj),
        started_at=parse_time(status.get("startTime")),
        finished_at=parse_time(status.get("completionTime")),
        created_at=parse_time(meta.get("creationTimestamp")),
        started_by=labels.get(LABEL_STARTED_BY),
        started_by_name=_str(_map(meta.get("annotations")).get(ANNOTATION_STARTED_BY_NAME)) or None,
        uid=_str(meta.get("uid")),
        params=_params(spec),
        labels=tuple(sorted(labels.items())),
        spec_status=_str(spec.get("status")),
    )


def sort_like_tkn(runs: Iterable[PipelineRunSummary]) -> list[PipelineRunSummary]:
    """Newest startTime first; runs without one (queued, pending) come first (§6)."""
    items = list(runs)
    unstarted = [r for r in items if r.started_at is None]
    started = [r for r in items if r.started_at is not None]
    started.sort(key=lambda r: r.started_at.timestamp() if r.started_at else 0.0, reverse=True)
    return unstarted + started


# -- children ----------------------------------------------------------------------------


def children(obj: Json) -> list[Json]:
    """`{name, pipelineTaskName, kind}` per child: `childReferences`, else the v1beta1 maps (§9)."""
    status = _map(obj.get("status"))
    refs = _list(status.get("childReferences"))
    if refs:
        return refs
    out: list[Json] = []
    for field, kind in (("taskRuns", "TaskRun"), ("runs", "CustomRun")):
        for name, entry in _map(status.get(field)).items():
            if isinstance(entry, Mapping):
                out.append({"name": name, "pipelineTaskName": entry.get("pipelineTaskName"), "kind": kind})
    return out


def embedded_taskruns(obj: Json) -> list[Json]:
    """TaskRun-shaped dicts from a v0.44-or-older v1beta1 `status.taskRuns` map (name → status)."""
    out: list[Json] = []
    for name, entry in _map(_map(obj.get("status")).get("taskRuns")).items():
        if isinstance(entry, Mapping) and isinstance(entry.get("status"), Mapping):
            labels = {"tekton.dev/pipelineTask": entry.get("pipelineTaskName")}
            out.append({"metadata": {"name": name, "labels": labels}, "status": entry["status"]})
    return out


def _spec_tasks(obj: Json, pipeline: Json | None) -> tuple[list[str], list[str]]:
    """Task order: status.pipelineSpec (resolved), else spec.pipelineSpec, else the Pipeline (§5)."""
    for source in (
        _map(obj.get("status")).get("pipelineSpec"),
        _map(obj.get("spec")).get("pipelineSpec"),
        _map(pipeline).get("spec") if pipeline else None,
    ):
        spec = _map(source)
        if spec.get("tasks") or spec.get("finally"):
            tasks = [_str(t.get("name")) for t in _list(spec.get("tasks"))]
            fin = [_str(t.get("name")) for t in _list(spec.get("finally"))]
            return tasks, fin
    return [], []


def _task_from_run(name: str, ref: Json, tr: Json | None, *, is_finally: bool) -> TaskState:
    taskrun = _str(ref.get("name")) or None
    kind = _str(ref.get("kind")) or "TaskRun"
    if tr is None:
        return TaskState(
            name, MARK_UNKNOWN, "unknown", taskrun=taskrun, is_finally=is_finally, child_kind=kind
        )
    st = taskrun_status(tr)
    status = _map(tr.get("status"))
    return TaskState(
        name,
        st.mark,
        st.label,
        taskrun=taskrun or _str(_map(tr.get("metadata")).get("name")) or None,
        status=st,
        steps=tuple(step_state(s) for s in _list(status.get("steps"))),
        is_finally=is_finally,
        pod_name=_str(status.get("podName")),
        started_at=parse_time(status.get("startTime")),
        finished_at=parse_time(status.get("completionTime")),
        retries=len(_list(status.get("retriesStatus"))),
        child_kind=kind,
    )


def _pick(states: list[TaskState]) -> TaskState:
    """A matrixed task has several TaskRuns: show the failed one, else a running one, else the last."""
    for wanted in ("failed", "timed out", "cancelled", "running", "pending"):
        for s in states:
            if s.status is not None and s.status.kind == wanted:
                return s
    return states[-1]


def detail(
    obj: Json,
    taskruns: Iterable[Json] = (),
    *,
    pipeline: Json | None = None,
    dashboard_base: str | None = None,
) -> PipelineRunDetail:
    """The task tree of one run. `taskruns` are its children as fetched (by childReferences or by
    the `tekton.dev/pipelineRun` label); `pipeline` the Pipeline object when the run does not
    carry its resolved spec yet."""
    run = summary(obj)
    spec = _map(obj.get("spec"))
    member_of: dict[str, str] = {}
    by_name: dict[str, Json] = {}
    by_task: dict[str, list[Json]] = {}
    for tr in [*embedded_taskruns(obj), *taskruns]:
        meta = _map(tr.get("metadata"))
        labels = _labels(meta)
        by_name[_str(meta.get("name"))] = tr
        if labels.get("tekton.dev/pipelineTask"):
            by_task.setdefault(labels["tekton.dev/pipelineTask"], []).append(tr)
            member_of[labels["tekton.dev/pipelineTask"]] = labels.get("tekton.dev/memberOf", "")
    refs: dict[str, list[Json]] = {}
    for ref in children(obj):
        refs.setdefault(_str(ref.get("pipelineTaskName")), []).append(ref)
    for task, trs in by_task.items():  # listed children the status has not caught up with yet
        known = {_str(r.get("name")) for r in refs.get(task, [])}
        for tr in trs:
            name = _str(_map(tr.get("metadata")).get("name"))
            if name not in known:
                refs.setdefault(task, []).append({"name": name, "pipelineTaskName": task, "kind": "TaskRun"})
    skipped = tuple(
        SkippedTask(_str(s.get("name")), _str(s.get("reason")))
        for s in _list(_map(obj.get("status")).get("skippedTasks"))
    )
    skip_reason = {s.name: s.reason for s in skipped}
    tasks, fin = _spec_tasks(obj, pipeline)
    extra = [t for t in refs if t and t not in tasks and t not in fin]
    fin += [t for t in extra if member_of.get(t) == "finally"]
    tasks += [t for t in extra if member_of.get(t) != "finally"]
    fin_set = set(fin)

    def state(name: str) -> TaskState:
        is_fin = name in fin_set
        if name in refs:
            return _pick(
                [
                    _task_from_run(name, r, by_name.get(_str(r.get("name"))), is_finally=is_fin)
                    for r in refs[name]
                ]
            )
        if name in skip_reason:
            return TaskState(
                name, MARK_SKIPPED, "skipped", is_finally=is_fin, skipped_reason=skip_reason[name]
            )
        if run.status.done:
            return TaskState(name, MARK_SKIPPED, "not run", is_finally=is_fin)
        return TaskState(name, MARK_RUNNING, "waiting", is_finally=is_fin)

    task_states = tuple(state(t) for t in tasks)
    fin_states = tuple(state(t) for t in fin)
    template = _map(spec.get("taskRunTemplate"))
    timeouts = {k: v for k, v in _map(spec.get("timeouts")).items() if isinstance(v, str)}
    if not timeouts and isinstance(spec.get("timeout"), str):
        timeouts = {"pipeline": spec["timeout"]}  # v1beta1's deprecated field
    return PipelineRunDetail(
        summary=run,
        tasks=task_states,
        finally_tasks=fin_states,
        skipped=skipped,
        failure=failure(run.status, task_states + fin_states),
        dashboard_url=pipelinerun_url(dashboard_base, run.namespace, run.name) if dashboard_base else None,
        pipeline_ref=_pipeline_ref(spec),
        service_account=_str(template.get("serviceAccountName")) or _str(spec.get("serviceAccountName")),
        timeouts=tuple(timeouts.items()),
        api_version=_str(obj.get("apiVersion")) or "tekton.dev/v1",
    )


def _pipeline_ref(spec: Json) -> str:
    ref = _map(spec.get("pipelineRef"))
    if _str(ref.get("name")):
        return _str(ref.get("name"))
    if _str(ref.get("resolver")):
        return f"resolver {_str(ref.get('resolver'))}"
    return "(inline)" if spec.get("pipelineSpec") else ""


def failure(run: RunStatus, tasks: Iterable[TaskState]) -> Failure | None:
    """For a failed run: the first task in pipeline order whose TaskRun failed on its own (not
    cancelled by the run, not an ignored failure, §3.6), its failing step and exit code."""
    if run.kind != "failed":
        return None
    for task in tasks:
        st = task.status
        if st is None or st.condition != "False" or st.reason in ("TaskRunCancelled", "FailureIgnored"):
            continue
        step = task.failed_step
        return Failure(
            message=st.message,
            reason=st.reason,
            pipeline_task=task.pipeline_task,
            taskrun=task.taskrun,
            step=step.name if step else None,
            exit_code=step.exit_code if step else None,
            pod=task.pod_name or None,
            container=step.container if step else None,
        )
    return Failure(message=run.message, reason=run.reason)


__all__ = [
    "CANCEL_SPEC_VALUES",
    "children",
    "condition",
    "detail",
    "embedded_taskruns",
    "failure",
    "pipelinerun_status",
    "sort_like_tkn",
    "step_state",
    "summary",
    "taskrun_status",
]
