"""Searching, paging and exporting the audit trail, and the `gitops-bot audit` commands."""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.audit_cli import EXIT_FAILED, EXIT_OK, EXIT_TAMPERED, add_audit_commands, run_audit_command
from bot.config import LoadedConfig, parse_config_text
from services.audit.chain import COLUMN_LIST, COLUMNS, row_hash
from services.audit.query import AuditQuery, TargetCatalog, export, matches_target, search
from services.audit.trail import AuditEvent, AuditStore

T0 = datetime(2026, 11, 1, tzinfo=UTC)
TARGETS = (
    "api/prod",
    "api/dev",
    "main/api-prod",
    "prod/flux-system/api",
    "prod",
    "prod/api",
    "web/prod",
    "apiserver/prod",
    "dev/flux-system/web",
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    s = AuditStore(tmp_path / "audit.db")
    yield s
    s.close()


def _fill(store: AuditStore, n: int = 90, *, targets: tuple[str, ...] = TARGETS) -> list[AuditEvent]:
    rnd = random.Random(7)  # noqa: S311 - test data, not secrets
    events = [
        AuditEvent(
            user_id=f"U{rnd.randrange(4)}",
            action=rnd.choice(("sync", "rollback", "lock")),
            outcome="ok",
            target=targets[i % len(targets)],
            ts=T0 + timedelta(hours=i),
        )
        for i in range(n)
    ]
    return store.append_many(events)


def _all_pages(store: AuditStore, q: AuditQuery) -> list[AuditEvent]:
    seen: list[AuditEvent] = []
    before: int | None = None
    while True:
        page = store.search(AuditQuery(**{**q.__dict__, "before_id": before}))
        seen += page.events
        assert len(page.events) <= q.limit
        if page.next_before_id is None:
            return seen
        assert page.next_before_id == page.events[-1].id
        before = page.next_before_id


def _expected(rows: list[AuditEvent], q: AuditQuery) -> list[int]:
    def keep(e: AuditEvent) -> bool:
        return (
            matches_target(e.target, app=q.app, env=q.env)
            and q.user_id in (None, e.user_id)
            and q.action in (None, e.action)
            and (q.since is None or (e.ts is not None and e.ts >= q.since))
        )

    ordered = sorted((e for e in rows if keep(e)), key=lambda e: (e.ts, e.id), reverse=True)
    return [e.id or 0 for e in ordered]


@pytest.mark.parametrize(
    ("app", "env", "expected"),
    [
        ("api", None, {"api/prod", "api/dev", "prod/flux-system/api", "prod/api"}),
        (
            None,
            "prod",
            {"api/prod", "prod/flux-system/api", "prod", "prod/api", "web/prod", "apiserver/prod"},
        ),
        ("api", "prod", {"api/prod", "prod/flux-system/api", "prod/api"}),
        ("web", "dev", {"dev/flux-system/web"}),
        ("api-prod", None, {"main/api-prod"}),  # an Argo CD app named by its full name
        ("ap", None, set()),
    ],
)
def test_app_and_env_match_target_shapes(app: str | None, env: str | None, expected: set[str]) -> None:
    assert {t for t in TARGETS if matches_target(t, app=app, env=env)} == expected


def test_filters_match_a_plain_scan_on_every_page(store: AuditStore) -> None:
    rows = _fill(store)
    since = T0 + timedelta(hours=30)
    queries = [
        AuditQuery(),
        AuditQuery(app="api", limit=7),
        AuditQuery(env="prod", limit=5),
        AuditQuery(app="api", env="prod", user_id="U1", limit=3),
        AuditQuery(user_id="U2", limit=4),
        AuditQuery(action="lock", since=since, limit=6),
        AuditQuery(app="web", since=since, action="sync"),
        AuditQuery(app="nothing"),
    ]
    for q in queries:
        assert [e.id for e in _all_pages(store, q)] == _expected(rows, q), q


def test_many_matching_targets_take_the_ts_walk_with_the_same_answer(store: AuditStore) -> None:
    targets = (*(f"prod/app{i}" for i in range(40)), "dev/app1")
    rows = _fill(store, 200, targets=targets)
    q = AuditQuery(env="prod", limit=9)
    assert [e.id for e in _all_pages(store, q)] == _expected(rows, q)
    plan = store.database.db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM audit_events"
        " WHERE 1 AND +target IN (SELECT value FROM json_each(?)) ORDER BY ts DESC, id DESC LIMIT 10",
        ["[]"],
    ).fetchall()
    assert not any("TEMP B-TREE" in str(step) for step in plan)


