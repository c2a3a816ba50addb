"""A bounded background pool for the slow half of every request.

Handlers ack Slack at once and hand the rest here. The queue is bounded so a burst of
commands is refused politely ("busy, try again") instead of piling up unbounded threads.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(self, *, workers: int, queue_limit: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gitops-job")
        # Running + queued jobs; a semaphore keeps the check-and-submit atomic.
        self._capacity = workers + queue_limit
        self._slots = threading.BoundedSemaphore(self._capacity)
        self._closed = threading.Event()
        self._active = 0
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], None], *, name: str) -> bool:
        """Run `fn` in the background with the caller's context; False when full or closed."""
        if self._closed.is_set() or not self._slots.acquire(blocking=False):
            return False
        ctx = contextvars.copy_context()  # carries the correlation id into the worker's logs
        with self._lock:
            self._active += 1
        try:
            future: Future[None] = self._pool.submit(ctx.run, self._guarded, fn, name)
        except RuntimeError:  # pool shut down between the check and the submit
            self._release()
            return False
        future.add_done_callback(lambda _f: self._release())
        return True

    def has_capacity(self) -> bool:
        """A hint for the ack path: False when a submit would be refused right now."""
        with self._lock:
            return not self._closed.is_set() and self._active < self._capacity

    @property
    def active(self) -> int:
        with self._lock:
            return self._active

    def close(self, *, timeout: float) -> bool:
        """Stop taking jobs and wait up to `timeout` s; True when everything finished."""
        self._closed.set()
        done = threading.Event()

        def wait() -> None:
            self._pool.shutdown(wait=True)
            done.set()

        threading.Thread(target=wait, name="gitops-job-shutdown", daemon=True).start()
        return done.wait(timeout)

    def _release(self) -> None:
        with self._lock:
            self._active -= 1
        self._slots.release()

    @staticmethod
    def _guarded(fn: Callable[[], None], name: str) -> None:
        try:
            fn()
        except Exception:  # the job's own boundary should have caught it; never lose it silently
            log.exception("background job failed", extra={"job": name})
