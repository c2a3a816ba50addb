"""The fake application controller: runs operations over time, reconciles, auto-syncs new revisions."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from sandbox.argocd_apps import sync_message, sync_result_row
from sandbox.argocd_git import Key, Manifest
from sandbox.argocd_live import apply_live, covers
from sandbox.argocd_state import (
    DEFAULT_HISTORY_LIMIT,
    AppRecord,
    InjectedFailure,
    Run,
    Store,
    auto_sync_enabled,
)

REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
# gitops-engine's apply order by kind (abridged); unknown kinds go last.
_KIND_ORDER = [
    "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodDisruptionBudget", "ServiceAccount",
    "Secret", "ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
    "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service",
    "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
    "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
]  # fmt: skip


def _order(key: Key) -> tuple[int, Key]:
    kind = key[1]
    return (_KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER), key)


def _selected(resources: list[dict[str, Any]], key: Key) -> bool:
    group, kind, namespace, name = key
    return any(
        r.get("group", "") == group
        and r.get("kind") == kind
        and r.get("name") == name
        and r.get("namespace", "") in ("", namespace)
        for r in resources
    )


def refresh_requested(record: AppRecord) -> bool:
    return REFRESH_ANNOTATION in (record.app["metadata"].get("annotations") or {})


class Controller:
    """A daemon thread that advances every app in `store.pending` once per tick."""

    def __init__(self, store: Store, *, operation_seconds: float, tick: float) -> None:
        self._store = store
        self._seconds = operation_seconds
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fake-argocd-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            self.step()

    def step(self) -> None:
        store = self._store
        with store.lock:
            for name in sorted(store.pending):
                record = store.records.get(name)
                if record is None or not self._advance(record):
                    store.pending.discard(name)

    def _advance(self, record: AppRecord) -> bool:
        """One tick of work for one app; False when it needs no more attention."""
        if record.run is not None:
            self._progress(record)
        elif record.app.get("operation") is not None:
            self._begin(record)
        elif record.reconcile_due:
            self._reconcile(record)
        if refresh_requested(record):
            self._reconcile(record)
        return record.run is not None or record.app.get("operation") is not None or record.reconcile_due

    def _begin(self, record: AppRecord) -> None:
        store, status = self._store, record.status
        operation = record.app["operation"]
        sync = operation.get("sync") or {}
        source = sync.get("source") or record.spec.get("source") or {}
        commit = record.repo.resolve(str(sync.get("revision") or record.target_revision))
        status["operationState"] = {
            "operation": copy.deepcopy(operation),
            "phase": "Running",
            "message": "one or more tasks are running",
            "startedAt": store.now(),
            "syncResult": {
                "revision": commit.sha if commit else "",
                "source": copy.deepcopy(source),
                "resources": [],
            },
        }
        failure, record.failure = record.failure, None
        if commit is None:
            message = (
                f"rpc error: code = Unknown desc = unable to resolve '{sync.get('revision')}' to a commit SHA"
            )
            record.run = Run(time.monotonic(), "", [], bool(sync.get("dryRun")), False)
            self._finish(record, "Error", message)
            return
        dry_run, resources = bool(sync.get("dryRun")), list(sync.get("resources") or [])
        tasks = self._plan(record, commit.desired(), resources, bool(sync.get("prune")), dry_run, failure)
        record.run = Run(time.monotonic(), commit.sha, tasks, dry_run, bool(resources), failure=failure)
        record.progressing = not dry_run and any(
            t["key"][1] == "Deployment" and t["action"] == "apply" and t["verb"] != "unchanged" for t in tasks
        )
        store.recompute(record)
        store.touch(record)

    def _plan(
        self,
        record: AppRecord,
        desired: dict[Key, Manifest],
        resources: list[dict[str, Any]],
        prune: bool,
        dry_run: bool,
        failure: InjectedFailure | None,
    ) -> list[dict[str, Any]]:
        suffix = " (dry run)" if dry_run else ""
        tasks: list[dict[str, Any]] = []
        for key in sorted((k for k in desired if not resources or _selected(resources, k)), key=_order):
            manifest, current = desired[key], record.live.get(key)
            verb = (
                "created" if current is None else "unchanged" if covers(current, manifest) else "configured"
            )
            row = sync_result_row(manifest, "Synced", sync_message(manifest, verb) + suffix, "Running")
            tasks.append({"key": key, "action": "apply", "verb": verb, "manifest": manifest, "row": row})
        for key in sorted(
            k for k in record.live if k not in desired and (not resources or _selected(resources, k))
        ):
            current = record.live[key]
            if prune:
                row = sync_result_row(current, "Pruned", f"pruned{suffix}", "Running")
            else:
                row = sync_result_row(current, "PruneSkipped", "ignored (requires pruning)", "Running")
            action = "prune" if prune else "skip"
            tasks.append({"key": key, "action": action, "verb": "", "manifest": current, "row": row})
        if failure is not None:
            kind, _, name = failure.resource.replace("NAME", record.name).partition("/")
            task = next((t for t in tasks if t["key"][1] == kind and t["key"][3] == name), None)
            if task is None:
                namespace = (record.spec.get("destination") or {}).get("namespace", "")
                group = "apps" if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet") else ""
                manifest = {
                    "apiVersion": f"{group}/v1" if group else "v1",
                    "kind": kind,
                    "metadata": {"name": name, "namespace": namespace},
                }
                task = {
                    "key": (group, kind, namespace, name),
                    "action": "skip",
                    "verb": "",
                    "manifest": manifest,
                }
                tasks.append(task)
            task["action"] = "fail"
            task["row"] = sync_result_row(task["manifest"], "SyncFailed", failure.message, "Failed")
        return tasks

    def _progress(self, record: AppRecord) -> None:
        store, run = self._store, record.run
        assert run is not None
        state = record.status["operationState"]
        if state.get("phase") == "Terminating":
            self._finish(record, "Failed", "Operation terminated")
            return
        elapsed = time.monotonic() - run.started
        complete = self._seconds <= 0 or elapsed >= self._seconds
        # Task k of n runs at k/n of the way: the first at once, the phase ends at operation_seconds.
        total = len(run.tasks)
        due = total if complete else min(total, int(total * elapsed / self._seconds) + 1)
        if due > run.done:
            now = store.now()
            for task in run.tasks[run.done : due]:
                key = task["key"]
                if not run.dry_run and task["action"] == "apply":
                    version = store.next_resource_version()
                    record.live[key] = apply_live(task["manifest"], record.live.get(key), version, now)
                elif not run.dry_run and task["action"] == "prune":
                    record.live.pop(key, None)
                state["syncResult"]["resources"].append(task["row"])
            run.done = due
            store.recompute(record)
            store.touch(record)
        if complete:
            if run.failure is not None:
                suffix = " (dry run)" if run.dry_run else ""
                self._finish(record, run.failure.phase, run.failure.message + suffix)
            elif run.dry_run:
                self._finish(record, "Succeeded", "successfully synced (dry run)")
            else:
                self._finish(record, "Succeeded", "successfully synced (all tasks run)")

    def _finish(self, record: AppRecord, phase: str, message: str) -> None:
        store, run, status = self._store, record.run, record.status
        assert run is not None
        state = status["operationState"]
        state.update(phase=phase, message=message, finishedAt=store.now())
        operation = record.app.pop("operation", None) or {}
        if phase == "Succeeded" and not run.dry_run and not run.partial:
            history = status.setdefault("history", [])
            sync = operation.get("sync") or {}
            history.append(
                {
                    "deployStartedAt": state["startedAt"],
                    "deployedAt": state["finishedAt"],
                    "id": history[-1]["id"] + 1 if history else 0,
                    "revision": run.revision,
                    "source": copy.deepcopy(sync.get("source") or record.spec.get("source") or {}),
                    "initiatedBy": copy.deepcopy(operation.get("initiatedBy") or {}),
                }
            )
            limit = record.spec.get("revisionHistoryLimit")
            limit = DEFAULT_HISTORY_LIMIT if limit is None else int(limit)
            del history[: max(len(history) - limit, 0)]
        record.run, record.progressing = None, False
        record.reconcile_due = True  # reconciledAt catches up with finishedAt on the next tick
        store.recompute(record)
        store.touch(record, wake_controller=True)

    def _reconcile(self, record: AppRecord) -> None:
        store, status = self._store, record.status
        record.reconcile_due = False
        annotations = record.app["metadata"].get("annotations")
        if annotations:
            annotations.pop(REFRESH_ANNOTATION, None)
            if not annotations:
                del record.app["metadata"]["annotations"]
        store.recompute(record)
        status["reconciledAt"] = status["observedAt"] = store.now()
        self._auto_sync(record)
        store.touch(record, wake_controller=record.app.get("operation") is not None)

    def _auto_sync(self, record: AppRecord) -> None:
        """Sync a revision that was never attempted; drift at an attempted revision is left alone."""
        status = record.status
        if record.run or record.app.get("operation") or not auto_sync_enabled(record.spec):
            return
        if status.get("sync", {}).get("status") != "OutOfSync":
            return
        head = status["sync"].get("revision")
        state = status.get("operationState")
        if state is not None:
            attempted = state.get("syncResult", {}).get("revision")
        else:
            attempted = (status.get("history") or [{}])[-1].get("revision")
        if not head or head == attempted:
            return
        automated = record.spec["syncPolicy"]["automated"]
        sync: dict[str, Any] = {"revision": head}
        if automated.get("prune"):
            sync["prune"] = True
        record.app["operation"] = {"initiatedBy": {"automated": True}, "retry": {"limit": 5}, "sync": sync}
        status.pop("operationState", None)