def test_newest_first_is_by_timestamp_then_id(store: AuditStore) -> None:
    store.append(
        AuditEvent(user_id="U1", action="sync", outcome="ok", target="api/prod", ts=T0 + timedelta(days=2))
    )
    store.append(AuditEvent(user_id="U1", action="sync", outcome="ok", target="api/prod", ts=T0))
    store.append(
        AuditEvent(user_id="U1", action="sync", outcome="ok", target="api/prod", ts=T0 + timedelta(days=2))
    )
    assert [e.id for e in store.search(AuditQuery(app="api")).events] == [3, 1, 2]
    page = store.search(AuditQuery(user_id="U1", limit=1, before_id=3))
    assert ([e.id for e in page.events], page.next_before_id) == ([1], 1)


def test_a_new_target_is_found_after_the_catalog_was_built(store: AuditStore) -> None:
    _fill(store, 10)
    assert store.search(AuditQuery(app="billing")).events == []
    store.append(AuditEvent(user_id="U1", action="sync", outcome="ok", target="billing/prod"))
    assert [e.target for e in store.search(AuditQuery(app="billing")).events] == ["billing/prod"]
    catalog = TargetCatalog()  # a fresh catalog and no catalog at all agree
    q = AuditQuery(env="prod")
    assert search(store.database, q, catalog=catalog) == search(store.database, q) == store.search(q)


def test_paging_past_a_row_retention_deleted_is_an_empty_page(store: AuditStore) -> None:
    _fill(store, 10)
    store.apply_retention(1, now=T0 + timedelta(hours=5, days=1))  # deletes hours 0..4
    assert store.search(AuditQuery(before_id=3)).events == []
    with pytest.raises(ValueError, match="limit"):
        store.search(AuditQuery(limit=0))


def test_user_and_app_pages_walk_an_index(store: AuditStore) -> None:
    db = store.database.db
    for sql, param in (
        ("SELECT * FROM audit_events WHERE 1 AND user_id = ? ORDER BY ts DESC, id DESC LIMIT 21", "U1"),
        ("SELECT * FROM audit_events WHERE 1 AND target = ? ORDER BY ts DESC, id DESC LIMIT 21", "api/prod"),
    ):
        plan = " ".join(str(step) for step in db.execute("EXPLAIN QUERY PLAN " + sql, [param]).fetchall())
        assert "USING INDEX" in plan
        assert "TEMP B-TREE" not in plan


def _export(store: AuditStore, fmt: str, since: datetime | None = None) -> str:
    out = io.StringIO()
    export(store.path, out, fmt, since=since)  # type: ignore[arg-type]
    return out.getvalue()


def test_export_csv_and_json_round_trip(store: AuditStore) -> None:
    store.append(
        AuditEvent(
            user_id="U1", action="sync", outcome="failed", detail='quote " comma, newline\nhere', ts=T0
        )
    )
    _fill(store, 5)
    conn = sqlite3.connect(store.path)
    stored = [
        dict(zip(COLUMNS, r, strict=True))
        for r in conn.execute(f"SELECT {COLUMN_LIST} FROM audit_events ORDER BY id")  # noqa: S608
    ]
    conn.close()
    parsed_json = json.loads(_export(store, "json"))
    assert parsed_json == stored
    assert all(row_hash(r, r["prev_hash"]) == r["hash"] for r in parsed_json)  # verifiable outside the bot
    parsed_csv = list(csv.DictReader(io.StringIO(_export(store, "csv"))))
    assert tuple(parsed_csv[0]) == COLUMNS
    assert parsed_csv == [{k: "" if v is None else str(v) for k, v in r.items()} for r in stored]


