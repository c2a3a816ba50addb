"""The notifiers' persistent outbox: one row per notifier and event, in the bot's database.

A row is `pending` until delivered (`delivered`) or given up on (`dead`, after the notifier's
`max_attempts` or a permanent refusal; an audit row says so, written in the same transaction).
Rows are claimed with a lease before each attempt, in one transaction, so two processes sharing
the file never both send the same row at once and a process killed mid-attempt leaves it to be
tried again when the lease runs out (at-least-once). Finished rows are pruned after a while.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.audit.chain import AuditEvent, event_from_row
from services.audit.trail import AuditStore
from services.extensions.events import BOT_USER, NOTIFY_ACTION
from services.store.db import Database

KEEP_DELIVERED = timedelta(days=7)
KEEP_DEAD = timedelta(days=30)


Queued = tuple[str, str, str, str, str]  # notifier, event id, event type, target, JSON body
_INSERT = (
    "INSERT INTO notification_outbox (notifier, event_id, event_type, target, body, state, "
    "attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT DO NOTHING"
)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    notifier: str
    event_id: str
    event_type: str
    target: str
    body: str
    state: str  # pending | delivered | dead
    attempts: int  # attempts started, this one included once claimed
    next_attempt_at: float  # unix seconds
    last_error: str | None


class Outbox:
    def __init__(
        self, database: Database, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._db = database
        self._clock = clock
        # Dead-letter rows go through an audit store of their own: no listener hears of them.
        self._audit = AuditStore(database)

    def enqueue(
        self, notifier: str, event_id: str, event_type: str, target: str, body: str, *, due: float
    ) -> bool:
        """Queue an event for a notifier; False when it is queued already (each goes in once)."""
        return bool(self.enqueue_many([(notifier, event_id, event_type, target, body)], due=due, upto=None))

    def enqueue_many(self, items: Collection[Queued], *, due: float, upto: int | None) -> int:
        """Queue many in one transaction, and move every notifier's cursor to audit row `upto`
        (None: leave it): how many rows were new."""
        with self._db.transaction() as db:
            new = 0
            for item in items:
                new += db.execute(_INSERT, [*item, due, self._now_text()]).rowcount
            if upto is not None:
                db.execute("UPDATE notification_cursor SET audit_id = ? WHERE audit_id < ?", [upto, upto])
            return new

    def cursors(self, notifiers: Collection[str]) -> dict[str, int]:
        """Each notifier's cursor; a notifier seen for the first time starts at the trail's end
        (it is sent what happens from now on, not the whole history)."""
        with self._db.transaction() as db:
            end = db.execute("SELECT coalesce(max(id), 0) FROM audit_events").fetchone()[0]
            db.executemany(
                "INSERT INTO notification_cursor (notifier, audit_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(n, end) for n in notifiers],
            )
            found = db.execute("SELECT notifier, audit_id FROM notification_cursor").fetchall()
        return {str(n): int(a) for n, a in found if n in notifiers}

    def audit_rows_after(self, audit_id: int, limit: int) -> list[AuditEvent]:
        """Audit rows after `audit_id`, oldest first (at most `limit`)."""
        with self._db.read() as tx:
            rows = list(
                tx.query("SELECT * FROM audit_events WHERE id > ? ORDER BY id LIMIT ?", [audit_id, limit])
            )
        return [event_from_row(r) for r in rows]

    def claim_due(
        self, notifiers: Collection[str], *, now: float, lease: float, limit: int
    ) -> list[OutboxRow]:
        """Pending rows of these notifiers due by `now`, oldest first, each now leased to the caller
        for `lease` seconds with its attempt counted."""
        if not notifiers:
            return []
        marks = ", ".join("?" for _ in notifiers)
        with self._db.transaction() as db:
            rows = list(
                db.query(
                    f"SELECT * FROM notification_outbox WHERE state = 'pending' AND next_attempt_at <= ? "  # noqa: S608
                    f"AND notifier IN ({marks}) ORDER BY id LIMIT ?",
                    [now, *notifiers, limit],
                )
            )
            db.executemany(
                "UPDATE notification_outbox SET next_attempt_at = ?, attempts = attempts + 1 WHERE id = ?",
                [(now + lease, r["id"]) for r in rows],
            )
        return [_row({**r, "attempts": r["attempts"] + 1, "next_attempt_at": now + lease}) for r in rows]

    def release(self, rows: Collection[OutboxRow], *, now: float) -> None:
        """Hand back claimed rows that were not tried (the bot is stopping): due now, uncounted."""
        with self._db.transaction() as db:
            db.executemany(
                "UPDATE notification_outbox SET next_attempt_at = ?, attempts = attempts - 1 "
                "WHERE id = ? AND state = 'pending'",
                [(now, r.id) for r in rows],
            )

    def delivered(self, *row_ids: int) -> None:
        """Mark rows delivered, in one transaction (a pass marks its deliveries together)."""
        if not row_ids:
            return
        with self._db.transaction() as db:
            now = self._now_text()
            db.executemany(
                "UPDATE notification_outbox SET state = 'delivered', last_error = NULL, finished_at = ? "
                "WHERE id = ?",
                [(now, row_id) for row_id in row_ids],
            )

    def retry_at(self, row_id: int, when: float, error: str) -> None:
        with self._db.transaction() as db:
            db.execute(
                "UPDATE notification_outbox SET next_attempt_at = ?, last_error = ? WHERE id = ?",
                [when, error, row_id],
            )

    def dead(self, row: OutboxRow, kind: str, error: str) -> None:
        """Give up on the row; the audit row saying so commits with it (`/gitops audit --action notify`)."""
        plural = "attempt" if row.attempts == 1 else "attempts"
        detail = (
            f"{kind} {row.notifier}: gave up on {row.event_type} {row.event_id} "
            f"after {row.attempts} {plural}: {error}"
        )
        with self._db.transaction() as db:
            db.execute(
                "UPDATE notification_outbox SET state = 'dead', last_error = ?, finished_at = ? WHERE id = ?",
                [error, self._now_text(), row.id],
            )
            self._audit.append(
                AuditEvent(
                    user_id=BOT_USER, user_name=BOT_USER, action=NOTIFY_ACTION, outcome="failed",
                    target=row.target, detail=detail, correlation_id=_correlation_id(row.body),
                )
            )  # fmt: skip

    def next_due(self, notifiers: Collection[str]) -> float | None:
        """When the earliest pending row of these notifiers is due (unix seconds), or None."""
        if not notifiers:
            return None
        marks = ", ".join("?" for _ in notifiers)
        with self._db.read() as tx:
            found = tx.execute(
                f"SELECT min(next_attempt_at) FROM notification_outbox WHERE state = 'pending' "  # noqa: S608
                f"AND notifier IN ({marks})",
                list(notifiers),
            ).fetchone()
        return float(found[0]) if found and found[0] is not None else None

    def prune(self) -> int:
        """Forget delivered rows after KEEP_DELIVERED and dead ones after KEEP_DEAD."""
        now = self._clock()
        with self._db.transaction() as db:
            cursor = db.execute(
                "DELETE FROM notification_outbox WHERE (state = 'delivered' AND finished_at < ?) "
                "OR (state = 'dead' AND finished_at < ?)",
                [_text(now - KEEP_DELIVERED), _text(now - KEEP_DEAD)],
            )
            return int(cursor.rowcount)

    def rows(self, notifier: str | None = None) -> list[OutboxRow]:
        """Every row (of one notifier), oldest first: for tests and operators."""
        where, params = ("WHERE notifier = ?", [notifier]) if notifier is not None else ("", [])
        with self._db.read() as tx:
            found = list(tx.query(f"SELECT * FROM notification_outbox {where} ORDER BY id", params))  # noqa: S608
        return [_row(r) for r in found]

    def _now_text(self) -> str:
        return _text(self._clock())


def _row(r: dict[str, Any]) -> OutboxRow:
    return OutboxRow(
        id=r["id"], notifier=r["notifier"], event_id=r["event_id"], event_type=r["event_type"],
        target=r["target"], body=r["body"], state=r["state"], attempts=r["attempts"],
        next_attempt_at=float(r["next_attempt_at"]), last_error=r["last_error"],
    )  # fmt: skip


def _text(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _correlation_id(body: str) -> str:
    try:
        value = json.loads(body).get("data", {}).get("correlation_id")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""
