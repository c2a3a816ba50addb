"""Refuse replayed Slack requests: each request signature is accepted once.

Slack signs `v0:<timestamp>:<body>`, so an identical signature means an identical request.
Seen signatures are kept in the database, so a restart does not re-open the replay window.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlite_utils

from services.db import Database


class ReplayGuard:
    def __init__(
        self,
        db: Database,
        *,
        window: float = 300.0,
        clock: Callable[[], float] = time.time,
        purge_every: int = 500,
    ) -> None:
        if window <= 0:
            raise ValueError("window must be longer than zero")
        self._db = db
        self._window = window
        self._clock = clock
        self._purge_every = max(purge_every, 1)
        self._inserts = 0  # guarded by the database lock

    def first_seen(self, signature: str, timestamp: float) -> bool:
        """True the first time `signature` is seen; False for a replay or a stale timestamp.

        A timestamp outside the window (either side) is refused too: its signature may
        already have been purged, so it could not be told apart from a replay.
        """
        now = self._clock()
        if abs(now - timestamp) > self._window:
            return False
        # Keep the row until the request's own timestamp leaves the window: with a clock
        # skewed ahead, purging by arrival time alone would forget it too early.
        keep_from = max(now, timestamp)
        with self._db.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO seen_requests (signature, seen_at) VALUES (?, ?)",
                [signature, keep_from],
            )
            first = cursor.rowcount == 1
            if first:
                self._inserts += 1
                if self._inserts % self._purge_every == 0:
                    self._purge(db, now)
        return first

    def purge(self) -> int:
        """Forget signatures whose window has passed; returns how many rows went."""
        with self._db.transaction() as db:
            return self._purge(db, self._clock())

    def _purge(self, db: sqlite_utils.Database, now: float) -> int:
        cursor = db.execute("DELETE FROM seen_requests WHERE seen_at < ?", [now - self._window])
        return int(cursor.rowcount)
