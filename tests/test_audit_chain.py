"""The audit hash chain on real SQLite files: tampering as an attacker would do it, retention, restarts."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.audit.chain import COLUMN_LIST, COLUMNS, GENESIS, HASHED_FIELDS, row_hash, verify
from services.audit.trail import AuditEvent, AuditStore, _GroupCommit
from services.errors import BackendUnavailable

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
# Test SQL built from the constant column names only.
SELECT_ROW = f"SELECT {COLUMN_LIST} FROM audit_events WHERE id = ?"  # noqa: S608
INSERT_ROW = f"INSERT INTO audit_events ({COLUMN_LIST}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608
FORGED = (
    "INSERT INTO audit_events (ts, user_id, action, outcome, target) VALUES (?, 'UMALLORY', 'sync', 'ok', ?)"
)


def _event(i: int, **kw: Any) -> AuditEvent:
    base: dict[str, Any] = {"user_id": f"U{i % 3}", "action": "sync", "outcome": "ok", "target": "api/prod"}
    base.update(kw)
    return AuditEvent(**base)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    s = AuditStore(tmp_path / "audit.db")
    yield s
    s.close()


def _filled(store: AuditStore, n: int = 6) -> Path:
    for i in range(n):
        store.append(_event(i, ts=T0 + timedelta(days=i), command=f"sync api prod #{i}"))
    return store.path


def _attacker(path: Path) -> sqlite3.Connection:
    """The file opened by hand, the append-only triggers dropped first, as an attacker would."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_events_no_update")
    conn.execute("DROP TRIGGER audit_events_no_delete")
    return conn


def _row(conn: sqlite3.Connection, rid: int) -> dict[str, Any]:
    values = conn.execute(SELECT_ROW, [rid]).fetchone()
    return dict(zip(COLUMNS, values, strict=True))


def test_rows_are_chained_from_genesis(store: AuditStore) -> None:
    _filled(store, 4)
    conn = sqlite3.connect(store.path)
    rows = [_row(conn, i) for i in range(1, 5)]
    conn.close()
    assert rows[0]["prev_hash"] == GENESIS
    for before, row in itertools.pairwise(rows):
        assert row["prev_hash"] == before["hash"]
    assert all(row_hash(r, r["prev_hash"]) == r["hash"] for r in rows)
    report = verify(store.path)
    assert (report.ok, report.rows_checked, report.first_bad_id, report.problem) == (True, 4, None, "")
    assert (report.head_id, report.head_hash) == (4, rows[-1]["hash"])


def test_hash_covers_every_field(store: AuditStore) -> None:
    _filled(store, 1)
    conn = sqlite3.connect(store.path)
    row = _row(conn, 1)
    conn.close()
    for field in HASHED_FIELDS:
        changed = {**row, field: 7 if isinstance(row[field], str) else "7"}
        assert row_hash(changed, row["prev_hash"]) != row["hash"], field
    assert row_hash(row, "other") != row["hash"]


def test_a_row_edited_by_hand_is_named(store: AuditStore) -> None:
    conn = _attacker(_filled(store))
    conn.execute("UPDATE audit_events SET outcome = 'ok', detail = 'nothing to see' WHERE id = 3")
    report = verify(store.path)
    assert (report.ok, report.kind, report.first_bad_id, report.rows_checked) == (False, "edited", 3, 2)
    assert "row 3 was changed" in report.problem


def test_an_edit_with_a_recomputed_hash_is_caught_by_the_next_row(store: AuditStore) -> None:
    conn = _attacker(_filled(store))
    row = {**_row(conn, 3), "user_id": "UMALLORY"}
    conn.execute(
        "UPDATE audit_events SET user_id = ?, hash = ? WHERE id = 3",
        ["UMALLORY", row_hash(row, row["prev_hash"])],
    )
    report = verify(store.path)
    assert (report.kind, report.first_bad_id, report.rows_checked) == ("edited", 3, 2)
    assert "hash recomputed" in report.problem


def test_editing_the_newest_row_with_a_recomputed_hash_is_caught_by_the_head(store: AuditStore) -> None:
    conn = _attacker(_filled(store))
    row = {**_row(conn, 6), "outcome": "ok", "detail": "fine"}
    conn.execute(
        "UPDATE audit_events SET outcome = 'ok', detail = 'fine', hash = ? WHERE id = 6",
        [row_hash(row, row["prev_hash"])],
    )
    # The newest row links correctly, so the walk ends; the head recorded by the bot disagrees.
    report = verify(store.path)
    assert (report.ok, report.kind, report.first_bad_id, report.rows_checked) == (False, "edited", 6, 5)


