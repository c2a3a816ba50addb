"""Per-user sliding-window rate limit for mutating commands.

One replica counts in memory (`RateLimiter`): a restart resetting the counters is harmless, and it
keeps the hot path off disk. Replicas sharing a database count there (`SharedRateLimiter`), so two
replicas do not allow twice the limit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta

from services.store.db import Database


class RateLimiter:
    def __init__(self, limit: int, window: timedelta, *, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if window <= timedelta(0):
            raise ValueError("window must be longer than zero")
        self._limit = limit
        self._window = window.total_seconds()
        self._clock = clock
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}
        self._last_sweep = clock()

    def hit(self, user_id: str) -> float | None:
        """Count one command for `user_id`: None when allowed, else seconds until a slot frees up.

        A refused hit is not counted, so someone retrying at the advertised time gets through.
        """
        with self._lock:
            now = self._clock()
            self._sweep(now)
            hits = self._hits.setdefault(user_id, deque())
            _drop_old(hits, now - self._window)
            if len(hits) < self._limit:
                hits.append(now)
                return None
            return max(hits[0] + self._window - now, 0.0)

    def _sweep(self, now: float) -> None:
        # At most once per window, forget users idle for a whole window: memory stays bounded by
        # the users seen in the last two windows, at an amortised O(1) cost per hit.
        if now - self._last_sweep < self._window:
            return
        self._last_sweep = now
        horizon = now - self._window
        for user in [u for u, hits in self._hits.items() if not hits or hits[-1] <= horizon]:
            del self._hits[user]


def _drop_old(hits: deque[float], horizon: float) -> None:
    while hits and hits[0] <= horizon:
        hits.popleft()


class SharedRateLimiter:
    """The same limit, counted in the database every replica shares (wall-clock seconds)."""

    def __init__(
        self, db: Database, limit: int, window: timedelta, *, clock: Callable[[], float] = time.time
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if window <= timedelta(0):
            raise ValueError("window must be longer than zero")
        self._db = db
        self._limit = limit
        self._window = window.total_seconds()
        self._clock = clock

    def hit(self, user_id: str) -> float | None:
        now = self._clock()
        with self._db.transaction() as tx:
            # Everyone's old hits go: the table stays the size of one window of commands.
            tx.execute("DELETE FROM rate_hits WHERE at <= ?", [now - self._window])
            rows = tx.execute(
                "SELECT at FROM rate_hits WHERE user_id = ? ORDER BY at LIMIT ?", [user_id, self._limit]
            ).fetchall()
            if len(rows) < self._limit:
                tx.execute("INSERT INTO rate_hits (user_id, at) VALUES (?, ?)", [user_id, now])
                return None
            return max(float(rows[0][0]) + self._window - now, 0.0)


Limiter = RateLimiter | SharedRateLimiter
