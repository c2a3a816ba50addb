"""Pytest fixtures for a real PostgreSQL: one throwaway server per run, one fresh database per test.

Locally the PostgreSQL tests skip (with the reason) where the server binaries are missing; with
GITOPS_BOT_REQUIRE_POSTGRES=1 (CI sets it) they fail instead, so CI never skips them silently.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator

import pytest

from tests.pgserver import PgDatabase, PostgresServer, available

REQUIRE_ENV = "GITOPS_BOT_REQUIRE_POSTGRES"

_names = itertools.count(1)


def postgres_required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The run's PostgreSQL server, started the first time a test asks for it."""
    reason = available()
    if reason is not None:
        if postgres_required():
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1: the PostgreSQL tests must run here)")
        pytest.skip(reason)
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> Iterator[PgDatabase]:
    """A fresh, empty database and its owner role (a login role, not superuser), dropped after."""
    name = f"t_{next(_names)}_{os.getpid()}"  # pid: unique across parallel pytest processes
    role = f"{name}_owner"
    password = secrets.token_urlsafe(12)
    url = postgres_server.create_database(name, role, password)
    try:
        yield PgDatabase(url=url, password=password, name=name, server=postgres_server, role=role)
    finally:
        postgres_server.drop_database(name)
        postgres_server.drop_role(role)