def test_a_row_inserted_by_hand_is_reported(store: AuditStore) -> None:
    conn = sqlite3.connect(_filled(store), isolation_level=None)  # inserting needs no trigger dropped
    conn.execute(FORGED, [T0.isoformat(), "api/prod"])
    report = verify(store.path)
    assert (report.kind, report.first_bad_id, report.rows_checked) == ("inserted", 7, 6)
    assert "added by hand" in report.problem


def test_a_forged_row_with_a_valid_hash_after_the_head_is_reported(store: AuditStore) -> None:
    conn = sqlite3.connect(_filled(store), isolation_level=None)
    last = _row(conn, 6)
    forged = {**last, "id": 7, "user_id": "UMALLORY"}
    forged["prev_hash"], forged["hash"] = last["hash"], row_hash(forged, last["hash"])
    conn.execute(INSERT_ROW, [forged[c] for c in COLUMNS])
    report = verify(store.path)
    assert (report.kind, report.first_bad_id) == ("inserted", 7)
    assert "after the newest row the bot wrote (row 6)" in report.problem


def test_a_row_replaced_by_a_self_consistent_forgery_is_reported(store: AuditStore) -> None:
    conn = _attacker(_filled(store))
    forged = {**_row(conn, 4), "user_id": "UMALLORY", "prev_hash": "0" * 64}
    forged["hash"] = row_hash(forged, forged["prev_hash"])
    conn.execute("DELETE FROM audit_events WHERE id = 4")
    conn.execute(INSERT_ROW, [forged[c] for c in COLUMNS])
    report = verify(store.path)
    assert (report.kind, report.first_bad_id, report.rows_checked) == ("inserted", 4, 3)


def test_a_deleted_row_is_reported(store: AuditStore) -> None:
    conn = _attacker(_filled(store))
    conn.execute("DELETE FROM audit_events WHERE id IN (3, 4)")
    report = verify(store.path)
    assert (report.ok, report.kind, report.first_bad_id, report.rows_checked) == (False, "deleted", 3, 2)
    assert report.problem == "rows 3-4 are missing: they were deleted"


def test_deleting_the_newest_rows_is_reported(store: AuditStore) -> None:
    conn = _attacker(_filled(store))
    conn.execute("DELETE FROM audit_events WHERE id >= 5")
    report = verify(store.path)
    assert (report.kind, report.first_bad_id, report.rows_checked) == ("deleted", 5, 4)
    assert "the newest rows were deleted" in report.problem
    # The bot keeps chaining from its own head, so the gap stays visible after new appends.
    store.append(_event(9))
    assert store.append(_event(10)).id == 8
    assert (verify(store.path).kind, verify(store.path).first_bad_id) == ("deleted", 5)


def test_retention_deletes_the_old_prefix_and_verify_starts_at_the_anchor(store: AuditStore) -> None:
    _filled(store, 6)  # days 0..5 after T0
    conn = sqlite3.connect(store.path)
    anchor = _row(conn, 3)
    deleted = store.apply_retention(3, now=T0 + timedelta(days=6))  # keeps ts >= T0 + 3 days
    assert deleted == 3
    assert [e.id for e in store.recent()] == [6, 5, 4]
    meta = dict(conn.execute("SELECT key, value FROM audit_meta").fetchall())
    assert (meta["anchor_id"], meta["anchor_hash"]) == ("3", anchor["hash"])
    assert "retention_unlock" not in meta
    conn.close()
    report = store.verify()
    assert (report.ok, report.rows_checked) == (True, 3)
    assert store.append(_event(7)).id == 7
    assert store.verify().ok
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):  # the unlock did not linger
        sqlite3.connect(store.path).execute("DELETE FROM audit_events")


def test_retention_of_everything_keeps_ids_and_chain_going(store: AuditStore) -> None:
    _filled(store, 4)
    assert store.apply_retention(1, now=T0 + timedelta(days=30)) == 4
    assert store.count() == 0
    assert store.verify() == verify(store.path)
    assert (store.verify().ok, store.verify().rows_checked) == (True, 0)
    assert store.append(_event(5, ts=T0 + timedelta(days=29, hours=12))).id == 5
    assert (store.verify().ok, store.verify().rows_checked) == (True, 1)
    assert store.apply_retention(1, now=T0 + timedelta(days=30)) == 0  # the new row is recent


def test_retention_only_deletes_a_prefix(store: AuditStore) -> None:
    store.append(_event(1, ts=T0))
    store.append(_event(2, ts=T0 + timedelta(days=10)))
    store.append(_event(3, ts=T0))  # an old timestamp after a new one: a clock step back
    assert store.apply_retention(5, now=T0 + timedelta(days=12)) == 1
    assert [e.id for e in store.recent()] == [3, 2]
    assert store.verify().ok


