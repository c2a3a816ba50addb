"""Following one Flux cluster for the feed: a Kubernetes watch per app kind, else its list.

Each kind (Kustomization, HelmRelease) is listed once, then watched from the list's
resourceVersion with bookmarks, so a watch the server ends (its timeout, a cut connection) resumes
where it stopped and loses nothing. A resourceVersion the server no longer keeps (410 Expired)
means list again: the cursors make the re-list announce only what changed meanwhile.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from services.backend import AppRef
from services.feed.model import CommitInfo, Snapshot
from services.flux.backend import FluxBackend
from services.flux.errors import FluxError
from services.flux.kinds import APP_KINDS, HELM_RELEASE, FluxKind

log = logging.getLogger(__name__)

Mode = Literal["auto", "stream", "list"]
Emit = Callable[[Sequence[Snapshot]], None]
_BUSY_REASONS = frozenset(
    {"Progressing", "ProgressingWithRetry", "DependencyNotReady", "ReconciliationInProgress"}
)


def app_key(ref: AppRef) -> str:
    return f"flux:{ref.instance}/{ref.namespace or '-'}/{ref.name}.{(ref.kind or '').lower()}"


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _ready(status: Mapping[str, Any]) -> Mapping[str, Any]:
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            return condition
    return {}


def snapshot(cluster: str, kind: FluxKind, obj: Mapping[str, Any], *, deleted: bool = False) -> Snapshot:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    ref = AppRef(
        "flux", cluster, str(meta.get("name") or ""), namespace=meta.get("namespace"), kind=kind.kind
    )
    ready = _ready(status)
    labels = tuple(sorted((str(k), str(v)) for k, v in (meta.get("labels") or {}).items()))
    base = Snapshot(key=app_key(ref), ref=ref, resource_version=str(meta.get("resourceVersion") or ""),
                    labels=labels, deleted=deleted, automated=True,
                    message=str(ready.get("message") or "")[:500])  # fmt: skip
    if kind is HELM_RELEASE:
        return _helm(status, ready, base)
    applied = status.get("lastAppliedRevision") or None
    attempted = status.get("lastAttemptedRevision") or applied
    busy = ready.get("status") == "Unknown" or ready.get("reason") in _BUSY_REASONS
    op_id: str | None
    if attempted and attempted != applied and ready.get("status") == "False" and not busy:
        phase, op_id, revision = "Failed", f"failed:{attempted}", attempted
    elif applied and ready.get("status") == "True":
        phase, op_id, revision = "Succeeded", f"applied:{applied}", applied
    else:
        phase, op_id, revision = "Running", f"applied:{applied}" if applied else None, applied
    return replace(base, revision=applied, op_id=op_id, op_phase=phase, op_revision=revision,
                   finished_at=_time(ready.get("lastTransitionTime")))  # fmt: skip


def _helm(status: Mapping[str, Any], ready: Mapping[str, Any], base: Snapshot) -> Snapshot:
    history = [h for h in status.get("history") or [] if isinstance(h, dict)]  # v2: newest first
    if not history:
        return base
    latest = history[0]
    deployed = next((h for h in history if h.get("status") in ("deployed", "superseded")), None)
    state = str(latest.get("status") or "")
    phase = {"deployed": "Succeeded", "superseded": "Succeeded", "failed": "Failed"}.get(state, "Running")
    if phase == "Succeeded" and ready.get("status") != "True":
        phase = "Running" if ready.get("status") == "Unknown" else phase
    chart = f"{latest.get('chartName')}@{latest.get('chartVersion')}"
    running = f"{deployed.get('chartName')}@{deployed.get('chartVersion')}" if deployed else None
    return replace(
        base, revision=str(deployed.get("chartVersion")) if deployed else None,
        op_id=f"release:{latest.get('version')}", op_phase=phase,
        op_revision=str(latest.get("chartVersion") or ""),
        started_at=_time(latest.get("firstDeployed")) if latest.get("version") == 1 else None,
        finished_at=_time(latest.get("lastDeployed")), chart=chart if phase != "Failed" else running,
    )  # fmt: skip


class FluxFeed:
    """Follows one cluster's app kinds until `stop` is set; `emit` receives snapshots in order."""

    def __init__(self, backend: FluxBackend, *, mode: Mode = "auto", list_interval: float = 60.0,
                 watch_timeout: int = 300, retry: float = 2.0) -> None:  # fmt: skip
        self.backend = backend
        self.name = f"flux:{backend.instance}"
        self.mode = mode
        self.list_interval = list_interval
        self.watch_timeout = watch_timeout
        self.retry = retry
        self.streaming = True  # a watch event carries the whole object: nothing to refine
        self.relists = 0  # lists after the first (a 410, a failure): tests and the benchmark read it

    def key(self, ref: AppRef) -> str:
        return app_key(ref)

    def run(self, stop: threading.Event, emit: Emit) -> None:
        lock = threading.Lock()  # one kind's snapshots at a time: `emit` sees each app in order

        def locked(snaps: Sequence[Snapshot]) -> None:
            with lock:
                emit(snaps)

        threads = [
            threading.Thread(target=self._follow, args=(kind, stop, locked), daemon=True,
                             name=f"feed-{self.name}-{kind.plural}")
            for kind in APP_KINDS
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _follow(self, kind: FluxKind, stop: threading.Event, emit: Emit) -> None:
        client = self.backend.client
        failures, resource_version, listed = 0, "", False
        while not stop.is_set():
            try:
                if not resource_version:
                    items, resource_version = client.list_with_version(kind)
                    self.relists += int(listed)
                    listed = True
                    emit([snapshot(self.backend.instance, kind, i) for i in items])
                    if self.mode == "list":
                        resource_version = ""
                        stop.wait(self.list_interval)
                        continue
                for kind_name, obj in client.watch(kind, resource_version, timeout=self.watch_timeout):
                    if stop.is_set():
                        return
                    resource_version = str(
                        (obj.get("metadata") or {}).get("resourceVersion") or resource_version
                    )
                    if kind_name in ("ADDED", "MODIFIED", "DELETED"):
                        emit([snapshot(self.backend.instance, kind, obj, deleted=kind_name == "DELETED")])
                failures = 0
            except FluxError as exc:
                if stop.is_set():
                    return
                if exc.status == 410:
                    resource_version = ""  # expired: list again
                    continue
                failures += 1
                resource_version = ""
                log.warning("feed source failed", extra={"cluster": self.name, "error": str(exc)[:200]})
                stop.wait(min(60.0, self.retry * 2 ** min(failures - 1, 5)))

    def refine(self, snap: Snapshot) -> Snapshot:
        return snap  # a watch event carries the whole object already

    def commit(self, ref: AppRef, revision: str | None) -> CommitInfo | None:
        """The applied commit from the configured repository's clone, when the source is one."""
        sha = (revision or "").rpartition(":")[2]
        if len(sha) < 7 or ref.kind == HELM_RELEASE.kind:
            return None
        try:
            entry = self.backend.commit(ref, sha)
        except Exception:  # decoration only: an unconfigured repository, Git unreachable
            log.debug("no commit for a feed entry", exc_info=True)
            return None
        if entry is None:
            return None
        return CommitInfo(author=entry.author, date=entry.deployed_at, message=entry.message)
