"""PostgreSQL through psycopg 3 and its pool: the store several replicas share.

Writers serialise on one transaction-level advisory lock, as they do on SQLite's single writer, so
every store's read-then-write logic stays correct across processes without per-store locking; reads
take no lock. Migrations run under a session-level advisory lock: replicas starting together apply
each step once. The password comes from the environment and never appears in `location`, logs or
errors.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import uuid4

import psycopg
import psycopg_pool

from services.errors import BackendUnavailable
from services.store.db import Conflict, Cursor, Database, Tx, run_callbacks
from services.store.schema_pg import PG_MIGRATIONS

# pg_advisory_*lock keys: arbitrary constants, the same in every replica.
WRITE_LOCK = 0x6769_746F_7073_01  # "gitops" + 1
MIGRATE_LOCK = 0x6769_746F_7073_02


@dataclass(frozen=True)
class PgTarget:
    url: str  # postgresql://user@host:port/db, never with a password
    password: str | None = None
    sslmode: str | None = None
    ssl_root_cert: str | None = None
    pool_size: int = 10
    connect_timeout: float = 5.0


@lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """`?` placeholders to psycopg's `%s` (and a literal `%` to `%%`), outside quoted text."""
    out: list[str] = []
    for part in re.split(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\")", sql):
        if part.startswith(("'", '"')):
            out.append(part.replace("%", "%%"))
        else:
            out.append(part.replace("%", "%%").replace("?", "%s"))
    return "".join(out)


def _params(params: Sequence[Any]) -> list[Any]:
    # The schema stores flags as INTEGER (as SQLite does); psycopg would send a Python bool as boolean.
    return [int(p) if isinstance(p, bool) else p for p in params]


