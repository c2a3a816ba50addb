"""Searching and exporting the audit trail.

`search` answers `/gitops audit [APP] [--env] [--user] [--action] [--since]` a page at a time,
newest first: by (ts, id) descending, the order every (column, ts) index already holds, so each
page is an index walk of about `limit` rows whatever the table size. App and env filters match
target *shapes*, not one column value, so they are resolved first to the set of distinct
targets that match (`TargetCatalog`), then read per target through the (target, ts) index.

`export` streams rows in chain order (id ascending) as CSV or a JSON array, never holding the
table in memory, from a read-only snapshot that does not block appends.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from services.audit.chain import COLUMN_LIST, COLUMNS, AuditEvent, event_from_row, snapshot, ts_text
from services.store.db import Database, Tx

ExportFormat = Literal["csv", "json"]
_PER_TARGET_MAX = 24  # more matching targets than this: one walk down the ts index instead
_PAST_EVERY_ID = 2**62  # a start id no row has: an empty export
# By id from a start id; SQLite's unary + keeps its planner from sorting a ts-index range instead.
_EXPORT_ALL = f"SELECT {COLUMN_LIST} FROM audit_events WHERE id >= ? ORDER BY id"  # noqa: S608
_EXPORT_SINCE = f"SELECT {COLUMN_LIST} FROM audit_events WHERE id >= ? AND {{ts}} >= ? ORDER BY id"  # noqa: S608
_RESCAN_AFTER = 20_000  # new rows since the last look: cheaper to re-enumerate the index
_ALL_TARGETS = """
    WITH RECURSIVE t(target) AS (
        SELECT min(target) FROM audit_events
        UNION ALL
        SELECT (SELECT min(target) FROM audit_events WHERE target > t.target)
        FROM t WHERE t.target IS NOT NULL
    )
    SELECT target FROM t WHERE target IS NOT NULL
"""


@dataclass(frozen=True)
class AuditQuery:
    app: str | None = None  # target is APP, starts with "APP/" or ends with "/APP"
    env: str | None = None  # ENV is one of the target's "/"-separated segments
    user_id: str | None = None
    action: str | None = None
    since: datetime | None = None  # aware
    before_id: int | None = None  # the previous page's next_before_id
    limit: int = 20


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_before_id: int | None  # pass as before_id for the next (older) page; None on the last page


def matches_target(target: str, *, app: str | None, env: str | None) -> bool:
    """Targets look like "api/prod", "main/api-prod", "prod/flux-system/api", "prod" or "prod/api"."""
    if app is not None and not (target == app or target.startswith(app + "/") or target.endswith("/" + app)):
        return False
    return env is None or env in target.split("/")


class TargetCatalog:
    """The distinct targets in the table, kept current by reading only rows newer than last time.

    Rows are never updated and ids only grow, so "rows with id > last seen" is all that can add a
    target. Targets whose rows retention deleted linger until the next full scan; harmless, their
    index lookups come back empty.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: frozenset[str] = frozenset()
        self._seen_id = 0

    def targets(self, db: Tx) -> frozenset[str]:
        with self._lock:
            newest = int(db.scalar("SELECT max(id) FROM audit_events") or 0)
            if newest < self._seen_id or newest - self._seen_id > _RESCAN_AFTER:
                self._targets = frozenset(r[0] for r in db.execute(_ALL_TARGETS).fetchall())
            elif newest > self._seen_id:
                sql = (
                    "SELECT DISTINCT target FROM audit_events WHERE id > ? AND id <= ? AND target IS NOT NULL"
                )
                self._targets |= {r[0] for r in db.execute(sql, [self._seen_id, newest]).fetchall()}
            self._seen_id = newest
            return self._targets


def search(database: Database, q: AuditQuery, *, catalog: TargetCatalog | None = None) -> AuditPage:
    """One page, newest first. Without a catalog the distinct targets are enumerated per call."""
    if q.limit < 1:
        raise ValueError("limit must be at least 1")
    take = q.limit + 1  # one more than the page tells whether another page exists
    with database.read() as db:
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        for column, value in (("user_id", q.user_id), ("action", q.action)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if q.since is not None:
            where.append("ts >= ?")
            params.append(ts_text(q.since))
        if q.before_id is not None:
            cursor = db.execute("SELECT ts FROM audit_events WHERE id = ?", [q.before_id]).fetchone()
            if cursor is None:  # the row is gone (retention) or never was: nothing older to show
                return AuditPage([], None)
            # (ts, id) < cursor, spelled so `ts <= ?` can bound the index range
            where.append("ts <= ? AND (ts < ? OR id < ?)")
            params += [cursor[0], cursor[0], q.before_id]
        if q.app is None and q.env is None:
            rows = _page(db, where, params, take)
        else:
            known = (catalog or TargetCatalog()).targets(db)
            targets = sorted(t for t in known if matches_target(t, app=q.app, env=q.env))
            rows = _by_targets(db, targets, where, params, take)
    events = [event_from_row(r) for r in rows[: q.limit]]
    return AuditPage(events, events[-1].id if len(rows) > q.limit else None)


def _page(db: Tx, where: list[str], params: list[Any], take: int) -> list[dict[str, Any]]:
    # `where` holds only this module's constant fragments; values are bound parameters.
    sql = f"SELECT * FROM audit_events WHERE {' AND '.join(where)} ORDER BY ts DESC, id DESC LIMIT ?"  # noqa: S608
    return list(db.query(sql, [*params, take]))


def _by_targets(
    db: Tx, targets: list[str], where: list[str], params: list[Any], take: int
) -> list[dict[str, Any]]:
    if not targets:
        return []
    if len(targets) > _PER_TARGET_MAX:
        # Many targets (a busy env): matching rows are dense, so walk the ts index and test each.
        # The unary + keeps the planner off the target index, which would need a sort.
        member = f"{db.unindexed('target')} IN {db.json_members()}"
        return _page(db, [*where, member], [*params, json.dumps(targets)], take)
    # Few targets: the newest `take` of each through the (target, ts) index, merged.
    pages = [_page(db, [*where, "target = ?"], [*params, t], take) for t in targets]
    merged = heapq.merge(*pages, key=lambda r: (r["ts"], r["id"]), reverse=True)
    return list(itertools.islice(merged, take))


def export(
    database: Database | Path, out: TextIO, fmt: ExportFormat, *, since: datetime | None = None
) -> int:
    """Write rows (all columns, hashes included) in id order; returns how many."""
    with snapshot(database) as tx:
        if since is None:
            rows = tx.stream(_EXPORT_ALL, [0])
        else:
            after = ts_text(since)
            first = tx.scalar("SELECT min(id) FROM audit_events WHERE ts >= ?", [after])
            sql = _EXPORT_SINCE.format(ts=tx.unindexed("ts"))
            rows = tx.stream(sql, [_PAST_EVERY_ID if first is None else first, after])
        return _write_csv(out, rows) if fmt == "csv" else _write_json(out, rows)


def _write_csv(out: TextIO, rows: Iterable[tuple[Any, ...]]) -> int:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count


def _write_json(out: TextIO, rows: Iterable[tuple[Any, ...]]) -> int:
    out.write("[")
    count = 0
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(dict(zip(COLUMNS, row, strict=True))))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
