"""Refuse replayed and redelivered Slack requests: each one runs once.

Two kinds of key share the `seen_requests` table, so a restart re-opens neither window:

- request **signatures** (HTTP mode): Slack signs `v0:<timestamp>:<body>`, so an identical signature
  means an identical request; kept while its timestamp is inside the 5-minute window;
- **delivery ids**: a Socket Mode `envelope_id`, a payload's `trigger_id` or `event_id`, the hash of
  an HTTP body. Slack redelivers with a new signature (HTTP) or none at all (Socket Mode), up to
  minutes later, so these are kept for `delivery_window`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from services.store.db import Database, Tx

_INSERT = "INSERT INTO seen_requests (signature, seen_at, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"


class ReplayGuard:
    def __init__(
        self,
        db: Database,
        *,
        window: float = 300.0,
        delivery_window: float = 3600.0,
        clock: Callable[[], float] = time.time,
        purge_every: int = 500,
    ) -> None:
        if window <= 0 or delivery_window <= 0:
            raise ValueError("window must be longer than zero")
        self._db = db
        self._window = window
        self._delivery_window = delivery_window
        self._clock = clock
        self._purge_every = max(purge_every, 1)
        self._inserts = 0  # guarded by the database lock

    def first_seen(self, signature: str, timestamp: float) -> bool:
        """True the first time `signature` is seen; False for a replay or a stale timestamp.

        A timestamp outside the window (either side) is refused too: its signature may
        already have been purged, so it could not be told apart from a replay.
        """
        replayed, _ = self.check(signature, timestamp, ())
        return not replayed

    def check(
        self, signature: str | None, timestamp: float | None, keys: Sequence[str]
    ) -> tuple[bool, list[str]]:
        """Both checks in one transaction (one per request on the ack path): whether the signed
        request is a replay or stale (`first_seen`), and which delivery keys were seen before
        (`already_seen`; not recorded for a replay)."""
        now = self._clock()
        if signature is not None and (timestamp is None or abs(now - timestamp) > self._window):
            return True, []
        with self._db.transaction() as db:
            if signature is not None and timestamp is not None:
                # Keep the row until the request's own timestamp leaves the window: with a clock
                # skewed ahead, purging by arrival time alone would forget it too early.
                keep_from = max(now, timestamp)
                if db.execute(_INSERT, [signature, keep_from, keep_from + self._window]).rowcount != 1:
                    return True, []
                self._inserted(db, now)
            return False, self._record(db, keys, now)

    def already_seen(self, keys: Sequence[str]) -> list[str]:
        """Remember every delivery key; return those seen before (empty: a first delivery).

        All keys are recorded in one transaction, also when some were seen: a redelivery that
        carries a new key (a retried body with a known trigger id) is then known by both.
        """
        return self.check(None, None, keys)[1]

    def _record(self, db: Tx, keys: Sequence[str], now: float) -> list[str]:
        seen = []
        for key in keys:
            if db.execute(_INSERT, [key, now, now + self._delivery_window]).rowcount == 1:
                self._inserted(db, now)
            else:
                seen.append(key)
        return seen

    def purge(self) -> int:
        """Forget keys whose window has passed; returns how many rows went."""
        with self._db.transaction() as db:
            return self._purge(db, self._clock())

    def _inserted(self, db: Tx, now: float) -> None:
        self._inserts += 1
        if self._inserts % self._purge_every == 0:
            self._purge(db, now)

    def _purge(self, db: Tx, now: float) -> int:
        cursor = db.execute("DELETE FROM seen_requests WHERE expires_at < ?", [now])
        return int(cursor.rowcount)
