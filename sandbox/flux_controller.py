"""The fake Flux controllers' thread: watches for requests, runs reconciles that take `reconcile_seconds`.

An object is reconciled when its (metadata.generation, reconcile.fluxcd.io/requestedAt) pair differs from
the pair its last run answered (GenerationChangedPredicate ∪ ReconcileRequestedPredicate) and it is not
suspended. A run first writes Reconciling=True/Progressing and Ready=Unknown; after `reconcile_seconds`
the final status write carries `lastHandledReconcileAt`, so the §2 wait of docs/flux-api.md is observable.
Git runs outside the store lock.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from sandbox.flux_helm import HelmReleaseReconciler
from sandbox.flux_kustomize import KustomizationReconciler
from sandbox.flux_sources import GitRepositoryReconciler, StaticSourceReconciler
from sandbox.flux_state import Outcome, Run, World, generation_of, new_run, request_token, suspended
from sandbox.k8s_store import Entry, Key


class Reconciler(Protocol):
    def progress(self, world: World, entry: Entry) -> dict[str, Any]: ...
    def prepare(self, world: World, entry: Entry) -> Any: ...
    def fetch(self, prepared: Any) -> Any: ...
    def finish(self, world: World, entry: Entry, run: Run, fetched: Any) -> Outcome: ...


def _static(entry: Entry) -> bool:
    """A HelmRepository of `type: oci` has no artifact and is never reconciled."""
    return entry.rtype.kind == "HelmRepository" and (entry.obj.get("spec") or {}).get("type") == "oci"


class Controller:
    def __init__(self, world: World, *, tick: float) -> None:
        self.world = world
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finishing: set[Key] = set()  # runs some thread is completing (the loop, or reconcile_now)
        static = StaticSourceReconciler()
        self._reconcilers: dict[str, Reconciler] = {
            "GitRepository": GitRepositoryReconciler(),
            "HelmRepository": static,
            "OCIRepository": static,
            "HelmChart": static,
            "Kustomization": KustomizationReconciler(),
            "HelmRelease": HelmReleaseReconciler(),
        }

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fake-flux-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            self.step()

    def step(self) -> None:
        """One pass: start runs for changed objects, finish the runs that are due."""
        world = self.world
        with world.store.lock:
            dirty, world.store.dirty = world.store.dirty, set()
            for key in sorted(dirty):
                self._consider(key)
            now = world.monotonic()
            due = []
            for key in sorted(world.running - self._finishing):
                run = world.memo(key).running
                if run is None or run.started + world.reconcile_seconds <= now:
                    due.append(key)
                    self._finishing.add(key)
        for key in due:
            self._finish(key)

    def reconcile_now(self, key: Key) -> None:
        """A whole run at once, without the progress write (creation, or a source's interval)."""
        world = self.world
        with world.store.lock:
            entry = world.store.get(*key)
            if entry is None or world.memo(key).running is not None:
                return
            world.memo(key).running = new_run(entry.obj, world.monotonic())
            world.running.add(key)
            self._finishing.add(key)
        self._finish(key)

    def _consider(self, key: Key) -> None:
        world = self.world
        entry = world.store.get(*key)
        if entry is None or entry.rtype.kind not in self._reconcilers:
            return
        memo = world.memo(key)
        if memo.running is not None or suspended(entry.obj) or _static(entry):
            return
        if memo.handled == (generation_of(entry.obj), request_token(entry.obj)):
            return
        memo.running = new_run(entry.obj, world.monotonic())
        world.running.add(key)
        world.store.set_status(entry, self._reconcilers[entry.rtype.kind].progress(world, entry))

    def _finish(self, key: Key) -> None:
        world = self.world
        with world.store.lock:
            entry = world.store.get(*key)
            run = world.memo(key).running
            if entry is None or run is None:
                self._done(key)
                return
            reconciler = self._reconcilers[entry.rtype.kind]
            prepared = reconciler.prepare(world, entry)
        fetched = reconciler.fetch(prepared)  # Git I/O: the API server keeps answering meanwhile
        with world.store.lock:
            entry = world.store.get(*key)
            if entry is None:
                self._done(key)
                return
            world.commit(entry, reconciler.finish(world, entry, run, fetched))
            world.memo(key).handled = (run.generation, run.token)
            self._done(key)
            self._consider(key)  # a request that arrived while this run was in flight

    def _done(self, key: Key) -> None:
        self._finishing.discard(key)
        memo = self.world.memos.get(key)
        if memo is not None:
            memo.running = None
        self.world.running.discard(key)
