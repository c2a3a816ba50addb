"""Drift findings: what is wrong with each app right now, from one list request per backend.

A finding is stateless (this scan only); `services.drift.store` turns findings into incidents
that persist, update in place, resolve and reopen. Keys are stable across scans so that one
problem on one app is always the same incident.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.backend import AppRef, AppStatus, GitOpsBackend, StreamsDeployed
from services.drift.rules import FindingKind, Problem, argocd_problems, flux_problems, one_line
from services.errors import BackendUnavailable

log = logging.getLogger(__name__)

KINDS: tuple[FindingKind, ...] = ("failing", "git_ahead", "live_changed")
MAX_DETAIL = 1500


@dataclass(frozen=True)
class Finding:
    key: str  # "<backend>:<instance>/<ns>/<name>:<kind>"; Flux adds the object kind (see finding_key)
    ref: AppRef
    kind: FindingKind
    title: str  # one line
    detail: str
    resources: tuple[str, ...]
    since: datetime | None  # when the problem began, when the backend tells us
    labels: tuple[tuple[str, str], ...] = ()  # the app's labels, for routing to a team's channel

    @property
    def backend(self) -> str:
        return backend_id(self.ref)


@dataclass(frozen=True)
class ScanResult:
    findings: tuple[Finding, ...]
    unreachable: tuple[str, ...]  # "argocd:main": its apps are neither found nor resolved
    scanned: tuple[str, ...]  # backends that answered


def backend_id(ref: AppRef) -> str:
    return f"{ref.backend}:{ref.instance}"


def finding_key(ref: AppRef, kind: FindingKind) -> str:
    """Stable identity of one problem kind on one app.

    Flux lets a Kustomization and a HelmRelease share a namespace and name, so its object kind
    is part of the name segment (`podinfo.helmrelease`); without it they would share incidents.
    """
    name = f"{ref.name}.{ref.kind.lower()}" if ref.backend == "flux" and ref.kind else ref.name
    return f"{backend_id(ref)}/{ref.namespace or '-'}/{name}:{kind}"


def findings_for(
    status: AppStatus, *, now: datetime, suspended_after: timedelta, git_grace: timedelta
) -> list[Finding]:
    """At most one finding per problem kind, in `KINDS` order."""
    if status.ref.backend == "flux":
        problems = flux_problems(status, now=now, suspended_after=suspended_after, git_grace=git_grace)
    else:
        problems = argocd_problems(status)
    found: list[Finding] = []
    for kind in KINDS:
        same = [p for p in problems if p.kind == kind]
        if same:
            found.append(_merge(status, kind, same))
    return found


def _merge(status: AppStatus, kind: FindingKind, problems: list[Problem]) -> Finding:
    # The first problem names the finding (rules list the most telling first); the rest are
    # added to the detail so nothing is lost.
    first = problems[0]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    title = one_line(first.title + more)
    if len(problems) == 1:
        detail = first.detail.strip() or first.title
    else:
        detail = "\n".join(
            f"• {p.title}" + (f": {one_line(p.detail, 300)}" if p.detail.strip() not in ("", p.title) else "")
            for p in problems
        )
    if len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 1] + "…"
    resources = tuple(dict.fromkeys(r for p in problems for r in p.resources))
    starts = [p.since for p in problems if p.since is not None]
    return Finding(
        key=finding_key(status.ref, kind),
        ref=status.ref,
        kind=kind,
        title=title,
        detail=detail,
        resources=resources,
        since=min(starts) if starts else None,
        labels=status.labels,
    )


def _statuses(backend: GitOpsBackend) -> Iterator[AppStatus]:
    """The backend's statuses one at a time where it can hand them over so; else its list, each
    status dropped from it once read (a scan keeps findings, not every app's status: 5,000 of
    them weigh ~7–14 MB)."""
    if isinstance(backend, StreamsDeployed):
        return backend.iter_deployed()
    return _emptying(backend.list_apps(deployed=True))


def _emptying(statuses: list[AppStatus]) -> Iterator[AppStatus]:
    statuses.reverse()  # popped from the end: the original order, each status freed once read
    while statuses:
        yield statuses.pop()


def _classify(
    backend: GitOpsBackend, *, now: datetime, suspended_after: timedelta, git_grace: timedelta
) -> dict[str, Finding]:
    """The findings of one backend's apps (first one of a key wins), classified as they come."""
    found: dict[str, Finding] = {}
    for status in _statuses(backend):
        for finding in findings_for(status, now=now, suspended_after=suspended_after, git_grace=git_grace):
            found.setdefault(finding.key, finding)
    return found


def scan(
    backends: Sequence[GitOpsBackend], *, now: datetime, suspended_after: timedelta, git_grace: timedelta
) -> ScanResult:
    """One list per backend (and kind). A backend that fails goes to `unreachable`, so the store
    keeps its incidents open instead of declaring them resolved; what it yielded before failing
    is dropped with it."""
    findings: dict[str, Finding] = {}
    unreachable: list[str] = []
    scanned: list[str] = []
    for backend in backends:
        name = f"{backend.kind}:{backend.instance}"
        try:
            found = _classify(backend, now=now, suspended_after=suspended_after, git_grace=git_grace)
        except BackendUnavailable as exc:
            log.warning("drift scan: %s unreachable: %s", name, exc)
            unreachable.append(name)
            continue
        except Exception:
            # A bug in one backend's client must neither blind the scan for the others nor mark
            # that backend's apps resolved; it is logged with its traceback and treated as down.
            log.exception("drift scan: listing %s failed", name)
            unreachable.append(name)
            continue
        scanned.append(name)
        for key, finding in found.items():
            findings.setdefault(key, finding)
    return ScanResult(
        findings=tuple(findings[k] for k in sorted(findings)),
        unreachable=tuple(dict.fromkeys(unreachable)),
        scanned=tuple(dict.fromkeys(n for n in scanned if n not in unreachable)),
    )


__all__ = [
    "KINDS",
    "Finding",
    "FindingKind",
    "ScanResult",
    "backend_id",
    "finding_key",
    "findings_for",
    "scan",
]
