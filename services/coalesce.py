"""Identical reads share one request: a `GitOpsBackend` wrapper that coalesces them.

When 200 people ask about one app, or 50 watches of one app poll at the same moment, the backend
should see one request, not 200. `CoalescingBackend` wraps any backend and:

- runs `get` and `poll` single-flight: a call identical to one in flight (same method, ref and
  refresh) waits for that one and gets its result or its exception. Nothing is kept afterwards,
  so a status asked right after is fresh;
- keeps status lists (`list_rows`: status --all, --selector; `list_apps`) for `ttl` seconds, also
  single-flight (drift scans' lists, `deployed=True`, are single-flight only; `iter_deployed`,
  the scan's own way in, passes straight through);
- forgets both after every write the bot makes through it (sync, rollback, suspend, resume,
  set_auto_sync, terminate) and when an operation it polls ends: a read that started before
  such a change neither serves later callers nor fills the cache, so the bot never shows its
  own change undone. Changes made elsewhere (the Argo CD UI, auto-sync) show within `ttl`.

Everything else is plain delegation: `find`/`names` already share one cached index inside each
backend, and `wait` polls the inner backend (the watcher polls through `poll`, here).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from services.backend import (
    AppDiff,
    AppRef,
    AppRow,
    AppStatus,
    BackendKind,
    GitOpsBackend,
    HistoryEntry,
    ProgressCallback,
    RollbackPlan,
    StreamsDeployed,
    SyncRequest,
)

T = TypeVar("T")

# Distinct list queries kept at once (selectors are typed by people, so the key space is open);
# entries also expire after `ttl`, so this only bounds a burst of different selectors.
MAX_CACHED_LISTS = 256

OnCoalesced = Callable[[str], None]  # called with the operation ("get", "poll", "list_apps")


@dataclass(eq=False)
class _Flight:
    generation: int  # the write generation it started in: later callers join only the same one
    future: Future[Any] = field(default_factory=Future)


class CoalescingBackend:
    """A `GitOpsBackend` whose identical concurrent reads share one request (see module doc)."""

    def __init__(
        self,
        inner: GitOpsBackend,
        *,
        ttl: float,
        on_coalesced: OnCoalesced | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.kind: BackendKind = inner.kind
        self.instance: str = inner.instance
        self._ttl = max(0.0, ttl)
        self._on_coalesced = on_coalesced
        self._clock = clock
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every write; see `_changed`
        self._flights: dict[Hashable, _Flight] = {}
        # key -> (expires, apps): AppStatus from `list_apps`, AppRow from `list_rows`
        self._lists: dict[Hashable, tuple[float, tuple[AppStatus | AppRow, ...]]] = {}

    def __repr__(self) -> str:
        return f"CoalescingBackend({self.inner!r})"

    @property
    def poll_interval(self) -> float:
        return self.inner.poll_interval

    @poll_interval.setter
    def poll_interval(self, value: float) -> None:
        self.inner.poll_interval = value  # one value, so the watcher and `wait` agree

    @property
    def in_flight(self) -> int:
        """Distinct reads running now (each one request, however many callers wait for it)."""
        with self._lock:
            return len(self._flights)

    # -- the coalescing core -----------------------------------------------------------------

    def _shared(self, operation: str, key: Hashable, call: Callable[[], T], *, cache: bool = False) -> T:
        """`call()`, or the result of the identical call in flight (or cached, when `cache`)."""
        flight, joined = self._claim(key, cache)
        if joined:
            if self._on_coalesced is not None:
                self._on_coalesced(operation)
            return cast(T, flight.future.result())
        try:
            value = call()
        except BaseException as exc:  # every waiter must wake, whatever went wrong
            self._land(key, flight, None)
            flight.future.set_exception(exc)
            raise
        self._land(key, flight, value if cache else None)
        flight.future.set_result(value)
        return value

    def _claim(self, key: Hashable, cache: bool) -> tuple[_Flight, bool]:
        """The flight to wait for (True: cached, or an identical call in flight) or to run (False)."""
        with self._lock:
            entry = self._lists.get(key) if cache else None
            if entry is not None and entry[0] > self._clock():
                done = _Flight(self._generation)
                done.future.set_result(entry[1])
                return done, True
            flight = self._flights.get(key)
            # Join only a call started since the last change: one from before may not show it.
            if flight is not None and flight.generation == self._generation:
                return flight, True
            flight = self._flights[key] = _Flight(self._generation)
            return flight, False

    def _land(self, key: Hashable, flight: _Flight, apps: Any) -> None:
        """The call ended: drop its flight (a newer one may have replaced it) and keep a list
        result unless a write happened meanwhile (it may predate the write)."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
            if apps is None or self._ttl <= 0 or flight.generation != self._generation:
                return
            now = self._clock()
            for old in [k for k, (expires, _) in self._lists.items() if expires <= now]:
                del self._lists[old]
            self._lists[key] = (now + self._ttl, tuple(apps))
            while len(self._lists) > MAX_CACHED_LISTS:
                del self._lists[next(iter(self._lists))]  # the oldest: insertion order is age

    def _changed(self) -> None:
        """Something changed on this backend: forget cached lists and stop sharing older reads."""
        with self._lock:
            self._generation += 1
            self._lists.clear()

    def _write(self, call: Callable[[], T]) -> T:
        try:
            return call()
        finally:  # also on failure: a timed-out write may still have been applied
            self._changed()

    # -- reads -------------------------------------------------------------------------------

    def list_apps(
        self,
        *,
        selector: str | None = None,
        project: str | None = None,
        deployed: bool = False,
        annotations: bool = False,
    ) -> list[AppStatus]:
        def call() -> list[AppStatus]:
            return self.inner.list_apps(
                selector=selector, project=project, deployed=deployed, annotations=annotations
            )

        # Drift scans (`deployed`) always read afresh: they run less often than any sensible TTL,
        # so a cache could only ever hand a scan a list older than the last one.
        key = ("list_apps", selector, project, deployed, annotations)
        apps = self._shared("list_apps", key, call, cache=not deployed)
        return list(apps)  # each caller its own list: none can change what the others see

    def iter_deployed(self) -> Iterator[AppStatus]:
        """A drift scan's statuses one at a time, straight from the inner backend: a stream
        cannot be shared, and scans run one at a time (the scheduler's max_instances=1)."""
        if isinstance(self.inner, StreamsDeployed):
            return self.inner.iter_deployed()
        return iter(self.list_apps(deployed=True))

    def list_rows(
        self, *, selector: str | None = None, project: str | None = None, annotations: bool = False
    ) -> list[AppRow]:
        def call() -> list[AppRow]:
            return self.inner.list_rows(selector=selector, project=project, annotations=annotations)

        # Counted as "list_apps" on the metrics: the same list request, read leaner.
        key = ("list_rows", selector, project, annotations)
        return list(self._shared("list_apps", key, call, cache=True))

    def get(self, ref: AppRef, *, refresh: bool = False) -> AppStatus:
        return self._shared("get", ("get", ref, refresh), lambda: self.inner.get(ref, refresh=refresh))

    def poll(self, ref: AppRef) -> AppStatus:
        status = self._shared("poll", ("poll", ref, False), lambda: self.inner.poll(ref))
        if not status.operation_in_progress:
            self._changed()  # the operation ended: lists taken while it ran are out of date
        return status

    def wait(self, ref: AppRef, *, timeout: float, on_progress: ProgressCallback | None = None) -> AppStatus:
        status = self.inner.wait(ref, timeout=timeout, on_progress=on_progress)
        self._changed()
        return status

    def find(self, name: str, *, namespace: str | None = None) -> list[AppRef]:
        return self.inner.find(name, namespace=namespace)

    def names(self) -> list[str]:
        return self.inner.names()

    def history(self, ref: AppRef) -> list[HistoryEntry]:
        return self.inner.history(ref)

    def plan_rollback(self, ref: AppRef, to: str | None) -> RollbackPlan:
        return self.inner.plan_rollback(ref, to)

    def diff(self, ref: AppRef, *, revision: str | None = None) -> AppDiff:
        return self.inner.diff(ref, revision=revision)

    def automated_policy(self, ref: AppRef) -> dict[str, object] | None:
        return self.inner.automated_policy(ref)

    def version(self) -> str:
        return self.inner.version()

    # -- writes: each one invalidates -------------------------------------------------------

    def sync(self, ref: AppRef, request: SyncRequest) -> AppStatus:
        return self._write(lambda: self.inner.sync(ref, request))

    def terminate(self, ref: AppRef) -> None:
        self._write(lambda: self.inner.terminate(ref))

    def rollback(self, plan: RollbackPlan, *, initiated_by: str | None = None) -> AppStatus:
        return self._write(lambda: self.inner.rollback(plan, initiated_by=initiated_by))

    def set_auto_sync(self, ref: AppRef, enabled: bool, policy: dict[str, object] | None = None) -> None:
        self._write(lambda: self.inner.set_auto_sync(ref, enabled, policy))

    def suspend(self, ref: AppRef) -> AppStatus:
        return self._write(lambda: self.inner.suspend(ref))

    def resume(self, ref: AppRef) -> AppStatus:
        return self._write(lambda: self.inner.resume(ref))


def coalescing(
    backend: GitOpsBackend, *, ttl: float, on_coalesced: OnCoalesced | None = None
) -> CoalescingBackend:
    """`backend` wrapped once: a backend that already coalesces is returned as it is."""
    if isinstance(backend, CoalescingBackend):
        return backend
    return CoalescingBackend(backend, ttl=ttl, on_coalesced=on_coalesced)


__all__ = ["MAX_CACHED_LISTS", "CoalescingBackend", "OnCoalesced", "coalescing"]
