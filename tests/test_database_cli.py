"""`database:` in the configuration, `gitops-bot db migrate|check`, `audit verify` on PostgreSQL,
and what /readyz says about the database — as an operator runs them."""

from __future__ import annotations

import contextlib
import io
import json
import urllib.request
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, parse_config_text
from services.audit.chain import AuditEvent
from services.audit.trail import AuditStore
from services.store.opening import open_database
from services.store.schema import LATEST
from tests.conftest import BotFactory
from tests.pgserver import PgDatabase


def run_cli(config: Path, *argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--config", str(config), *argv], environ=environ or {})
    return code, out.getvalue(), err.getvalue()


def pg_config(tmp_path: Path, pg: PgDatabase) -> Path:
    path = tmp_path / "gitops-bot.yaml"
    path.write_text(f"database:\n  url: {pg.url}\n  password_env: GITOPS_BOT_DATABASE_PASSWORD\n")
    return path


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("url: postgresql://bot:hunter2@db:5432/bot", "contains a password: remove it from the URL"),
        ("url: mysql://bot@db/bot", "'mysql://' is not supported"),
        ("url: postgresql://db:5432/bot", "needs a user name"),
        ("url: postgresql://bot@db:5432", "needs a host and a database name"),
        ("url: /data/bot.db\n  sslmode: require", "sslmode applies only to a postgresql:// url"),
        ("url: postgresql://bot@db/bot\n  sslmode: sometimes", "database.sslmode"),
    ],
)
def test_bad_database_settings_are_refused_with_the_reason(section: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config_text(f"database:\n  {section}\n", environ={})
    assert message in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_the_password_is_read_from_the_environment_and_kept_secret() -> None:
    loaded = parse_config_text(
        "database:\n  url: postgresql://bot@db.internal:5432/bot\n  password_env: DB_PASS\n"
        "  sslmode: verify-full\n",
        environ={"DB_PASS": "s3cret-value"},
    )
    assert loaded.settings.database_url == "postgresql://bot@db.internal:5432/bot"
    assert loaded.secrets.database_password is not None
    assert "s3cret-value" in loaded.secrets.values()  # scrubbed from every log line
    assert "s3cret-value" not in repr(loaded.secrets)
    assert "s3cret-value" not in repr(loaded.settings)


def test_audit_database_stays_the_default_sqlite_path(tmp_path: Path) -> None:
    loaded = parse_config_text(f"audit:\n  database: {tmp_path / 'a.db'}\n", environ={})
    assert loaded.settings.database_url == str(tmp_path / "a.db")


def test_db_check_then_migrate_then_check_on_postgresql(tmp_path: Path, postgres_db: PgDatabase) -> None:
    config, env = pg_config(tmp_path, postgres_db), postgres_db.environ()
    code, out, _ = run_cli(config, "db", "check", environ=env)
    assert code == 1
    assert f"schema version 0, this release needs {LATEST}: run `gitops-bot db migrate`" in out
    code, out, _ = run_cli(config, "db", "migrate", environ=env)
    assert (code, out.strip()) == (
        0,
        f"postgresql {postgres_db.url}: applied migrations 18-{LATEST}; schema version {LATEST}",
    )
    code, out, _ = run_cli(config, "db", "migrate", environ=env)
    assert "nothing to apply" in out
    code, out, err = run_cli(config, "db", "check", environ=env)
    assert (code, out.strip()) == (0, f"postgresql {postgres_db.url}: schema version {LATEST}, current")
    assert postgres_db.password not in out + err


def test_db_check_on_sqlite_creates_nothing(tmp_path: Path) -> None:
    config = tmp_path / "gitops-bot.yaml"
    config.write_text(f"audit:\n  database: {tmp_path / 'state.db'}\n")
    code, out, _ = run_cli(config, "db", "check")
    assert code == 1
    assert "no database yet" in out
    assert not (tmp_path / "state.db").exists()
    assert run_cli(config, "db", "migrate")[0] == 0
    code, out, _ = run_cli(config, "db", "check")
    assert (code, out.strip()) == (0, f"sqlite {tmp_path / 'state.db'}: schema version {LATEST}, current")


def test_db_commands_name_an_unreachable_server_without_the_password(
    tmp_path: Path, postgres_db: PgDatabase
) -> None:
    config = pg_config(tmp_path, postgres_db)
    code, _, err = run_cli(config, "db", "check", environ={"GITOPS_BOT_DATABASE_PASSWORD": "wrong-Pw-31"})
    assert code == 2
    assert "password authentication failed" in err
    assert "wrong-Pw-31" not in err


def test_audit_verify_and_export_read_the_postgresql_trail(tmp_path: Path, postgres_db: PgDatabase) -> None:
    database = open_database(postgres_db.url, password=postgres_db.password)
    try:
        store = AuditStore(database)
        for n in range(5):
            store.append(AuditEvent(user_id="U1", action="sync", outcome="ok", target=f"app{n}/prod"))
    finally:
        database.close()
    config, env = pg_config(tmp_path, postgres_db), postgres_db.environ()
    code, out, _ = run_cli(config, "audit", "verify", environ=env)
    assert (code, out.splitlines()[0]) == (0, "audit trail OK: 5 rows")
    code, out, _ = run_cli(config, "audit", "export", "--format", "json", environ=env)
    assert code == 0
    assert [r["target"] for r in json.loads(out)] == [f"app{n}/prod" for n in range(5)]
    with postgres_db.connect(autocommit=True) as conn:  # the owner bypasses the bot: drop the guard
        conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update")
        conn.execute("UPDATE audit_events SET user_id = 'UMALLORY' WHERE id = 3")
    code, out, _ = run_cli(config, "audit", "verify", environ=env)
    assert code == 1
    assert out.startswith("audit trail BROKEN at row 3 (edited)")


def test_audit_verify_reads_an_old_sqlite_file_named_with_database(
    tmp_path: Path, postgres_db: PgDatabase
) -> None:
    old = tmp_path / "old.db"
    store = AuditStore(old)
    store.append(AuditEvent(user_id="U1", action="sync", outcome="ok"))
    store.close()
    config, env = pg_config(tmp_path, postgres_db), postgres_db.environ()
    code, out, _ = run_cli(config, "audit", "verify", "--database", str(old), environ=env)
    assert (code, out.splitlines()[0]) == (0, "audit trail OK: 1 rows")


def test_readyz_reports_the_database_and_its_schema_version(bot: BotFactory) -> None:
    runtime, _ = bot()
    with urllib.request.urlopen(f"http://127.0.0.1:{runtime.server.port}/readyz", timeout=15) as reply:
        ready = json.loads(reply.read())
    assert ready["checks"]["database"] is True
    database = ready["database"]
    assert database["engine"] in ("sqlite", "postgresql")
    assert (database["schema_version"], database["required_version"]) == (LATEST, LATEST)
    assert database["reachable"] is True
    assert ready["leader"] is True
