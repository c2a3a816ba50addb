"""Open the database a `database.url` names: a SQLite path or a postgresql:// URL."""

from __future__ import annotations

from pathlib import Path

from services.store.db import Database
from services.store.sqlite import SqliteDatabase


def is_postgres(url: str | Path) -> bool:
    text = str(url)
    return "://" in text and text.split("://", 1)[0].lower() in ("postgresql", "postgres")


def open_database(
    url: str | Path,
    *,
    password: str | None = None,
    sslmode: str | None = None,
    ssl_root_cert: str | Path | None = None,
    pool_size: int = 10,
    connect_timeout: float = 5.0,
    migrate: bool = True,
) -> Database:
    """Connect and (unless `migrate` is False) bring the schema up to date."""
    if not is_postgres(url):
        return SqliteDatabase(Path(url), migrate=migrate)
    # Imported here: psycopg and its pool cost ~15 MB a SQLite-only bot never needs.
    from services.store.postgres import PgTarget, PostgresDatabase

    text = str(url)
    if text.lower().startswith("postgres://"):  # libpq accepts both; keep one spelling in messages
        text = "postgresql://" + text.split("://", 1)[1]
    target = PgTarget(
        url=text,
        password=password,
        sslmode=sslmode,
        ssl_root_cert=str(ssl_root_cert) if ssl_root_cert is not None else None,
        pool_size=pool_size,
        connect_timeout=connect_timeout,
    )
    return PostgresDatabase(target, migrate=migrate)
