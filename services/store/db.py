"""The bot's database, on one of two engines: SQLite (the embedded default) or PostgreSQL (shared by
several replicas). Every store is written once against `Database` and `Tx` in SQL both engines
accept; the few spots where they differ ask `tx.dialect`.

- `transaction()`: a write transaction, serialised with every other writer (SQLite's BEGIN
  IMMEDIATE; on PostgreSQL one advisory lock, so read-then-write store logic stays correct across
  processes exactly as it is on one file). A transaction opened again on the same thread joins it.
- `read()`: consistent enough for a single query; inside this thread's transaction it reads that.
- `snapshot()`: one read-only transaction over many queries (audit verify and export).
- `after_commit()`: work that must follow this thread's commit (listeners, posts).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from services.errors import BackendUnavailable
from services.store.schema import LATEST

Dialect = Literal["sqlite", "postgresql"]


class Conflict(Exception):
    """A UNIQUE, PRIMARY KEY or other constraint refused the write (the transaction goes on)."""


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Tx(ABC):
    """One connection inside a transaction (or a single read). SQL uses `?` placeholders."""

    dialect: Dialect

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        """The rows changed, all statements together."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Every row as a dict keyed by column name."""

    @abstractmethod
    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows as tuples without loading them all (exports of the whole audit trail)."""

    @abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """Statements that may fail (a Conflict that is handled) go inside one, so the failure undoes
        only them: PostgreSQL aborts the whole transaction otherwise."""

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def insert(self, table: str, row: Mapping[str, Any]) -> None:
        self.execute(_insert_sql(table, row), list(row.values()))

    def insert_returning_id(self, table: str, row: Mapping[str, Any]) -> int:
        """INSERT one row, return the `id` the database generated for it."""
        return int(self.execute(_insert_sql(table, row) + " RETURNING id", list(row.values())).fetchone()[0])

    def unindexed(self, column: str) -> str:
        """`column` as SQLite's planner must not use its index for (the unary +); as is elsewhere."""
        return f"+{column}" if self.dialect == "sqlite" else column

    def json_members(self) -> str:
        """A subquery of the strings in one bound JSON array parameter."""
        if self.dialect == "sqlite":
            return "(SELECT value FROM json_each(?))"
        return "(SELECT json_array_elements_text(?::json))"


def _insert_sql(table: str, row: Mapping[str, Any]) -> str:
    # Table and column names come from the stores' own constants; values are bound parameters.
    return f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"  # noqa: S608


@dataclass(frozen=True)
class Health:
    """What /readyz and `db check` report."""

    engine: Dialect
    location: str  # a path, or a URL without the password
    reachable: bool
    schema_version: int
    required_version: int
    detail: str = ""

    @property
    def current(self) -> bool:
        """Usable by this release. Migrations only add (tables, columns, indexes), so a schema a
        newer release already migrated still serves this one during a rolling update."""
        return self.reachable and self.schema_version >= self.required_version


class Database(ABC):
    dialect: Dialect

    def __init__(self, location: str) -> None:
        self.location = location
        self._local = threading.local()

    # SQLite databases have a path (snapshots by file, the CLI's --database); PostgreSQL has none.
    path: Path | None = None

    @property
    @abstractmethod
    def schema_version(self) -> int: ...

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Tx]: ...

    @abstractmethod
    def read(self) -> AbstractContextManager[Tx]: ...

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[Tx]: ...

    def health(self) -> Health:
        try:
            version = self.schema_version
        except BackendUnavailable as exc:
            return Health(self.dialect, self.location, False, 0, LATEST, exc.message)
        return Health(self.dialect, self.location, self.is_writable(), version, LATEST)

    @abstractmethod
    def migrate(self) -> list[int]:
        """Apply pending migrations (safe when another process does the same); the versions applied."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def exclusive(self) -> AbstractContextManager[None]:
        """Only this thread writes while the body runs (other threads wait, or fail once it closes
        the database): the last rows before a shutdown are the last rows."""

    def is_writable(self) -> bool:
        """For /readyz: open a write transaction and let it go without changing anything."""
        try:
            with self.transaction():
                return True
        except Exception:  # any failure means "not ready", whatever the driver raised
            return False

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.read() as tx:
            return tx.query(sql, params)

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self.read() as tx:
            return tx.scalar(sql, params)

    def in_transaction(self) -> bool:
        """Whether this thread has a write transaction open."""
        return getattr(self._local, "tx", None) is not None

    def busy_here(self) -> bool:
        """Whether this thread holds what another thread's write would wait for."""
        return self.in_transaction()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this thread's open transaction commits (never if it rolls back); at
        once when none is open. It must not raise."""
        pending = getattr(self._local, "after", None)
        if pending is None:
            callback()
        else:
            pending.append(callback)

    @contextmanager
    def _track(self, tx: Tx) -> Iterator[list[Callable[[], None]]]:
        """Mark `tx` as this thread's transaction while the body runs; yields the after-commit list."""
        callbacks: list[Callable[[], None]] = []
        self._local.tx, self._local.after = tx, callbacks
        try:
            yield callbacks
        finally:
            self._local.tx, self._local.after = None, None

    def _joined(self) -> Tx | None:
        tx = getattr(self._local, "tx", None)
        return tx if isinstance(tx, Tx) else None


def run_callbacks(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        callback()
