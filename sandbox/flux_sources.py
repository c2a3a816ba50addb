"""source-controller: GitRepository (real `git ls-remote`), HelmRepository, OCIRepository, HelmChart.

Each reconciler has the same four steps, so the controller can run Git outside the store lock:
`progress` (the first status write), `prepare` (snapshot, lock held), `fetch` (I/O, no lock) and
`finish` (the final status, lock held).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sandbox import flux_git
from sandbox.flux_state import Failure, Outcome, Run, World, generation_of
from sandbox.flux_status import condition, merge_conditions, sha256
from sandbox.k8s_store import Entry

STORAGE = "http://source-controller.flux-system.svc.cluster.local."
CHART_VERSIONS = ("6.4.1", "6.5.0", "6.5.4", "6.6.0", "6.7.1")  # what the fake chart repositories index
_EXACT = re.compile(r"v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?")
_FAILURES = ("FetchFailed", "StorageOperationFailed", "ArtifactOutdated", "Stalled", "Reconciling")


def source_progress(entry: Entry, now: str) -> dict[str, Any]:
    generation = generation_of(entry.obj)
    status = dict(entry.obj.get("status") or {})
    status["conditions"] = merge_conditions(
        status.get("conditions") or [],
        [
            condition("Reconciling", "True", "Progressing", "reconciliation in progress", generation, now),
            condition("Ready", "Unknown", "Progressing", "reconciliation in progress", generation, now),
        ],
    )
    return status


def _failed(entry: Entry, run: Run, failure: Failure, now: str) -> Outcome:
    generation = generation_of(entry.obj)
    status = dict(entry.obj.get("status") or {})
    reconciling = next((c for c in status.get("conditions") or [] if c.get("type") == "Reconciling"), None)
    retry_message = str(reconciling.get("message")) if reconciling else "reconciliation in progress"
    conditions = [
        condition("Reconciling", "True", "ProgressingWithRetry", retry_message, generation, now),
        condition("Ready", "False", failure.reason, failure.message, generation, now),
    ]
    if failure.reason in ("GitOperationFailed", "AuthenticationFailed"):
        conditions.append(condition("FetchFailed", "True", failure.reason, failure.message, generation, now))
    status["conditions"] = merge_conditions(status.get("conditions") or [], conditions)
    if run.token:
        status["lastHandledReconcileAt"] = run.token
    outcome = Outcome(status)
    outcome.event("Warning", failure.reason, failure.message)
    return outcome


def _stored(entry: Entry, run: Run, artifact: dict[str, Any], reason: str, message: str, now: str) -> Outcome:
    generation = generation_of(entry.obj)
    status = dict(entry.obj.get("status") or {})
    status["artifact"] = artifact
    status["conditions"] = merge_conditions(
        status.get("conditions") or [],
        [
            condition("Ready", "True", reason, message, generation, now),
            condition("ArtifactInStorage", "True", reason, message, generation, now),
        ],
        remove=_FAILURES,
    )
    status["observedGeneration"] = generation
    if run.token:
        status["lastHandledReconcileAt"] = run.token
    return Outcome(status)


def _artifact(old: dict[str, Any] | None, revision: str, path: str, now: str) -> dict[str, Any]:
    if old is not None and old.get("revision") == revision:
        return old  # unchanged revision: the stored artifact (and its lastUpdateTime) stay
    return {
        "revision": revision,
        "digest": f"sha256:{sha256(revision + path)}",
        "path": path,
        "url": f"{STORAGE}/{path}",
        "size": 4096 + len(path) * 17,
        "lastUpdateTime": now,
    }


def _injected(world: World, entry: Entry) -> Failure | None:
    memo = world.memo(entry.key)
    failure, memo.failure = memo.failure, None
    return failure


@dataclass(frozen=True)
class GitTarget:
    url: str
    ref: str  # refs/heads/main; "" for a pinned commit
    label: str  # main, v1.2.3, refs/heads/main; "" for a bare commit
    commit: str
    current: str  # current artifact revision ("" when none)


@dataclass(frozen=True)
class Resolved:
    revision: str
    subject: str


class GitRepositoryReconciler:
    def progress(self, world: World, entry: Entry) -> dict[str, Any]:
        return source_progress(entry, world.store.now())

    def prepare(self, world: World, entry: Entry) -> GitTarget:
        spec = entry.obj.get("spec") or {}
        ref = spec.get("ref") or {"branch": "master"}
        current = str(((entry.obj.get("status") or {}).get("artifact") or {}).get("revision", ""))
        url = str(spec.get("url", ""))
        if ref.get("commit"):
            return GitTarget(url, "", str(ref.get("branch", "")), str(ref["commit"]), current)
        if ref.get("name"):
            return GitTarget(url, str(ref["name"]), str(ref["name"]), "", current)
        if ref.get("tag"):
            return GitTarget(url, f"refs/tags/{ref['tag']}", str(ref["tag"]), "", current)
        if ref.get("semver"):
            return GitTarget(url, "", "", "", current)
        branch = str(ref.get("branch") or "master")
        return GitTarget(url, f"refs/heads/{branch}", branch, "", current)

    def fetch(self, target: GitTarget) -> Resolved | Failure:
        if target.commit:
            label = f"{target.label}@" if target.label else ""
            return Resolved(f"{label}sha1:{target.commit}", "")
        if not target.ref:
            return Failure("GitOperationFailed", "semver references are not supported by the sandbox")
        repo = flux_git.local_path(target.url)
        if repo is None:  # a simulated remote: it never moves
            fallback = f"{target.label}@sha1:{sha256(target.url + target.ref)[:40]}"
            return Resolved(target.current or fallback, "")
        try:
            sha = flux_git.ls_remote(target.url, target.ref)
        except flux_git.GitError as exc:
            detail = str(exc).splitlines()[0] if str(exc) else "unknown error"
            message = f"failed to checkout and determine revision: unable to clone '{target.url}': {detail}"
            return Failure("GitOperationFailed", message)
        return Resolved(f"{target.label}@sha1:{sha}", flux_git.commit_subject(repo, sha))

    def finish(self, world: World, entry: Entry, run: Run, fetched: Resolved | Failure) -> Outcome:
        now = world.store.now()
        stalled = world.stalled(entry, run.token)
        if stalled is not None:
            return stalled
        result = _injected(world, entry) or fetched
        if isinstance(result, Failure):
            return _failed(entry, run, result, now)
        meta = entry.obj["metadata"]
        sha = result.revision.rsplit(":", 1)[-1]
        old = (entry.obj.get("status") or {}).get("artifact")
        artifact = _artifact(
            old, result.revision, f"gitrepository/{meta['namespace']}/{meta['name']}/{sha}.tar.gz", now
        )
        outcome = _stored(
            entry, run, artifact, "Succeeded", f"stored artifact for revision '{result.revision}'", now
        )
        if old is None or old.get("revision") != result.revision:
            subject = result.subject or result.revision
            outcome.event(
                "Normal",
                "NewArtifact",
                f"stored artifact for commit '{subject}'",
                {"source.toolkit.fluxcd.io/revision": result.revision},
            )
        return outcome


class StaticSourceReconciler:
    """HelmRepository, OCIRepository and HelmChart: no Git; the revision derives from the spec."""

    def progress(self, world: World, entry: Entry) -> dict[str, Any]:
        return source_progress(entry, world.store.now())

    def prepare(self, world: World, entry: Entry) -> None:
        return None

    def fetch(self, target: None) -> None:
        return None

    def finish(self, world: World, entry: Entry, run: Run, fetched: None) -> Outcome:
        now = world.store.now()
        stalled = world.stalled(entry, run.token)
        if stalled is not None:
            return stalled
        failure = _injected(world, entry)
        if failure is not None:
            return _failed(entry, run, failure, now)
        kind, spec, meta = entry.rtype.kind, entry.obj.get("spec") or {}, entry.obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        old = (entry.obj.get("status") or {}).get("artifact")
        if kind == "HelmChart":
            version = resolve_chart_version(str(spec.get("version", "*")))
            chart = str(spec.get("chart", ""))
            path = f"helmchart/{ns}/{name}/{chart}-{version}.tgz"
            message = f"pulled '{chart}' chart with version '{version}'"
            outcome = _stored(
                entry, run, _artifact(old, version, path, now), "ChartPullSucceeded", message, now
            )
            outcome.status["observedChartName"] = chart
            if old is None or old.get("revision") != version:
                outcome.event(
                    "Normal", "ChartPullSucceeded", message, {"source.toolkit.fluxcd.io/revision": version}
                )
            return outcome
        if kind == "OCIRepository":
            tag = str((spec.get("ref") or {}).get("tag", "latest"))
            revision = f"{tag}@sha256:{sha256(str(spec.get('url', '')) + tag)}"
            path = f"ocirepository/{ns}/{name}/{sha256(revision)}.tar.gz"
            message = f"stored artifact for digest '{revision}'"
            return _stored(entry, run, _artifact(old, revision, path, now), "Succeeded", message, now)
        revision = f"sha256:{sha256(str(spec.get('url', '')))}"
        path = f"helmrepository/{ns}/{name}/index-{revision[7:]}.yaml"
        message = f"stored artifact: revision '{revision}'"
        return _stored(entry, run, _artifact(old, revision, path, now), "Succeeded", message, now)


def resolve_chart_version(constraint: str) -> str:
    """An exact version as is; `*`, ranges and wildcards resolve to the newest indexed match."""
    text = constraint.strip()
    if _EXACT.fullmatch(text):
        return text.removeprefix("v")
    prefix = re.match(r"[~^]?v?(\d+(?:\.\d+)?)", text)
    if text not in ("", "*") and prefix is not None:
        matching = [v for v in CHART_VERSIONS if f"{v}.".startswith(prefix.group(1) + ".")]
        if matching:
            return matching[-1]
    return CHART_VERSIONS[-1]
