"""`ArgoCDBackend`: the `GitOpsBackend` Protocol implemented over one Argo CD instance.

Raw payloads stop here: every method returns records from `services.backend`, and every Argo CD
error leaves as a product error (see `translate.py`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial

from services.argocd import convert, drift_rows, plans, rows
from services.argocd.client import (
    ANNOTATION_FIELD,
    DEFAULT_LIST_FIELDS,
    DEPLOYED_FIELDS,
    NAME_FIELDS,
    ArgoCDClient,
)
from services.argocd.errors import ArgoCDError
from services.argocd.payloads import (
    ApplicationPayload,
    HistoryPayload,
    RevisionMetadataPayload,
)
from services.argocd.translate import translate
from services.backend import (
    AppDiff,
    AppRef,
    AppRow,
    AppStatus,
    BackendKind,
    HistoryEntry,
    ProgressCallback,
    RollbackPlan,
    SyncRequest,
)
from services.errors import BackendUnavailable, UserError
from services.settings.model import ArgoCDInstance

INDEX_TTL_SECONDS = 30.0  # the name index: apps come and go rarely, and lists can be large
FIND_MISS_MAX_AGE = 5.0
HISTORY_LIMIT = 10
_METADATA_CACHE_SIZE = 512


class ArgoCDBackend:
    """One Argo CD instance as a `GitOpsBackend` (kind "argocd")."""

    kind: BackendKind = "argocd"

    def __init__(
        self,
        instance: ArgoCDInstance,
        client: ArgoCDClient,
        *,
        control_namespace: str = "argocd",
        poll_interval: float = 1.0,
        index_ttl: float = INDEX_TTL_SECONDS,
        history_limit: int = HISTORY_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        list_fields: Sequence[str] | None = DEFAULT_LIST_FIELDS,
    ) -> None:
        self.instance = instance.name
        self._list_fields = list_fields  # None: untrimmed lists (the benchmark's baseline)
        self.settings = instance
        self.client = client
        self.control_namespace = control_namespace
        self.poll_interval = poll_interval
        self._index_ttl = index_ttl
        self._history_limit = history_limit
        self._clock = clock
        self._sleep = sleep
        self._index_lock = threading.Lock()  # held while fetching, so concurrent callers share one list
        self._cache_lock = threading.Lock()
        self._index: tuple[float, list[AppRef]] | None = None
        self._metadata: OrderedDict[tuple[str, str], RevisionMetadataPayload] = OrderedDict()
        self._version: str | None = None

    def __repr__(self) -> str:
        return f"ArgoCDBackend({self.instance!r})"

    # -- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _errors(self, ref: AppRef | None, action: str) -> Iterator[None]:
        try:
            yield
        except ArgoCDError as exc:
            product = translate(exc, instance=self.instance, action=action, ref=ref)
            if product is None:
                raise
            raise product from exc

    def _refs(self, *, max_age: float | None = None) -> list[AppRef]:
        """Every app as a bare ref, from a trimmed list cached for `index_ttl` seconds."""
        with self._index_lock:
            now = self._clock()
            ttl = self._index_ttl if max_age is None else min(max_age, self._index_ttl)
            if self._index is not None and now - self._index[0] < ttl:
                return self._index[1]
            payload = self.client.list_apps(fields=NAME_FIELDS)
            refs = [convert.ref_of(self.instance, app) for app in payload.get("items") or []]
            refs = [r for r in refs if r.name]
            self._index = (self._clock(), refs)
            return refs

    def _resolve(self, ref: AppRef) -> AppRef:
        """Fill in project and namespace from the index so a missing app is a 404, not a 403."""
        if ref.project is not None and ref.namespace is not None:
            return ref
        with self._errors(None, "list"):
            matches = [
                r
                for r in self._refs()
                if r.name == ref.name and (ref.namespace is None or r.namespace == ref.namespace)
            ]
        if len(matches) > 1:
            matches = [r for r in matches if r.namespace == self.control_namespace] or matches
        if len(matches) != 1:
            return ref
        found = matches[0]
        return AppRef(
            "argocd",
            self.instance,
            ref.name,
            namespace=ref.namespace or found.namespace,
            project=ref.project or found.project,
            kind=ref.kind,
        )

    def _ns(self, ref: AppRef) -> str | None:
        """`appNamespace`, sent only for apps outside the control plane's namespace (like the CLI)."""
        return ref.namespace if ref.namespace and ref.namespace != self.control_namespace else None

    def _get_raw(self, ref: AppRef, action: str, *, refresh: bool = False) -> ApplicationPayload:
        with self._errors(ref, action):
            return self.client.get_app(
                ref.name,
                project=ref.project,
                app_namespace=self._ns(ref),
                refresh="normal" if refresh else None,
            )

    def _status(self, app: ApplicationPayload, ref: AppRef) -> AppStatus:
        return convert.app_status(self.instance, app, browser_url=self.settings.browser_url, fallback=ref)

    # -- reading -----------------------------------------------------------------------------

    def list_apps(
        self,
        *,
        selector: str | None = None,
        project: str | None = None,
        deployed: bool = False,
        annotations: bool = False,
    ) -> list[AppStatus]:
        if deployed:
            return list(self._deployed(selector=selector, project=project, annotations=annotations))
        with self._errors(None, "list"):
            fields = self._list_fields
            if annotations and fields is not None:
                fields = (*fields, ANNOTATION_FIELD)
            projects = (project,) if project else ()
            payload = self.client.list_apps(projects=projects, selector=selector, fields=fields)
        browser, trimmed = self.settings.browser_url, self._list_fields is not None
        return [
            convert.app_status(self.instance, app, browser_url=browser, trimmed=trimmed)
            for app in payload.get("items") or []
        ]

    def iter_deployed(self) -> Iterator[AppStatus]:
        return self._deployed()

    def _deployed(
        self, *, selector: str | None = None, project: str | None = None, annotations: bool = False
    ) -> Iterator[AppStatus]:
        # The drift scan's list carries every resource of each app's last sync: it is split into
        # each app's bytes and each app decoded only when its status is asked for (drift_rows).
        fields = self._list_fields
        if fields is not None:
            fields = (*fields, *DEPLOYED_FIELDS, *((ANNOTATION_FIELD,) if annotations else ()))
        with self._errors(None, "list"):
            items = self.client.list_apps_as(
                drift_rows.split, projects=(project,) if project else (), selector=selector, fields=fields
            )
        yield from drift_rows.iter_statuses(
            self.instance, items, browser_url=self.settings.browser_url, trimmed=self._list_fields is not None
        )

    def list_rows(
        self, *, selector: str | None = None, project: str | None = None, annotations: bool = False
    ) -> list[AppRow]:
        """`list_apps`'s request, read into rows straight from the body (no `AppStatus` each)."""
        fields = self._list_fields
        if annotations and fields is not None:
            fields = (*fields, ANNOTATION_FIELD)
        with self._errors(None, "list"):
            return self.client.list_apps_as(
                partial(rows.decode_rows, self.instance),
                projects=(project,) if project else (),
                selector=selector,
                fields=fields,
            )

    def get(self, ref: AppRef, *, refresh: bool = False) -> AppStatus:
        ref = self._resolve(ref)
        return self._status(self._get_raw(ref, "read", refresh=refresh), ref)

    def find(self, name: str, *, namespace: str | None = None) -> list[AppRef]:
        def matching(refs: list[AppRef]) -> list[AppRef]:
            return [r for r in refs if r.name == name and (namespace is None or r.namespace == namespace)]

        with self._errors(None, "list"):
            found = matching(self._refs())
            if not found:
                # An app created seconds ago should not wait out the cache; a typo costs a
                # fresh list at most every few seconds.
                found = matching(self._refs(max_age=FIND_MISS_MAX_AGE))
        return found

    def names(self) -> list[str]:
        with self._errors(None, "list"):
            return sorted({r.name for r in self._refs()})

    def suspend(self, ref: AppRef) -> AppStatus:
        raise UserError(
            "Argo CD has no suspend. To stop automated syncs, turn auto-sync off in the app's sync policy."
        )

    def resume(self, ref: AppRef) -> AppStatus:
        raise UserError(
            f"Argo CD has no suspend or resume; `/gitops sync {ref.display}` deploys what Git says."
        )

    def version(self) -> str:
        if self._version is None:
            with self._errors(None, "read the version of"):
                payload = self.client.version()
            self._version = convert.text(payload.get("Version")) or "unknown"
        return self._version

    # -- sync --------------------------------------------------------------------------------

    def sync(self, ref: AppRef, request: SyncRequest) -> AppStatus:
        ref = self._resolve(ref)
        with self._errors(ref, "sync"):
            app = self.client.sync(ref.name, plans.sync_body(ref, request, app_namespace=self._ns(ref)))
        return self._status(app, ref)

    def wait(self, ref: AppRef, *, timeout: float, on_progress: ProgressCallback | None = None) -> AppStatus:
        """Poll until no operation is in progress (docs §7.4).

        `on_progress` sees each in-progress state whose phase or finished-resource count changed;
        the final state is the return value.
        """
        ref = self._resolve(ref)
        deadline = self._clock() + timeout
        seen: tuple[str, int] | None = None
        while True:
            status = self.poll(ref)
            if not status.operation_in_progress:
                return status
            op = status.operation
            key = (op.phase, op.resources_done) if op else ("", 0)
            if on_progress is not None and key != seen:
                on_progress(status)
            seen = key
            left = deadline - self._clock()
            if left <= 0:
                raise BackendUnavailable(
                    f"Argo CD {self.instance}", "timed out waiting for the operation; it continues in Argo CD"
                )
            self._sleep(min(self.poll_interval, left))

    def poll(self, ref: AppRef) -> AppStatus:
        """The app now; its operation ended when none is in progress (docs §7.4)."""
        ref = self._resolve(ref)
        return self._status(self._get_raw(ref, "read"), ref)

    def terminate(self, ref: AppRef) -> None:
        ref = self._resolve(ref)
        with self._errors(ref, "terminate the operation of"):
            self.client.terminate(ref.name, project=ref.project, app_namespace=self._ns(ref))

    # -- history and rollback ----------------------------------------------------------------

    def _revision_metadata(self, ref: AppRef, revision: str) -> RevisionMetadataPayload | None:
        if not revision:
            return None
        key = (ref.name, revision)
        with self._cache_lock:
            if key in self._metadata:
                self._metadata.move_to_end(key)
                return self._metadata[key]
        try:
            meta = self.client.revision_metadata(
                ref.name, revision, project=ref.project, app_namespace=self._ns(ref)
            )
        except ArgoCDError:
            return None  # decoration only: Helm revisions and pruned commits have none
        with self._cache_lock:
            self._metadata[key] = meta
            while len(self._metadata) > _METADATA_CACHE_SIZE:
                self._metadata.popitem(last=False)
        return meta

    def revision_metadata(self, ref: AppRef, revision: str) -> RevisionMetadataPayload | None:
        """A commit's author, date and message (cached); None where Argo CD has none."""
        return self._revision_metadata(ref, revision)

    def _entry(self, ref: AppRef, raw: HistoryPayload, *, current: bool) -> HistoryEntry:
        meta = self._revision_metadata(ref, convert.history_revision(raw))
        return convert.history_entry(raw, current=current, meta=meta)

    def history(self, ref: AppRef) -> list[HistoryEntry]:
        """Newest first, the last `history_limit` deployments, each with its commit's metadata."""
        ref = self._resolve(ref)
        raw = convert.history_raw(self._get_raw(ref, "read"))
        newest = list(reversed(raw[-self._history_limit :]))
        return [self._entry(ref, e, current=i == 0) for i, e in enumerate(newest)]

    def plan_rollback(self, ref: AppRef, to: str | None) -> RollbackPlan:
        """Pick the target like `argocd app rollback` (docs §7.2); `to` is an id or a SHA prefix."""
        ref = self._resolve(ref)
        app = self._get_raw(ref, "read")
        raw = convert.history_raw(app)
        chosen = plans.pick_rollback(ref.name, raw, to)
        current = raw[-1] if raw else None
        return RollbackPlan(
            ref=ref,
            to=self._entry(ref, chosen, current=chosen is current),
            current=self._entry(ref, current, current=True) if current is not None else None,
            auto_sync=convert.automated_policy(app) is not None,
        )

    def rollback(self, plan: RollbackPlan, *, initiated_by: str | None = None) -> AppStatus:
        """POST the rollback. Argo CD's rollback request has no field to record `initiated_by`."""
        ref = self._resolve(plan.ref)
        with self._errors(ref, "roll back"):
            app = self.client.rollback(
                ref.name, int(plan.to.id), project=ref.project, app_namespace=self._ns(ref)
            )
        return self._status(app, ref)

    # -- diff and policy ---------------------------------------------------------------------

    def diff(self, ref: AppRef, *, revision: str | None = None) -> AppDiff:
        """What a sync would change, from the controller's managed-resources (the UI's method)."""
        ref = self._resolve(ref)
        app = self._get_raw(ref, "read")
        status = self._status(app, ref)
        if revision is not None and not plans.same_revision(revision, status):
            raise UserError(
                f"Argo CD compares `{ref.name}` only with its target revision "
                f"`{status.target_revision or 'HEAD'}`, not `{revision}`.",
                hint="Leave out the revision to see what a sync would change.",
            )
        with self._errors(ref, "diff"):
            payload = self.client.managed_resources(
                ref.name, project=ref.project, app_namespace=self._ns(ref)
            )
        changes = [c for item in payload.get("items") or [] if (c := convert.resource_change(item))]
        return AppDiff(
            ref=status.ref,
            changes=tuple(sorted(changes, key=lambda c: c.key)),
            from_revision=status.revision,
            to_revision=status.source_revision,
        )

    def automated_policy(self, ref: AppRef) -> dict[str, object] | None:
        """The app's automated-sync settings when auto-sync is on, for the caller to keep and
        hand back to `set_auto_sync(ref, True, policy)` later; None when it is off."""
        return convert.automated_policy(self._get_raw(self._resolve(ref), "read"))

    def set_auto_sync(self, ref: AppRef, enabled: bool, policy: dict[str, object] | None = None) -> None:
        """Turn automated sync off (remove the block) or on (`policy`'s prune/selfHeal, else off)."""
        ref = self._resolve(ref)
        with self._errors(ref, "change the sync policy of"):
            self.client.patch_app(
                ref.name,
                plans.auto_sync_patch(enabled, policy),
                project=ref.project,
                app_namespace=self._ns(ref),
            )
