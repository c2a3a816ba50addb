"""A throwaway PostgreSQL server for the tests: initdb + pg_ctl in a temp dir, on a free port.

The server is real (Debian's `postgresql` package); nothing about the database is mocked. Data is
disposable, so durability is switched off for speed. PostgreSQL refuses to run as root, and tests run
as root in CI: then the binaries run as the `postgres` system user the Debian package creates.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

MISSING = "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's postgresql package"
NO_SYSTEM_USER = (
    "running as root, which PostgreSQL refuses, and there is no 'postgres' system user to run it as: "
    "install Debian's postgresql package"
)
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
_START_ATTEMPTS = 3  # the free port we picked may be taken before the server binds it

# Throwaway data: no durability, and room for several connection pools at once.
_SETTINGS = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
}


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl are: `pg_config --bindir`, the newest Debian cluster, or PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        # libpq-dev ships pg_config without the server: the directory must really hold the binaries.
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if done.returncode == 0 and done.stdout.strip():
                candidates.append(Path(done.stdout.strip()))
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_major_version, reverse=True))
    initdb = shutil.which("initdb")
    if initdb is not None:
        # A symlink on PATH (/usr/local/bin/initdb) points at the directory pg_ctl is in.
        candidates.append(Path(os.path.realpath(initdb)).parent)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in _SERVER_BINARIES):
            return bindir
    return None


def _major_version(bindir: Path) -> int:
    name = bindir.parent.name
    return int(name) if name.isdigit() else -1


def available() -> str | None:
    """None when a server can be started here, else why not (a skip or failure reason)."""
    if find_bindir() is None:
        return MISSING
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return NO_SYSTEM_USER
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServerError(RuntimeError):
    """The throwaway server could not be started (the message carries the server's own words)."""


class PostgresServer:
    """One PostgreSQL cluster in a temp dir, listening on 127.0.0.1 on a free port."""

    def __init__(self, bindir: Path | None = None, *, durable: bool = False) -> None:
        """`durable`: keep PostgreSQL's fsync and synchronous commit (benchmarks that compare it
        with SQLite's synchronous=FULL); tests run without them."""
        self._durable = durable
        found = bindir or find_bindir()
        if found is None:
            raise PostgresServerError(MISSING)
        self._bindir = found
        self._password = secrets.token_urlsafe(18)
        self._root: Path | None = None
        self._port: int | None = None
        self._admin: psycopg.Connection[TupleRow] | None = None
        self._lock = threading.Lock()  # one admin connection, shared by whatever threads a test runs
        self._as_user: pwd.struct_passwd | None = None
        self._ca_file: Path | None = None
        if os.geteuid() == 0:
            try:
                self._as_user = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise PostgresServerError(NO_SYSTEM_USER) from None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        if self._port is not None:
            return self
        root = Path(tempfile.mkdtemp(prefix="gitops-bot-pg-"))
        self._root = root
        atexit.register(self.stop)  # a crashed run must not leave a server behind
        try:
            if self._as_user is not None:
                os.chown(root, self._as_user.pw_uid, self._as_user.pw_gid)
            self._initdb(root)
            self._pg_ctl_start(root)
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self, root: Path) -> None:
        pwfile = root / "pwfile"
        pwfile.write_text(self._password + "\n")
        if self._as_user is not None:
            os.chown(pwfile, self._as_user.pw_uid, self._as_user.pw_gid)
        self._run(
            "initdb",
            f"--pgdata={root / 'data'}",
            f"--username={SUPERUSER}",
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",  # TCP, as the bot connects: the password really is checked
            "--auth-local=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        pwfile.unlink()
        settings = {**_SETTINGS, "unix_socket_directories": str(root), **self._tls(root / "tls")}
        if self._durable:
            settings.update(fsync="on", synchronous_commit="on", full_page_writes="on")
        with (root / "data" / "postgresql.conf").open("a") as conf:
            conf.write("".join(f"{key} = '{value}'\n" for key, value in settings.items()))

    def _tls(self, tls: Path) -> dict[str, str]:
        """A test CA and a server certificate for 127.0.0.1, so `sslmode=verify-full` can be tested.

        Clients may still connect without TLS (the `host` lines of pg_hba.conf cover both).
        """
        openssl = shutil.which("openssl")
        if openssl is None:
            return {}
        tls.mkdir()
        (tls / "san.ext").write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
        new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for args in (
            ["req", "-x509", *new_key, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=test CA"],
            ["req", *new_key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "7", "-extfile", "san.ext", "-out", "server.crt"],
        ):  # fmt: skip
            subprocess.run([openssl, *args], cwd=tls, capture_output=True, check=True, timeout=30)
        key = tls / "server.key"
        key.chmod(0o600)  # the server refuses a key others can read
        if self._as_user is not None:
            os.chown(key, self._as_user.pw_uid, self._as_user.pw_gid)
        self._ca_file = tls / "ca.crt"
        return {"ssl": "on", "ssl_cert_file": str(tls / "server.crt"), "ssl_key_file": str(key)}

    def _pg_ctl_start(self, root: Path) -> None:
        last = ""
        for _ in range(_START_ATTEMPTS):
            port = _free_port()
            done = self._run(
                "pg_ctl", "start", "-w", "-t", "30", "-D", str(root / "data"),
                "-l", str(root / "server.log"), "-o", f"-p {port}",
                check=False,
            )  # fmt: skip
            if done.returncode == 0:
                self._port = port
                return
            last = done.stdout + done.stderr + self.log_tail()
            if "already in use" not in last:
                break  # not a port race: trying again would fail the same way
        raise PostgresServerError(f"pg_ctl start failed:\n{last}")

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away) and remove the temp dir. Idempotent."""
        atexit.unregister(self.stop)
        if self._admin is not None:
            with contextlib.suppress(psycopg.Error):
                self._admin.close()
            self._admin = None
        root = self._root
        if root is None:
            return
        try:
            if (root / "data" / "postmaster.pid").exists():
                self._run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", str(root / "data"), check=False)
        finally:
            self._root = self._port = None
            shutil.rmtree(root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self, binary: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self._root is not None
        # A clean environment: the developer's PG* variables must not steer the harness.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(self._root)}
        user = self._as_user
        done = subprocess.run(
            [str(self._bindir / binary), *args],
            cwd=self._root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )
        if check and done.returncode != 0:
            raise PostgresServerError(f"{binary} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log, for failure messages."""
        if self._root is None or not (self._root / "server.log").exists():
            return ""
        return "\n".join((self._root / "server.log").read_text(errors="replace").splitlines()[-lines:])

    # -- where it is -----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise PostgresServerError("the server is not running: call start() first")
        return self._port

    @property
    def root(self) -> Path:
        """The temp dir holding data, socket and log (removed by stop())."""
        if self._root is None:
            raise PostgresServerError("the server is not running: call start() first")
        return self._root

    @property
    def ca_file(self) -> Path | None:
        """The CA that signed the server's certificate (for `sslmode=verify-full`); None without openssl."""
        return self._ca_file if self._root is not None else None

    @property
    def running(self) -> bool:
        return self._port is not None

    def admin_url(self, dbname: str = "postgres") -> str:
        """The superuser's URL, password included: for the harness only, never for the bot."""
        return f"postgresql://{SUPERUSER}:{self._password}@{HOST}:{self.port}/{dbname}"

    # -- admin SQL -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _admin_cursor(self) -> Iterator[psycopg.Cursor[TupleRow]]:
        with self._lock:
            # terminate_connections("postgres") may have dropped our own connection: reconnect.
            if self._admin is None or self._admin.broken or self._admin.closed:
                self._admin = psycopg.connect(self.admin_url(), autocommit=True, connect_timeout=10)
            with self._admin.cursor() as cur:
                yield cur

    def execute(self, statement: str | sql.Composed, params: tuple[object, ...] | None = None) -> None:
        """Run one admin statement (autocommit), e.g. to break something on purpose in a test."""
        with self._admin_cursor() as cur:
            cur.execute(statement, params)

    def create_role(self, role: str, password: str) -> None:
        """A login role (not superuser) with this password; an existing one gets the password."""
        with self._admin_cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            verb = "ALTER" if cur.fetchone() else "CREATE"
            cur.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )

    def create_database(self, name: str, owner_role: str, owner_password: str) -> str:
        """A new empty database owned by `owner_role` (created or given this password).

        Returns its URL *without* the password: the bot reads that from the environment.
        """
        self.create_role(owner_role, owner_password)
        with self._admin_cursor() as cur:
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0 ENCODING 'UTF8'").format(
                    sql.Identifier(name), sql.Identifier(owner_role)
                )
            )
            # Only its owner (and the superuser) may connect: databases of other tests stay apart.
            cur.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
        return f"postgresql://{owner_role}@{HOST}:{self.port}/{name}"

    def drop_database(self, name: str) -> None:
        """Drop it; FORCE terminates its connections first (a pool left open must not block it)."""
        with self._admin_cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def drop_role(self, role: str) -> None:
        with self._admin_cursor() as cur:
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))

    def terminate_connections(self, dbname: str) -> int:
        """Kill every session on `dbname` ("the database dropped us"); returns how many.

        Waits until they are gone, so a client's very next statement fails.
        """
        with self._admin_cursor() as cur:
            cur.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def databases(self) -> set[str]:
        """Names of the non-template databases, to prove cleanup."""
        with self._admin_cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")
            return {str(row[0]) for row in cur.fetchall()}

    def roles(self) -> set[str]:
        with self._admin_cursor() as cur:
            cur.execute("SELECT rolname FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%'")
            return {str(row[0]) for row in cur.fetchall()}


@dataclass(frozen=True)
class PgDatabase:
    """One fresh database and its owner role, for one test."""

    url: str  # postgresql://role@127.0.0.1:PORT/name, no password (the bot reads it from env)
    password: str
    name: str
    server: PostgresServer
    role: str

    def environ(self, variable: str = "GITOPS_BOT_DATABASE_PASSWORD") -> dict[str, str]:
        """The environment mapping that gives the bot this database's password."""
        return {variable: self.password}

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[TupleRow]:
        """A plain connection as the owner role, for a test's own assertions (caller closes it)."""
        return psycopg.connect(self.url, password=self.password, autocommit=autocommit)