def test_editing_the_anchor_is_reported(store: AuditStore) -> None:
    _filled(store, 4)
    store.apply_retention(1, now=T0 + timedelta(days=3, hours=1))
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.execute("UPDATE audit_meta SET value = 'forged' WHERE key = 'anchor_hash'")
    report = store.verify()
    assert (report.ok, report.kind, report.first_bad_id) == (False, "edited", 4)
    assert "retention anchor" in report.problem


def test_the_chain_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    first = AuditStore(path)
    first.append_many([_event(i) for i in range(3)])
    first.close()
    second = AuditStore(path)
    assert second.append(_event(4)).id == 4
    assert (second.verify().ok, second.verify().rows_checked) == (True, 4)
    second.close()


def test_an_append_is_durable_before_it_returns(store: AuditStore) -> None:
    for i in range(5):
        written = store.append(_event(i, detail=f"row {i}"))
        other = sqlite3.connect(store.path)  # a new connection sees only committed data
        assert other.execute("SELECT detail FROM audit_events WHERE id = ?", [written.id]).fetchone() == (
            f"row {i}",
        )
        other.close()
    assert store.database.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_eight_threads_append_one_valid_chain(store: AuditStore) -> None:
    def writer(n: int) -> None:
        for i in range(200):
            store.append(_event(n, detail=f"{n}-{i}"))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 1600
    rows = store.database.db.execute("SELECT id, detail FROM audit_events ORDER BY id").fetchall()
    assert [r[0] for r in rows] == list(range(1, 1601))
    for n in range(8):  # each thread's rows are in its own order
        mine = [int(d.split("-")[1]) for _, d in rows if d.startswith(f"{n}-")]
        assert mine == list(range(200))
    report = store.verify()
    assert (report.ok, report.rows_checked) == (True, 1600)


def test_append_many_is_one_ordered_batch(store: AuditStore) -> None:
    store.append(_event(0))
    written = store.append_many([_event(i, detail=str(i)) for i in range(1, 4)])
    assert [(e.id, e.detail) for e in written] == [(2, "1"), (3, "2"), (4, "3")]
    assert store.append_many([]) == []
    assert store.append(_event(5)).id == 5
    assert store.verify().ok


def test_appending_inside_another_transaction_joins_it_instead_of_deadlocking(store: AuditStore) -> None:
    with store.database.transaction() as db:
        db.execute("INSERT INTO audit_meta (key, value) VALUES ('test', 'x')")
        assert store.append(_event(1)).id == 1
        assert store.append_many([_event(2)])[0].id == 2
    with store.database.lock:  # the lock without a transaction: a transaction of its own
        assert store.append(_event(3)).id == 3

    def failing_transaction() -> None:
        with store.database.transaction():
            store.append(_event(4))
            raise RuntimeError("the caller's transaction fails")

    with pytest.raises(RuntimeError):
        failing_transaction()
    assert [e.id for e in store.recent()] == [3, 2, 1]  # row 4 rolled back with it
    assert store.append(_event(5)).id == 4
    assert store.verify().ok


def test_concurrent_callers_share_one_commit_and_its_failure() -> None:
    calls: list[int] = []
    release = threading.Event()

    def write(rows: list[dict[str, Any]]) -> list[int]:
        calls.append(len(rows))
        if len(calls) == 1:
            release.wait(5)  # hold the first commit so the others queue behind it
            return [1]
        raise BackendUnavailable("audit database", "disk I/O error")

    commits = _GroupCommit(write)
    results: dict[str, object] = {}

    def submit(name: str) -> None:
        try:
            results[name] = commits.submit({"name": name})
        except BackendUnavailable as exc:
            results[name] = exc

    first = threading.Thread(target=submit, args=("a",))
    first.start()
    while not calls:
        time.sleep(0.001)
    others = [threading.Thread(target=submit, args=(n,)) for n in "bcd"]
    for t in others:
        t.start()
    deadline = time.monotonic() + 5
    while len(commits._queue) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    for t in [first, *others]:
        t.join(5)
    assert calls == [1, 3]  # b, c and d shared the second commit
    assert results["a"] == 1
    for name in "bcd":
        assert isinstance(results[name], BackendUnavailable)
        assert "disk I/O error" in str(results[name])


def test_append_on_a_closed_database_is_a_clear_error(tmp_path: Path) -> None:
    store = AuditStore(tmp_path / "audit.db")
    store.close()
    with pytest.raises(BackendUnavailable, match="database"):
        store.append(_event(1))


def test_verify_without_a_database_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="no database"):
        verify(tmp_path / "missing.db")
