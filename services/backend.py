"""The one interface Argo CD and Flux both implement, and the frozen records it speaks in.

Status, sync, diff, history, rollback, drift and promotion code depend on `GitOpsBackend`, never
on a concrete client. Raw API payloads stop inside each backend module; only these records leave.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from services.errors import UserError

BackendKind = Literal["argocd", "flux"]
SyncState = str  # "Synced" | "OutOfSync" | "Unknown" (kept open: servers add values)
HealthState = str  # "Healthy" | "Progressing" | "Degraded" | "Suspended" | "Missing" | "Unknown"
OperationPhase = str  # "Running" | "Terminating" | "Succeeded" | "Failed" | "Error"

TERMINAL_PHASES = frozenset({"Succeeded", "Failed", "Error"})
# Annotations kept on a status: short values only (a sync wave, a canary mark). Long ones —
# kubectl's last-applied-configuration is the whole object — would bloat every cached list.
MAX_ANNOTATION_VALUE = 256


@dataclass(frozen=True, order=True, slots=True)
class AppRef:
    """Where an app lives. Argo CD: instance + name (+ app namespace, project).
    Flux: cluster + namespace + name + kind (Kustomization / HelmRelease)."""

    backend: BackendKind
    instance: str
    name: str
    namespace: str | None = None
    kind: str | None = None
    project: str | None = None

    @property
    def display(self) -> str:
        parts = (
            [self.instance, self.namespace, self.name]
            if self.backend == "flux"
            else [self.instance, self.name]
        )
        return "/".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    message: str = ""
    status: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ResourceStatus:
    kind: str
    name: str
    namespace: str = ""
    group: str = ""
    sync: str = ""
    health: str = ""
    message: str = ""

    @property
    def key(self) -> str:
        return "/".join(p for p in (self.group, self.kind, self.namespace, self.name) if p)


@dataclass(frozen=True, slots=True)
class Operation:
    """The last or current sync / reconcile."""

    phase: OperationPhase
    message: str = ""
    revision: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    initiated_by: str | None = None
    automated: bool = False
    dry_run: bool = False
    resources_done: int = 0
    resources_total: int = 0
    failed_resources: tuple[str, ...] = ()  # "kind/name: message"

    @property
    def finished(self) -> bool:
        return self.phase in TERMINAL_PHASES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


@dataclass(frozen=True, slots=True)
class AppStatus:
    ref: AppRef
    sync: SyncState = "Unknown"
    health: HealthState = "Unknown"
    health_message: str = ""
    revision: str | None = None  # what is deployed / compared (SHA, chart version)
    target_revision: str | None = None  # what Git is asked for (branch, tag, HEAD)
    source_revision: str | None = None  # Flux: the source's latest artifact revision
    repo_url: str | None = None
    path: str | None = None
    images: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    resources: tuple[ResourceStatus, ...] = ()
    operation: Operation | None = None
    operation_in_progress: bool = False
    auto_sync: bool = False
    suspended: bool = False
    reconciled_at: datetime | None = None
    labels: tuple[tuple[str, str], ...] = ()
    ui_url: str | None = None
    annotations: tuple[tuple[str, str], ...] = ()  # short ones only (`kept_annotations`)

    @property
    def healthy(self) -> bool:
        return self.sync == "Synced" and self.health == "Healthy"


@dataclass(frozen=True, slots=True)
class AppRow:
    """One app in a list: only what summaries show (`status --all`, `sync --selector`).

    Built straight from a trimmed list payload, so a list of 20,000 apps costs what its data
    costs; `AppStatus` (operation, resources, images, conditions) is for one app in detail."""

    ref: AppRef
    sync: SyncState = "Unknown"
    health: HealthState = "Unknown"
    phase: OperationPhase | None = None  # the last or current operation's; None: there is none
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()  # only when the list asked for them

    @property
    def healthy(self) -> bool:
        return self.sync == "Synced" and self.health == "Healthy"

    @property
    def running(self) -> OperationPhase | None:
        """The phase of an operation that has not finished (what a summary line shows)."""
        return self.phase if self.phase is not None and self.phase not in TERMINAL_PHASES else None

    @classmethod
    def of(cls, status: AppStatus) -> AppRow:
        op = status.operation
        return cls(status.ref, status.sync, status.health, op.phase if op else None,
                   status.labels, status.annotations)  # fmt: skip


def kept_annotations(raw: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    """The object's annotations worth keeping on its status, sorted (see MAX_ANNOTATION_VALUE)."""
    return tuple(
        sorted((k, v) for k, v in raw.items() if isinstance(v, str) and len(v) <= MAX_ANNOTATION_VALUE)
    )


@dataclass(frozen=True, slots=True)
class SyncRequest:
    prune: bool = False
    dry_run: bool = False
    revision: str | None = None
    resources: tuple[ResourceStatus, ...] = ()  # partial sync when non-empty
    initiated_by: str | None = None  # Slack user, recorded on the operation where the backend allows


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: str  # Argo CD history id, or a Git commit SHA for Flux
    revision: str
    deployed_at: datetime | None = None
    author: str | None = None
    message: str | None = None
    initiated_by: str | None = None
    automated: bool = False
    current: bool = False


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """One resource's before/after as plain objects (None: absent on that side)."""

    group: str
    kind: str
    namespace: str
    name: str
    live: dict[str, object] | None
    target: dict[str, object] | None

    @property
    def key(self) -> str:
        return "/".join(p for p in (self.group, self.kind, self.namespace, self.name) if p)


