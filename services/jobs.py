"""A bounded background pool for the slow half of every request.

Handlers ack Slack at once and hand the rest here. The queue is bounded so a burst of
commands is refused politely ("busy, try again") instead of piling up unbounded threads.

The workers are daemon threads of our own rather than a `ThreadPoolExecutor`: the interpreter
joins executor threads at exit, so one slow job would hold a stopping process past
`server.shutdown_timeout` (and past Kubernetes' grace period, into SIGKILL). Here `close`
waits at most its timeout; what is still unfinished then is listed by `unfinished()`, so the
caller can record it, and is abandoned with the process.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.correlation import current_correlation_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobInfo:
    """An accepted job that has not finished: running, or still waiting for a worker."""

    name: str
    correlation_id: str
    accepted: float  # time.monotonic() when submitted
    started: float | None  # time.monotonic() when a worker took it; None while queued


@dataclass
class _Job:
    id: int
    name: str
    fn: Callable[[], None]
    ctx: contextvars.Context
    correlation_id: str
    accepted: float
    started: float | None = None


class JobRunner:
    def __init__(
        self, *, workers: int, queue_limit: int, on_wait: Callable[[float], None] | None = None
    ) -> None:
        """`on_wait(seconds)`: how long each job queued before a worker took it (a metric)."""
        self._workers = workers
        self._on_wait = on_wait
        # Running + queued jobs; a semaphore keeps the check-and-submit atomic.
        self._capacity = workers + queue_limit
        self._slots = threading.BoundedSemaphore(self._capacity)
        self._closed = threading.Event()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._jobs: dict[int, _Job] = {}  # accepted and not finished, in submission order
        self._ids = itertools.count()
        self._abandoned = False  # set when close() timed out: queued jobs must not start any more
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # notified whenever a job finishes

    def submit(self, fn: Callable[[], None], *, name: str) -> bool:
        """Run `fn` in the background with the caller's context; False when full or closed."""
        if self._closed.is_set() or not self._slots.acquire(blocking=False):
            return False
        # The copied context carries the correlation id into the worker's logs.
        ctx = contextvars.copy_context()
        job = _Job(next(self._ids), name, fn, ctx, current_correlation_id(), time.monotonic())
        with self._lock:
            if self._closed.is_set():  # closed between the check and here
                self._slots.release()
                return False
            self._jobs[job.id] = job
            if len(self._threads) < min(self._workers, len(self._jobs)):
                thread = threading.Thread(
                    target=self._work, name=f"gitops-job_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._queue.put(job)
        return True

    def has_capacity(self) -> bool:
        """A hint for the ack path: False when a submit would be refused right now."""
        with self._lock:
            return not self._closed.is_set() and len(self._jobs) < self._capacity

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._jobs)

    def running(self) -> list[str]:
        """Names of the jobs accepted and not finished (running or queued), oldest first."""
        return [job.name for job in self.unfinished()]

    def unfinished(self) -> list[JobInfo]:
        with self._lock:
            jobs = list(self._jobs.values())
        return [JobInfo(j.name, j.correlation_id, j.accepted, j.started) for j in jobs]

    def close(self, *, timeout: float) -> bool:
        """Stop taking jobs and wait up to `timeout` s; True when everything finished.

        Jobs already queued still start while the wait lasts. When it runs out, queued jobs are
        dropped unstarted and running ones are left to the process's exit; both stay listed by
        `unfinished()`.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            self._closed.set()
            for _ in self._threads:
                self._queue.put(None)  # after every queued job: each worker stops once they ran
            while self._jobs:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._abandoned = True
                    return False
                self._changed.wait(left)
            return True

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            with self._lock:
                if self._abandoned:
                    continue  # past the shutdown deadline: never start new work
                job.started = time.monotonic()
                waited = job.started - job.accepted
            try:
                self._report_wait(waited)
                job.ctx.run(self._guarded, job.fn, job.name)
            finally:
                with self._lock:
                    del self._jobs[job.id]
                    self._changed.notify_all()
                self._slots.release()

    def _report_wait(self, seconds: float) -> None:
        if self._on_wait is None:
            return
        try:
            self._on_wait(seconds)
        except Exception:  # a metric must never stop the job it measures
            log.exception("queue wait callback failed")

    @staticmethod
    def _guarded(fn: Callable[[], None], name: str) -> None:
        try:
            fn()
        except Exception:  # the job's own boundary should have caught it; never lose it silently
            log.exception("background job failed", extra={"job": name})
