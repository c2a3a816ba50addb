"""How a reconcile request is judged from the object alone (docs/flux-api.md §2, §3).

`assess` is the CLI's `reconciliationHandled` + kstatus, except that a failure is reported as
soon as the controller has handled our request instead of polling on to the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from services.backend import Operation
from services.flux import convert as cv
from services.flux.errors import bound
from services.flux.kinds import HELM_RELEASE, KUSTOMIZATION, FluxKind

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FORCE_AT = "reconcile.fluxcd.io/forceAt"
RESET_AT = "reconcile.fluxcd.io/resetAt"
_BLOCKED_REASONS = frozenset({"DependencyNotReady"})
_BLOCKED_TEXT = "source artifact not found"

Phase = str  # "Pending" (not handled yet), "Running", "Succeeded", "Failed"


@dataclass(frozen=True)
class Request:
    """What `wait` judges: our requestedAt token, or (after a resume) a generation to handle."""

    token: str | None
    generation: int | None
    initiated_by: str | None
    started_at: datetime

    @classmethod
    def implicit(cls, obj: Mapping[str, object]) -> Request:
        """Without a request of ours: one in flight (requestedAt not handled yet), else the
        current generation."""
        requested = requested_at(obj)
        if requested and requested != handled_at(obj):
            return cls(requested, None, None, datetime.now(UTC))
        return cls(None, cv.generation(obj), None, datetime.now(UTC))


@dataclass(frozen=True)
class Verdict:
    phase: Phase
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


def token(now_ns: Callable[[], int] = time.time_ns, avoid: tuple[str | None, ...] = ()) -> str:
    """A fresh RFC3339Nano UTC timestamp, different from every value in `avoid`."""
    stamp = now_ns()
    while True:
        seconds, nanos = divmod(stamp, 1_000_000_000)
        value = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"
        if value not in avoid:
            return value
        stamp += 1


def request_patch(value: str, *, force: bool = False, reset: bool = False) -> dict[str, object]:
    """The CLI's metadata-only merge patch; forceAt / resetAt carry the same token (HelmRelease)."""
    annotations = {REQUESTED_AT: value}
    if force:
        annotations[FORCE_AT] = value
    if reset:
        annotations[RESET_AT] = value
    return {"metadata": {"annotations": annotations}}


def handled_at(obj: Mapping[str, object]) -> str | None:
    return cv.opt_text(cv.status_of(obj).get("lastHandledReconcileAt"))


def requested_at(obj: Mapping[str, object]) -> str | None:
    return cv.opt_text(cv.mapping(cv.meta(obj).get("annotations")).get(REQUESTED_AT))


def _generation_handled(obj: Mapping[str, object], wanted: int) -> bool:
    # A failed attempt does not advance status.observedGeneration, but the Ready condition
    # records the generation it was computed for (what `flux resume` waits on).
    ready = cv.conditions(obj).get("Ready")
    seen = cv.integer(cv.mapping(ready).get("observedGeneration")) or cv.observed_generation(obj)
    return ready is not None and seen >= wanted


def success_message(obj: Mapping[str, object], kind: FluxKind) -> str:
    ready = cv.text(cv.mapping(cv.conditions(obj).get("Ready")).get("message"))
    if kind is KUSTOMIZATION:
        return f"Applied revision: {cv.applied_revision(obj, kind) or '?'}"
    if kind is HELM_RELEASE:
        return ready or f"Deployed chart version {cv.applied_revision(obj, kind) or '?'}"
    return f"Fetched revision: {cv.artifact_revision(obj) or '?'}"


def assess(
    obj: Mapping[str, object], kind: FluxKind, *, token: str | None = None, generation: int | None = None
) -> Verdict:
    """Where the request stands. `token`: the requestedAt we set; `generation`: after a resume,
    the generation the controller must handle instead."""
    if token is not None and handled_at(obj) != token:
        return Verdict("Pending", "reconcile requested, waiting for the controller")
    if generation is not None and not _generation_handled(obj, generation):
        return Verdict("Pending", "waiting for the controller to handle the new generation")
    if cv.meta(obj).get("deletionTimestamp"):
        return Verdict("Failed", "the object is being deleted")
    if cv.suspended(obj):
        return Verdict("Failed", "the object was suspended while waiting; resume it to reconcile")
    conds = cv.conditions(obj)
    stalled, ready, reconciling = conds.get("Stalled"), conds.get("Ready"), conds.get("Reconciling")
    if cv.is_true(stalled):
        return Verdict("Failed", _reason_message(stalled))
    ready_status = cv.text(cv.mapping(ready).get("status"))
    observed = cv.observed_generation(obj) == cv.generation(obj)
    if ready_status == "True" and observed and not cv.is_true(reconciling):
        return Verdict("Succeeded", success_message(obj, kind))
    if ready_status == "False":
        reason = cv.text(cv.mapping(ready).get("reason"))
        message = cv.text(cv.mapping(ready).get("message"))
        if reason in _BLOCKED_REASONS or _BLOCKED_TEXT in message.lower():
            return Verdict("Running", bound(f"waiting: {message or reason}", 1000))
        retrying = cv.text(cv.mapping(reconciling).get("reason")) == "ProgressingWithRetry"
        if not cv.is_true(reconciling) or retrying:
            return Verdict("Failed", _reason_message(ready))
    progress = cv.text(cv.mapping(reconciling).get("message")) or cv.text(cv.mapping(ready).get("message"))
    return Verdict("Running", bound(progress or "reconciliation in progress", 1000))


def operation(
    phase: Phase, message: str, request: Request, obj: Mapping[str, object], kind: FluxKind
) -> Operation:
    finished = phase in ("Succeeded", "Failed")
    return Operation(
        phase=phase,
        message=message,
        revision=cv.applied_revision(obj, kind),
        started_at=request.started_at,
        finished_at=datetime.now(UTC) if finished else None,
        initiated_by=request.initiated_by,
    )


def _reason_message(cond: Mapping[str, object] | None) -> str:
    reason = cv.text(cv.mapping(cond).get("reason"))
    message = cv.text(cv.mapping(cond).get("message"))
    return bound(f"{reason}: {message}" if reason and message else reason or message or "failed", 1000)


__all__ = [
    "FORCE_AT",
    "REQUESTED_AT",
    "RESET_AT",
    "Request",
    "Verdict",
    "assess",
    "handled_at",
    "operation",
    "request_patch",
    "requested_at",
    "success_message",
    "token",
]
