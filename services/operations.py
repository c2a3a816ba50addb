"""What the Slack commands do, independent of Slack: fan-out status, sync and watch, batch sync,
rollback with the auto-sync hold. Handlers render; this module acts and returns records."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta

from services.apps import AppResolver
from services.backend import AppRef, AppRow, AppStatus, ProgressCallback, RollbackPlan, SyncRequest
from services.errors import BackendUnavailable, GitOpsBotError, UserError
from services.holds import Hold, HoldStore
from services.watcher import Reservation, Watcher

log = logging.getLogger(__name__)

HOLD_AUTOSYNC = "argocd-autosync-off"
HOLD_SUSPEND = "flux-suspended"


@dataclass(frozen=True)
class Overview:
    apps: tuple[AppRow, ...]  # lean rows; `status(app.ref)` reads one app in full
    unreachable: tuple[str, ...]  # "Argo CD main: connection refused"


class GitOpsService:
    def __init__(
        self,
        resolver: AppResolver,
        holds: HoldStore,
        *,
        sync_timeout: timedelta,
        batch_concurrency: int,
        watcher: Watcher | None = None,
        on_coalesced: Callable[[AppRef], None] | None = None,
    ) -> None:
        self.resolver = resolver
        self.holds = holds
        self.watcher = watcher or Watcher()
        self._reads: dict[AppRef, Future[AppStatus]] = {}
        self._on_coalesced = on_coalesced
        self.sync_timeout = sync_timeout.total_seconds()
        self.batch_concurrency = batch_concurrency
        self._lock = threading.Lock()
        self._versions: dict[str, str] = {}
        # Told of every sync / rollback the bot starts (the deployment feed links those deploys to
        # the request's message instead of announcing them again); never allowed to fail a start.
        self.on_started: Callable[[AppRef, str | None], None] | None = None

    def versions(self) -> dict[str, str]:
        """Each backend's server version (fetched once, then cached by the backend)."""
        found: dict[str, str] = {}
        for backend in self.resolver.backends:
            key = f"{backend.kind}:{backend.instance}"
            try:
                found[key] = backend.version()
            except GitOpsBotError as exc:
                found[key] = f"unreachable ({exc})"[:200]
        with self._lock:
            self._versions = dict(found)
        return found

    def known_versions(self) -> dict[str, str]:
        """What `versions` last found, without calling anything (for /readyz)."""
        with self._lock:
            return dict(self._versions)

    def resolve(self, app: str, env: str | None = None) -> AppRef:
        return self.resolver.resolve(app, env)

    def status(self, ref: AppRef, *, refresh: bool = False) -> AppStatus:
        return self.resolver.backend(ref).get(ref, refresh=refresh)

    def status_later(self, ref: AppRef) -> Future[AppStatus]:
        """The app's status, read off the caller's thread; identical reads in flight share one
        request (a slow Argo CD asked about one app by fifty people is asked once)."""
        with self._lock:
            shared = self._reads.get(ref)
            if shared is not None:
                if self._on_coalesced is not None:
                    self._on_coalesced(ref)
                return shared
            backend = self.resolver.backend(ref)
            future = self.watcher.submit(lambda: backend.get(ref))
            self._reads[ref] = future
        future.add_done_callback(lambda _: self._read_done(ref, future))
        return future

    def _read_done(self, ref: AppRef, future: Future[AppStatus]) -> None:
        with self._lock:
            if self._reads.get(ref) is future:
                del self._reads[ref]

    def overview(
        self, *, selector: str | None = None, project: str | None = None, annotations: bool = False
    ) -> Overview:
        """One list request per backend instance; an unreachable instance is named, not fatal."""
        backends = self.resolver.backends
        if not backends:
            raise UserError("No Argo CD instance or Flux cluster is configured.")
        apps: list[AppRow] = []
        unreachable: list[str] = []
        with ThreadPoolExecutor(max_workers=min(8, len(backends))) as pool:
            futures = {
                pool.submit(b.list_rows, selector=selector, project=project, annotations=annotations): b
                for b in backends
            }
            for future, backend in futures.items():
                try:
                    apps.extend(future.result())
                except BackendUnavailable as exc:
                    unreachable.append(f"{backend.instance}: {exc.message}")
        if not apps and unreachable and len(unreachable) == len(backends):
            raise BackendUnavailable(", ".join(b.instance for b in backends), "; ".join(unreachable))
        apps.sort(key=lambda a: a.ref.display)
        return Overview(tuple(apps), tuple(unreachable))

    def start_sync(self, ref: AppRef, request: SyncRequest) -> AppStatus:
        """Ask for the sync; returns at once. Refusals (in progress, denied) raise before anything runs."""
        started = self.resolver.backend(ref).sync(ref, request)
        if not request.dry_run:
            self._started(started.ref, request.initiated_by)
        return started

    def _started(self, ref: AppRef, initiated_by: str | None) -> None:
        if self.on_started is None:
            return
        try:
            self.on_started(ref, initiated_by)
        except Exception:  # decoration of the feed: the operation is already under way
            log.warning("could not note a deploy the bot started", exc_info=True)

    def follow(
        self,
        ref: AppRef,
        reservation: Reservation,
        *,
        on_progress: Callable[[AppStatus], None],
        on_done: Callable[[AppStatus], None],
        on_error: Callable[[BaseException], None],
    ) -> int:
        """Hand an operation already started to the watcher (no thread waits for it)."""
        backend = self.resolver.backend(ref)
        label = "Argo CD" if backend.kind == "argocd" else "Flux"
        return self.watcher.watch(
            reservation, ref, lambda: backend.poll(ref), what=f"{label} {backend.instance}",
            interval=backend.poll_interval, timeout=self.sync_timeout,
            on_progress=on_progress, on_done=on_done, on_error=on_error,
        )  # fmt: skip

    def wait(self, ref: AppRef, *, on_progress: ProgressCallback | None = None) -> AppStatus:
        return self.resolver.backend(ref).wait(ref, timeout=self.sync_timeout, on_progress=on_progress)

    def sync(
        self, ref: AppRef, request: SyncRequest, *, on_progress: ProgressCallback | None = None
    ) -> AppStatus:
        started = self.start_sync(ref, request)
        if on_progress:
            on_progress(started)
        return self.wait(ref, on_progress=on_progress)

    def plan_rollback(self, ref: AppRef, to: str | None) -> RollbackPlan:
        return self.resolver.backend(ref).plan_rollback(ref, to)

    def start_rollback(self, plan: RollbackPlan, *, initiated_by: str) -> AppStatus:
        started = self.resolver.backend(plan.ref).rollback(plan, initiated_by=initiated_by)
        self._started(started.ref, initiated_by)
        return started

    def disable_autosync_for_rollback(self, plan: RollbackPlan, *, user: str, channel: str) -> Hold:
        """Turn auto-sync off and record a hold (with the policy to restore) before rolling back."""
        backend = self.resolver.backend(plan.ref)
        previous = backend.automated_policy(plan.ref)
        backend.set_auto_sync(plan.ref, False)
        return self.holds.open(
            HOLD_AUTOSYNC,
            target=plan.ref.display,
            ref=asdict(plan.ref),
            payload={"automated": previous or {}},
            channel=channel,
            created_by=user,
        )

    def suspend_after_rollback(self, ref: AppRef, *, user: str, channel: str) -> Hold:
        """Flux `rollback --suspend`: keep automation from rolling it forward; remind until resumed."""
        self.resolver.backend(ref).suspend(ref)
        return self.holds.open(
            HOLD_SUSPEND, target=ref.display, ref=asdict(ref), payload={}, channel=channel, created_by=user
        )

    def release_hold(self, hold: Hold, *, user: str) -> bool:
        """Undo what the hold keeps (auto-sync back on / resume); False when someone already did."""
        current = self.holds.get(hold.id)
        if current is None or current.released_at is not None:
            return False
        ref = AppRef(**hold.ref)
        backend = self.resolver.backend(ref)
        # Undo first: if the backend refuses, the hold stays open and the reminders go on.
        if hold.kind == HOLD_SUSPEND:
            backend.resume(ref)
        else:
            backend.set_auto_sync(ref, True, policy=hold.payload.get("automated") or None)
        return self.holds.release(hold.id, by=user)

    def forget_suspend_holds(self, ref: AppRef, *, user: str) -> int:
        """A resume by command ends the suspend holds on that object (no more reminders)."""
        released = 0
        for hold in self.holds.open_holds(HOLD_SUSPEND):
            if hold.target == ref.display and self.holds.release(hold.id, by=user):
                released += 1
        return released
