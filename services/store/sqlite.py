"""SQLite: one file, WAL mode, one connection behind a lock; the embedded default.

Plain sqlite3 at run time: the bot needs nothing more here, and importing sqlite-utils would also
import numpy where it is installed (~25 MB of an idle bot).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.errors import BackendUnavailable
from services.store.db import Conflict, Cursor, Database, Tx, run_callbacks
from services.store.schema import MIGRATIONS


class SqliteTx(Tx):
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from exc
        except sqlite3.Error as exc:
            raise BackendUnavailable("database", str(exc)) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        try:
            return self.conn.executemany(sql, rows).rowcount
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from exc
        except sqlite3.Error as exc:
            raise BackendUnavailable("database", str(exc)) from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.execute(sql, params)
        names = [d[0] for d in getattr(cursor, "description", None) or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        cursor = self.execute(sql, params)
        yield from iter(cursor.fetchone, None)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        self.conn.execute("SAVEPOINT stmt")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK TO stmt")
            self.conn.execute("RELEASE stmt")
            raise
        self.conn.execute("RELEASE stmt")


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, path: Path, *, migrate: bool = True) -> None:
        super().__init__(str(path))
        self.path = self.file = path
        self.lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, timeout=10, isolation_level=None)
            self.db = conn
            self.db.execute("PRAGMA journal_mode=wal")
            # FULL: a row acknowledged to a user (audit, approval) must survive a power cut.
            self.db.execute("PRAGMA synchronous=FULL")
            if migrate:
                self.migrate()
            else:
                self._ensure_migrations_table()
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailable("database", f"cannot open {path}: {exc}") from exc
        self._tx = SqliteTx(conn)
        self._closed = False

    @property
    def schema_version(self) -> int:
        with self.lock:
            try:
                return self._version()
            except sqlite3.Error as exc:
                raise BackendUnavailable("database", str(exc)) from exc

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """BEGIN IMMEDIATE … COMMIT under the lock; joins this thread's open transaction."""
        joined = self._joined()
        if joined is not None:
            yield joined
            return
        with self.lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise BackendUnavailable("database", str(exc)) from exc
            with self._track(self._tx) as callbacks:
                try:
                    yield self._tx
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
                self.db.execute("COMMIT")
        run_callbacks(callbacks)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.lock:
            yield self._tx

    @contextmanager
    def snapshot(self) -> Iterator[Tx]:
        """A read-only connection in one read transaction: a consistent view that never blocks appends."""
        with file_snapshot(self.file) as tx:
            yield tx

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self.lock:
            yield

    def busy_here(self) -> bool:
        # RLock._is_owned is what threading.Condition itself relies on; absent, assume not held.
        owned = getattr(self.lock, "_is_owned", None)
        return bool(owned()) if owned is not None else self.in_transaction()

    def migrate(self) -> list[int]:
        applied: list[int] = []
        with self.lock:
            self._ensure_migrations_table()
            for version, description, step in MIGRATIONS:
                # BEGIN IMMEDIATE, then look: another process migrating the same file waits here.
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    if version > self._version():
                        step(self.db)
                        self.db.execute(
                            "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                            [version, description, datetime.now(UTC).isoformat()],
                        )
                        applied.append(version)
                    self.db.execute("COMMIT")
                except Exception:
                    self.db.execute("ROLLBACK")
                    raise
        return applied

    def close(self) -> None:
        with self.lock:
            if not self._closed:
                self._closed = True
                self.db.close()

    def _ensure_migrations_table(self) -> None:
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )

    def _version(self) -> int:
        row = self.db.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)


@contextmanager
def file_snapshot(path: Path) -> Iterator[Tx]:
    """A read-only view of a database file the bot may not have open (the audit CLI's --database)."""
    if not path.is_file():
        raise BackendUnavailable("audit database", f"no database at {path}")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise BackendUnavailable("audit database", f"cannot open {path}: {exc}") from exc
    with closing(conn):
        try:
            conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise BackendUnavailable("audit database", f"cannot read {path}: {exc}") from exc
        yield SqliteTx(conn)
