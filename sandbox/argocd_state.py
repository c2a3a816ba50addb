"""The fake's state: one record per Application, guarded by one lock, plus the derived status."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.argocd_git import Commit, Key, Manifest, Repo
from sandbox.argocd_live import images, resource_statuses

CONTROL_PLANE_NAMESPACE = "argocd"
USERNAME = "gitops-bot"
DEFAULT_HISTORY_LIMIT = 10
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"  # watch event types


RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


def rfc3339(seconds: float) -> str:
    """Second precision, as Kubernetes' metav1.Time marshals."""
    return time.strftime(RFC3339, time.gmtime(seconds))


def auto_sync_enabled(spec: Mapping[str, Any]) -> bool:
    """`IsAutomatedSyncEnabled`: `automated` present and `enabled` not explicitly false."""
    automated = (spec.get("syncPolicy") or {}).get("automated")
    return isinstance(automated, dict) and automated.get("enabled") is not False


@dataclass(frozen=True)
class InjectedFailure:
    phase: str
    message: str
    resource: str  # "Kind/name"


@dataclass
class Run:
    """Controller bookkeeping for the operation in progress (never serialised)."""

    started: float  # time.monotonic()
    revision: str
    tasks: list[dict[str, Any]]
    dry_run: bool
    partial: bool
    done: int = 0
    failure: InjectedFailure | None = None


@dataclass
class AppRecord:
    app: dict[str, Any]  # the Application exactly as the API returns it
    repo: Repo
    live: dict[Key, Manifest]
    health: tuple[str, str] = ("Healthy", "")  # what the workload reports when deployed
    forbidden: bool = False
    failure: InjectedFailure | None = None
    run: Run | None = None
    reconcile_due: bool = False
    progressing: bool = False
    cache: bytes | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return str(self.app["metadata"]["name"])

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.app["spec"]
        return spec

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.app["status"]
        return status

    @property
    def target_revision(self) -> str:
        source = self.spec.get("source") or {}
        return str(source.get("targetRevision") or "HEAD")

    def target_commit(self) -> Commit | None:
        return self.repo.resolve(self.target_revision)

    def encoded(self) -> bytes:
        if self.cache is None:
            self.cache = json.dumps(self.app, separators=(",", ":")).encode()
        return self.cache


class Store:
    """All records behind one re-entrant lock; `changed` wakes waiters (refresh) on every update."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.records: dict[str, AppRecord] = {}
        self.pending: set[str] = set()  # apps the controller must look at
        # Called with the lock held on every change (kind, record): the watch streams' feed.
        self.listeners: list[Callable[[str, AppRecord], None]] = []
        self._resource_version = 1000

    def now(self) -> str:
        return rfc3339(self.clock())

    def next_resource_version(self) -> int:
        self._resource_version += 1
        return self._resource_version

    @property
    def resource_version(self) -> str:
        return str(self._resource_version)

    def touch(self, record: AppRecord, *, wake_controller: bool = False) -> None:
        """Record a change: new resourceVersion, drop the cached JSON, wake waiters and watches."""
        # A record not yet in `records` is being created (new_record touches it before add_app stores it).
        kind = MODIFIED if self.records.get(record.name) is record else ADDED
        record.app["metadata"]["resourceVersion"] = str(self.next_resource_version())
        record.cache = None
        if wake_controller:
            self.pending.add(record.name)
        self.changed.notify_all()
        for listener in self.listeners:
            listener(kind, record)

    def remove(self, name: str) -> AppRecord:
        """Delete an app (KeyError when absent); watches get DELETED with a new resourceVersion."""
        record = self.records.pop(name)
        self.pending.discard(name)
        record.app["metadata"]["resourceVersion"] = str(self.next_resource_version())
        record.cache = None
        self.changed.notify_all()
        for listener in self.listeners:
            listener(DELETED, record)
        return record

    def recompute(self, record: AppRecord) -> None:
        """Derive sync status, per-resource rows, images and health from git head vs live."""
        status, spec = record.status, record.spec
        source, destination = spec.get("source") or {}, spec.get("destination") or {}
        commit = record.target_commit()
        conditions = [c for c in status.get("conditions", []) if c.get("type") != "ComparisonError"]
        health, message = record.health
        if commit is None:
            status["sync"] = {
                "status": "Unknown",
                "comparedTo": {"source": source, "destination": destination},
            }
            conditions.append(
                {
                    "type": "ComparisonError",
                    "message": f"rpc error: code = Unknown desc = unable to resolve "
                    f"'{record.target_revision}' to a commit SHA",
                    "lastTransitionTime": self.now(),
                }
            )
            desired: dict[Key, Manifest] = {}
        else:
            desired = commit.desired()
            rows = resource_statuses(desired, record.live, health, message)
            in_sync = all(row["status"] == "Synced" for row in rows)
            status["sync"] = {
                "status": "Synced" if in_sync else "OutOfSync",
                "revision": commit.sha,
                "comparedTo": {"source": dict(source), "destination": dict(destination)},
            }
            status["resources"] = rows
        if conditions:
            status["conditions"] = conditions
        else:
            status.pop("conditions", None)
        status["summary"] = {"images": images(record.live)} if record.live else {}
        missing = any(key[1] == "Deployment" and key not in record.live for key in desired)
        if missing:
            health, message = "Missing", ""
        elif record.progressing and health == "Healthy":
            health, message = "Progressing", "Waiting for rollout to finish"
        status["health"] = {"status": health, "message": message} if message else {"status": health}
