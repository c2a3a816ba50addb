"""`gitops-bot audit export|verify`: the audit trail for auditors and operators, without Slack.

Both read the configured database (`database.url`, else `audit.database`), or the one `--database`
names (a SQLite file left from before a move to PostgreSQL, say), through a read-only snapshot, so
they are safe to run while the bot is writing. Exit codes: 0 done / chain intact, 1 the chain is broken
(verify), 2 could not run (no database, unreadable, bad --since, output not writable).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.config import LoadedConfig
from bot.database import open_state
from services.audit.chain import verify
from services.audit.query import ExportFormat, export
from services.errors import BackendUnavailable, UserError
from services.store.db import Database
from services.store.opening import is_postgres
from services.validation import since as parse_since

EXIT_OK, EXIT_TAMPERED, EXIT_FAILED = 0, 1, 2


def add_audit_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common_parent: argparse.ArgumentParser
) -> None:
    audit = subparsers.add_parser(
        "audit", parents=[common_parent], help="export or verify the audit trail (read-only)"
    )
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    which = argparse.ArgumentParser(add_help=False)
    which.add_argument(
        "--database",
        metavar="PATH|URL",
        dest="audit_database",
        default=argparse.SUPPRESS,
        help="read this SQLite file or postgresql:// URL instead of the configured database",
    )
    exporter = actions.add_parser(
        "export", parents=[common_parent, which], help="write audit rows as CSV or a JSON array, oldest first"
    )
    exporter.add_argument(
        "--format",
        choices=("csv", "json"),
        required=True,
        dest="audit_format",
        help="CSV with a header row, or a JSON array",
    )
    exporter.add_argument(
        "--since",
        metavar="WHEN",
        dest="audit_since",
        help="only rows from then on: `7d`, `12h` or `2026-11-01`",
    )
    exporter.add_argument(
        "--output", metavar="FILE", dest="audit_output", help="write to FILE (default: standard output)"
    )
    actions.add_parser(
        "verify",
        parents=[common_parent, which],
        help="check the hash chain; exit 1 on the first tampered row",
    )


def run_audit_command(
    args: argparse.Namespace,
    loaded: LoadedConfig,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    now: datetime | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    target = getattr(args, "audit_database", None) or loaded.settings.database_url
    opened: Database | None = None
    try:
        # A SQLite file is read through its own read-only connection (never created or migrated).
        opened = open_state(loaded, migrate=False, url=target) if is_postgres(target) else None
        database: Database | Path = opened if opened is not None else Path(target)
        if args.audit_command == "verify":
            return _verify(database, out)
        since = parse_since(args.audit_since, now or datetime.now(UTC)) if args.audit_since else None
        return _export(database, args.audit_format, since, args.audit_output, out, err)
    except UserError as exc:
        print(f"gitops-bot audit: {exc.message}", file=err)
    except BackendUnavailable as exc:
        print(f"gitops-bot audit: {exc}", file=err)
    except OSError as exc:
        print(f"gitops-bot audit: cannot write {exc.filename or 'the output'}: {exc.strerror}", file=err)
    finally:
        if opened is not None:
            opened.close()
    return EXIT_FAILED


def _verify(database: Database | Path, out: TextIO) -> int:
    report = verify(database)
    if report.ok:
        print(f"audit trail OK: {report.rows_checked} rows", file=out)
        print(f"newest row: {report.head_id}, hash {report.head_hash}", file=out)
        return EXIT_OK
    print(f"audit trail BROKEN at row {report.first_bad_id} ({report.kind}): {report.problem}", file=out)
    print(f"{report.rows_checked} rows before it are intact", file=out)
    return EXIT_TAMPERED


def _export(
    database: Database | Path,
    fmt: ExportFormat,
    since: datetime | None,
    output: str | None,
    out: TextIO,
    err: TextIO,
) -> int:
    if output is None:
        export(database, out, fmt, since=since)
        out.flush()
        return EXIT_OK
    target = Path(output)
    # Write beside the target and rename: an interrupted export never leaves a half file behind.
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as fh:
            count = export(database, fh, fmt, since=since)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    print(f"wrote {count} audit rows to {target}", file=err)
    return EXIT_OK