class PgTx(Tx):
    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any], scrub: str | None) -> None:
        self.conn = conn
        self._scrub = scrub

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            if params:
                return self.conn.execute(to_pyformat(sql).encode(), _params(params))
            return self.conn.execute(sql.encode())
        except psycopg.errors.IntegrityError as exc:
            raise Conflict(self._text(exc)) from exc
        except psycopg.Error as exc:
            raise BackendUnavailable("database", self._text(exc)) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        try:
            with self.conn.cursor() as cur:
                cur.executemany(to_pyformat(sql).encode(), [_params(r) for r in rows])
                return max(cur.rowcount, 0)
        except psycopg.errors.IntegrityError as exc:
            raise Conflict(self._text(exc)) from exc
        except psycopg.Error as exc:
            raise BackendUnavailable("database", self._text(exc)) from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.execute(sql, params)
        names = [d.name for d in getattr(cursor, "description", None) or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        # A server-side cursor: rows arrive in batches, never all at once.
        try:
            with self.conn.cursor(name=f"stream_{uuid4().hex[:12]}") as cur:
                cur.itersize = 2000
                cur.execute(to_pyformat(sql).encode(), _params(params))
                yield from cur
        except psycopg.Error as exc:
            raise BackendUnavailable("database", self._text(exc)) from exc

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        with self.conn.transaction():  # nested inside the open transaction: a SAVEPOINT
            yield

    def _text(self, exc: BaseException) -> str:
        return scrub(str(exc).strip(), self._scrub)


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, target: PgTarget, *, migrate: bool = True) -> None:
        super().__init__(target.url)
        self._secret = target.password
        # Writers already take turns on the advisory lock; taking them here first as well costs no
        # concurrency, keeps waiting writers from holding pool connections, and lets exclusive() work.
        self._gate = threading.RLock()
        self._closed = False
        kwargs: dict[str, Any] = {
            "connect_timeout": max(1, int(target.connect_timeout)),
            "application_name": "gitops-bot",
            "autocommit": True,
        }
        if target.password is not None:
            kwargs["password"] = target.password
        if target.sslmode:
            kwargs["sslmode"] = target.sslmode
        if target.ssl_root_cert:
            kwargs["sslrootcert"] = target.ssl_root_cert
        self._pool = psycopg_pool.ConnectionPool(
            target.url,
            kwargs=kwargs,
            min_size=1,
            max_size=max(2, target.pool_size),
            timeout=target.connect_timeout * 2,
            check=psycopg_pool.ConnectionPool.check_connection,
            name="gitops-bot",
            open=False,
        )
        try:
            # One plain connection first: the pool would only log why it cannot connect and time out.
            psycopg.connect(target.url, **kwargs).close()
            self._pool.open(wait=True, timeout=target.connect_timeout * 2)
            if migrate:
                self.migrate()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self._pool.close()
            raise BackendUnavailable("database", f"cannot use {target.url}: {self._text(exc)}") from exc
        except BaseException:
            self._pool.close()
            raise

    @property
    def schema_version(self) -> int:
        with self.read() as tx:
            return _version(tx)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        joined = self._joined()
        if joined is not None:
            yield joined
            return
        with self._gate:
            if self._closed:
                raise BackendUnavailable("database", "the database is closed (the bot is stopping)")
            with self._connection() as conn:
                tx = PgTx(conn, self._secret)
                try:
                    with conn.transaction(), self._track(tx) as callbacks:
                        tx.execute("SELECT pg_advisory_xact_lock(?)", [WRITE_LOCK])
                        yield tx
                except psycopg.Error as exc:  # COMMIT itself failed (connection lost, serialization)
                    raise BackendUnavailable("database", self._text(exc)) from exc
        run_callbacks(callbacks)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._gate:
            yield

    def busy_here(self) -> bool:
        # Holding the gate (a transaction, or exclusive()): a write handed to another thread would
        # wait for this one. RLock._is_owned is what threading.Condition relies on.
        owned = getattr(self._gate, "_is_owned", None)
        return bool(owned()) if owned is not None else self.in_transaction()

    @contextmanager
    def read(self) -> Iterator[Tx]:
        joined = self._joined()
        if joined is not None:
            yield joined
            return
        with self._connection() as conn:
            yield PgTx(conn, self._secret)

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        with self._connection() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield PgTx(conn, self._secret)
            finally:
                conn.execute("ROLLBACK")

    def migrate(self) -> list[int]:
        applied: list[int] = []
        with self._connection() as conn:
            tx = PgTx(conn, self._secret)
            tx.execute("SELECT pg_advisory_lock(?)", [MIGRATE_LOCK])
            try:
                # Look before creating: a role that may not create (the owner migrates) opens a
                # current database without any DDL.
                if tx.scalar("SELECT to_regclass('schema_migrations')") is None:
                    tx.execute(
                        "CREATE TABLE schema_migrations "
                        "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
                    )
                current = _version(tx)
                for version, description, statements in PG_MIGRATIONS:
                    if version <= current:
                        continue
                    with conn.transaction():
                        for statement in statements:
                            tx.execute(statement)
                        tx.execute(
                            "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                            [version, description, datetime.now(UTC).isoformat()],
                        )
                    applied.append(version)
            finally:
                tx.execute("SELECT pg_advisory_unlock(?)", [MIGRATE_LOCK])
        return applied

    def close(self) -> None:
        with self._gate:
            self._closed = True
        self._pool.close()

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg_pool.PoolTimeout as exc:
            raise BackendUnavailable(
                "database", f"no connection to {self.location}: {self._text(exc)}"
            ) from exc
        except psycopg.OperationalError as exc:
            raise BackendUnavailable("database", self._text(exc)) from exc

    def _text(self, exc: BaseException) -> str:
        return scrub(str(exc).strip(), self._secret)


def _version(tx: Tx) -> int:
    if tx.scalar("SELECT to_regclass('schema_migrations')") is None:
        return 0  # never migrated (db check looks without creating anything)
    return int(tx.scalar("SELECT coalesce(max(version), 0) FROM schema_migrations") or 0)
