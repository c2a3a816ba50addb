"""The audit trail: one append-only SQLite table, one row per command and per button click.

SQLite through sqlite-utils, WAL mode, versioned migrations. The application only ever
appends; triggers refuse UPDATE and DELETE so a bug cannot rewrite history either.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import sqlite_utils

from services.errors import BackendUnavailable
from services.redaction import Redactor

Outcome = Literal["ok", "denied", "failed", "error"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "denied", "failed", "error")
_TEXT_LIMIT = 2000  # bound third-party text (error messages, commit messages) in rows


@dataclass(frozen=True)
class AuditEvent:
    user_id: str
    action: str
    outcome: Outcome
    user_name: str = ""
    channel: str = ""
    command: str = ""
    target: str = ""
    detail: str = ""
    correlation_id: str = ""
    duration_ms: int = 0
    ts: datetime | None = None  # set by the store when None
    id: int | None = None  # assigned by the store


def _migrate_1(db: sqlite_utils.Database) -> None:
    db["audit_events"].create(  # type: ignore[union-attr]
        {
            "id": int,
            "ts": str,
            "user_id": str,
            "user_name": str,
            "channel": str,
            "command": str,
            "target": str,
            "action": str,
            "outcome": str,
            "detail": str,
            "correlation_id": str,
            "duration_ms": int,
        },
        pk="id",
        not_null={"ts", "user_id", "action", "outcome"},
    )
    db["audit_events"].create_index(["ts"])  # type: ignore[union-attr]
    db["audit_events"].create_index(["target", "ts"])  # type: ignore[union-attr]
    db["audit_events"].create_index(["user_id", "ts"])  # type: ignore[union-attr]
    for verb in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
        )


# (version, description, step). Append new steps; never edit a released one.
MIGRATIONS: tuple[tuple[int, str, Callable[[sqlite_utils.Database], None]], ...] = (
    (1, "audit_events table, indexes, append-only triggers", _migrate_1),
)


class AuditStore:
    """Thread-safe: one connection guarded by a lock (writes are short)."""

    def __init__(self, path: Path, *, redact: Redactor | None = None) -> None:
        self.path = path
        self._redact = redact or Redactor()
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, timeout=10, isolation_level=None)
            self._db = sqlite_utils.Database(conn)
            self._db.enable_wal()
            # FULL: an audit row acknowledged to the user must survive a power cut.
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
            self._table = self._db.table("audit_events")
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailable("audit database", f"cannot open {path}: {exc}") from exc

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._version()

    def append(self, event: AuditEvent) -> AuditEvent:
        ts = event.ts or datetime.now(UTC)
        row = asdict(event)
        row.pop("id")
        row["ts"] = ts.astimezone(UTC).isoformat(timespec="microseconds")
        for key in ("command", "detail", "target", "user_name"):
            row[key] = self._redact(str(row[key]))[:_TEXT_LIMIT]
        try:
            with self._lock:
                rowid = self._table.insert(row).last_rowid
        except sqlite3.Error as exc:
            raise BackendUnavailable("audit database", str(exc)) from exc
        return AuditEvent(**{**row, "ts": ts, "id": rowid})

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
        with self._lock:
            rows = list(self._db.query(sql, [*params, limit]))
        return [_event(r) for r in rows]

    def count(self) -> int:
        with self._lock:
            return cast(int, self._db.execute("SELECT count(*) FROM audit_events").fetchone()[0])

    def is_writable(self) -> bool:
        """For /readyz: take the write lock and release it without changing anything."""
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _version(self) -> int:
        row = self._db.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def _migrate(self) -> None:
        with self._lock:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            current = self._version()
            for version, description, step in MIGRATIONS:
                if version <= current:
                    continue
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    step(self._db)
                    self._db.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        [version, description, datetime.now(UTC).isoformat()],
                    )
                    self._db.execute("COMMIT")
                except Exception:
                    self._db.execute("ROLLBACK")
                    raise


def _event(row: dict[str, Any]) -> AuditEvent:
    data = dict(row)
    data["ts"] = datetime.fromisoformat(data["ts"])
    return AuditEvent(**data)
