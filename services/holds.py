"""Holds: changes the bot made that someone must undo later (auto-sync turned off for a rollback).

The scheduler reminds the channel about open holds; releasing one re-enables what was held.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.store.db import Database


@dataclass(frozen=True)
class Hold:
    id: int
    kind: str
    target: str  # display name, e.g. "main/payments-api"
    ref: dict[str, Any]  # the AppRef fields, to act on it later
    payload: dict[str, Any]  # e.g. the automated sync policy to restore
    channel: str
    created_by: str
    created_at: datetime
    reminded_at: datetime | None = None
    released_at: datetime | None = None
    released_by: str | None = None


class HoldStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def open(
        self,
        kind: str,
        *,
        target: str,
        ref: dict[str, Any],
        payload: dict[str, Any],
        channel: str,
        created_by: str,
        now: datetime | None = None,
    ) -> Hold:
        at = now or datetime.now(UTC)
        with self._db.transaction() as db:
            hold_id = db.insert_returning_id(
                "holds",
                {
                    "kind": kind,
                    "target": target,
                    "ref": json.dumps(ref),
                    "payload": json.dumps(payload),
                    "channel": channel,
                    "created_by": created_by,
                    "created_at": at.isoformat(),
                },
            )
        assert hold_id is not None
        return Hold(hold_id, kind, target, ref, payload, channel, created_by, at)

    def get(self, hold_id: int) -> Hold | None:
        with self._db.read() as tx:
            rows = list(tx.query("SELECT * FROM holds WHERE id = ?", [hold_id]))
        return _hold(rows[0]) if rows else None

    def open_holds(self, kind: str | None = None) -> list[Hold]:
        sql = "SELECT * FROM holds WHERE released_at IS NULL"
        params: list[Any] = []
        if kind:
            sql += " AND kind = ?"
            params.append(kind)
        with self._db.read() as tx:
            rows = list(tx.query(sql + " ORDER BY id", params))
        return [_hold(r) for r in rows]

    def due_for_reminder(self, *, every: timedelta, now: datetime | None = None) -> list[Hold]:
        at = now or datetime.now(UTC)
        due = []
        for hold in self.open_holds():
            last = hold.reminded_at or hold.created_at
            if at - last >= every:
                due.append(hold)
        return due

    def mark_reminded(self, hold_id: int, *, now: datetime | None = None) -> None:
        at = now or datetime.now(UTC)
        with self._db.transaction() as db:
            db.execute("UPDATE holds SET reminded_at = ? WHERE id = ?", [at.isoformat(), hold_id])

    def release(self, hold_id: int, *, by: str, now: datetime | None = None) -> bool:
        """True when this call released it (False: already released)."""
        at = now or datetime.now(UTC)
        with self._db.transaction() as db:
            cursor = db.execute(
                "UPDATE holds SET released_at = ?, released_by = ? WHERE id = ? AND released_at IS NULL",
                [at.isoformat(), by, hold_id],
            )
            return cursor.rowcount == 1


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _hold(row: dict[str, Any]) -> Hold:
    return Hold(
        id=row["id"],
        kind=row["kind"],
        target=row["target"],
        ref=json.loads(row["ref"]),
        payload=json.loads(row["payload"]),
        channel=row["channel"] or "",
        created_by=row["created_by"],
        created_at=datetime.fromisoformat(row["created_at"]),
        reminded_at=_ts(row["reminded_at"]),
        released_at=_ts(row["released_at"]),
        released_by=row["released_by"],
    )
