"""A fake Tekton Pipelines (v1.15) on the sandbox Kubernetes API server, for the official `kubernetes` client.

Typical use, beside the Flux fakes on one server:

    with FakeKubernetes() as kube, FakeTekton(kube) as tekton:
        tekton.add_simple_pipeline("deploy-web", {"fetch": ["clone"], "test": ["lint", "unit"]},
                                   finally_={"notify": ["send"]}, namespace="ci")
        tekton.fail_next("deploy-web", "test", "unit", exit_code=2, log_lines=["FAIL: TestX"])
        # the client POSTs a PipelineRun (generateName), reads it, its TaskRuns and pods/log ...

`FakeTekton(kube)` registers the four tekton.dev kinds (served v1 and v1beta1, or `versions=("v1beta1",)`
for a cluster older than v0.43), Tekton's admission webhook, POST for them, `pods` and `pods/log`, and
a controller thread (`tick`); each step of a TaskRun takes `step_seconds` of the fake's clock, which
`advance()` moves on (for timeouts). `hold` / `release` keep a task running; `pause_controller` models a
controller that is down (runs never get a status). `requests()` is the server's request log. History for
demos and benchmarks: `run_in_past` replays one whole run at once as if it ran earlier, `seed_runs` writes
thousands of finished runs straight into the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from sandbox.argocd_faults import RecordedRequest
from sandbox.flux_fake import FakeKubernetes
from sandbox.k8s_create import generate_name
from sandbox.k8s_store import Entry, rfc3339
from sandbox.tekton_controller import Controller
from sandbox.tekton_kinds import GROUP, PLURALS, VERSIONS, register, to_served, to_stored
from sandbox.tekton_taskrun import Fault, Script, TaskRuns
from sandbox.tekton_webhook import PipelineRunWebhook, is_done

__all__ = ["FakeTekton", "RecordedRequest", "SeedRun"]

StepSpec = str | Mapping[str, Any]  # a step name (image alpine:3.20), or a full v1 Step
# The Succeeded condition a seeded run ends with, by its reason (the controller's wording).
SEED_OUTCOMES = {
    "Succeeded": "True",
    "Completed": "True",
    "Failed": "False",
    "Cancelled": "False",
    "PipelineRunTimeout": "False",
}


@dataclass(frozen=True)
class SeedRun:
    """A finished PipelineRun for `FakeTekton.seed_runs`: history, without TaskRuns or pods."""

    pipeline: str
    started: float  # epoch seconds
    reason: str = "Succeeded"  # one of SEED_OUTCOMES
    seconds: float = 90.0  # startTime → completionTime
    namespace: str = "ci"
    params: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


class FakeTekton:
    def __init__(
        self,
        kube: FakeKubernetes,
        *,
        versions: Sequence[str] = VERSIONS,
        tick: float = 0.02,
        step_seconds: float = 0.05,
        webhook_defaults: bool = True,
        legacy_task_runs: bool = False,
        keep_pod_on_cancel: bool = False,
    ) -> None:
        """`legacy_task_runs`: v1beta1 reads show the pre-v0.45 `status.taskRuns` map, not childReferences."""
        self._kube = kube
        cluster = self._cluster = kube.cluster
        self._store = cluster.store
        self._offset = 0.0
        self._types = register(cluster.registry, tuple(versions))
        cluster.converters[GROUP] = to_served
        cluster.decoders[GROUP] = to_stored
        self._webhook = PipelineRunWebhook(defaults=webhook_defaults)
        cluster.admission["pipelineruns"] = self._webhook
        cluster.creatable.update(self._types)
        self.script = Script(step_seconds=step_seconds, keep_pod_on_cancel=keep_pod_on_cancel)
        self._taskruns = TaskRuns(cluster, self.script, self.now)
        cluster.subresources[("pods", "log")] = self._taskruns.read_log
        self._controller = Controller(cluster, self._taskruns, self.now, tick=tick)
        self._controller.legacy_task_runs = legacy_task_runs

    # -- lifecycle and time -----------------------------------------------------------------------------

    def start(self) -> FakeTekton:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> FakeTekton:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def now(self) -> float:
        """The controller's clock: wall time plus whatever `advance` added."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the controller's clock on (steps finish, timeouts expire) and run one pass."""
        with self._store.lock:
            self._offset += seconds
        self.step()

    def step(self) -> None:
        """One controller pass now (the thread does the same every `tick`)."""
        self._controller.step()

    def pause_controller(self) -> None:
        self._controller.paused = True

    def resume_controller(self) -> None:
        self._controller.paused = False

    # -- definitions ------------------------------------------------------------------------------------

    def add_task(
        self,
        name: str,
        steps: Sequence[StepSpec],
        *,
        namespace: str = "ci",
        labels: Mapping[str, str] | None = None,
    ) -> None:
        spec_steps = [
            {"name": s, "image": "alpine:3.20", "script": f"echo {s}\n"} if isinstance(s, str) else dict(s)
            for s in steps
        ]
        self._put("tasks", namespace, name, {"steps": spec_steps}, labels)

    def add_pipeline(
        self,
        name: str,
        tasks: Sequence[Mapping[str, Any]],
        *,
        finally_: Sequence[Mapping[str, Any]] = (),
        params: Sequence[str | Mapping[str, Any]] = (),
        namespace: str = "ci",
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """A Pipeline of v1 PipelineTasks (`{name, taskRef: {name}, runAfter?, params?}`) over Tasks."""

        def with_kind(task: Mapping[str, Any]) -> dict[str, Any]:
            out = dict(task)
            if "taskRef" in out:
                out["taskRef"] = {"kind": "Task", **out["taskRef"]}  # the webhook's default
            return out

        spec: dict[str, Any] = {"tasks": [with_kind(t) for t in tasks]}
        if finally_:
            spec["finally"] = [with_kind(t) for t in finally_]
        if params:
            spec["params"] = [
                {"name": p, "type": "string"} if isinstance(p, str) else dict(p) for p in params
            ]
        self._put("pipelines", namespace, name, spec, labels)

    def add_simple_pipeline(
        self,
        name: str,
        tasks: Mapping[str, Sequence[StepSpec]],
        *,
        finally_: Mapping[str, Sequence[StepSpec]] | None = None,
        params: Sequence[str] = ("revision",),
        namespace: str = "ci",
        parallel: bool = False,
    ) -> None:
        """Tasks `<pipeline>-<task>` with these steps; each task runs after the one before unless `parallel`.

        Every pipeline param is passed to every task as `$(params.<name>)`.
        """
        pipeline_tasks: list[dict[str, Any]] = []
        before: str | None = None
        for task, steps in tasks.items():
            self.add_task(f"{name}-{task}", steps, namespace=namespace)
            entry: dict[str, Any] = {"name": task, "taskRef": {"name": f"{name}-{task}"}}
            if params:
                entry["params"] = [{"name": p, "value": f"$(params.{p})"} for p in params]
            if before is not None and not parallel:
                entry["runAfter"] = [before]
            pipeline_tasks.append(entry)
            before = task
        final = []
        for task, steps in (finally_ or {}).items():
            self.add_task(f"{name}-{task}", steps, namespace=namespace)
            final.append({"name": task, "taskRef": {"name": f"{name}-{task}"}})
        self.add_pipeline(name, pipeline_tasks, finally_=final, params=params, namespace=namespace)

    def _put(
        self, plural: str, namespace: str, name: str, spec: dict[str, Any], labels: Mapping[str, str] | None
    ) -> None:
        meta: dict[str, Any] = {"name": name, "namespace": namespace}
        if labels:
            meta["labels"] = dict(labels)
        with self._store.lock:
            old = self._store.get(plural, namespace, name)
            if old is not None:
                self._store.commit(old, {**old.obj, "spec": spec}, spec_changed=True, notify=False)
            else:
                self._store.create(self._types[plural], {"metadata": meta, "spec": spec}, notify=False)

    def start_run(
        self,
        pipeline: str,
        *,
        namespace: str = "ci",
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        service_account: str | None = None,
        timeout: str | None = None,
        status: str | None = None,
    ) -> str:
        """A PipelineRun as `tkn pipeline start` builds it, written behind the API (demo, benchmarks)."""
        spec: dict[str, Any] = {"pipelineRef": {"name": pipeline}}
        if params:
            spec["params"] = [{"name": k, "value": v} for k, v in params.items()]
        if service_account:
            spec["taskRunTemplate"] = {"serviceAccountName": service_account}
        if timeout:
            spec["timeouts"] = {"pipeline": timeout}
        if status:
            spec["status"] = status
        meta: dict[str, Any] = {"generateName": f"{pipeline}-run-", "namespace": namespace}
        if labels:
            meta["labels"] = dict(labels)
        with self._store.lock:
            meta["name"] = generate_name(meta["generateName"])
            rtype = self._types["pipelineruns"]
            obj = self._webhook(rtype, "v1", None, {"metadata": meta, "spec": spec})
            entry = self._store.create(rtype, obj, notify=False)
            return str(entry.obj["metadata"]["name"])

    # -- history ----------------------------------------------------------------------------------------

    def run_in_past(
        self,
        pipeline: str,
        *,
        ago: float,
        namespace: str = "ci",
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        max_passes: int = 100_000,
    ) -> str:
        """One whole run, replayed at once as if it had started `ago` seconds ago; returns its name.

        Synchronous, under the store lock: both clocks (the controller's and the API server's, so
        creation times agree) are moved back and stepped a quarter step per controller pass until the
        run is done, leaving TaskRuns, pods and logs as a real run does. A queued `fail_next` applies.
        For seeding before other runs are going: each pass moves every unfinished run on.
        """
        with self._store.lock:
            saved_offset, saved_clock = self._offset, self._store.clock
            self._offset -= ago
            self._store.clock = self.now
            try:
                name = self.start_run(pipeline, namespace=namespace, params=params, labels=labels)
                entry = self._store.get("pipelineruns", namespace, name)
                for _ in range(max_passes):
                    self._controller.step()
                    if entry is None or is_done(entry.obj):
                        return name
                    self._offset += max(self.script.step_seconds, 0.01) / 4
                raise TimeoutError(f"PipelineRun {namespace}/{name} did not finish (controller paused?)")
            finally:
                self._offset, self._store.clock = saved_offset, saved_clock

    def seed_runs(self, runs: Iterable[SeedRun]) -> list[str]:
        """Finished PipelineRuns written straight into the store (no webhook, controller, TaskRuns or
        pods), with the status the controller leaves: thousands in well under a second, for benchmarks.

        Each run's Pipeline must exist. Failed runs fail at their second DAG task (the later ones
        skipped), finally tasks always ran; lists and reads of the run see the usual shape, a read of
        its task tree finds no TaskRuns.
        """
        names: list[str] = []
        with self._store.lock:
            saved_clock = self._store.clock
            try:
                for run in runs:
                    names.append(self._seed(run))
            finally:
                self._store.clock = saved_clock
        return names

    def _seed(self, run: SeedRun) -> str:
        if run.reason not in SEED_OUTCOMES:
            raise ValueError(f"reason {run.reason!r}: expected one of {', '.join(SEED_OUTCOMES)}")
        found = self._store.get("pipelines", run.namespace, run.pipeline)
        if found is None:
            raise KeyError(f"no pipeline {run.namespace}/{run.pipeline}")
        pipeline_spec = dict(found.obj.get("spec") or {})
        spec: dict[str, Any] = {
            "pipelineRef": {"name": run.pipeline},
            "taskRunTemplate": {"serviceAccountName": "default"},
            "timeouts": {"pipeline": "1h0m0s"},
        }
        if run.params:
            spec["params"] = [{"name": k, "value": v} for k, v in run.params.items()]
        labels = {
            **(found.obj["metadata"].get("labels") or {}),
            **run.labels,
            "tekton.dev/pipeline": run.pipeline,
        }
        self._store.clock = lambda: run.started  # creationTimestamp: when it started
        while True:  # generateName's 5 random characters: try again on the rare clash
            name = generate_name(f"{run.pipeline}-run-")
            if self._store.get("pipelineruns", run.namespace, name) is None:
                break
        meta = {
            "name": name,
            "generateName": f"{run.pipeline}-run-",
            "namespace": run.namespace,
            "labels": labels,
        }
        status = self._seed_status(name, run, pipeline_spec)
        self._store.create(
            self._types["pipelineruns"], {"metadata": meta, "spec": spec, "status": status}, notify=False
        )
        return name

    @staticmethod
    def _seed_status(name: str, run: SeedRun, pipeline_spec: dict[str, Any]) -> dict[str, Any]:
        dag = [t["name"] for t in pipeline_spec.get("tasks") or []]
        finals = [t["name"] for t in pipeline_spec.get("finally") or []]
        ran, skipped = list(dag), []
        failed = cancelled = 0
        if run.reason in ("Failed", "Cancelled", "PipelineRunTimeout"):
            cut = min(2, len(dag))  # the second task is the one that did not succeed
            ran, skipped = dag[:cut], dag[cut:]
            failed = 1 if run.reason == "Failed" and ran else 0
            cancelled = 1 if run.reason != "Failed" and ran else 0
        completed = len(ran) + len(finals)
        messages = {
            "Cancelled": f'PipelineRun "{name}" was cancelled',
            "PipelineRunTimeout": f'PipelineRun "{name}" failed to finish within "1h0m0s"',
        }
        counts = f"Tasks Completed: {completed} (Failed: {failed}, Cancelled {cancelled})"
        message = messages.get(run.reason, f"{counts}, Skipped: {len(skipped)}")
        done = rfc3339(run.started + run.seconds)
        skip_reason = (
            "PipelineRun was stopping" if run.reason == "Failed" else "PipelineRun was gracefully cancelled"
        )
        status: dict[str, Any] = {
            "startTime": rfc3339(run.started),
            "completionTime": done,
            "conditions": [
                {"type": "Succeeded", "status": SEED_OUTCOMES[run.reason], "reason": run.reason,
                 "message": message, "lastTransitionTime": done}
            ],
            "pipelineSpec": pipeline_spec,
            "childReferences": [
                {"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": f"{name}-{task}"[:63],
                 "pipelineTaskName": task}
                for task in [*ran, *finals]
            ],
        }  # fmt: skip
        if skipped:
            status["skippedTasks"] = [{"name": t, "reason": skip_reason} for t in skipped]
        if finals:
            status["finallyStartTime"] = done
        return status

    # -- injected behaviour -----------------------------------------------------------------------------

    def fail_next(
        self,
        pipeline: str,
        task: str,
        step: str,
        *,
        exit_code: int = 1,
        log_lines: Sequence[str] | None = None,
        namespace: str | None = None,
    ) -> None:
        """The next TaskRun of `task` in a run of `pipeline` fails at `step` (queued: twice for two runs)."""
        if exit_code == 0:
            raise ValueError("a failing step has a non-zero exit code")
        with self._store.lock:
            key = (namespace or "", pipeline, task)
            fault = Fault(step, exit_code, None if log_lines is None else list(log_lines))
            self.script.failures.setdefault(key, []).append(fault)

    def set_logs(self, pipeline: str, task: str, step: str, lines: Sequence[str]) -> None:
        """What the container of `step` prints in every run (a failure's `log_lines` win)."""
        with self._store.lock:
            self.script.logs[(pipeline, task, step)] = list(lines)

    def hold(
        self, pipeline: str, task: str, *, step: str | None = None, namespace: str | None = None
    ) -> None:
        """TaskRuns of `task` keep running (at `step`, or at whichever step they are on) until `release`."""
        with self._store.lock:
            self.script.holds.add((namespace or "", pipeline, task, step or ""))

    def release(
        self, pipeline: str, task: str, *, step: str | None = None, namespace: str | None = None
    ) -> None:
        with self._store.lock:
            self.script.holds.discard((namespace or "", pipeline, task, step or ""))

    def set_speed(self, step_seconds: float) -> None:
        with self._store.lock:
            self.script.step_seconds = step_seconds

    # -- inspection -------------------------------------------------------------------------------------

    def object(self, plural: str, name: str, *, namespace: str = "ci", version: str = "v1") -> dict[str, Any]:
        """A deep copy of the object as `version` serves it (`plural` or Kind: pipelineruns / PipelineRun)."""
        plural = PLURALS.get(plural, plural)
        with self._store.lock:
            entry = self._store.get(plural, namespace, name)
            if entry is None:
                raise KeyError(f"no {plural} {namespace}/{name}")
            return self._cluster.served(entry, version if plural != "pods" else "v1")

    def objects(
        self, plural: str, *, namespace: str | None = None, version: str = "v1"
    ) -> list[dict[str, Any]]:
        plural = PLURALS.get(plural, plural)
        with self._store.lock:
            return [self._cluster.served(e, version) for e in self._store.select(plural, namespace)]

    def pod_log(self, namespace: str, pod: str, container: str) -> list[str] | None:
        """The lines a container has printed; None when the pod is gone or the step has not started."""
        with self._store.lock:
            lines = self._taskruns.logs.get((namespace, pod), {}).get(container)
            return None if lines is None else list(lines)

    def wait_for(
        self,
        name: str,
        *,
        namespace: str = "ci",
        until: Callable[[dict[str, Any]], bool] = is_done,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Poll the stored PipelineRun until `until` holds (default: done); the served v1 object."""
        deadline = time.monotonic() + timeout
        while True:
            obj = self.object("pipelineruns", name, namespace=namespace)
            if until(obj):
                return obj
            if time.monotonic() > deadline:
                raise TimeoutError(f"PipelineRun {namespace}/{name}: still {obj.get('status')}")
            time.sleep(0.01)

    def requests(self, path_prefix: str | None = None) -> list[RecordedRequest]:
        return self._kube.requests(path_prefix)

    def entries(self, plural: str) -> list[Entry]:
        """The stored entries of a plural (for tests that check shapes against the CRD schemas)."""
        with self._store.lock:
            return list(self._store.select(PLURALS.get(plural, plural)))
