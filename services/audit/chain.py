"""The audit row, its tamper-evident hash chain, the chain's verification, and retention.

Every row stores `prev_hash` (the hash of the row before it, the retention anchor, or GENESIS)
and `hash` = sha256 of the canonical JSON of its fields plus `prev_hash` (see `row_hash`).
`audit_meta` keeps the head (id and hash of the newest row the bot wrote, so deleting the newest
rows is visible) and the retention anchor (the last row retention deleted).

What this proves: a row edited, added or deleted by hand without recomputing every later hash and
the metadata. Someone who can write the file *and* knows the scheme can rebuild the whole chain;
record the head hash `audit verify` prints somewhere else to detect that too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from services.errors import BackendUnavailable
from services.store.db import Database, Tx
from services.store.sqlite import file_snapshot

GENESIS = "genesis"  # prev_hash of the first row ever written
_PAST_EVERY_ID = 2**62  # an id above every row's
HASHED_FIELDS: tuple[str, ...] = (
    "id",
    "ts",
    "user_id",
    "user_name",
    "channel",
    "command",
    "target",
    "action",
    "outcome",
    "detail",
    "correlation_id",
    "duration_ms",
)
# Hashed only when set, so rows written before the column existed keep their hashes.
OPTIONAL_HASHED: tuple[str, ...] = ("request_id",)
COLUMNS: tuple[str, ...] = (*HASHED_FIELDS, *OPTIONAL_HASHED, "prev_hash", "hash")
# Built from the constant column names above; every value is a bound parameter.
COLUMN_LIST = ", ".join(COLUMNS)
_INSERT = f"INSERT INTO audit_events ({COLUMN_LIST}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
_ALL_ROWS = f"SELECT {COLUMN_LIST} FROM audit_events ORDER BY id"  # noqa: S608
_UPSERT_META = (
    "INSERT INTO audit_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)

Problem = Literal["ok", "edited", "inserted", "deleted"]
# started: a changing request was accepted (its result row follows, naming it in request_id);
# unknown: it never reported back (the bot stopped or was killed meanwhile).
Outcome = Literal["ok", "denied", "failed", "error", "started", "unknown"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "denied", "failed", "error", "started", "unknown")


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
    request_id: int | None = None  # the `started` row this row finishes


def event_from_row(row: Mapping[str, Any]) -> AuditEvent:
    data = {k: v for k, v in row.items() if k in AuditEvent.__dataclass_fields__}
    data["ts"] = datetime.fromisoformat(data["ts"])
    return AuditEvent(**data)


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    rows_checked: int  # rows found consistent before the first problem
    first_bad_id: int | None
    problem: str  # one sentence for an operator; "" when ok
    kind: Problem = "ok"
    head_id: int = 0  # the newest row checked: record (head_id, head_hash) elsewhere to pin the chain
    head_hash: str = GENESIS


@dataclass(frozen=True)
class _Link:
    id: int
    hash: str


def row_hash(row: Mapping[str, Any], prev_hash: str) -> str:
    """sha256 hex of `{"channel":…,…,"prev_hash":…}`: sorted keys, no spaces, ASCII escapes."""
    doc = {field: row[field] for field in HASHED_FIELDS}
    doc.update({field: row[field] for field in OPTIONAL_HASHED if row.get(field) is not None})
    doc["prev_hash"] = prev_hash
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


def append_rows(db: Tx, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Chain and insert `rows` (every hashed field but id); call inside a write transaction."""
    head = _head_for_append(db)
    next_id, prev = head.id, head.hash
    params: list[tuple[Any, ...]] = []
    for row in rows:
        next_id += 1
        full = {**row, "id": next_id}
        digest = row_hash(full, prev)
        optional = (full.get(f) for f in OPTIONAL_HASHED)
        params.append((*(full[f] for f in HASHED_FIELDS), *optional, prev, digest))
        prev = digest
    db.executemany(_INSERT, params)
    db.executemany(_UPSERT_META, [("head_id", str(next_id)), ("head_hash", prev)])
    return list(range(head.id + 1, next_id + 1))


