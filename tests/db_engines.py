"""The store tests run on both engines: `any_database` is a migrated SQLite file or a fresh
PostgreSQL database (tests/pg_fixtures.py; skipped with the reason where PostgreSQL is missing,
never in CI). `open_again` opens a second handle on the same data, as a restart or a second
replica would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.store.db import Database
from services.store.opening import open_database
from services.store.sqlite import SqliteDatabase

ENGINES = ("sqlite", "postgresql")
Opener = Callable[[], Database]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_again(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Open (another handle on) this test's database; every handle is closed after the test."""
    opened: list[Database] = []
    if engine == "sqlite":

        def opener() -> Database:
            opened.append(SqliteDatabase(tmp_path / "bot.db"))
            return opened[-1]

    else:
        pg = request.getfixturevalue("postgres_db")

        def opener() -> Database:
            opened.append(open_database(pg.url, password=pg.password, pool_size=4))
            return opened[-1]

    yield opener
    for database in reversed(opened):
        database.close()


@pytest.fixture
def any_database(open_again: Opener) -> Database:
    return open_again()
