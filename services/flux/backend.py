"""`FluxBackend`: the `GitOpsBackend` Protocol implemented over the Flux objects of one cluster.

Raw objects stop here: every method returns records from `services.backend`, and every
Kubernetes error leaves as a product error (see `translate.py`). Reconcile requests follow
docs/flux-api.md §2 (`flux reconcile --with-source`); diff, history and rollback go through Git
(`gitops.py`), since Flux keeps neither.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

from services.backend import (
    AmbiguousApp,
    AppDiff,
    AppRef,
    AppRow,
    AppStatus,
    BackendKind,
    Condition,
    HistoryEntry,
    Operation,
    ProgressCallback,
    RollbackPlan,
    SuspendedTarget,
    SyncRequest,
)
from services.errors import BackendUnavailable, UserError
from services.flux import convert as cv
from services.flux import gitops
from services.flux import reconcile as rc
from services.flux.client import FluxClient, Json, objects
from services.flux.errors import FluxError, FluxForbidden
from services.flux.kinds import (
    APP_KINDS,
    HELM_RELEASE,
    KUSTOMIZATION,
    LISTED_SOURCES,
    FluxKind,
    kind_named,
)
from services.flux.sources import SourceReconciler, source_of
from services.flux.translate import not_found, object_path, translate
from services.git import PushResult, RepoCache
from services.settings.model import FluxCluster, GitRepository, Settings

INDEX_TTL_SECONDS = 30.0
FIND_MISS_MAX_AGE = 5.0
SOURCE_TIMEOUT_SECONDS = 120.0


def _key(ref: AppRef) -> tuple[str, str, str]:
    return (ref.kind or "", ref.namespace or "", ref.name)


class FluxBackend:
    """One Flux cluster as a `GitOpsBackend` (kind "flux"; AppRef.kind: Kustomization | HelmRelease)."""

    kind: BackendKind = "flux"

    def __init__(
        self,
        cluster: FluxCluster,
        client: FluxClient,
        repos: RepoCache | None,
        settings: Settings,
        *,
        poll_interval: float = 2.0,
        source_timeout: float = SOURCE_TIMEOUT_SECONDS,
        index_ttl: float = INDEX_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.instance = cluster.name
        self.cluster = cluster
        self.client = client
        self.repos = repos
        self.settings = settings
        self.poll_interval = poll_interval
        self._index_ttl = index_ttl
        self._clock = clock
        self._sleep = sleep
        self._sources = SourceReconciler(
            client, poll_interval=poll_interval, timeout=source_timeout, clock=clock, sleep=sleep
        )
        self._lock = threading.Lock()
        self._index_lock = threading.Lock()  # held while listing, so concurrent callers share one list
        self._index: tuple[float, list[AppRef]] | None = None
        self._pending: dict[tuple[str, str, str], rc.Request] = {}

    def __repr__(self) -> str:
        return f"FluxBackend({self.instance!r})"

    # -- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _errors(self, ref: AppRef | None, action: str) -> Iterator[None]:
        try:
            yield
        except FluxError as exc:
            product = translate(exc, cluster=self.instance, action=action, ref=ref)
            if product is None:
                raise
            raise product from exc

    def _refs(self, *, max_age: float | None = None) -> list[AppRef]:
        with self._index_lock:
            ttl = self._index_ttl if max_age is None else min(max_age, self._index_ttl)
            if self._index is not None and self._clock() - self._index[0] < ttl:
                return self._index[1]
            refs: list[AppRef] = []
            denied: list[FluxForbidden] = []
            for kind in APP_KINDS:
                try:
                    refs += [
                        cv.ref_of(self.instance, obj, kind) for obj in objects(self.client.list_raw(kind))
                    ]
                except FluxForbidden as exc:
                    denied.append(exc)  # RBAC for one kind only: names of the other still resolve
            if len(denied) == len(APP_KINDS):
                raise denied[0]
            self._index = (self._clock(), [r for r in refs if r.name and r.namespace])
            return self._index[1]

    def _resolve(self, ref: AppRef) -> tuple[AppRef, FluxKind]:
        """Fill in namespace and kind from the index; AppNotFound / AmbiguousApp otherwise."""
        kind = kind_named(ref.kind) if ref.kind else None
        if ref.kind and kind not in APP_KINDS:
            raise UserError(f"`{ref.kind}` is not a Flux kind the bot manages (Kustomization, HelmRelease).")
        if kind is not None and ref.namespace:
            return AppRef("flux", self.instance, ref.name, namespace=ref.namespace, kind=kind.kind), kind
        with self._errors(None, "list"):
            matches = [
                r
                for r in self._refs()
                if r.name == ref.name
                and (ref.namespace is None or r.namespace == ref.namespace)
                and (kind is None or r.kind == kind.kind)
            ]
        if len(matches) > 1:
            raise AmbiguousApp(ref.name, sorted(matches))
        if not matches:
            raise not_found(replace(ref, kind=ref.kind or KUSTOMIZATION.kind))
        found = matches[0]
        return found, kind_named(found.kind or "") or KUSTOMIZATION

    def _get(self, ref: AppRef, kind: FluxKind, action: str = "read") -> Json:
        with self._errors(ref, action):
            return self.client.get(kind, ref.namespace or "", ref.name)

    def _source(self, obj: Mapping[str, object], kind: FluxKind) -> Json | None:
        """The object's source, for its artifact revision and URL; None if it cannot be read."""
        with self._errors(None, "read the source of"):
            return source_of(self.client, obj, kind)

    def _status(
        self,
        obj: Json,
        kind: FluxKind,
        source: Mapping[str, object] | None,
        extra: tuple[Condition, ...] = (),
    ) -> AppStatus:
        return cv.app_status(self.instance, obj, kind, source=source, extra_conditions=extra)

    def _warnings(self, ref: AppRef, kind: FluxKind) -> tuple[Condition, ...]:
        try:
            events = self.client.events(kind.kind, ref.namespace or "", ref.name)
        except FluxError:
            return ()  # decoration: a status without events beats no status
        return tuple(cv.warnings(events))

    # -- reading -----------------------------------------------------------------------------

    def list_apps(
        self,
        *,
        selector: str | None = None,
        project: str | None = None,
        deployed: bool = False,
        annotations: bool = False,
    ) -> list[AppStatus]:
        """One cluster-wide list per app kind and per source kind (Flux has no projects)."""
        if project is not None:
            return []
        return list(self._statuses(selector))

    def iter_deployed(self) -> Iterator[AppStatus]:
        return self._statuses(None)

    def _statuses(self, selector: str | None) -> Iterator[AppStatus]:
        """The status of every app object, each object decoded only when its turn comes."""
        for kind, obj, source in self._objects(selector):
            yield self._status(obj, kind, source)

    def _objects(self, selector: str | None) -> Iterator[tuple[FluxKind, Json, Json | None]]:
        """Every app object with what its status reads of its source, one object at a time: the
        lists are all requested first (their bytes kept), the sources kept as three keys each."""
        with self._errors(None, "list"):
            apps = [(kind, self.client.list_raw(kind, selector=selector)) for kind in APP_KINDS]
            sources: dict[tuple[str, str, str], Json] = {}
            for kind in LISTED_SOURCES:
                try:
                    found = self.client.list_raw(kind)
                except FluxForbidden:
                    continue  # sources only decorate: without them sync shows Unknown
                for obj in objects(found):
                    m = cv.meta(obj)
                    key = (kind.kind, cv.text(m.get("namespace")), cv.text(m.get("name")))
                    sources[key] = cv.source_part(obj)
        for kind, raw in apps:
            for obj in objects(raw):
                found_ref = cv.source_ref(obj, kind)
                yield (
                    kind,
                    obj,
                    sources.get((found_ref[0].kind, found_ref[1], found_ref[2])) if found_ref else None,
                )

    def list_rows(
        self, *, selector: str | None = None, project: str | None = None, annotations: bool = False
    ) -> list[AppRow]:
        """`list_apps`'s requests, each object read straight into a row (`convert.app_row`)."""
        if project is not None:
            return []
        return [
            cv.app_row(self.instance, obj, kind, source=source)
            for kind, obj, source in self._objects(selector)
        ]

    def get(self, ref: AppRef, *, refresh: bool = False) -> AppStatus:
        """The object, its source and its newest Warning events. Flux has no refresh: ignored."""
        ref, kind = self._resolve(ref)
        obj = self._get(ref, kind)
        status = self._status(obj, kind, self._source(obj, kind), self._warnings(ref, kind))
        pending = self._pending_for(ref)
        if pending is not None:
            verdict = rc.assess(obj, kind, token=pending.token, generation=pending.generation)
            if not verdict.finished:
                status = replace(
                    status, operation=rc.operation("Running", verdict.message, pending, obj, kind)
                )
                status = replace(status, operation_in_progress=True)
        return status

    def find(self, name: str, *, namespace: str | None = None) -> list[AppRef]:
        def matching(refs: list[AppRef]) -> list[AppRef]:
            return [r for r in refs if r.name == name and (namespace is None or r.namespace == namespace)]

        with self._errors(None, "list"):
            found = matching(self._refs())
            if not found:
                found = matching(self._refs(max_age=FIND_MISS_MAX_AGE))
        return found

    def names(self) -> list[str]:
        with self._errors(None, "list"):
            return sorted({r.name for r in self._refs()})

    def version(self) -> str:
        with self._errors(None, "discover the API versions of"):
            parts = [
                f"{kind.group}/{version}"
                for kind in (KUSTOMIZATION, HELM_RELEASE)
                if (version := self.client.version_of(kind))
            ]
        return f"flux ({', '.join(parts)})" if parts else "flux (no Flux APIs served)"

    # -- reconcile ---------------------------------------------------------------------------

    def _pending_for(self, ref: AppRef) -> rc.Request | None:
        with self._lock:
            return self._pending.get(_key(ref))

    def _remember(self, ref: AppRef, pending: rc.Request | None) -> None:
        with self._lock:
            if pending is None:
                self._pending.pop(_key(ref), None)
            else:
                self._pending[_key(ref)] = pending

    def sync(self, ref: AppRef, request: SyncRequest) -> AppStatus:
        """`flux reconcile <kind> --with-source`: the source first (waited for), then the object."""
        unsupported = [
            flag
            for flag, on in (
                ("--revision", request.revision),
                ("--dry-run", request.dry_run),
                ("--prune", request.prune),
                ("a partial sync", request.resources),
            )
            if on
        ]
        if unsupported:
            raise UserError(
                f"Flux does not support {', '.join(unsupported)}: a reconcile applies the source's latest "
                "revision, and pruning is set by `spec.prune` in Git.",
                hint="Run the sync without those options; to deploy another revision, change Git.",
            )
        return self.reconcile(ref, initiated_by=request.initiated_by)

    def reconcile(
        self, ref: AppRef, *, force: bool = False, reset: bool = False, initiated_by: str | None = None
    ) -> AppStatus:
        """Annotate the source (and wait for it), then the object; `force` / `reset`: HelmRelease only."""
        ref, kind = self._resolve(ref)
        obj = self._get(ref, kind)
        if cv.suspended(obj):
            raise SuspendedTarget(f"{object_path(ref)} is suspended: /gitops resume it first")
        if (force or reset) and kind is not HELM_RELEASE:
            raise UserError("--force and --reset apply to HelmReleases only.")
        with self._errors(ref, "reconcile the source of"):
            source = self._sources.reconcile_sources(obj, kind, what=object_path(ref))
        value = rc.token(avoid=(rc.handled_at(obj), rc.requested_at(obj)))
        with self._errors(ref, "reconcile"):
            patched = self.client.patch(
                kind, ref.namespace or "", ref.name, rc.request_patch(value, force=force, reset=reset)
            )
        pending = rc.Request(value, None, initiated_by, datetime.now(UTC))
        self._remember(ref, pending)
        operation = rc.operation("Running", "reconcile requested", pending, patched, kind)
        return replace(self._status(patched, kind, source), operation=operation, operation_in_progress=True)

    def poll(self, ref: AppRef) -> AppStatus:
        """One look per docs §2: the request is handled and final, or still running (a failure
        counts as final as soon as the controller handled the request)."""
        ref, kind = self._resolve(ref)
        pending = self._pending_for(ref)
        obj = self._get(ref, kind)
        if pending is None:
            pending = rc.Request.implicit(obj)
            self._remember(ref, pending)  # the next look judges the same request
        verdict = rc.assess(obj, kind, token=pending.token, generation=pending.generation)
        if verdict.finished:
            self._remember(ref, None)
            operation = rc.operation(verdict.phase, verdict.message, pending, obj, kind)
            final = self._status(obj, kind, self._source(obj, kind))
            return replace(final, operation=operation, operation_in_progress=False)
        operation = rc.operation("Running", verdict.message, pending, obj, kind)
        return replace(self._status(obj, kind, None), operation=operation, operation_in_progress=True)

    def wait(self, ref: AppRef, *, timeout: float, on_progress: ProgressCallback | None = None) -> AppStatus:
        """Poll per docs §2 until the request is handled and final; failures return at once."""
        deadline = self._clock() + timeout
        seen: tuple[str, str] | None = None
        while True:
            status = self.poll(ref)
            if not status.operation_in_progress:
                return status
            op = status.operation
            key = (op.phase, op.message) if op else ("", "")
            if on_progress is not None and key != seen:
                on_progress(status)
            seen = key
            left = deadline - self._clock()
            if left <= 0:
                raise BackendUnavailable(
                    f"Flux {self.instance}",
                    f"timed out after {timeout:.0f}s waiting for {object_path(ref)} "
                    f"({op.message if op else 'running'}); Flux carries on",
                )
            self._sleep(min(self.poll_interval, left))

    def terminate(self, ref: AppRef) -> None:
        raise UserError("Flux has no running operation to cancel; suspend the object to stop reconciling it.")

    def suspend(self, ref: AppRef) -> AppStatus:
        ref, kind = self._resolve(ref)
        with self._errors(ref, "suspend"):
            patched = self.client.patch(kind, ref.namespace or "", ref.name, {"spec": {"suspend": True}})
        self._remember(ref, None)
        return self._status(patched, kind, None)

    def resume(self, ref: AppRef) -> AppStatus:
        """Remove `spec.suspend`; the generation bump queues a reconcile, which `wait` follows."""
        ref, kind = self._resolve(ref)
        with self._errors(ref, "resume"):
            patched = self.client.patch(kind, ref.namespace or "", ref.name, {"spec": {"suspend": None}})
        pending = rc.Request(None, cv.generation(patched), None, datetime.now(UTC))
        self._remember(ref, pending)
        operation = rc.operation("Running", "resume requested", pending, patched, kind)
        return replace(self._status(patched, kind, None), operation=operation, operation_in_progress=True)

    def automated_policy(self, ref: AppRef) -> dict[str, object] | None:
        return None

    def set_auto_sync(self, ref: AppRef, enabled: bool, policy: dict[str, object] | None = None) -> None:
        raise UserError("Flux always reconciles; use /gitops suspend / resume")

    # -- Git: diff, history, rollback --------------------------------------------------------

    def _git(self, ref: AppRef, what: str) -> tuple[AppRef, FluxKind, Json, gitops.GitSource]:
        ref, kind = self._resolve(ref)
        obj = self._get(ref, kind)
        source = self._source(obj, kind) if kind is KUSTOMIZATION else None
        return ref, kind, obj, gitops.git_source(self.repos, ref, obj, kind, source, what)

    def _repos(self) -> RepoCache:
        if self.repos is None:  # git_source already refused; this keeps the type checker informed
            raise UserError("No Git repositories are configured.")
        return self.repos

    def diff(self, ref: AppRef, *, revision: str | None = None) -> AppDiff:
        """Git changes under `spec.path` that are not applied yet (docs §7), as a unified diff."""
        ref, _, _, src = self._git(ref, "diffs")
        return gitops.diff(self._repos(), ref, src, revision)

    def history(self, ref: AppRef) -> list[HistoryEntry]:
        ref, kind = self._resolve(ref)
        if kind is HELM_RELEASE:
            return cv.helm_history(self._get(ref, kind))
        ref, _, _, src = self._git(ref, "reads the history of")
        return gitops.history(self._repos(), src)

    def commit(self, ref: AppRef, sha: str) -> HistoryEntry | None:
        """The commit `sha` of the repository `ref` applies from (None when not a configured one)."""
        ref, _, _, src = self._git(ref, "reads the history of")
        return gitops.commit_entry(self._repos(), src, sha)

    def plan_rollback(self, ref: AppRef, to: str | None) -> RollbackPlan:
        ref, _, _, src = self._git(ref, "rolls back")
        return gitops.plan(self._repos(), ref, src, to)

    def rollback_repository(self, ref: AppRef) -> GitRepository:
        """The configured repository a rollback of `ref` pushes to (its mode says how)."""
        return self._git(ref, "rolls back")[3].repository

    def push_rollback(
        self, plan: RollbackPlan, *, initiated_by: str | None = None, to_branch: str | None = None
    ) -> PushResult:
        """Only the Git half of `rollback`: the revert / restore commit pushed to the tracked branch,
        or (`to_branch`) to a pull request's head that the caller opens, merges and reconciles."""
        ref, _, obj, src = self._git(plan.ref, "rolls back")
        if cv.suspended(obj):
            raise SuspendedTarget(f"{object_path(ref)} is suspended: /gitops resume it first")
        return gitops.push_rollback(self._repos(), ref, src, plan, initiated_by, to_branch=to_branch)

    def rollback(self, plan: RollbackPlan, *, initiated_by: str | None = None) -> AppStatus:
        """Push the revert / restore to Git, then reconcile with source; the caller `wait`s."""
        pushed = self.push_rollback(plan, initiated_by=initiated_by)
        ref = self._resolve(plan.ref)[0]
        started = self.reconcile(ref, initiated_by=initiated_by)
        message = f"pushed {pushed.sha[:8]} to {pushed.branch}; reconcile requested"
        operation = replace(started.operation or Operation("Running"), message=message, revision=pushed.sha)
        return replace(started, operation=operation)


__all__ = ["FIND_MISS_MAX_AGE", "INDEX_TTL_SECONDS", "SOURCE_TIMEOUT_SECONDS", "FluxBackend"]