def test_export_since_and_empty(store: AuditStore) -> None:
    assert _export(store, "json") == "[]\n"
    assert _export(store, "csv").splitlines() == [",".join(COLUMNS)]
    _fill(store, 10)
    assert [r["id"] for r in json.loads(_export(store, "json", T0 + timedelta(hours=7)))] == [8, 9, 10]
    assert json.loads(_export(store, "json", T0 + timedelta(days=9))) == []


# --- the CLI -------------------------------------------------------------------------------


def _loaded(db: Path) -> LoadedConfig:
    return parse_config_text(f"audit:\n  database: {db}\n", environ={})


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gitops-bot")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config")
    add_audit_commands(parser.add_subparsers(dest="command"), common)
    return parser.parse_args(argv)


def _run(db: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_audit_command(_args(*argv), _loaded(db), out=out, err=err, now=T0 + timedelta(days=1))
    return code, out.getvalue(), err.getvalue()


def test_cli_verify_ok_then_tampered(store: AuditStore) -> None:
    _fill(store, 12)
    code, out, _ = _run(store.path, "audit", "verify")
    assert (code, out.splitlines()[0]) == (EXIT_OK, "audit trail OK: 12 rows")
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_events_no_update")
    conn.execute("UPDATE audit_events SET user_id = 'UMALLORY' WHERE id = 5")
    code, out, _ = _run(store.path, "audit", "verify")
    assert code == EXIT_TAMPERED
    assert out.startswith("audit trail BROKEN at row 5 (edited): row 5 was changed")


def test_cli_export_to_a_file(store: AuditStore, tmp_path: Path) -> None:
    _fill(store, 30)  # hours 0..29 after T0; "now" is T0 + 1 day
    target = tmp_path / "out.json"
    code, out, err = _run(
        store.path, "audit", "export", "--format", "json", "--since", "6h", "--output", str(target)
    )
    assert (code, out) == (EXIT_OK, "")
    assert [r["id"] for r in json.loads(target.read_text())] == list(range(19, 31))
    assert "wrote 12 audit rows" in err
    assert not list(tmp_path.glob(".*partial"))
    code, out, _ = _run(store.path, "audit", "export", "--format", "csv", "--since", "2026-11-02")
    assert code == EXIT_OK
    assert [r["id"] for r in csv.DictReader(io.StringIO(out))] == [str(i) for i in range(25, 31)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("audit", "export", "--format", "csv", "--since", "yesterday"), "Invalid time"),
        (("audit", "export", "--format", "csv", "--since", "2027-01-01"), "in the future"),
        (("audit", "export", "--format", "csv", "--output", "/nonexistent-dir/x.csv"), "cannot write"),
    ],
)
def test_cli_errors_exit_2(store: AuditStore, argv: tuple[str, ...], message: str) -> None:
    code, _, err = _run(store.path, *argv)
    assert code == EXIT_FAILED
    assert message in err


def test_cli_without_a_database_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    for argv in (("audit", "verify"), ("audit", "export", "--format", "json")):
        code, _, err = _run(missing, *argv)
        assert code == EXIT_FAILED
        assert "no database" in err
    assert not missing.exists()


def test_cli_format_is_required() -> None:
    with pytest.raises(SystemExit):
        _args("audit", "export")
    assert _args("audit", "export", "--format", "json").audit_format == "json"
    assert _args("audit", "verify", "--config", "x.yaml").config == "x.yaml"
