"""Requests accepted and not yet finished, with the Slack message that shows them.

A row is written when a request goes to the background pool and deleted when its result is
audited. What is left after the process stops (SIGTERM past the shutdown timeout, `kill -9`,
an OOM kill) is what never reported back: on the next start each one gets an `unknown` audit
row naming its user and target, and its message is told the bot restarted (see
`handlers.recovery`).

`response_url` is kept only while the request runs (Slack lets it be used for 30 minutes):
it is how an ephemeral "working…" message can still be corrected after a restart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.store.db import Database

_COLUMNS = (
    "correlation_id", "started_id", "owner", "user_id", "user_name", "channel", "action", "command",
    "target", "accepted_at", "response_url",
)  # fmt: skip
# A second insert of the same request replaces it whole (its message and watch start over).
_INSERT = (
    f"INSERT INTO inflight_requests ({', '.join(_COLUMNS)}) "  # noqa: S608 (constant names)
    f"VALUES ({', '.join('?' * len(_COLUMNS))}) ON CONFLICT (correlation_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
    + ", message_channel = NULL, message_ts = NULL, message = NULL, watch = NULL"
)
_MAX_MESSAGE = 60_000  # a rendered Block Kit message is far below this; never store more


@dataclass(frozen=True)
class Inflight:
    correlation_id: str
    started_id: int | None  # the `started` audit row, for requests that change something
    owner: str  # the process that accepted it
    user_id: str
    user_name: str
    channel: str
    action: str
    command: str
    target: str
    accepted_at: datetime
    response_url: str | None = None
    message_channel: str | None = None
    message_ts: str | None = None
    message: Mapping[str, Any] | None = None  # the last text + blocks shown in that message
    watch: Mapping[str, Any] | None = None  # an operation the watcher follows: how to pick it up again


class InflightRequests:
    def __init__(self, db: Database, *, owner: str) -> None:
        self._db = db
        self.owner = owner

    def add(self, request: Inflight) -> None:
        row = {
            "correlation_id": request.correlation_id,
            "started_id": request.started_id,
            "owner": request.owner,
            "user_id": request.user_id,
            "user_name": request.user_name,
            "channel": request.channel,
            "action": request.action,
            "command": request.command,
            "target": request.target,
            "accepted_at": request.accepted_at.astimezone(UTC).isoformat(),
            "response_url": request.response_url,
        }
        with self._db.transaction() as db:  # plain SQL: this runs for every request, after its ack
            db.execute(_INSERT, [row[c] for c in _COLUMNS])

    def shown(self, correlation_id: str, *, channel: str, ts: str, message: Mapping[str, Any]) -> None:
        """The request's public message and what it shows now (to correct it after a restart)."""
        text = json.dumps(message)
        with self._db.transaction() as db:
            db.execute(
                "UPDATE inflight_requests SET message_channel = ?, message_ts = ?, message = ? "
                "WHERE correlation_id = ?",
                [channel, ts, text if len(text) <= _MAX_MESSAGE else None, correlation_id],
            )

    def watching(self, correlation_id: str, spec: Mapping[str, Any]) -> None:
        """The request's operation is now followed by the watcher (see handlers/follow.py)."""
        with self._db.transaction() as db:
            db.execute(
                "UPDATE inflight_requests SET watch = ? WHERE correlation_id = ?",
                [json.dumps(spec), correlation_id],
            )

    def settle(self, correlation_id: str, write_result: Callable[[], object]) -> bool:
        """Forget the request and write its result (an audit append) in one transaction: after a
        crash either both happened or neither. False, writing nothing, when it was settled
        already (its job and the shutdown racing), so a request is never reported twice."""
        with self._db.transaction() as db:
            cursor = db.execute("DELETE FROM inflight_requests WHERE correlation_id = ?", [correlation_id])
            if cursor.rowcount != 1:
                return False
            write_result()
            return True

    def alive(self, *, now: datetime | None = None) -> None:
        """Say this process is alive (every few seconds; see `left_behind`)."""
        at = (now or datetime.now(UTC)).astimezone(UTC).isoformat()
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO replicas (owner, started_at, seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at",
                [self.owner, at, at],
            )
            # Long-gone processes: nothing needs their rows once their requests are settled.
            cutoff = (now or datetime.now(UTC)) - timedelta(days=7)
            db.execute("DELETE FROM replicas WHERE seen_at < ?", [cutoff.astimezone(UTC).isoformat()])

    def gone(self) -> None:
        """This process stops: it settled or handed over what it owned."""
        with self._db.transaction() as db:
            db.execute("DELETE FROM replicas WHERE owner = ?", [self.owner])

    def left_behind(
        self, *, silent_for: timedelta | None = None, now: datetime | None = None
    ) -> list[Inflight]:
        """Requests of other processes that will never report back, oldest first. `silent_for`:
        only those whose owner has not said it is alive for that long (replicas sharing the
        database); None: every other owner's (one process per database, so they are all gone)."""
        others = [r for r in self.all() if r.owner != self.owner]
        if silent_for is None or not others:
            return others
        cutoff = ((now or datetime.now(UTC)) - silent_for).astimezone(UTC).isoformat()
        live = {
            str(r["owner"]) for r in self._db.query("SELECT owner FROM replicas WHERE seen_at >= ?", [cutoff])
        }
        return [r for r in others if r.owner not in live]

    def mine(self) -> list[Inflight]:
        return [r for r in self.all() if r.owner == self.owner]

    def all(self) -> list[Inflight]:
        with self._db.read() as tx:
            rows = list(tx.query("SELECT * FROM inflight_requests ORDER BY accepted_at"))
        return [_inflight(r) for r in rows]

    def get(self, correlation_id: str) -> Inflight | None:
        with self._db.read() as tx:
            rows = list(
                tx.query("SELECT * FROM inflight_requests WHERE correlation_id = ?", [correlation_id])
            )
        return _inflight(rows[0]) if rows else None


def _inflight(row: Mapping[str, Any]) -> Inflight:
    message = json.loads(row["message"]) if row["message"] else None
    watch = json.loads(row["watch"]) if row.get("watch") else None
    return Inflight(
        correlation_id=row["correlation_id"],
        started_id=row["started_id"],
        owner=row["owner"],
        user_id=row["user_id"],
        user_name=row["user_name"],
        channel=row["channel"],
        action=row["action"],
        command=row["command"],
        target=row["target"],
        accepted_at=datetime.fromisoformat(row["accepted_at"]),
        response_url=row["response_url"],
        message_channel=row["message_channel"],
        message_ts=row["message_ts"],
        message=message if isinstance(message, dict) else None,
        watch=watch if isinstance(watch, dict) else None,
    )
