"""The fake Tekton PipelineRun reconciler and its thread: TaskRuns along runAfter, finally, cancel, timeout.

Each pass (every `tick` seconds, or `step()` from a test) reconciles every PipelineRun that is not done,
in the order of `pkg/reconciler/pipelinerun`: Pending parks it; the first reconcile resolves the Pipeline
(`CouldntGetPipeline`, `CouldntGetTask`, `ParameterMissing` fail it), stores `status.pipelineSpec`, labels
the run `tekton.dev/pipeline` and creates the first TaskRuns; `spec.status: Cancelled` cancels every child;
`timeouts.pipeline` exceeded cancels them with the timeout message; otherwise children move on, ready
tasks start, and the `Succeeded` condition follows `GetPipelineConditionStatus` (counts, reasons,
`skippedTasks` with the reasons of `skip()`), finally tasks running once the DAG is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sandbox.k8s_cluster import Cluster
from sandbox.k8s_store import Entry, Key, rfc3339
from sandbox.tekton_kinds import LEGACY_TASK_RUNS, taskrun_status_v1beta1
from sandbox.tekton_taskrun import CANCEL_MESSAGE, TIMEOUT_MESSAGE, TaskRuns, condition, condition_of
from sandbox.tekton_webhook import format_duration, is_done, parse_duration

MANAGED_BY = "tekton.dev/pipeline"
SKIP_STOPPING = "PipelineRun was stopping"
SKIP_CANCELLED = "PipelineRun was gracefully cancelled"
SKIP_STOPPED = "PipelineRun was gracefully stopped"
SKIP_PARENT = "Parent Tasks were skipped"
SKIP_TIMEOUT = "PipelineRun timeout has been reached"


class Failure(Exception):
    """A reconcile that ends the run (reason, message)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def _state(child: Entry | None) -> str:
    """ "" (not created), running, succeeded, failed, cancelled, timedout (cancelled by a run's timeout)."""
    if child is None:
        return ""
    cond = condition_of(child.obj)
    if cond.get("status") == "True":
        return "succeeded"
    if cond.get("status") != "False":
        return "running"
    if cond.get("reason") == "TaskRunCancelled":
        timed_out = (child.obj.get("spec") or {}).get("statusMessage") == TIMEOUT_MESSAGE
        return "timedout" if timed_out else "cancelled"
    return "failed"


