"""The audit store on a real SQLite file: WAL, migrations, append-only, survives reopening."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.audit.trail import MIGRATIONS, AuditEvent, AuditStore
from services.errors import BackendUnavailable
from services.redaction import Redactor


def _event(i: int = 0, **kw: object) -> AuditEvent:
    base: dict[str, object] = {"user_id": f"U{i}", "action": "sync", "outcome": "ok", "target": "api/prod"}
    base.update(kw)
    return AuditEvent(**base)  # type: ignore[arg-type]


def test_rows_have_every_column_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store = AuditStore(path)
    ts = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    written = store.append(
        AuditEvent(
            user_id="U0ALICE",
            user_name="alice",
            channel="C0DEPLOYS",
            command="sync api prod --prune",
            target="api/prod",
            action="sync",
            outcome="failed",
            detail="Argo CD main: connection refused",
            correlation_id="ab12cd34",
            duration_ms=812,
            ts=ts,
        )
    )
    assert written.id == 1
    store.close()
    reopened = AuditStore(path)
    [row] = reopened.recent()
    assert row == written
    reopened.close()


def test_wal_mode_and_migrations_are_versioned(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    AuditStore(path).close()
    store = AuditStore(path)  # second open must not re-run migrations
    assert store.schema_version == MIGRATIONS[-1][0]
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [m[0] for m in MIGRATIONS]
    conn.close()


def test_rows_cannot_be_updated_or_deleted(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store = AuditStore(path)
    store.append(_event())
    store.close()
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit_events SET outcome = 'ok'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit_events")
    conn.close()


def test_concurrent_appends_all_land(tmp_path: Path) -> None:
    store = AuditStore(tmp_path / "audit.db")

    def writer(offset: int) -> None:
        for i in range(50):
            store.append(_event(offset + i))

    threads = [threading.Thread(target=writer, args=(n * 100,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 200
    assert len({r.id for r in store.recent(limit=500)}) == 200
    store.close()


def test_filters_and_newest_first(tmp_path: Path) -> None:
    store = AuditStore(tmp_path / "audit.db")
    store.append(_event(1, target="api/dev"))
    store.append(_event(2, target="api/prod"))
    store.append(_event(1, target="api/prod"))
    assert [r.user_id for r in store.recent(target="api/prod")] == ["U1", "U2"]
    assert [r.target for r in store.recent(user_id="U1")] == ["api/prod", "api/dev"]
    store.close()


def test_secrets_in_command_text_are_redacted(tmp_path: Path) -> None:
    store = AuditStore(tmp_path / "audit.db", redact=Redactor(["hunter2-signing"]))
    row = store.append(_event(command="lock prod --reason 'xoxb-1234-5678-abcdef hunter2-signing'"))
    assert "xoxb-1234" not in row.command
    assert "hunter2-signing" not in row.command
    assert row.command.count("[REDACTED]") == 2
    store.close()


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BackendUnavailable, match="database"):
        AuditStore(blocker / "audit.db")
