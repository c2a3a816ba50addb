"""The configured database (`database:` / `audit.database`), and `gitops-bot db migrate|check`.

`db migrate` applies what this release needs (the bot does the same on start; replicas starting
together, or a pre-upgrade Job beside them, apply each step once). `db check` changes nothing:
exit 0 when the schema serves this release (its version or a newer one: migrations only add), 1 when
it is behind, 2 when the database cannot be reached.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from bot.config import LoadedConfig
from services.errors import BackendUnavailable
from services.store.db import Database, Health
from services.store.opening import is_postgres, open_database

EXIT_OK, EXIT_BEHIND, EXIT_FAILED = 0, 1, 2


def open_state(loaded: LoadedConfig, *, migrate: bool = True, url: str | None = None) -> Database:
    """Open (and by default migrate) the database the configuration names, or `url` instead."""
    settings = loaded.settings.database
    target = url or loaded.settings.database_url
    secret = loaded.secrets.database_password
    postgres = is_postgres(target)
    return open_database(
        target,
        password=secret.get_secret_value() if secret is not None and postgres else None,
        sslmode=settings.sslmode if postgres else None,
        ssl_root_cert=settings.ssl_root_cert if postgres else None,
        pool_size=settings.pool_size,
        connect_timeout=float(settings.connect_timeout),
        migrate=migrate,
    )


def add_db_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common_parent: argparse.ArgumentParser
) -> None:
    db = subparsers.add_parser(
        "db", parents=[common_parent], help="migrate or check the database schema (database.url)"
    )
    actions = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    actions.add_parser("migrate", parents=[common_parent], help="apply pending schema migrations")
    actions.add_parser(
        "check", parents=[common_parent], help="exit 0 if the schema is current, 1 if not (changes nothing)"
    )


def run_db_command(args: argparse.Namespace, loaded: LoadedConfig, *, out: TextIO | None = None,
                   err: TextIO | None = None) -> int:  # fmt: skip
    out, err = out or sys.stdout, err or sys.stderr
    target = loaded.settings.database_url
    if args.db_command == "check" and not is_postgres(target) and not Path(target).exists():
        print(f"sqlite {target}: no database yet (the bot or `gitops-bot db migrate` creates it)", file=out)
        return EXIT_BEHIND
    try:
        database = open_state(loaded, migrate=False)
    except BackendUnavailable as exc:
        print(f"gitops-bot db: {exc}", file=err)
        return EXIT_FAILED
    try:
        if args.db_command == "migrate":
            applied = database.migrate()
            health = database.health()
            done = f"applied {_versions(applied)}" if applied else "nothing to apply"
            print(
                f"{health.engine} {health.location}: {done}; schema version {health.schema_version}", file=out
            )
            return EXIT_OK
        health = database.health()
        where = f"{health.engine} {health.location}"
        if not health.reachable:
            print(f"{where}: not writable: {health.detail}", file=out)
            return EXIT_FAILED
        if health.schema_version < health.required_version:
            print(
                f"{where}: schema version {health.schema_version}, this release needs "
                f"{health.required_version}: run `gitops-bot db migrate` (or start the bot)",
                file=out,
            )
            return EXIT_BEHIND
        newer = health.schema_version > health.required_version
        note = f" (a newer gitops-bot migrated it from {health.required_version}; this release works with it)"
        print(f"{where}: schema version {health.schema_version}, current{note if newer else ''}", file=out)
        return EXIT_OK
    except BackendUnavailable as exc:
        print(f"gitops-bot db: {exc}", file=err)
        return EXIT_FAILED
    finally:
        database.close()


def _versions(applied: list[int]) -> str:
    if len(applied) == 1:
        return f"migration {applied[0]}"
    return f"migrations {applied[0]}-{applied[-1]}"


def database_info(health: Health) -> dict[str, object]:
    info: dict[str, object] = {
        "engine": health.engine,
        "location": health.location,  # a path, or the URL without its password
        "reachable": health.reachable,
        "schema_version": health.schema_version,
        "required_version": health.required_version,
    }
    if health.detail:
        info["detail"] = health.detail
    return info
