"""The audit trail: one append-only table, one row per command, button click and alert action.

The application only ever appends; triggers (services/store/schema.py) refuse UPDATE, and DELETE except
inside retention, so a bug cannot rewrite history either. Each row is hash-chained to the one
before it (services/audit/chain.py), and `append` returns only once its row is committed with
synchronous=FULL: an acknowledged row survives a crash or a power cut.

Listeners (`subscribe`) hear of every row once it is committed, in the appending thread, outside
the database lock: a row written inside a caller's own transaction is announced when that commits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.audit.chain import (
    HASHED_FIELDS,
    OPTIONAL_HASHED,
    OUTCOMES,
    AuditEvent,
    Outcome,
    VerifyReport,
    append_rows,
    apply_retention,
    event_from_row,
    ts_text,
    verify,
)
from services.audit.query import AuditPage, AuditQuery, TargetCatalog, search
from services.errors import BackendUnavailable
from services.redaction import Redactor
from services.store.db import Database
from services.store.schema import MIGRATIONS
from services.store.sqlite import SqliteDatabase

_GATHER = 0.0002  # seconds a writer waits for company when appends are concurrent
_TEXT_LIMIT = 2000  # bound third-party text (error messages, commit messages) in rows
_REDACTED_FIELDS = ("command", "detail", "target", "user_name")
_EVENT_FIELDS = (*(f for f in HASHED_FIELDS if f not in ("id", "ts")), *OPTIONAL_HASHED)
Listener = Callable[[AuditEvent], None]

__all__ = [
    "MIGRATIONS",
    "OUTCOMES",
    "AuditEvent",
    "AuditPage",
    "AuditQuery",
    "AuditStore",
    "Listener",
    "Outcome",
    "VerifyReport",
]

log = logging.getLogger(__name__)
Row = dict[str, Any]


class AuditStore:
    """Thread-safe. Concurrent `append` calls share one commit (group commit); see `_GroupCommit`."""

    def __init__(self, db: Database | Path, *, redact: Redactor | None = None) -> None:
        self._owns_db = not isinstance(db, Database)
        self.database = db if isinstance(db, Database) else SqliteDatabase(db)
        self._redact = redact or Redactor()
        self._commits = _GroupCommit(self._write)
        self._targets = TargetCatalog()
        self._listeners: tuple[Listener, ...] = ()

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` with every row appended from now on (with its id and ts), after its
        commit. It runs in the appending thread, so it must be quick (queue the work); what it
        raises is logged and goes no further."""
        self._listeners = (*self._listeners, listener)

    @property
    def path(self) -> Path:
        if self.database.path is None:
            raise AttributeError("the audit trail is on PostgreSQL, not in a file")
        return self.database.path

    @property
    def schema_version(self) -> int:
        return self.database.schema_version

    def append(self, event: AuditEvent) -> AuditEvent:
        """Write one row; returns once it is durably committed, with its id."""
        row = self._row(event)
        # A caller already inside the database lock must not wait for a writer that needs it.
        if self.database.busy_here():
            [rowid], joined = self._write_rows([row])
        else:
            rowid, joined = self._commits.submit(row), False
        written = AuditEvent(**{**row, "ts": event.ts or datetime.fromisoformat(row["ts"]), "id": rowid})
        self._announce([written], joined)
        return written

    def append_many(self, events: Iterable[AuditEvent]) -> list[AuditEvent]:
        """Write all rows in one transaction (all or none), in order; for imports and bulk writers."""
        given = list(events)
        rows = [self._row(e) for e in given]
        if not rows:
            return []
        ids, joined = self._write_rows(rows)
        written = [
            AuditEvent(**{**row, "ts": e.ts or datetime.fromisoformat(row["ts"]), "id": rowid})
            for e, row, rowid in zip(given, rows, ids, strict=True)
        ]
        self._announce(written, joined)
        return written

    def recent(
        self, limit: int = 50, *, target: str | None = None, user_id: str | None = None
    ) -> list[AuditEvent]:
        """Newest first."""
        where, params = [], []
        if target is not None:
            where.append("target = ?")
            params.append(target)
        if user_id is not None:
            where.append("user_id = ?")
            params.append(user_id)
        sql = "SELECT * FROM audit_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        rows = self.database.query(sql, [*params, limit])
        return [event_from_row(r) for r in rows]

    def search(self, query: AuditQuery) -> AuditPage:
        """`audit` from Slack: app / env / user / action / since filters, newest first, paged."""
        return search(self.database, query, catalog=self._targets)

    def verify(self) -> VerifyReport:
        return verify(self.database)

    def apply_retention(self, days: int, *, now: datetime | None = None) -> int:
        """Delete rows older than `days` (the scheduler calls this daily when retention is set)."""
        deleted = apply_retention(self.database, days, now or datetime.now(UTC))
        if deleted:
            log.info("audit retention deleted old rows", extra={"rows": deleted, "days": days})
        return deleted

    def count(self) -> int:
        return int(self.database.scalar("SELECT count(*) FROM audit_events"))

    def is_writable(self) -> bool:
        return self.database.is_writable()

    def close(self) -> None:
        if self._owns_db:
            self.database.close()

    def _row(self, event: AuditEvent) -> Row:
        # Redaction and formatting happen in the caller's thread, outside any lock.
        row: Row = {f: getattr(event, f) for f in _EVENT_FIELDS}
        row["ts"] = ts_text(event.ts or datetime.now(UTC))
        row["duration_ms"] = int(row["duration_ms"])
        for key in _REDACTED_FIELDS:
            row[key] = self._redact(str(row[key]))[:_TEXT_LIMIT]
        return row

    def _write(self, rows: list[Row]) -> list[int]:
        return self._write_rows(rows)[0]

    def _write_rows(self, rows: list[Row]) -> tuple[list[int], bool]:
        """The new ids, and whether the rows joined a transaction the caller has open."""
        try:
            # Inside the caller's own transaction the rows join it: they commit or roll back with it.
            joined = self.database.in_transaction()
            with self.database.transaction() as db:
                return append_rows(db, rows), joined
        except BackendUnavailable as exc:
            raise BackendUnavailable("audit database", exc.message) from exc

    def _announce(self, events: list[AuditEvent], joined: bool) -> None:
        if not self._listeners:
            return
        if joined:  # not committed yet: tell the listeners when (and only if) the caller's commit happens
            self.database.after_commit(lambda: self._tell(events))
        else:
            self._tell(events)

    def _tell(self, events: list[AuditEvent]) -> None:
        for event in events:
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:  # a listener's bug never fails the append that was committed
                    log.exception("audit listener failed", extra={"action": event.action})


