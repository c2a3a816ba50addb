"""The database facade on both engines: the same schema, migrations safe for two replicas at once,
one audit chain with concurrent writers in two processes' worth of handles, append-only enforced by
the database, exactly-once claims across handles, and failures that name no secret."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.replicas import heartbeat
from services.audit.chain import AuditEvent, verify
from services.audit.trail import AuditStore
from services.errors import BackendUnavailable
from services.inflight import Inflight, InflightRequests
from services.pending import ButtonExpired, PendingActions
from services.store.db import Conflict, Database
from services.store.opening import open_database
from services.store.postgres import to_pyformat
from services.store.schema import LATEST
from services.store.sqlite import SqliteDatabase
from tests.db_engines import Opener
from tests.pgserver import PgDatabase


def _sqlite_shape(path: Path) -> dict[str, set[str]]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if r[0] != "sqlite_sequence"  # SQLite's own bookkeeping for AUTOINCREMENT
        ]
        shape = {t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables}
        indexes = {
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        }
    finally:
        conn.close()
    shape["<indexes>"] = indexes
    return shape


def _pg_shape(pg: PgDatabase) -> dict[str, set[str]]:
    shape: dict[str, set[str]] = {}
    with pg.connect() as conn:
        for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        ):
            shape.setdefault(table, set()).add(column)
        # Indexes the bot created (not those behind PRIMARY KEY / UNIQUE constraints, as in SQLite).
        shape["<indexes>"] = {
            r[0]
            for r in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
            )
        }
    return shape


def test_both_engines_build_the_same_tables_columns_and_indexes(
    tmp_path: Path, postgres_db: PgDatabase
) -> None:
    SqliteDatabase(tmp_path / "bot.db").close()
    pg = open_database(postgres_db.url, password=postgres_db.password)
    pg.close()
    sqlite_shape, pg_shape = _sqlite_shape(tmp_path / "bot.db"), _pg_shape(postgres_db)
    assert sqlite_shape == pg_shape
    assert {"audit_events", "pending_actions", "promotions", "incidents", "deployments"} <= set(pg_shape)


def test_two_replicas_migrating_one_new_database_at_once_apply_each_step_once(
    postgres_db: PgDatabase,
) -> None:
    opened: list[Database] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def replica() -> None:
        start.wait()
        try:
            opened.append(open_database(postgres_db.url, password=postgres_db.password, pool_size=2))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert errors == []
        assert [d.schema_version for d in opened] == [LATEST] * 4
        with postgres_db.connect() as conn:
            rows = conn.execute("SELECT version FROM schema_migrations").fetchall()
        assert rows == [(18,), (LATEST,)]  # the baseline and each later step, recorded once
    finally:
        for d in opened:
            d.close()


def test_concurrent_appends_from_two_replicas_form_one_valid_chain(open_again: Opener) -> None:
    replicas = [AuditStore(open_again()), AuditStore(open_again())]
    per_thread, threads_per_replica = 60, 4
    start = threading.Barrier(len(replicas) * threads_per_replica)

    def writer(store: AuditStore, n: int) -> None:
        start.wait()
        for i in range(per_thread):
            store.append(AuditEvent(user_id=f"U{n}", action="status", outcome="ok", target=f"app{i}/dev"))

    threads = [
        threading.Thread(target=writer, args=(store, r * threads_per_replica + k))
        for r, store in enumerate(replicas)
        for k in range(threads_per_replica)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    total = per_thread * len(threads)
    report = verify(replicas[0].database)
    assert report.ok, report.problem
    assert report.rows_checked == total
    assert report.head_id == total
    assert replicas[1].count() == total


def test_the_audit_table_refuses_updates_and_deletes_but_retention_still_works(
    any_database: Database,
) -> None:
    store = AuditStore(any_database)
    old = datetime(2026, 1, 1, tzinfo=UTC)
    for day in range(3):
        store.append(AuditEvent(user_id="U1", action="sync", outcome="ok", ts=old + timedelta(days=day)))
    for statement in ("UPDATE audit_events SET outcome = 'denied'", "DELETE FROM audit_events"):
        with pytest.raises(Conflict, match="append-only"), any_database.transaction() as tx:
            tx.execute(statement)
    assert store.count() == 3
    assert store.apply_retention(1, now=old + timedelta(days=2, hours=1)) == 2
    assert store.count() == 1
    assert verify(any_database).ok


def test_a_button_clicked_on_two_replicas_at_once_runs_once(open_again: Opener) -> None:
    first, second = PendingActions(open_again()), PendingActions(open_again())
    winners: list[str] = []
    refused: list[str] = []
    for round_ in range(20):
        action = first.create("sync", {"n": round_}, requester="UREQ", channel="C1", ttl=timedelta(minutes=5))
        start = threading.Barrier(2)

        def click(
            store: PendingActions, who: str, action_id: str = action.id, start: threading.Barrier = start
        ) -> None:
            start.wait()
            try:
                store.claim(action_id, kind="sync", by=who)
                winners.append(who)
            except ButtonExpired as exc:
                refused.append(exc.message)

        threads = [threading.Thread(target=click, args=(s, w)) for s, w in ((first, "UA"), (second, "UB"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert len(winners) == 20
    assert len(refused) == 20
    assert all(m.startswith("This was already done by <@U") for m in refused)


def test_a_handled_conflict_leaves_the_transaction_usable(any_database: Database) -> None:
    with any_database.transaction() as tx:
        tx.insert("audit_meta", {"key": "k", "value": "1"})
        with pytest.raises(Conflict), tx.savepoint():
            tx.insert("audit_meta", {"key": "k", "value": "2"})
        tx.insert("audit_meta", {"key": "other", "value": "3"})
    assert any_database.query("SELECT key, value FROM audit_meta ORDER BY key") == [
        {"key": "k", "value": "1"},
        {"key": "other", "value": "3"},
    ]


def test_after_commit_runs_after_the_commit_and_never_after_a_rollback(any_database: Database) -> None:
    heard: list[str] = []
    with any_database.transaction() as tx:
        tx.insert("audit_meta", {"key": "a", "value": "1"})
        any_database.after_commit(lambda: heard.append("committed"))
        pending = list(heard)
    assert pending == []

    def fails() -> None:
        with any_database.transaction():
            any_database.after_commit(lambda: heard.append("rolled back"))
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        fails()
    any_database.after_commit(lambda: heard.append("no transaction"))
    assert heard == ["committed", "no transaction"]


def test_a_wrong_password_is_a_clear_error_that_never_shows_a_password(postgres_db: PgDatabase) -> None:
    wrong = "not-the-password-Zq81"
    with pytest.raises(BackendUnavailable) as refused:
        open_database(postgres_db.url, password=wrong, connect_timeout=3)
    text = str(refused.value)
    assert "password authentication failed" in text
    assert postgres_db.url in text
    assert wrong not in text
    assert postgres_db.password not in text


def test_connections_the_server_dropped_are_replaced(postgres_db: PgDatabase) -> None:
    database = open_database(postgres_db.url, password=postgres_db.password, pool_size=2)
    try:
        store = AuditStore(database)
        store.append(AuditEvent(user_id="U1", action="sync", outcome="ok"))
        assert postgres_db.server.terminate_connections(postgres_db.name) >= 1
        # The pool checks a connection before handing it out: the next call just works.
        store.append(AuditEvent(user_id="U1", action="sync", outcome="ok"))
        assert store.count() == 2
        assert database.health().current
    finally:
        database.close()


def test_a_closed_database_refuses_writes_with_a_clear_error(any_database: Database) -> None:
    any_database.close()
    with pytest.raises(BackendUnavailable), any_database.transaction() as tx:
        tx.execute("SELECT 1")


def test_question_marks_become_placeholders_only_outside_quoted_text() -> None:
    sql = "SELECT '?', \"a?\" FROM t WHERE x = ? AND y LIKE '%a' AND z = ?"
    assert to_pyformat(sql) == "SELECT '?', \"a?\" FROM t WHERE x = %s AND y LIKE '%%a' AND z = %s"


def test_only_requests_of_replicas_that_went_silent_are_left_behind(open_again: Opener) -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    alive, dead, me = (InflightRequests(open_again(), owner=o) for o in ("pod-a", "pod-b", "pod-c"))
    alive.alive(now=now - timedelta(seconds=5))
    dead.alive(now=now - timedelta(minutes=5))
    for store, cid in ((alive, "req-a"), (dead, "req-b")):
        request = Inflight(correlation_id=cid, started_id=None, owner=store.owner, user_id="U1",
                           user_name="u", channel="C1", action="sync", command="sync web prod",
                           target="web/prod", accepted_at=now)  # fmt: skip
        store.add(request)
    silent = me.left_behind(silent_for=timedelta(seconds=60), now=now)
    assert [r.correlation_id for r in silent] == ["req-b"]
    # One process per database (SQLite): every other owner's request is left behind.
    assert [r.correlation_id for r in me.left_behind(now=now)] == ["req-a", "req-b"]
    alive.gone()  # a clean stop: from then on its (kept) requests are picked up by the others
    assert [r.correlation_id for r in me.left_behind(silent_for=timedelta(seconds=60), now=now)] == [
        "req-a",
        "req-b",
    ]


def test_the_leaders_heartbeat_closes_only_what_a_silent_replica_left(open_again: Opener) -> None:
    old = datetime.now(UTC) - timedelta(minutes=10)
    dead, leader = (
        InflightRequests(open_again(), owner="pod-dead"),
        InflightRequests(open_again(), owner="pod-lead"),
    )
    dead.alive(now=old)
    dead.add(Inflight(correlation_id="req-1", started_id=None, owner="pod-dead", user_id="U1", user_name="u",
                      channel="C1", action="sync", command="sync web prod", target="web/prod",
                      accepted_at=old))  # fmt: skip
    closed: list[list[str]] = []
    heartbeat(leader, None, lambda left: closed.append([r.correlation_id for r in left]))  # a follower
    assert closed == []
    heartbeat(leader, timedelta(seconds=60), lambda left: closed.append([r.correlation_id for r in left]))
    assert closed == [["req-1"]]
    assert {r["owner"] for r in open_again().query("SELECT owner FROM replicas")} == {"pod-dead", "pod-lead"}


def test_a_least_privilege_role_runs_on_what_the_owner_migrated(postgres_db: PgDatabase) -> None:
    # docs/deploy.md: the owner migrates; the bot's role may not create, update or delete audit rows.
    open_database(postgres_db.url, password=postgres_db.password).close()
    role = f"{postgres_db.name}_bot"
    postgres_db.server.create_role(role, "bot-pass-1")
    with postgres_db.connect(autocommit=True) as conn:
        conn.execute(f"GRANT CONNECT ON DATABASE {postgres_db.name} TO {role}")
        conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        conn.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {role}")
    bot = open_database(postgres_db.url.replace(f"{postgres_db.role}@", f"{role}@"), password="bot-pass-1")
    try:
        assert bot.health().current
        store = AuditStore(bot)
        store.append(AuditEvent(user_id="U1", action="sync", outcome="ok"))
        with pytest.raises(BackendUnavailable, match="permission denied"), bot.transaction() as tx:
            tx.execute("DELETE FROM audit_events")
        assert store.count() == 1
    finally:
        bot.close()  # the role goes with the throwaway server (it holds grants in this database)


def test_a_thread_holding_exclusive_appends_while_others_append(any_database: Database) -> None:
    # The shutdown path: exclusive() then audit rows, while request threads still append.
    store = AuditStore(any_database)
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            store.append(AuditEvent(user_id="U2", action="status", outcome="ok"))

    others = [threading.Thread(target=busy) for _ in range(3)]
    for t in others:
        t.start()
    finished = threading.Event()

    def shutdown() -> None:
        with any_database.exclusive():
            for _ in range(20):
                store.append(AuditEvent(user_id="U1", action="sync", outcome="unknown"))
        finished.set()

    closer = threading.Thread(target=shutdown)
    closer.start()
    closer.join(10)
    stop.set()
    for t in others:
        t.join(10)
    assert finished.is_set(), "appending inside exclusive() waited on another thread's write"
    assert verify(any_database).ok
