"""`sync --selector`: many syncs, at most `operations.batch_concurrency` running at once, one card.

Nothing waits in a thread: each sync is started by a short job and followed by the watcher; when
one ends, the next is started (again on the job pool, so poll threads only poll). The card is
edited as each lands, and the request completes when the last one has.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence

from handlers.blocks import Reply
from handlers.conversation import Conversation
from handlers.deps import Deps
from handlers.follow import DEFERRED, complete
from handlers.gitops.sync import BatchItem
from services.backend import AppRef, AppStatus, SyncRequest
from services.errors import GitOpsBotError

Card = Callable[[Sequence[BatchItem]], Reply]


class BatchFollower:
    def __init__(
        self,
        deps: Deps,
        conversation: Conversation,
        items: dict[AppRef, BatchItem],
        refs: Sequence[AppRef],
        request: SyncRequest,
        card: Card,
    ) -> None:
        assert deps.ops is not None
        self._deps, self._ops = deps, deps.ops
        self._conversation = conversation
        self._items = items
        self._queue = deque(refs)
        self._request = request
        self._card = card
        self._lock = threading.Lock()
        self._running = 0
        self._done = False

    def run(self) -> Reply:
        """Start the first ones; the rest follow as those end, and the last one completes the
        request (possibly before this returns, when every app was skipped)."""
        self._conversation.announce(self._card(self._snapshot()))
        for _ in range(max(1, self._ops.batch_concurrency)):
            self._next()
        return DEFERRED

    def _snapshot(self) -> list[BatchItem]:
        with self._lock:
            return list(self._items.values())

    def _next(self) -> None:
        """Start the next sync, if any; when none is left and none runs, complete the request."""
        with self._lock:
            ref = self._queue.popleft() if self._queue else None
            if ref is None:
                last = self._running == 0 and not self._done
                self._done = self._done or last
            else:
                self._running += 1
                last = False
        if ref is None:
            if last:
                complete(self._conversation, lambda: self._card(self._snapshot()))
            return
        try:
            reservation = self._ops.watcher.reserve()
        except GitOpsBotError as exc:
            self._land(ref, "Skipped", str(exc))
            return
        try:
            self._ops.start_sync(ref, self._request)
        except GitOpsBotError as exc:
            reservation.release()
            self._land(ref, "Skipped", str(exc))
            return
        except Exception:  # one app's bug must not stop the batch
            reservation.release()
            self._land(ref, "Error", "internal error")
            return
        self._ops.follow(
            ref, reservation, on_progress=lambda _status: None,
            on_done=lambda status: self._land_status(ref, status),
            on_error=lambda exc: self._land(ref, "Unknown", str(exc)[:200]),
        )  # fmt: skip

    def _land_status(self, ref: AppRef, status: AppStatus) -> None:
        op = status.operation
        self._land(ref, op.phase if op else "Succeeded", op.message if op else "")

    def _land(self, ref: AppRef, phase: str, message: str) -> None:
        with self._lock:
            self._items[ref] = BatchItem(ref, phase, message)
            self._running -= 1
        self._conversation.update(self._card(self._snapshot()))
        # The next start is a request: on the job pool, not on the watcher's poll thread.
        if not self._deps.jobs.submit(self._next, name="sync-batch"):
            self._next()