class _Slot:
    __slots__ = ("done", "error", "id", "row", "wake")

    def __init__(self, row: Row) -> None:
        self.row = row
        self.done = False
        self.id = 0
        self.error: BaseException | None = None
        self.wake = threading.Lock()  # held until someone wakes this caller: cheaper than an Event
        self.wake.acquire()


class _GroupCommit:
    """Leader/follower group commit: one commit (one fsync) for every row queued meanwhile.

    A caller queues its row; if no write is in progress it becomes the writer, takes the whole
    queue and commits it in one transaction. Callers that queue meanwhile sleep; when the commit
    ends the writer wakes each caller of its batch, and hands the writer role to the first caller
    still queued, who takes the next batch. Each caller returns only when the transaction holding
    its own row has committed (or raises that transaction's error). Ids follow queue order, so
    appends stay strictly ordered. No thread of its own to start or stop.
    """

    def __init__(self, write: Callable[[list[Row]], list[int]]) -> None:
        self._write = write
        self._mutex = threading.Lock()
        self._queue: list[_Slot] = []
        self._writing = False
        self._last_batch = 1

    def submit(self, row: Row) -> int:
        slot = _Slot(row)
        with self._mutex:
            self._queue.append(slot)
            lead = not self._writing
            self._writing = True
        if not lead:
            slot.wake.acquire()
            lead = not slot.done  # woken to write the next batch rather than with a result
        if lead:
            self._lead()
        if slot.error is not None:
            raise BackendUnavailable("audit database", f"audit row not written: {slot.error}") from slot.error
        return slot.id

    def _lead(self) -> None:
        # Writers were busy last time: give callers just woken by that commit a moment to queue
        # and share this one (one fsync for many rows); alone, only yield the GIL once.
        time.sleep(_GATHER if self._last_batch > 1 else 0)
        with self._mutex:
            batch, self._queue = self._queue, []
        self._last_batch = len(batch)
        ids: list[int] = []
        error: BaseException | None = None
        try:
            ids = self._write([s.row for s in batch])
        except BaseException as exc:  # every waiter must hear about it, whatever it is
            error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            for i, slot in enumerate(batch):
                slot.done, slot.error = True, error
                slot.id = ids[i] if error is None else 0
            with self._mutex:
                successor = self._queue[0] if self._queue else None
                self._writing = successor is not None
            for slot in batch:
                if slot.wake.locked():
                    slot.wake.release()
            if successor is not None:
                successor.wake.release()
