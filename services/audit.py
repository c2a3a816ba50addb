"""The audit trail: one append-only table, one row per command, button click and alert action.

The application only ever appends; triggers (services/schema.py) refuse UPDATE and DELETE so a
bug cannot rewrite history either.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from services.db import Database
from services.errors import BackendUnavailable
from services.redaction import Redactor
from services.schema import MIGRATIONS

Outcome = Literal["ok", "denied", "failed", "error"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "denied", "failed", "error")
_TEXT_LIMIT = 2000  # bound third-party text (error messages, commit messages) in rows

__all__ = ["MIGRATIONS", "OUTCOMES", "AuditEvent", "AuditStore", "Outcome"]


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


class AuditStore:
    """Thread-safe through the shared Database lock (writes are short)."""

    def __init__(self, db: Database | Path, *, redact: Redactor | None = None) -> None:
        self._owns_db = not isinstance(db, Database)
        self.database = db if isinstance(db, Database) else Database(db)
        self._redact = redact or Redactor()

    @property
    def path(self) -> Path:
        return self.database.path

    @property
    def schema_version(self) -> int:
        return self.database.schema_version

    def append(self, event: AuditEvent) -> AuditEvent:
        ts = event.ts or datetime.now(UTC)
        row = asdict(event)
        row.pop("id")
        row["ts"] = ts.astimezone(UTC).isoformat(timespec="microseconds")
        for key in ("command", "detail", "target", "user_name"):
            row[key] = self._redact(str(row[key]))[:_TEXT_LIMIT]
        try:
            with self.database.lock:
                rowid = self.database.db.table("audit_events").insert(row).last_rowid
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
        with self.database.lock:
            rows = list(self.database.db.query(sql, [*params, limit]))
        return [_event(r) for r in rows]

    def count(self) -> int:
        with self.database.lock:
            return cast(int, self.database.db.execute("SELECT count(*) FROM audit_events").fetchone()[0])

    def is_writable(self) -> bool:
        return self.database.is_writable()

    def close(self) -> None:
        if self._owns_db:
            self.database.close()


def _event(row: dict[str, Any]) -> AuditEvent:
    data = {k: v for k, v in row.items() if k in AuditEvent.__dataclass_fields__}
    data["ts"] = datetime.fromisoformat(data["ts"])
    return AuditEvent(**data)
