"""The bot's one SQLite database: WAL mode, versioned migrations, one connection behind a lock.

Every store (audit, pending buttons, holds, later locks and incidents) shares this file so a
restart finds everything in one place.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from services.errors import BackendUnavailable
from services.store.schema import MIGRATIONS


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, timeout=10, isolation_level=None)
            self.db = sqlite_utils.Database(conn)
            self.db.enable_wal()
            # FULL: a row acknowledged to a user (audit, approval) must survive a power cut.
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailable("database", f"cannot open {path}: {exc}") from exc
        self._closed = False
        self._after_commit: list[Callable[[], None]] = []

    @property
    def schema_version(self) -> int:
        with self.lock:
            return self._version()

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """BEGIN IMMEDIATE … COMMIT under the lock; sqlite errors become BackendUnavailable."""
        with self.lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise BackendUnavailable("database", str(exc)) from exc
            self._after_commit = []
            try:
                yield self.db
            except BaseException:
                self._after_commit = []
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")
                committed, self._after_commit = self._after_commit, []
        for callback in committed:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the transaction this thread has open commits, after `transaction()`
        lets go of the lock (never if it rolls back); at once when none is open. It must not raise."""
        with self.lock:
            if self.db.conn.in_transaction:
                self._after_commit.append(callback)
                return
        callback()

    def is_writable(self) -> bool:
        """For /readyz: take the write lock and release it without changing anything."""
        try:
            with self.lock:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute("ROLLBACK")
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        with self.lock:
            if not self._closed:
                self._closed = True
                self.db.close()

    def _version(self) -> int:
        row = self.db.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def _migrate(self) -> None:
        with self.lock:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            current = self._version()
            for version, description, step in MIGRATIONS:
                if version <= current:
                    continue
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    step(self.db)
                    self.db.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        [version, description, datetime.now(UTC).isoformat()],
                    )
                    self.db.execute("COMMIT")
                except Exception:
                    self.db.execute("ROLLBACK")
                    raise
