"""The watcher alone: many operations followed by one thread and a small pool, each to one end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from services.backend import AppRef, AppStatus, Operation
from services.errors import BackendUnavailable, UserError
from services.watcher import TooManyWatches, WatchEnded, Watcher, WatchOptions

REF = AppRef("argocd", "main", "web-prod")


def status(phase: str, done: int = 0) -> AppStatus:
    running = phase == "Running"
    return AppStatus(REF, operation=Operation(phase, resources_done=done), operation_in_progress=running)


class RunningOperation:
    """An operation that runs for `polls` looks, then ends Succeeded (what a backend's poll sees)."""

    def __init__(self, polls: int, *, failing: int = 0) -> None:
        self.left, self.failing, self.calls = polls, failing, 0
        self.lock = threading.Lock()

    def poll(self) -> AppStatus:
        with self.lock:
            self.calls += 1
            if self.failing > 0:
                self.failing -= 1
                raise BackendUnavailable("Argo CD main", "connection refused")
            self.left -= 1
            return status("Running", self.calls) if self.left > 0 else status("Succeeded", self.calls)


@pytest.fixture
def watcher() -> Iterator[Watcher]:
    w = Watcher(WatchOptions(max_watches=50, poll_threads=4, max_interval=0.05))
    yield w
    w.stop()


def follow(w: Watcher, poll: Callable[[], AppStatus], timeout: float = 5.0) -> dict[str, object]:
    seen: dict[str, object] = {"progress": 0}
    ended = threading.Event()

    def progress(_: AppStatus) -> None:
        seen["progress"] = int(str(seen["progress"])) + 1

    def done(s: AppStatus) -> None:
        seen["done"] = s
        ended.set()

    def error(exc: BaseException) -> None:
        seen["error"] = exc
        ended.set()

    w.watch(w.reserve(), REF, poll, what="Argo CD main", interval=0.01, timeout=timeout,
            on_progress=progress, on_done=done, on_error=error)  # fmt: skip
    seen["ended"] = ended
    return seen


def wait(seen: dict[str, object]) -> None:
    ended = seen["ended"]
    assert isinstance(ended, threading.Event)
    assert ended.wait(10)


def test_a_hundred_operations_end_once_each_with_a_few_threads(watcher: Watcher) -> None:
    watcher.options = WatchOptions(max_watches=200, poll_threads=4, max_interval=0.05, polls_per_second=5000)
    before = threading.active_count()
    ops = [RunningOperation(polls=5) for _ in range(100)]
    seen = [follow(watcher, op.poll) for op in ops]
    assert threading.active_count() - before <= 5  # the scheduler and four pollers, not 100 threads
    for s in seen:
        wait(s)
    assert all(isinstance(s["done"], AppStatus) and "error" not in s for s in seen)
    assert all(s["done"].operation.phase == "Succeeded" for s in seen)  # type: ignore[union-attr]
    assert all(op.calls == 5 for op in ops)  # polled until it ended, and no more
    assert watcher.active == 0


def test_an_outage_is_ridden_out_and_nothing_ends_early(watcher: Watcher) -> None:
    op = RunningOperation(polls=3, failing=6)
    seen = follow(watcher, op.poll)
    wait(seen)
    done = seen["done"]
    assert isinstance(done, AppStatus)
    assert done.operation is not None
    assert done.operation.phase == "Succeeded"
    assert op.calls == 9


def test_the_deadline_ends_the_watch_and_says_the_operation_goes_on(watcher: Watcher) -> None:
    seen = follow(watcher, lambda: status("Running"), timeout=0.3)
    wait(seen)
    error = seen["error"]
    assert isinstance(error, WatchEnded)
    assert "goes on" in str(error)
    assert "done" not in seen


def test_slots_are_bounded_and_a_failed_start_gives_its_slot_back() -> None:
    w = Watcher(WatchOptions(max_watches=2))
    try:
        first = w.reserve()
        w.reserve()
        with pytest.raises(TooManyWatches, match="max_watches"):
            w.reserve()
        first.release()  # the operation did not start
        w.reserve()
    finally:
        w.stop()


def test_stop_returns_what_is_still_followed_and_refuses_new_work(watcher: Watcher) -> None:
    seen = follow(watcher, lambda: status("Running"), timeout=30)
    time.sleep(0.05)
    left = watcher.stop()
    assert [w.ref for w in left] == [REF]
    assert "done" not in seen
    assert "error" not in seen  # the caller reports those as still running
    with pytest.raises(UserError, match="shutting down"):
        watcher.reserve()


def test_call_later_runs_on_the_pool_after_the_delay(watcher: Watcher) -> None:
    ran = threading.Event()
    asked = time.monotonic()
    watcher.call_later(0.1, ran.set)
    assert ran.wait(5)
    assert time.monotonic() - asked >= 0.09


def test_all_watches_together_stay_within_the_poll_budget() -> None:
    w = Watcher(WatchOptions(max_watches=100, poll_threads=4, max_interval=0.05, polls_per_second=50))
    try:
        ops = [RunningOperation(polls=1000) for _ in range(40)]
        for op in ops:
            follow(w, op.poll, timeout=30)
        time.sleep(2.0)
        polls = sum(op.calls for op in ops)
        assert polls <= 50 * 2.0 * 1.2  # ~50 a second in all, not 40 × 100 (each alone every 10 ms)
        assert polls >= 40  # and every operation was looked at
    finally:
        w.stop()
