"""One place that follows every running operation, so no worker thread waits on a deploy.

A sync, rollback, resume or promotion deploy is started by a short job; what follows — polling
until the operation ends, often minutes later — is a `Watch` here. One scheduler thread keeps the
watches in a heap by their next poll time and hands each due poll (one backend request) to a small
pool; nothing is held between polls, so a hundred running syncs cost a hundred heap entries, not a
hundred parked threads. Each watch polls at its own cadence: soon after a change, backing off while
nothing moves or while the backend does not answer (an outage is ridden out until the operation's
deadline, and nothing is reported finished that did not finish).

Callbacks run on a poll thread: `on_progress(status)` when the operation moved, then exactly one
`on_done(status)` when it ended, or `on_error(exc)` when the deadline passed. A status is an
`AppStatus` unless the watch names how to read its own (`finished`, `progress_key`): a Tekton
PipelineRun is followed by the same loop. `stop()` (shutdown)
ends the watching without calling either: the caller reports those operations as still running.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from services.backend import AppRef, AppStatus
from services.errors import BackendUnavailable, GitOpsBotError, UserError

log = logging.getLogger(__name__)

Poll = Callable[[], Any]  # an AppStatus, or what the watch's `finished` / `progress_key` read
T = TypeVar("T")


class TooManyWatches(UserError):
    """`operations.max_watches` operations are being followed already."""


class WatchEnded(BackendUnavailable):
    """The operation outlived its deadline (`operations.sync_timeout`); it goes on without us."""


def _app_finished(status: AppStatus) -> bool:
    return not status.operation_in_progress


def _app_progress(status: AppStatus) -> object:
    op = status.operation
    return (op.phase, op.resources_done, op.message) if op else ("", 0, "")


@dataclass(eq=False)
class Watch:
    id: int
    ref: AppRef | None  # None: not an app's operation (a PipelineRun); `name` says what it is
    what: str  # "Argo CD main", "Flux prod": names the system in messages
    poll: Poll
    on_progress: Callable[[Any], None]
    on_done: Callable[[Any], None]
    on_error: Callable[[BaseException], None]
    deadline: float
    interval: float
    base: float
    finished: Callable[[Any], bool] = _app_finished
    progress_key: Callable[[Any], object] = _app_progress
    name: str = ""
    last: object = None

    @property
    def display(self) -> str:
        return self.ref.display if self.ref is not None else self.name


@dataclass(frozen=True)
class WatchOptions:
    max_watches: int = 500
    poll_threads: int = 4  # concurrent polls; each is one short request
    read_threads: int = 4  # reads someone is waiting for (a status): never queued behind the polls
    max_interval: float = 10.0  # the slowest cadence, for an operation that does not move
    backoff: float = 1.5
    # All watches together poll at most this often: a hundred running syncs are looked at every
    # few seconds each instead of every second, and the bot keeps its CPU for the people asking.
    polls_per_second: float = 20.0


class Watcher:
    def __init__(
        self,
        options: WatchOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_count: Callable[[int], None] | None = None,
    ) -> None:
        self.options = options or WatchOptions()
        self._clock = clock
        self._on_count = on_count  # the active-watches gauge
        self._lock = threading.Condition(threading.RLock())
        self._heap: list[tuple[float, int, Watch]] = []
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._watches: dict[int, Watch] = {}
        self._reserved = 0
        self._ids = itertools.count(1)
        self._pool = ThreadPoolExecutor(self.options.poll_threads, thread_name_prefix="watch-poll")
        self._reads = ThreadPoolExecutor(self.options.read_threads, thread_name_prefix="backend-read")
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._watches)

    def reserve(self) -> Reservation:
        """A slot for an operation about to start; TooManyWatches (nothing started) when none is
        free. Pass it to `watch`, or `release` it if the start failed."""
        with self._lock:
            if self._stopping:
                raise UserError("gitops-bot is shutting down; nothing was started. Try again in a minute.")
            if len(self._watches) + self._reserved >= self.options.max_watches:
                raise TooManyWatches(
                    f"The bot is already following {len(self._watches)} operations, its limit "
                    "(`operations.max_watches`); nothing was started. Try again when some have finished."
                )
            self._reserved += 1
        return Reservation(self)

    def watch(
        self,
        reservation: Reservation,
        ref: AppRef | None,
        poll: Poll,
        *,
        what: str,
        interval: float,
        timeout: float,
        on_progress: Callable[[Any], None],
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
        finished: Callable[[Any], bool] | None = None,
        progress_key: Callable[[Any], object] | None = None,
        name: str = "",
    ) -> int:
        """Follow an operation already started; the first poll comes after `interval`. Without
        `finished` / `progress_key` the poll returns an AppStatus (an app's operation)."""
        with self._lock:
            reservation.use()
            now = self._clock()
            watch = Watch(
                next(self._ids), ref, what, poll, on_progress, on_done, on_error,
                deadline=now + timeout, interval=interval, base=interval,
                finished=finished or _app_finished, progress_key=progress_key or _app_progress,
                name=name or (ref.display if ref is not None else what),
            )  # fmt: skip
            self._watches[watch.id] = watch
            heapq.heappush(self._heap, (now + self._paced(interval), watch.id, watch))
            self._ensure_thread()
            self._lock.notify()
            count = len(self._watches)
        self._count(count)
        return watch.id

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run one backend read off the caller's thread (a status is answered from the future's
        callback), on a pool of its own: a person waiting never queues behind a hundred polls."""
        return self._reads.submit(fn)

    def settle_reads(self, timeout: float) -> bool:
        """At shutdown: let the reads in flight finish and be answered (their callbacks run on the
        read threads), for at most `timeout`; True when all did. No read is taken after this."""
        closing = threading.Thread(target=self._reads.shutdown, kwargs={"wait": True}, daemon=True)
        closing.start()
        closing.join(timeout)
        return not closing.is_alive()

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run `fn` on a poll thread after `delay` seconds (held-back message updates use this)."""
        with self._lock:
            if self._stopping:
                return
            heapq.heappush(self._timers, (self._clock() + max(0.0, delay), next(self._ids), fn))
            self._ensure_thread()
            self._lock.notify()

    def stop(self) -> list[Watch]:
        """Stop following; returns the watches still open (their operations go on without us)."""
        with self._lock:
            self._stopping = True
            left = list(self._watches.values())
            self._watches.clear()
            self._heap.clear()
            self._timers.clear()
            self._lock.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)  # a poll in flight ends within its timeout
        self._reads.shutdown(wait=False, cancel_futures=True)
        self._count(0)
        return left

    # -- the scheduler thread ------------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="watcher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._stopping:
                    dues = [q[0][0] for q in (self._heap, self._timers) if q]
                    due = min(dues) if dues else None
                    now = self._clock()
                    if due is not None and due <= now:
                        break
                    self._lock.wait(None if due is None else due - now)
                if self._stopping:
                    return
                task: Callable[[], None]
                if self._timers and (not self._heap or self._timers[0][0] <= self._heap[0][0]):
                    task = partial(_quietly, heapq.heappop(self._timers)[2])
                else:
                    _, _, watch = heapq.heappop(self._heap)
                    if watch.id not in self._watches:
                        continue
                    task = partial(self._poll, watch)
            try:
                self._pool.submit(task)
            except RuntimeError:  # the pool shut down: the bot is stopping
                return

    # -- one poll, on a pool thread ------------------------------------------------------------------

    def _poll(self, watch: Watch) -> None:
        try:
            status = watch.poll()
        except GitOpsBotError as exc:
            # Not answering, or refusing for now: keep trying, more slowly, until the deadline.
            log.info("watch poll failed; retrying", extra={"app": watch.display, "error": str(exc)[:200]})
            self._again(watch, moved=False, error=exc)
            return
        except Exception as exc:  # a bug in a backend ends this watch, never the watcher
            log.exception("watch poll crashed", extra={"app": watch.display})
            self._finish(watch, partial(watch.on_error, exc))
            return
        if watch.finished(status):
            self._finish(watch, partial(watch.on_done, status))
            return
        key = watch.progress_key(status)
        moved = key != watch.last
        watch.last = key
        if moved:
            _quietly(partial(watch.on_progress, status))
        self._again(watch, moved=moved, error=None)

    def _again(self, watch: Watch, *, moved: bool, error: BaseException | None) -> None:
        now = self._clock()
        if now >= watch.deadline:
            last = f" (it last answered: {error})" if error else ""
            ended = WatchEnded(watch.what, f"stopped following after the sync timeout{last}; it goes on")
            self._finish(watch, partial(watch.on_error, ended))
            return
        if moved:
            watch.interval = watch.base
        else:
            watch.interval = min(self.options.max_interval, watch.interval * self.options.backoff)
        with self._lock:
            if watch.id in self._watches:
                due = min(now + self._paced(watch.interval), watch.deadline)
                heapq.heappush(self._heap, (due, watch.id, watch))
                self._lock.notify()

    def _paced(self, interval: float) -> float:
        """The interval, stretched so that all watches together stay within the poll budget."""
        with self._lock:
            count = len(self._watches)
        return max(interval, count / self.options.polls_per_second)

    def _finish(self, watch: Watch, callback: Callable[[], None]) -> None:
        with self._lock:
            if self._watches.pop(watch.id, None) is None:
                return  # stopped meanwhile: the shutdown reports it
            count = len(self._watches)
        self._count(count)
        _quietly(callback)

    def _count(self, count: int) -> None:
        if self._on_count is not None:
            self._on_count(count)

    def unreserve(self) -> None:
        with self._lock:
            self._reserved -= 1


class Reservation:
    """One watch slot, taken before an operation starts so a full watcher refuses up front."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher
        self._open = True

    def use(self) -> None:
        """The slot becomes a watch."""
        self.release()

    def release(self) -> None:
        """Give the slot back (also when the operation did not start)."""
        if self._open:
            self._open = False
            self._watcher.unreserve()


def _quietly(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # a callback's failure (Slack down) must not stop the watch loop
        log.exception("watch callback failed")