def apply_retention(database: Database, days: int, now: datetime) -> int:
    """Delete the oldest rows, those older than `days`, and anchor the chain at the last one deleted.

    Only a prefix (by id) is deleted, so the chain stays whole: a row older than the cutoff that
    follows a newer one (a clock step back) waits until everything before it is old enough.
    """
    if days < 1:
        raise ValueError("retention needs at least one day")
    cutoff = ts_text(now - timedelta(days=days))
    try:
        with database.transaction() as db:
            # Walk by id from the oldest row: the cost is the rows to delete, not the table.
            oldest = f"SELECT id FROM audit_events WHERE {db.unindexed('ts')} >= ? ORDER BY id LIMIT 1"  # noqa: S608
            first = db.execute(oldest, [cutoff])
            kept = first.fetchone()
            newest = "SELECT id, hash FROM audit_events WHERE id < ? ORDER BY id DESC LIMIT 1"
            last = db.execute(newest, [kept[0] if kept else _PAST_EVERY_ID]).fetchone()
            if last is None:
                return 0
            # The DELETE trigger lets rows go only while this key exists, i.e. inside this transaction.
            db.execute(_UPSERT_META, ["retention_unlock", ts_text(now)])
            deleted = int(db.execute("DELETE FROM audit_events WHERE id <= ?", [last[0]]).rowcount)
            anchor = [("anchor_id", str(last[0])), ("anchor_hash", last[1] or GENESIS)]
            db.executemany(_UPSERT_META, anchor)
            db.execute("DELETE FROM audit_meta WHERE key = 'retention_unlock'")
    except BackendUnavailable as exc:
        raise BackendUnavailable("audit database", f"retention failed: {exc.message}") from exc
    return deleted


@contextmanager
def snapshot(database: Database | Path) -> Iterator[Tx]:
    """One read-only transaction: a consistent view that never blocks appends (either engine; a
    path is a SQLite file the bot need not have open)."""
    with database.snapshot() if isinstance(database, Database) else file_snapshot(database) as tx:
        yield tx


def verify(database: Database | Path) -> VerifyReport:
    """Walk the chain from the retention anchor; report the first row edited, inserted or deleted.

    Checks, in this order, for each row by ascending id:
    - deleted: its id is not the one expected (a gap), or the newest rows the head names are gone;
    - inserted: it has no hash (not written by the bot), it is newer than the recorded head, or it
      predates the anchor;
    - edited: its hash does not match its contents;
    - a row whose own hash is consistent but whose prev_hash does not link to the row before:
      if the next row (or the head) links to it, it is genuine and the row *before* it was
      rewritten with a recomputed hash (edited); otherwise it was spliced in by hand (inserted).
    """
    with snapshot(database) as tx:
        meta = {str(k): str(v) for k, v in tx.execute("SELECT key, value FROM audit_meta").fetchall()}
        anchor = _Link(int(meta.get("anchor_id", 0)), meta.get("anchor_hash", GENESIS))
        head = _Link(int(meta["head_id"]), meta["head_hash"]) if "head_id" in meta else None
        rows = tx.stream(_ALL_ROWS)
        return _Walk(anchor, head).run(dict(zip(COLUMNS, r, strict=True)) for r in rows)


