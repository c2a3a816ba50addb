"""The fake TaskRun reconciler: a pod per TaskRun, its steps run one after another, pods/log.

Shapes follow the contract's examples (`taskrun-running`, `failed`, `cancelled`): a new TaskRun is
`Unknown`/`Pending` with its steps `waiting: PodInitializing`; then every step container shows `running`
(Tekton's entrypoint starts them together and runs them in turn) and each terminates in order, taking
`Script.step_seconds`. A scripted failure ends its step with `exitCode: N, reason: Error` and the later
steps with `reason: Error, terminationReason: Skipped`: the TaskRun is `False`/`StepFailed`. A cancel
(spec.status TaskRunCancelled) rewrites the unfinished steps as `TaskRunCancelled` and deletes the pod.
Everything here runs under the store lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox import k8s_status as status
from sandbox.argocd_http import Reply, Request
from sandbox.k8s_cluster import Cluster
from sandbox.k8s_store import Entry, Key, rfc3339
from sandbox.tekton_kinds import POD

RELEASE = "3ee1745"  # annotation pipeline.tekton.dev/release: the controller build (P in the contract)
INIT_CONTAINERS = ("prepare", "place-scripts")
ENTRYPOINT_IMAGE = "ghcr.io/tektoncd/pipeline/cmd/entrypoint:v1.15.0"
PENDING_MESSAGE = (
    'pod status "Initialized":"False"; message: "containers with incomplete status: [prepare place-scripts]"'
)
CANCEL_MESSAGE = "TaskRun cancelled as the PipelineRun it belongs to has been cancelled."
TIMEOUT_MESSAGE = "TaskRun cancelled as the PipelineRun it belongs to has timed out."


@dataclass
class Fault:
    """The next TaskRun of a pipeline task fails at `step` with `exit_code`."""

    step: str
    exit_code: int
    lines: list[str] | None = None


@dataclass
class Script:
    """What the sandbox makes happen; FakeTekton edits it, the reconcilers read it (under the store lock)."""

    step_seconds: float = 0.05
    keep_pod_on_cancel: bool = False
    failures: dict[tuple[str, str, str], list[Fault]] = field(default_factory=dict)  # (ns, pipeline, task)
    logs: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)  # (pipeline, task, step)
    holds: set[tuple[str, str, str, str]] = field(
        default_factory=set
    )  # (ns or "", pipeline, task, step or "")

    def held(self, namespace: str, pipeline: str, task: str, step: str) -> bool:
        return any((n, pipeline, task, s) in self.holds for n in ("", namespace) for s in ("", step))

    def take_fault(self, namespace: str, pipeline: str, task: str) -> Fault | None:
        for key in ((namespace, pipeline, task), ("", pipeline, task)):
            queued = self.failures.get(key)
            if queued:
                fault = queued.pop(0)
                if not queued:
                    del self.failures[key]
                return fault
        return None


@dataclass
class StepPlan:
    name: str
    image: str
    exit_code: int
    lines: list[str]


@dataclass
class TaskMemo:
    steps: list[StepPlan]
    since: float  # when the pod was created, then when the current step started
    current: int = -1  # -1: pod initializing; len(steps): all done
    running_at: float = 0.0  # when the step containers started


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def image_id(image: str) -> str:
    repo = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image.split("@")[0]
    if "/" not in repo:
        repo = f"library/{repo}"
    if "." not in repo.split("/")[0]:
        repo = f"docker.io/{repo}"
    return f"{repo}@sha256:{digest(image)}"


def condition(state: str, reason: str, message: str, now: str, old: dict[str, Any] | None) -> dict[str, Any]:
    """The `Succeeded` condition; lastTransitionTime changes only when something else does (knative)."""
    for c in (old or {}).get("conditions") or []:
        if (c.get("status"), c.get("reason"), c.get("message")) == (state, reason, message):
            return dict(c)
    return {
        "type": "Succeeded",
        "status": state,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
    }


def condition_of(obj: dict[str, Any]) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Succeeded":
            return dict(c)
    return {}


class TaskRuns:
    def __init__(self, cluster: Cluster, script: Script, clock: Callable[[], float]) -> None:
        self.cluster = cluster
        self.store = cluster.store
        self.script = script
        self.clock = clock
        self.memos: dict[Key, TaskMemo] = {}
        self.logs: dict[tuple[str, str], dict[str, list[str]]] = {}  # (ns, pod) -> container -> lines

    # -- creation (by the PipelineRun reconciler) -------------------------------------------------------

    def create(
        self,
        run: Entry,
        pipeline: str,
        task: dict[str, Any],
        task_obj: dict[str, Any],
        member_of: str,
        params: list[dict[str, Any]],
    ) -> Entry:
        meta = run.obj["metadata"]
        namespace, name = meta["namespace"], f"{meta['name']}-{task['name']}"[:63]
        task_name = task_obj["metadata"]["name"]  # "" for an inline taskSpec
        labels = {
            **(task_obj["metadata"].get("labels") or {}),
            **(meta.get("labels") or {}),
            "tekton.dev/memberOf": member_of,
            "tekton.dev/pipeline": pipeline,
            "tekton.dev/pipelineRun": meta["name"],
            "tekton.dev/pipelineRunUID": meta["uid"],
            "tekton.dev/pipelineTask": task["name"],
            "tekton.dev/task": task_name,
        }
        if not task_name:
            del labels["tekton.dev/task"]
        spec = run.obj.get("spec") or {}
        template = spec.get("taskRunTemplate") or {}
        tr_spec: dict[str, Any] = {
            "serviceAccountName": template.get("serviceAccountName", "default"),
            "timeout": (task.get("timeout") or "1h0m0s"),
        }
        if task_name:
            tr_spec["taskRef"] = {"kind": "Task", "name": task_name}
        else:
            tr_spec["taskSpec"] = task_obj.get("spec") or {}
        if params:
            tr_spec["params"] = params
        obj = {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "annotations": {"pipeline.tekton.dev/release": RELEASE},
                "ownerReferences": [
                    {
                        "apiVersion": "tekton.dev/v1",
                        "blockOwnerDeletion": True,
                        "controller": True,
                        "kind": "PipelineRun",
                        "name": meta["name"],
                        "uid": meta["uid"],
                    }
                ],
            },
            "spec": tr_spec,
        }
        entry = self.store.create(self.cluster.registry.by_kind("TaskRun"), obj, notify=False)
        task_spec = dict(task_obj.get("spec") or {})
        # Go serialises the resolved spec with its empty structs, as in the contract's examples.
        task_spec["steps"] = [{"computeResources": {}, **s} for s in task_spec.get("steps") or []]
        fault = self.script.take_fault(namespace, pipeline, task["name"])
        plans = []
        for step in task_spec.get("steps") or []:
            step_name, image = str(step.get("name", "")), str(step.get("image", "alpine:3.20"))
            code = fault.exit_code if fault is not None and fault.step == step_name else 0
            lines = self.script.logs.get((pipeline, task["name"], step_name))
            if fault is not None and fault.step == step_name and fault.lines is not None:
                lines = fault.lines
            if lines is None:
                lines = [f"+ {step_name}", f"{step_name}: {'ok' if code == 0 else f'exit status {code}'}"]
            plans.append(StepPlan(step_name, image, code, list(lines)))
        now = self.clock()
        self.memos[entry.key] = TaskMemo(plans, since=now)
        pod = f"{name}-pod"
        self._make_pod(entry, pod, plans)
        steps = [
            {"container": f"step-{p.name}", "imageID": image_id(p.image), "name": p.name,
             "waiting": {"reason": "PodInitializing"}}
            for p in plans
        ]  # fmt: skip
        stamp = rfc3339(now)
        self.store.set_status(
            entry,
            {
                "conditions": [condition("Unknown", "Pending", PENDING_MESSAGE, stamp, None)],
                "podName": pod,
                "startTime": stamp,
                "steps": steps,
                "taskSpec": task_spec,
            },
        )
        return entry

    def _make_pod(self, taskrun: Entry, pod: str, plans: list[StepPlan]) -> None:
        meta = taskrun.obj["metadata"]
        labels = {
            **meta["labels"],
            "app.kubernetes.io/managed-by": "tekton-pipelines",
            "tekton.dev/taskRun": meta["name"],
            "tekton.dev/taskRunUID": meta["uid"],
        }
        obj = {
            "metadata": {
                "name": pod,
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": {"pipeline.tekton.dev/release": RELEASE},
                "ownerReferences": [
                    {"apiVersion": "tekton.dev/v1", "blockOwnerDeletion": True, "controller": True,
                     "kind": "TaskRun", "name": meta["name"], "uid": meta["uid"]}
                ],
            },
            "spec": {
                "initContainers": [{"name": n, "image": ENTRYPOINT_IMAGE} for n in INIT_CONTAINERS],
                "containers": [{"name": f"step-{p.name}", "image": p.image} for p in plans],
                "serviceAccountName": taskrun.obj["spec"].get("serviceAccountName", "default"),
                "restartPolicy": "Never",
            },
            "status": {"phase": "Pending"},
        }  # fmt: skip
        self.store.create(POD, obj, notify=False, generation=False)

    # -- progress ---------------------------------------------------------------------------------------

    def tick(self, entry: Entry) -> None:
        """Move a TaskRun on (nothing happens to a done one)."""
        obj = entry.obj
        if condition_of(obj).get("status") in ("True", "False"):
            return
        spec = obj.get("spec") or {}
        if spec.get("status") == "TaskRunCancelled":
            self.cancel(entry, str(spec.get("statusMessage", "")))
            return
        memo = self.memos.get(entry.key)
        if memo is None:
            return  # not ours (created by a client): no pod, it stays as it is
        now = self.clock()
        labels = obj["metadata"].get("labels") or {}
        where = (
            obj["metadata"]["namespace"],
            labels.get("tekton.dev/pipeline", ""),
            labels.get("tekton.dev/pipelineTask", ""),
        )
        changed = False
        if memo.current == -1:
            memo.current, memo.since, memo.running_at, changed = 0, now, now, True
            self._pod_phase(obj, "Running")
            for plan in memo.steps:
                self._log(obj, plan)
        while memo.current < len(memo.steps) and now >= memo.since + self.script.step_seconds:
            plan = memo.steps[memo.current]
            if self.script.held(*where, plan.name):
                memo.since = now  # the step starts over once released
                break
            memo.since += self.script.step_seconds
            memo.current += 1
            changed = True
            if plan.exit_code != 0:
                self._write(entry, memo, failed=plan)
                memo.current = len(memo.steps)
                return
        if changed:
            self._write(entry, memo, failed=None)

    def _write(self, entry: Entry, memo: TaskMemo, *, failed: StepPlan | None) -> None:
        old = entry.obj.get("status") or {}
        start = rfc3339(memo.running_at)
        steps = []
        finished_at = rfc3339(memo.since)
        for index, plan in enumerate(memo.steps):
            done = index < memo.current
            step: dict[str, Any] = {
                "container": f"step-{plan.name}",
                "imageID": image_id(plan.image),
                "name": plan.name,
            }
            started = start if index == 0 else rfc3339(self._step_end(memo, index - 1))
            if failed is not None and index >= memo.current:
                step["terminated"] = {
                    "containerID": f"containerd://{digest(plan.name + start)}",
                    "exitCode": 1,
                    "finishedAt": finished_at,
                    "reason": "Error",
                    "startedAt": finished_at,
                }
                step["terminationReason"] = "Skipped"
            elif done:
                code = plan.exit_code
                reason = "Completed" if code == 0 else "Error"
                step["terminated"] = {
                    "containerID": f"containerd://{digest(plan.name + start)}",
                    "exitCode": code,
                    "finishedAt": rfc3339(self._step_end(memo, index)),
                    "reason": reason,
                    "startedAt": started,
                }
                step["terminationReason"] = reason
            else:
                step["running"] = {"startedAt": start}
            steps.append(step)
        stamp = rfc3339(self.clock())
        status = {**old, "steps": steps}
        if failed is not None:
            message = f'"step-{failed.name}" exited with code {failed.exit_code}: Error'
            status["conditions"] = [condition("False", "StepFailed", message, stamp, old)]
            status["completionTime"] = stamp
            self._pod_phase(entry.obj, "Failed")
        elif memo.current >= len(memo.steps):
            status["conditions"] = [
                condition("True", "Succeeded", "All Steps have completed executing", stamp, old)
            ]
            status["completionTime"] = stamp
            self._pod_phase(entry.obj, "Succeeded")
        else:
            message = "Not all Steps in the Task have finished executing"
            status["conditions"] = [condition("Unknown", "Running", message, stamp, old)]
        self.store.set_status(entry, status)

    def _step_end(self, memo: TaskMemo, index: int) -> float:
        """When step `index` (already finished) ended: the steps before the current one end in turn."""
        return memo.since - (memo.current - 1 - index) * self.script.step_seconds

    def cancel(self, entry: Entry, message: str) -> None:
        """The TaskRun reconciler's cancel: open steps terminated, False/TaskRunCancelled, pod deleted."""
        obj = entry.obj
        if condition_of(obj).get("status") in ("True", "False"):
            return
        old = obj.get("status") or {}
        stamp = rfc3339(self.clock())
        pod = str(old.get("podName", ""))
        steps = []
        for step in old.get("steps") or []:
            if "terminated" in step:
                steps.append(step)
                continue
            started = (step.get("running") or {}).get("startedAt", stamp)
            rest = {k: v for k, v in step.items() if k not in ("running", "waiting")}
            rest["terminated"] = {"exitCode": 1, "finishedAt": stamp,
                                  "message": f"Step {step['name']} terminated as pod {pod} is terminated",
                                  "reason": "TaskRunCancelled", "startedAt": started}  # fmt: skip
            rest["terminationReason"] = "TaskRunCancelled"
            steps.append(rest)
        text = f'TaskRun "{obj["metadata"]["name"]}" was cancelled. {message}'.rstrip()
        status = {**old, "steps": steps, "completionTime": stamp,
                  "conditions": [condition("False", "TaskRunCancelled", text, stamp, old)]}  # fmt: skip
        self.store.set_status(entry, status)
        self.memos.pop(entry.key, None)
        if not self.script.keep_pod_on_cancel:
            self.delete_pod(obj["metadata"]["namespace"], pod)

    def request_cancel(self, entry: Entry, message: str) -> None:
        """The PipelineRun reconciler's patch of a child: spec.status + statusMessage (generation +1)."""
        if condition_of(entry.obj).get("status") in ("True", "False"):
            return
        spec = {**(entry.obj.get("spec") or {}), "status": "TaskRunCancelled", "statusMessage": message}
        self.store.commit(entry, {**entry.obj, "spec": spec}, spec_changed=True, notify=False)
        self.cancel(entry, message)

    # -- pods and logs ----------------------------------------------------------------------------------

    def _pod_phase(self, taskrun: dict[str, Any], phase: str) -> None:
        pod = self.store.get(
            "pods", taskrun["metadata"]["namespace"], (taskrun.get("status") or {}).get("podName", "")
        )
        if pod is not None:
            self.store.set_status(pod, {"phase": phase})

    def _log(self, taskrun: dict[str, Any], plan: StepPlan) -> None:
        key = (taskrun["metadata"]["namespace"], f"{taskrun['metadata']['name']}-pod")
        self.logs.setdefault(key, {})[f"step-{plan.name}"] = list(plan.lines)

    def delete_pod(self, namespace: str, pod: str) -> None:
        entry = self.store.get("pods", namespace, pod)
        if entry is not None:
            self.store.delete(entry)
        self.logs.pop((namespace, pod), None)

    def read_log(self, request: Request, namespace: str, name: str) -> Reply:
        """GET /api/v1/namespaces/NS/pods/NAME/log: the scripted lines of one container, as plain text."""
        if not self.cluster.allowed("get", "pods/log", namespace):
            raise status.forbidden("", "pods/log", "get", namespace=namespace, name=name)
        with self.store.lock:
            pod = self.store.get("pods", namespace, name)
            if pod is None:
                raise status.not_found("", "pods", name)
            containers = [c["name"] for c in pod.obj["spec"]["containers"]]
            inits = [c["name"] for c in pod.obj["spec"].get("initContainers", [])]
            container = request.first("container")
            if not container:
                if len(containers) != 1:
                    raise status.bad_request(
                        f"a container name must be specified for pod {name}, choose one of: "
                        f"[{' '.join(containers)}] or one of the init containers: [{' '.join(inits)}]"
                    )
                container = containers[0]
            if container not in containers and container not in inits:
                raise status.bad_request(f"container {container} is not valid for pod {name}")
            lines = self.logs.get((namespace, name), {}).get(container)
            if lines is None and container in containers:
                raise status.bad_request(
                    f'container "{container}" in pod "{name}" is waiting to start: PodInitializing'
                )
            lines = list(lines or [])
        tail = request.first("tailLines")
        if tail:
            if not tail.lstrip("-").isdigit():
                raise status.bad_request(f'invalid value for tailLines: "{tail}"')
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        text = "".join(f"{line}\n" for line in lines)
        return Reply(200, text.encode(), content_type="text/plain")