class Controller:
    def __init__(
        self, cluster: Cluster, taskruns: TaskRuns, clock: Callable[[], float], *, tick: float = 0.05
    ) -> None:
        self.cluster = cluster
        self.store = cluster.store
        self.taskruns = taskruns
        self.clock = clock
        self.tick = tick
        self.paused = False  # a controller that is down: runs get no status
        self.legacy_task_runs = False  # also fill the pre-v0.45 status.taskRuns map (v1beta1 view)
        self._started: dict[Key, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fake-tekton-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            self.step()

    def step(self) -> None:
        with self.store.lock:
            if self.paused:
                return
            for entry in self.store.select("pipelineruns"):
                if not is_done(entry.obj):
                    self.reconcile(entry)

    # -- one PipelineRun --------------------------------------------------------------------------------

    def reconcile(self, entry: Entry) -> None:
        spec = entry.obj.get("spec") or {}
        if spec.get("managedBy") not in (None, "", MANAGED_BY):
            return  # delegated to another controller: never touched
        status = dict(entry.obj.get("status") or {})
        name = entry.obj["metadata"]["name"]
        stamp = rfc3339(self.clock())
        if not status.get("startTime"):
            if spec.get("status") == "PipelineRunPending":
                cond = condition(
                    "Unknown", "PipelineRunPending", f'PipelineRun "{name}" is pending', stamp, status
                )
                if status.get("conditions") != [cond]:
                    self.store.set_status(entry, {**status, "conditions": [cond]})
                return
            self._started[entry.key] = self.clock()
            status = {"startTime": stamp, "conditions": [condition("Unknown", "Started", "", stamp, None)]}
            try:
                status["pipelineSpec"] = self._resolve(entry)
            except Failure as failure:
                self._finish(entry, status, "False", failure.reason, failure.message)
                return
        if spec.get("status") == "Cancelled":
            for child in self._children(entry, status).values():
                self.taskruns.request_cancel(child, CANCEL_MESSAGE)
            self._finish(entry, status, "False", "Cancelled", f'PipelineRun "{name}" was cancelled')
            return
        limit = parse_duration(str((spec.get("timeouts") or {}).get("pipeline", "0")))
        started = self._started.setdefault(entry.key, self.clock())
        if limit and self.clock() - started >= limit:
            skipped = self._skipped(status, self._children(entry, status), spec, timed_out=True)
            for child in self._children(entry, status).values():
                self.taskruns.request_cancel(child, TIMEOUT_MESSAGE)
            status["skippedTasks"] = [{"name": n, "reason": r} for n, r in skipped.items()] or None
            message = f'PipelineRun "{name}" failed to finish within "{format_duration(limit)}"'
            self._finish(entry, status, "False", "PipelineRunTimeout", message)
            return
        children = self._children(entry, status)
        for child in children.values():
            self.taskruns.tick(child)
        if spec.get("status") == "CancelledRunFinally":
            finals = {t["name"] for t in status["pipelineSpec"].get("finally") or []}
            for task, child in children.items():
                if task not in finals:
                    self.taskruns.request_cancel(child, CANCEL_MESSAGE)
        self._schedule(entry, status, children, spec)
        self._write(entry, status, children, spec)

    def _resolve(self, entry: Entry) -> dict[str, Any]:
        """The Pipeline's spec; labels (and the Pipeline's labels and annotations) merged into the run."""
        meta, spec = entry.obj["metadata"], entry.obj.get("spec") or {}
        namespace, ref = meta["namespace"], spec.get("pipelineRef") or {}
        labels, annotations = dict(meta.get("labels") or {}), dict(meta.get("annotations") or {})
        if spec.get("pipelineSpec"):
            pipeline_spec, pipeline = dict(spec["pipelineSpec"]), meta.get("generateName") or meta["name"]
            pipeline = pipeline.rstrip("-") or meta["name"]
        elif ref.get("resolver"):
            raise Failure(
                "CouldntGetPipeline",
                f"Error retrieving pipeline for pipelinerun {namespace}/{meta['name']}: "
                f"resolver {ref['resolver']!r} is not available in the sandbox",
            )
        else:
            found = self.store.get("pipelines", namespace, str(ref.get("name", "")))
            if found is None:
                raise Failure(
                    "CouldntGetPipeline",
                    f"Error retrieving pipeline for pipelinerun {namespace}/{meta['name']}: "
                    f'pipelines.tekton.dev "{ref.get("name", "")}" not found',
                )
            pipeline_spec, pipeline = dict(found.obj.get("spec") or {}), str(ref["name"])
            labels = {**(found.obj["metadata"].get("labels") or {}), **labels}
            annotations = {**(found.obj["metadata"].get("annotations") or {}), **annotations}
        labels["tekton.dev/pipeline"] = pipeline
        new_meta = {**meta, "labels": labels}
        if annotations:
            new_meta["annotations"] = annotations
        self.store.commit(entry, {**entry.obj, "metadata": new_meta}, spec_changed=False, notify=False)
        for task in [*(pipeline_spec.get("tasks") or []), *(pipeline_spec.get("finally") or [])]:
            task_name = (task.get("taskRef") or {}).get("name")
            if task_name and self.store.get("tasks", namespace, task_name) is None:
                raise Failure(
                    "CouldntGetTask",
                    f"Pipeline {namespace}/{pipeline} can't be Run; it contains Tasks that don't exist: "
                    f'Couldn\'t retrieve Task "{task_name}": tasks.tekton.dev "{task_name}" not found',
                )
        given = {p.get("name") for p in spec.get("params") or []}
        missing = [
            p["name"]
            for p in pipeline_spec.get("params") or []
            if "default" not in p and p["name"] not in given
        ]
        if missing:
            raise Failure(
                "ParameterMissing",
                f"[User error] PipelineRun {namespace}/{meta['name']} is missing some parameters required by "
                f"Pipeline {pipeline}'s parameters: pipelineRun missing parameters: [{' '.join(missing)}]",
            )
        return pipeline_spec

    def _children(self, entry: Entry, status: dict[str, Any]) -> dict[str, Entry]:
        namespace = entry.obj["metadata"]["namespace"]
        found: dict[str, Entry] = {}
        for ref in status.get("childReferences") or []:
            child = self.store.get("taskruns", namespace, ref["name"])
            if child is not None:
                found[ref["pipelineTaskName"]] = child
        return found

    def _skipped(
        self,
        status: dict[str, Any],
        children: dict[str, Entry],
        spec: dict[str, Any],
        *,
        timed_out: bool = False,
    ) -> dict[str, str]:
        """Not-started DAG tasks that will never run, and why (the first matching check of `skip()`)."""
        dag = status["pipelineSpec"].get("tasks") or []
        stopping = any(_state(children.get(t["name"])) in ("failed", "cancelled", "timedout") for t in dag)
        skipped: dict[str, str] = {}
        for task in dag:  # declaration order; a parent is declared before its children in practice
            if task["name"] in children:
                continue
            if stopping:
                skipped[task["name"]] = SKIP_STOPPING
            elif spec.get("status") == "CancelledRunFinally":
                skipped[task["name"]] = SKIP_CANCELLED
            elif spec.get("status") == "StoppedRunFinally":
                skipped[task["name"]] = SKIP_STOPPED
            elif any(parent in skipped for parent in task.get("runAfter") or []):
                skipped[task["name"]] = SKIP_PARENT
            elif timed_out:
                skipped[task["name"]] = SKIP_TIMEOUT
        return skipped

    def _schedule(
        self, entry: Entry, status: dict[str, Any], children: dict[str, Entry], spec: dict[str, Any]
    ) -> None:
        pipeline_spec = status["pipelineSpec"]
        skipped = self._skipped(status, children, spec)
        dag = pipeline_spec.get("tasks") or []
        ready = [
            t for t in dag
            if t["name"] not in children and t["name"] not in skipped
            and all(_state(children.get(p)) == "succeeded" for p in t.get("runAfter") or [])
        ]  # fmt: skip
        member = "tasks"
        dag_done = all(
            t["name"] in skipped or _state(children.get(t["name"])) not in ("", "running") for t in dag
        )
        if dag_done:
            ready = [t for t in pipeline_spec.get("finally") or [] if t["name"] not in children]
            member = "finally"
            if ready and not status.get("finallyStartTime"):
                status["finallyStartTime"] = rfc3339(self.clock())
        refs = list(status.get("childReferences") or [])
        for task in ready:
            child = self.taskruns.create(
                entry, entry.obj["metadata"]["labels"]["tekton.dev/pipeline"], task, self._task(entry, task),
                member, self._params(task, pipeline_spec, spec),
            )  # fmt: skip
            children[task["name"]] = child
            refs.append(
                {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": child.obj["metadata"]["name"],
                 "pipelineTaskName": task["name"]}
            )  # fmt: skip
        status["childReferences"] = refs

    def _task(self, entry: Entry, task: dict[str, Any]) -> dict[str, Any]:
        if task.get("taskSpec"):
            return {"metadata": {"name": ""}, "spec": task["taskSpec"]}
        found = self.store.get("tasks", entry.obj["metadata"]["namespace"], task["taskRef"]["name"])
        return found.obj if found is not None else {"metadata": {"name": task["taskRef"]["name"]}, "spec": {}}

    @staticmethod
    def _params(
        task: dict[str, Any], pipeline_spec: dict[str, Any], spec: dict[str, Any]
    ) -> list[dict[str, Any]]:
        values = {p["name"]: p.get("default") for p in pipeline_spec.get("params") or []}
        values.update({p["name"]: p.get("value") for p in spec.get("params") or []})
        out = []
        for param in task.get("params") or []:
            value = param.get("value")
            if isinstance(value, str):
                for key, given in values.items():
                    if isinstance(given, str):
                        value = value.replace(f"$(params.{key})", given)
            out.append({"name": param["name"], "value": value})
        return out

    def _write(
        self, entry: Entry, status: dict[str, Any], children: dict[str, Entry], spec: dict[str, Any]
    ) -> None:
        pipeline_spec = status["pipelineSpec"]
        dag = pipeline_spec.get("tasks") or []
        finals = pipeline_spec.get("finally") or []
        skipped = self._skipped(status, children, spec)
        counts = {"succeeded": 0, "failed": 0, "cancelled": 0, "skipped": 0, "incomplete": 0}
        for task in [*dag, *finals]:
            state = _state(children.get(task["name"]))
            if state == "timedout":
                state = "failed"
            elif task["name"] in skipped:
                state = "skipped"
            elif state in ("", "running"):
                state = "incomplete"
            counts[state] += 1
        finals_done = all(_state(children.get(t["name"])) not in ("", "running") for t in finals)
        completed = counts["succeeded"] + counts["failed"] + counts["cancelled"]
        status["skippedTasks"] = [{"name": n, "reason": r} for n, r in skipped.items()] or None
        graceful = spec.get("status") in ("CancelledRunFinally", "StoppedRunFinally")
        name = entry.obj["metadata"]["name"]
        if counts["incomplete"] == 0:
            failed, cancelled, skips = counts["failed"], counts["cancelled"], counts["skipped"]
            message = (
                f"Tasks Completed: {completed} (Failed: {failed}, Cancelled {cancelled}), Skipped: {skips}"
            )
            state, reason = "True", "Completed" if counts["skipped"] else "Succeeded"
            if counts["failed"]:
                state, reason = "False", "Failed"
            elif graceful:
                state, reason, message = "False", "Cancelled", f'PipelineRun "{name}" was cancelled'
            elif counts["cancelled"]:
                state, reason = "False", "Cancelled"
            self._finish(entry, status, state, reason, message)
            return
        reason = "Running"
        if spec.get("status") == "CancelledRunFinally":
            reason = "CancelledRunningFinally"
        elif spec.get("status") == "StoppedRunFinally":
            reason = "StoppedRunningFinally"
        elif counts["cancelled"] or (counts["failed"] and finals_done):
            reason = "PipelineRunStopping"
        message = (
            f"Tasks Completed: {completed} (Failed: {counts['failed']}, Cancelled {counts['cancelled']}), "
            f"Incomplete: {counts['incomplete']}, Skipped: {counts['skipped']}"
        )
        self._store(entry, status, "Unknown", reason, message, done=False)

    def _finish(self, entry: Entry, status: dict[str, Any], state: str, reason: str, message: str) -> None:
        self._started.pop(entry.key, None)
        self._store(entry, status, state, reason, message, done=True)

    def _store(
        self, entry: Entry, status: dict[str, Any], state: str, reason: str, message: str, *, done: bool
    ) -> None:
        stamp = rfc3339(self.clock())
        new = {k: v for k, v in status.items() if v is not None}
        new["conditions"] = [condition(state, reason, message, stamp, entry.obj.get("status"))]
        if done:
            new["completionTime"] = stamp
        if self.legacy_task_runs:
            children = self._children(entry, new)
            new[LEGACY_TASK_RUNS] = {
                child.obj["metadata"]["name"]: {
                    "pipelineTaskName": task, "status": taskrun_status_v1beta1(child.obj.get("status") or {})
                }
                for task, child in children.items()
            }  # fmt: skip
        if new != entry.obj.get("status"):
            self.store.set_status(entry, new)