class _Walk:
    def __init__(self, anchor: _Link, head: _Link | None) -> None:
        self.anchor, self.head = anchor, head
        self.prev = anchor
        self.checked = 0

    def run(self, rows: Iterator[dict[str, Any]]) -> VerifyReport:
        row = next(rows, None)
        while row is not None:
            after = next(rows, None)
            bad = self._check(row, after)
            if bad is not None:
                return bad
            self.checked += 1
            self.prev = _Link(row["id"], row["hash"])
            row = after
        head, last = self.head, self.prev
        if head is not None and head.id > last.id:
            return self._bad("deleted", last.id + 1, _missing(last.id + 1, head.id, newest=True))
        if head is not None and head.id == last.id and head.hash != last.hash:
            if not self.checked:
                why = f"the retention anchor (row {last.id}) is not the newest row the bot recorded"
                return self._bad("edited", last.id, why + ": the anchor was changed")
            self.checked -= 1
            why = f"row {last.id} was changed after it was written and its hash recomputed"
            return self._bad("edited", last.id, why + " (the bot recorded another hash for it)")
        return VerifyReport(True, self.checked, None, "", head_id=self.prev.id, head_hash=self.prev.hash)

    def _check(self, row: dict[str, Any], after: dict[str, Any] | None) -> VerifyReport | None:
        rid, expected = row["id"], self.prev.id + 1
        if rid < expected:  # only the first row can be here: ids ascend
            why = f"row {rid} predates the retention anchor (row {self.anchor.id}): it was added back by hand"
            return self._bad("inserted", rid, why + " or the anchor was changed")
        if rid > expected:
            return self._bad("deleted", expected, _missing(expected, rid - 1, newest=False))
        if row["hash"] is None or row["prev_hash"] is None:
            return self._bad("inserted", rid, f"row {rid} has no hash: it was added by hand, not by the bot")
        if row_hash(row, row["prev_hash"]) != row["hash"]:
            return self._bad(
                "edited", rid, f"row {rid} was changed after it was written (it no longer matches its hash)"
            )
        if self.head is not None and rid > self.head.id:
            why = f"row {rid} was added by hand after the newest row the bot wrote (row {self.head.id})"
            return self._bad("inserted", rid, why)
        if row["prev_hash"] == self.prev.hash:
            return None
        if self._successor_link(row, after) == row["hash"]:
            if self.prev.id == self.anchor.id:
                why = f"row {rid} does not link to the retention anchor (row {self.anchor.id})"
                return self._bad("edited", rid, why + ": the anchor was changed")
            self.checked -= 1  # the row before was counted as good; it is the bad one
            why = f"row {self.prev.id} was changed after it was written and its hash recomputed"
            return self._bad("edited", self.prev.id, f"{why} (row {rid} still links to the original)")
        why = f"row {rid} was added or replaced by hand: it does not link to row {rid - 1}"
        return self._bad("inserted", rid, why)

    def _successor_link(self, row: dict[str, Any], after: dict[str, Any] | None) -> str | None:
        # Who vouches for this row: the next row's prev_hash, or the head if it is the newest.
        if after is not None and after["id"] == row["id"] + 1:
            return str(after["prev_hash"])
        if self.head is not None and self.head.id == row["id"]:
            return self.head.hash
        return None

    def _bad(self, kind: Problem, first_bad_id: int, problem: str) -> VerifyReport:
        return VerifyReport(False, self.checked, first_bad_id, problem, kind, self.prev.id, self.prev.hash)


def _missing(first: int, last: int, *, newest: bool) -> str:
    rows = f"row {first} is" if first == last else f"rows {first}-{last} are"
    where = "the newest rows were deleted" if newest else "they were deleted"
    return f"{rows} missing: {where}"


def _head_for_append(db: Tx) -> _Link:
    # The newer of the recorded head and the table's last row: a tail deleted by hand stays a
    # visible gap, and a row inserted by hand cannot make every later append fail on its id.
    meta = {
        str(k): str(v)
        for k, v in db.execute(
            "SELECT key, value FROM audit_meta WHERE key IN ('head_id', 'head_hash')"
        ).fetchall()
    }
    head = _Link(int(meta["head_id"]), meta["head_hash"]) if len(meta) == 2 else None
    last = db.execute("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1").fetchone()
    if last is not None and (head is None or last[0] > head.id):
        return _Link(last[0], last[1] or GENESIS)
    if head is not None:
        return head
    anchor = {
        str(k): str(v)
        for k, v in db.execute(
            "SELECT key, value FROM audit_meta WHERE key IN ('anchor_id', 'anchor_hash')"
        ).fetchall()
    }
    return _Link(int(anchor["anchor_id"]), anchor["anchor_hash"]) if len(anchor) == 2 else _Link(0, GENESIS)


def ts_text(when: datetime) -> str:
    """The stored form of a timestamp: UTC, microseconds, so text order is time order."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")