@dataclass(frozen=True, slots=True)
class AppDiff:
    ref: AppRef
    changes: tuple[ResourceChange, ...] = ()
    text: str | None = None  # a ready unified diff (Flux: `git diff`), when the backend has one
    from_revision: str | None = None
    to_revision: str | None = None


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """What a rollback would do, shown on the confirm card before anything changes."""

    ref: AppRef
    to: HistoryEntry
    current: HistoryEntry | None
    auto_sync: bool
    path: str | None = None  # Flux: the repository path the rollback commit touches


ProgressCallback = Callable[[AppStatus], None]


# Errors a handler may want to react to specifically (all are user-facing).
class AppNotFound(UserError):
    pass


class AmbiguousApp(UserError):
    def __init__(self, name: str, candidates: Sequence[AppRef]) -> None:
        listed = ", ".join(f"`{c.display}`" for c in candidates[:10])
        super().__init__(
            f"`{name}` matches more than one app: {listed}", hint="Name it as shown to pick one."
        )
        self.candidates = tuple(candidates)


class OperationInProgress(UserError):
    pass


class AutoSyncBlocksRollback(UserError):
    """Argo CD refuses a rollback while automated sync is on."""


class SuspendedTarget(UserError):
    pass


@runtime_checkable
class GitOpsBackend(Protocol):
    kind: BackendKind
    instance: str

    def list_apps(
        self,
        *,
        selector: str | None = None,
        project: str | None = None,
        deployed: bool = False,
        annotations: bool = False,
    ) -> list[AppStatus]:
        """One list request per kind. `deployed=True` also asks for what each app runs now where
        the backend needs extra fields for it (drift classification); status lists stay lean.
        `annotations=True` also asks for each app's annotations where the list trims them (a sync
        wave for `sync --selector`): they can be large (kubectl's last-applied-configuration)."""
        ...

    def list_rows(
        self, *, selector: str | None = None, project: str | None = None, annotations: bool = False
    ) -> list[AppRow]:
        """The same single list request per kind as `list_apps`, as lean rows (summaries)."""
        ...

    def get(self, ref: AppRef, *, refresh: bool = False) -> AppStatus: ...

    def find(self, name: str, *, namespace: str | None = None) -> list[AppRef]:
        """Refs whose name is `name` (and namespace, when given). Empty when none."""
        ...

    def names(self) -> list[str]:
        """Every app name this backend knows, for nearest-name suggestions."""
        ...

    def sync(self, ref: AppRef, request: SyncRequest) -> AppStatus:
        """Start a sync / reconcile; returns at once (the operation runs asynchronously)."""
        ...

    poll_interval: float  # seconds between polls of a running operation, at the start

    def poll(self, ref: AppRef) -> AppStatus:
        """One look at the operation started last (one request): `operation_in_progress` False
        means it ended, and this status is the final one. What `wait` and the watcher repeat."""
        ...

    def wait(self, ref: AppRef, *, timeout: float, on_progress: ProgressCallback | None = None) -> AppStatus:
        """Until the operation is no longer in progress (Argo CD `app wait --operation` rule)."""
        ...

    def terminate(self, ref: AppRef) -> None: ...

    def history(self, ref: AppRef) -> list[HistoryEntry]:
        """Newest first."""
        ...

    def plan_rollback(self, ref: AppRef, to: str | None) -> RollbackPlan: ...

    def rollback(self, plan: RollbackPlan, *, initiated_by: str | None = None) -> AppStatus: ...

    def diff(self, ref: AppRef, *, revision: str | None = None) -> AppDiff: ...

    def automated_policy(self, ref: AppRef) -> dict[str, object] | None:
        """The automated-sync policy now in force (None: off), to restore it later."""
        ...

    def set_auto_sync(self, ref: AppRef, enabled: bool, policy: dict[str, object] | None = None) -> None: ...

    def suspend(self, ref: AppRef) -> AppStatus:
        """Flux: `spec.suspend: true`. Argo CD: UserError (it has no such verb)."""
        ...

    def resume(self, ref: AppRef) -> AppStatus:
        """Flux: remove `spec.suspend`, then the new generation reconciles (poll with `wait`)."""
        ...

    def version(self) -> str: ...


@runtime_checkable
class StreamsDeployed(Protocol):
    """A backend that hands a drift scan its statuses one at a time, so a scan of a large fleet
    holds one app's status (and tree) at a time, not the whole list's."""

    def iter_deployed(self) -> Iterator[AppStatus]:
        """`list_apps(deployed=True)`'s statuses in its order, made as they are asked for. The
        list requests are made at the first `next()`, and an error may still come after some
        statuses: a caller keeps what it derived from them only once the iteration has ended."""
        ...


__all__ = [
    "AmbiguousApp",
    "AppDiff",
    "AppNotFound",
    "AppRef",
    "AppRow",
    "AppStatus",
    "AutoSyncBlocksRollback",
    "Condition",
    "GitOpsBackend",
    "HistoryEntry",
    "Operation",
    "OperationInProgress",
    "ProgressCallback",
    "ResourceChange",
    "ResourceStatus",
    "RollbackPlan",
    "StreamsDeployed",
    "SuspendedTarget",
    "SyncRequest",
]
