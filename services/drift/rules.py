"""What counts as a problem for one app, per backend. `services.drift.scan` merges these into findings.

Each rule returns `Problem`s; several problems of one kind on one app (a failed sync *and* a
Degraded health) become one finding so its key stays stable from scan to scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.backend import AppStatus, Operation
from services.revisions import short_revision

FindingKind = Literal["git_ahead", "live_changed", "failing"]

MAX_RESOURCES = 20
_FAILED_PHASES = frozenset({"Failed", "Error"})
_FAILING_HEALTH = frozenset({"Degraded", "Missing"})


@dataclass(frozen=True)
class Problem:
    kind: FindingKind
    title: str
    detail: str = ""
    resources: tuple[str, ...] = ()
    since: datetime | None = None


def argocd_problems(status: AppStatus) -> list[Problem]:
    """OutOfSync split by revision; Degraded / Missing health; a failed last sync; *Error conditions.

    While a sync runs, resources are OutOfSync by design, so OutOfSync is not reported then. Argo CD
    records no time at which an app fell behind Git, so "Git is ahead" carries no `since`: the
    incident store holds it back for `git_grace` from the scan that first saw it.
    """
    found: list[Problem] = []
    if status.sync == "OutOfSync" and not status.operation_in_progress:
        out_of_sync = [r.key for r in status.resources if r.sync == "OutOfSync"]
        drifted = _resources(out_of_sync)
        if status.revision != status.source_revision:
            found.append(
                Problem(
                    "git_ahead",
                    f"Git is ahead: {short(status.source_revision)} is not deployed"
                    + (f" (running {short(status.revision)})" if status.revision else ""),
                    f"Target {status.target_revision or 'HEAD'} resolves to {status.source_revision or '?'}.",
                    drifted,
                )
            )
        else:
            found.append(
                Problem(
                    "live_changed",
                    f"Live state changed outside Git{_count(len(set(out_of_sync)))} "
                    f"at {short(status.revision)}",
                    "The cluster differs from Git at the deployed revision: someone or something "
                    "edited it directly.",
                    drifted,
                )
            )
    for cond in status.conditions:
        # ComparisonError, InvalidSpecError, SyncError…: Argo CD cannot even render or apply.
        if cond.type.endswith("Error"):
            found.append(Problem("failing", f"{cond.type}: {one_line(cond.message)}", cond.message))
    op = status.operation
    if op is not None and op.phase in _FAILED_PHASES and not op.dry_run and _failure_current(status, op):
        found.append(
            Problem(
                "failing",
                f"Sync {op.phase.lower()}: {one_line(op.message) or 'no message'}",
                op.message,
                _resources(op.failed_resources),
                op.finished_at,
            )
        )
    if status.health in _FAILING_HEALTH:
        bad = _resources(
            # No per-resource message: they change on every retry and would edit the post each scan.
            f"{r.key} ({r.health})"
            for r in status.resources
            if r.health in _FAILING_HEALTH
        )
        found.append(
            Problem("failing", f"Health {status.health}", status.health_message or status.health, bad)
        )
    return found


def _failure_current(status: AppStatus, op: Operation) -> bool:
    """A failed sync stays the "last operation" until the next one; once the app is Synced and
    Healthy at another revision, that failure no longer describes what runs."""
    return not status.healthy or op.revision is None or op.revision == status.source_revision


def flux_problems(
    status: AppStatus, *, now: datetime, suspended_after: timedelta, git_grace: timedelta
) -> list[Problem]:
    """Ready=False, Stalled, long suspension, source ahead of applied, HelmRelease Drifted=True.

    Time source: `reconciled_at`, which the Flux converter fills from the last history entry's
    `lastReconciled`, else the Ready condition's `lastTransitionTime`. Flux stamps no time on
    `spec.suspend`, so a suspension is measured as "not reconciled for"; an object never
    reconciled (no time at all) is not reported as suspended.
    """
    found: list[Problem] = []
    conds = {c.type: c for c in status.conditions}
    ready, stalled, drifted = conds.get("Ready"), conds.get("Stalled"), conds.get("Drifted")
    since = status.reconciled_at
    if ready is not None and ready.status == "False":
        why = ready.reason or "not ready"
        found.append(Problem("failing", f"Not ready: {why}", ready.message or why))
    if stalled is not None and stalled.status == "True":
        why = stalled.reason or "stalled"
        found.append(Problem("failing", f"Stalled: {why}", stalled.message or why))
    ahead = (
        status.sync == "OutOfSync"
        and status.revision is not None
        and status.source_revision is not None
        and status.revision != status.source_revision
    )
    if status.suspended:
        if since is not None and now - since >= suspended_after:
            detail = "Reconciliation is suspended (spec.suspend: true); Flux applies nothing from Git."
            if ahead:
                # The suspension is why Git is ahead: one finding explains both.
                detail += (
                    f"\nGit is ahead: {short(status.source_revision)} (applied {short(status.revision)})."
                )
            found.append(
                Problem(
                    "failing", f"Suspended, not reconciled for {duration(now - since)}", detail, (), since
                )
            )
    elif ahead and not status.operation_in_progress and (since is None or now - since >= git_grace):
        found.append(
            Problem(
                "git_ahead",
                f"Git is ahead: {short(status.source_revision)} is not applied "
                f"(applied {short(status.revision)})",
                f"Source revision {short(status.source_revision)}; last applied {short(status.revision)}.",
                (),
                since,
            )
        )
    if drifted is not None and drifted.status == "True":
        found.append(
            Problem(
                "live_changed",
                "Helm release drifted from its chart (live objects edited)",
                drifted.message or drifted.reason or "Drifted=True",
            )
        )
    return found


def short(revision: str | None) -> str:
    """`main@sha1:0123abcd…` → `main@sha1:0123abcd` (as `flux get`); a bare SHA → 7 characters."""
    return short_revision(revision) if revision else "?"


def duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h"
    return f"{minutes // (24 * 60)}d"


def one_line(value: str, limit: int = 150) -> str:
    line = " ".join(value.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _resources(values: Iterable[str]) -> tuple[str, ...]:
    # Sorted so the same set in another order is not a visible change (no needless message edit).
    items = sorted(set(values))
    if len(items) <= MAX_RESOURCES:
        return tuple(items)
    return (*items[:MAX_RESOURCES], f"… and {len(items) - MAX_RESOURCES} more")


def _count(n: int) -> str:
    # The list API may be trimmed of resources; then the count is unknown, not zero.
    return "" if n == 0 else " (1 resource)" if n == 1 else f" ({n} resources)"
