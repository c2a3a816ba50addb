"""The throwaway PostgreSQL harness: a real server, real roles and databases, real TCP + SCRAM."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.pgserver import PgDatabase, PostgresServer

# tests.pg_fixtures: also in conftest's pytest_plugins; named here so this module runs on its own.
pytest_plugins = ["pytester", "tests.pg_fixtures"]


def test_the_server_answers(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.admin_url()) as conn:
        row = conn.execute("SELECT version(), current_setting('fsync'), current_setting('max_connections')")
        version, fsync, max_connections = row.fetchone() or ("", "", "")
    assert version.startswith("PostgreSQL ")
    assert (fsync, max_connections) == ("off", "200")


def test_the_url_carries_no_password_and_points_at_the_server(postgres_db: PgDatabase) -> None:
    parts = urlsplit(postgres_db.url)
    assert parts.scheme == "postgresql"
    assert parts.password is None
    assert (parts.username, parts.hostname, parts.port) == (
        postgres_db.role,
        "127.0.0.1",
        postgres_db.server.port,
    )
    assert parts.path == f"/{postgres_db.name}"
    assert postgres_db.environ() == {"GITOPS_BOT_DATABASE_PASSWORD": postgres_db.password}


def test_the_owner_logs_in_over_tcp_with_its_password(postgres_db: PgDatabase) -> None:
    with psycopg.connect(postgres_db.url, password=postgres_db.password) as conn:
        row = conn.execute(
            "SELECT current_user, current_database(), host(inet_server_addr()), rolsuper"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        # The database is empty and the owner may create in it.
        conn.execute("CREATE TABLE probe (id integer PRIMARY KEY)")
        conn.execute("INSERT INTO probe VALUES (1)")
        assert conn.execute("SELECT count(*) FROM probe").fetchone() == (1,)
    assert row == (postgres_db.role, postgres_db.name, "127.0.0.1", False)


def test_a_wrong_or_missing_password_is_refused(postgres_db: PgDatabase) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(postgres_db.url, password="not-" + postgres_db.password).close()
    with pytest.raises(psycopg.OperationalError, match=r"no password supplied|password authentication"):
        psycopg.connect(postgres_db.url, password="").close()


def test_tls_with_the_servers_ca_passes_verify_full(postgres_db: PgDatabase, tmp_path: Path) -> None:
    ca_file = postgres_db.server.ca_file
    if ca_file is None:
        pytest.skip("openssl not found: the server runs without TLS")
    with psycopg.connect(
        postgres_db.url, password=postgres_db.password, sslmode="verify-full", sslrootcert=str(ca_file)
    ) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    assert row == (True,)
    # A CA that did not sign the server's certificate is refused.
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(
            postgres_db.url,
            password=postgres_db.password,
            sslmode="verify-full",
            sslrootcert=str(_other_ca(tmp_path)),
        ).close()


def _other_ca(directory: Path) -> Path:
    other = directory / "other-ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", "/dev/null", "-out", str(other), "-subj", "/CN=someone else"],
        capture_output=True, check=True,
    )  # fmt: skip
    return other


def test_passwords_are_stored_as_scram(postgres_server: PostgresServer, postgres_db: PgDatabase) -> None:
    with psycopg.connect(postgres_server.admin_url()) as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (postgres_db.role,))
        stored = (row.fetchone() or ("",))[0]
    assert stored.startswith("SCRAM-SHA-256$")


def test_two_databases_are_isolated(postgres_server: PostgresServer, postgres_db: PgDatabase) -> None:
    other_url = postgres_server.create_database("isolated_other", "isolated_owner", "other-secret")
    try:
        with postgres_db.connect() as conn:
            conn.execute("CREATE TABLE shared_name (v text)")
            conn.execute("INSERT INTO shared_name VALUES ('mine')")
        with (
            psycopg.connect(other_url, password="other-secret") as other,
            pytest.raises(psycopg.errors.UndefinedTable),
        ):
            other.execute("SELECT v FROM shared_name")
        # One test's role cannot even connect to another test's database.
        foreign = urlsplit(other_url)._replace(netloc=f"{postgres_db.role}@127.0.0.1:{postgres_server.port}")
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(foreign.geturl(), password=postgres_db.password).close()
    finally:
        postgres_server.drop_database("isolated_other")
        postgres_server.drop_role("isolated_owner")


def test_terminate_connections_drops_a_live_connection(
    postgres_server: PostgresServer, postgres_db: PgDatabase
) -> None:
    with postgres_db.connect(autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert postgres_server.terminate_connections(postgres_db.name) == 1
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        assert conn.broken
    # The database itself is fine: a new connection works, and nothing is left to terminate.
    with postgres_db.connect() as again:
        assert again.execute("SELECT 2").fetchone() == (2,)
    # A closed connection's server process exits a moment later: give it that moment.
    deadline = time.monotonic() + 5
    while postgres_server.terminate_connections(postgres_db.name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert postgres_server.terminate_connections(postgres_db.name) == 0


def test_the_admin_connection_survives_terminating_its_own_database(postgres_server: PostgresServer) -> None:
    postgres_server.terminate_connections("postgres")
    postgres_server.execute("SELECT 1")  # reconnects rather than failing
    assert "postgres" in postgres_server.databases()


def test_dropping_removes_the_database_even_with_a_client_connected(postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database("dropped_db", "dropped_owner", "pw-dropped")
    live = psycopg.connect(url, password="pw-dropped", autocommit=True)
    try:
        postgres_server.drop_database("dropped_db")
        postgres_server.drop_role("dropped_owner")
        assert "dropped_db" not in postgres_server.databases()
        assert "dropped_owner" not in postgres_server.roles()
        with pytest.raises(psycopg.OperationalError):
            live.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(url, password="pw-dropped").close()
    finally:
        live.close()


def test_fixtures_start_and_stop_a_server_and_clean_up(pytester: pytest.Pytester) -> None:
    # The inner run's cwd is pytester.path: its tests leave what they saw in seen.txt.
    pytester.makepyfile(
        test_inner="""
        from pathlib import Path

        def test_one(postgres_db):
            with postgres_db.connect() as conn:
                conn.execute("CREATE TABLE t (v int)")
            server = postgres_db.server
            Path("seen.txt").write_text(f"{server.root}\\n{server.port}\\n{postgres_db.name}")

        def test_two(postgres_db):
            with postgres_db.connect() as conn:
                tables = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't'")
                assert tables.fetchone() == (0,)
            assert postgres_db.name not in Path("seen.txt").read_text().split()
        """
    )
    result = pytester.runpytest_inprocess("-p", "tests.pg_fixtures", "-q")
    result.assert_outcomes(passed=2)
    root, port, _name = (pytester.path / "seen.txt").read_text().split("\n")
    assert not Path(root).exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", int(port)), timeout=2):
        pass


@pytest.mark.parametrize(("required", "outcome"), [("1", {"errors": 1}), ("", {"skipped": 1})])
def test_missing_binaries_skip_locally_and_fail_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, required: str, outcome: dict[str, int]
) -> None:
    # Our own probe, replaced: a machine without the binaries cannot be made from inside a test.
    monkeypatch.setattr(
        "tests.pg_fixtures.available", lambda: "PostgreSQL server binaries not found: install it"
    )
    monkeypatch.setenv("GITOPS_BOT_REQUIRE_POSTGRES", required)
    pytester.makepyfile(test_inner="def test_needs_pg(postgres_db):\n    raise AssertionError('ran')\n")
    result = pytester.runpytest_inprocess("-p", "tests.pg_fixtures", "-rs")
    result.assert_outcomes(**outcome)
    result.stdout.fnmatch_lines(["*PostgreSQL server binaries not found: install it*"])
