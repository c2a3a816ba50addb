"""What the fake Flux controllers remember per object, beside what they write into `status`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.flux_kinds import CONTROLLERS, FORCE_AT, PLURALS, REQUESTED_AT, RESET_AT
from sandbox.flux_status import condition, merge_conditions
from sandbox.k8s_cluster import Cluster
from sandbox.k8s_store import Entry, Key


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str


@dataclass(frozen=True)
class Run:
    """A reconcile in flight: started at `started` (monotonic), for this request token and generation."""

    started: float
    token: str
    generation: int
    force: bool
    reset: bool


@dataclass
class Memo:
    handled: tuple[int, str] | None = None  # (generation, requestedAt) the last finished run answered
    running: Run | None = None
    failure: Failure | None = None  # injected: consumed by the next run
    stall: Failure | None = None  # injected: every run ends Stalled until the spec changes
    stall_generation: int = 0
    applied: dict[str, str] = field(default_factory=dict)  # Kustomization: inventory id -> manifest digest
    drifted: list[str] = field(default_factory=list)  # Kustomization: "Kind/ns/name" changed in-cluster
    released: tuple[str, str] | None = None  # HelmRelease: (chart version, values digest) last released
    retry: bool = False  # HelmRelease: the last attempt failed, so the next one upgrades again


@dataclass
class Outcome:
    """A finished run: the new status and the Events to record about the object."""

    status: dict[str, Any]
    events: list[tuple[str, str, str, dict[str, str]]] = field(
        default_factory=list
    )  # type, reason, msg, ann.

    def event(self, type_: str, reason: str, message: str, annotations: dict[str, str] | None = None) -> None:
        self.events.append((type_, reason, message, annotations or {}))


class World:
    """The cluster plus the controllers' memory; every method expects `cluster.store.lock` held."""

    def __init__(
        self, cluster: Cluster, *, reconcile_seconds: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.cluster = cluster
        self.store = cluster.store
        self.reconcile_seconds = reconcile_seconds
        self.monotonic = monotonic
        self.memos: dict[Key, Memo] = {}
        self.running: set[Key] = set()

    def memo(self, key: Key) -> Memo:
        found = self.memos.get(key)
        if found is None:
            found = self.memos[key] = Memo()
        return found

    def entry(self, kind: str, namespace: str, name: str) -> Entry | None:
        plural = PLURALS.get(kind)
        return None if plural is None else self.store.get(plural, namespace, name)

    def require(self, kind: str, namespace: str, name: str) -> Entry:
        entry = self.entry(kind, namespace, name)
        if entry is None:
            raise KeyError(f"no {kind} {namespace}/{name}")
        return entry

    def commit(self, entry: Entry, outcome: Outcome) -> None:
        self.store.set_status(entry, outcome.status)
        component = CONTROLLERS[entry.rtype.kind]
        for type_, reason, message, notes in outcome.events:
            self.cluster.record_event(
                entry,
                type_=type_,
                reason=reason,
                message=message,
                component=component,
                annotations=notes,
            )

    def stalled(self, entry: Entry, token: str | None) -> Outcome | None:
        """The Stalled outcome when a stall was injected and the spec has not changed since."""
        memo = self.memo(entry.key)
        generation = generation_of(entry.obj)
        if memo.stall is None or memo.stall_generation != generation:
            memo.stall = None
            return None
        now = self.store.now()
        status = dict(entry.obj.get("status") or {})
        reason, message = memo.stall.reason, memo.stall.message
        status["conditions"] = merge_conditions(
            status.get("conditions") or [],
            [
                condition("Stalled", "True", reason, message, generation, now),
                condition("Ready", "False", reason, message, generation, now),
            ],
            remove=("Reconciling",),
        )
        status["observedGeneration"] = generation  # advanced when Ready or Stalled
        if token is not None:
            status["lastHandledReconcileAt"] = token
        outcome = Outcome(status)
        outcome.event("Warning", reason, message)
        return outcome


def generation_of(obj: dict[str, Any]) -> int:
    return int(obj["metadata"].get("generation", 1))


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = obj["metadata"].get("annotations") or {}
    return found


def request_token(obj: dict[str, Any]) -> str:
    return annotations_of(obj).get(REQUESTED_AT, "")


def new_run(obj: dict[str, Any], started: float) -> Run:
    notes = annotations_of(obj)
    token = notes.get(REQUESTED_AT, "")
    return Run(
        started=started,
        token=token,
        generation=generation_of(obj),
        force=bool(token) and notes.get(FORCE_AT) == token,
        reset=bool(token) and notes.get(RESET_AT) == token,
    )


def suspended(obj: dict[str, Any]) -> bool:
    return bool((obj.get("spec") or {}).get("suspend"))


def with_handled(status: dict[str, Any], run: Run, generation: int | None) -> dict[str, Any]:
    """The final status patch: the request token always; observedGeneration only when given."""
    result = dict(status)
    if run.token:
        result["lastHandledReconcileAt"] = run.token
    if generation is not None:
        result["observedGeneration"] = generation
    return result
