"""What a button does, stored server-side: the button's value is only an opaque id.

`claim` is atomic and single-use, so a double click, two people clicking at once, or a
repeated delivery of the same click runs the action exactly once.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.errors import UserError
from services.store.db import Database


class ButtonExpired(UserError):
    pass


@dataclass(frozen=True)
class PendingAction:
    id: str
    kind: str
    payload: dict[str, Any]
    requester: str
    channel: str
    created_at: datetime
    expires_at: datetime
    consumed_at: datetime | None = None
    consumed_by: str | None = None


class PendingActions:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        requester: str,
        channel: str,
        ttl: timedelta,
        now: datetime | None = None,
    ) -> PendingAction:
        created = now or datetime.now(UTC)
        action = PendingAction(
            id=secrets.token_urlsafe(12),
            kind=kind,
            payload=payload,
            requester=requester,
            channel=channel,
            created_at=created,
            expires_at=created + ttl,
        )
        with self._db.transaction() as db:
            db.insert(
                "pending_actions",
                {
                    "id": action.id,
                    "kind": kind,
                    "payload": json.dumps(payload),
                    "requester": requester,
                    "channel": channel,
                    "created_at": created.isoformat(),
                    "expires_at": action.expires_at.isoformat(),
                },
            )
        return action

    def get(self, action_id: str) -> PendingAction | None:
        with self._db.read() as tx:
            rows = list(tx.query("SELECT * FROM pending_actions WHERE id = ?", [action_id[:64]]))
        return _action(rows[0]) if rows else None

    def claim(self, action_id: str, *, kind: str, by: str, now: datetime | None = None) -> PendingAction:
        """Mark the action used and return it; raises ButtonExpired when used, expired or unknown."""
        at = now or datetime.now(UTC)
        with self._db.transaction() as db:
            cursor = db.execute(
                "UPDATE pending_actions SET consumed_at = ?, consumed_by = ? "
                "WHERE id = ? AND kind = ? AND consumed_at IS NULL AND expires_at > ?",
                [at.isoformat(), by, action_id[:64], kind, at.isoformat()],
            )
            claimed = cursor.rowcount == 1
        action = self.get(action_id)
        if not claimed or action is None:
            raise ButtonExpired(_why_not(action, at), mentions=_who(action))
        return action


def _why_not(action: PendingAction | None, at: datetime) -> str:
    if action is None:
        return "This button is no longer known to the bot. Run the command again."
    if action.consumed_at is not None:
        who = f" by <@{action.consumed_by}>" if action.consumed_by else ""
        return f"This was already done{who}; nothing more happened."
    if action.expires_at <= at:
        return "This button has expired. Run the command again to get a fresh one."
    return "This button does not do that."


def _who(action: PendingAction | None) -> list[str]:
    return [action.consumed_by] if action is not None and action.consumed_by else []


def _action(row: dict[str, Any]) -> PendingAction:
    return PendingAction(
        id=row["id"],
        kind=row["kind"],
        payload=json.loads(row["payload"]),
        requester=row["requester"],
        channel=row["channel"] or "",
        created_at=datetime.fromisoformat(row["created_at"]),
        expires_at=datetime.fromisoformat(row["expires_at"]),
        consumed_at=datetime.fromisoformat(row["consumed_at"]) if row["consumed_at"] else None,
        consumed_by=row["consumed_by"],
    )
