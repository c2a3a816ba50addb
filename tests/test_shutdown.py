"""Graceful shutdown of the real process: `python -m bot.cli run`, then SIGTERM while a command works.

The bot runs as a subprocess in HTTP mode against a FakeSlack and a FakeArgoCD whose every answer
takes a while, so `/gitops status web` is still working when SIGTERM arrives. What Kubernetes
relies on: the process exits 0 within `server.shutdown_timeout` (not when the slow job ends), new
Slack requests get 503 (or find the port closed), and the audit database is closed cleanly with
the job either finished or recorded as interrupted.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from services.audit.trail import AuditStore
from services.correlation import current_correlation_id, new_correlation_id
from services.jobs import JobRunner
from tests.conftest import BOT_TOKEN, SIGNING_SECRET

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0


@dataclass
class BotProcess:
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    port: int = 0

    def pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def records(self) -> list[dict[str, object]]:
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


def _wait_for(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _jobs_active(port: int) -> float:
    _get(port, "/readyz")  # the gauge is refreshed by the readiness check
    _status, text = _get(port, "/metrics")
    for line in text.splitlines():
        if line.startswith("gitops_bot_jobs_active"):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture
def argocd(request: pytest.FixtureRequest) -> Iterator[FakeArgoCD]:
    # indirect parametrisation sets how long each sync runs
    fake = FakeArgoCD(operation_seconds=getattr(request, "param", 0.3)).start()
    fake.add_app("web", project="shop")
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def start_bot(tmp_path: Path, slack: FakeSlack, argocd: FakeArgoCD) -> Iterator[Callable[[str], BotProcess]]:
    started: list[BotProcess] = []

    def start(shutdown_timeout: str) -> BotProcess:
        config = tmp_path / "gitops-bot.yaml"
        config.write_text(
            f"server:\n  workers: 2\n  shutdown_timeout: {shutdown_timeout}\n"
            f"audit:\n  database: {tmp_path / 'audit.db'}\n"
            f"git:\n  cache_dir: {tmp_path / 'git'}\n"
            "drift:\n  enabled: false\n"
            f"argocd:\n  - name: main\n    url: {argocd.base_url}\n    token_env: ARGOCD_TOKEN\n"
            "access:\n  grants:\n    - role: deployer\n      users: [U0ALICE]\n"
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "PYTHONPATH": str(ROOT),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            "ARGOCD_TOKEN": JWT_TOKEN,
        }
        args = ["run", "--config", str(config), "--host", "127.0.0.1", "--port", "0"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        bot = BotProcess(proc)
        started.append(bot)
        threading.Thread(target=bot.pump, daemon=True).start()

        def listening() -> bool:
            assert proc.poll() is None, "the bot exited at start:\n" + "".join(bot.lines)
            ports = [r["port"] for r in bot.records() if r.get("message") == "http server listening"]
            bot.port = int(str(ports[0])) if ports else 0
            return bool(ports)

        _wait_for("the bot to listen", listening, START_TIMEOUT)
        _wait_for("/readyz", lambda: _get(bot.port, "/readyz")[0] == 200, START_TIMEOUT)
        return bot

    yield start
    for bot in started:
        if bot.proc.poll() is None:
            bot.proc.kill()
            bot.proc.wait(timeout=10)


def _slash_status(bot: BotProcess, slack: FakeSlack) -> None:
    sender = SlackSender(f"http://127.0.0.1:{bot.port}/slack/events", SIGNING_SECRET, slack)
    ack = sender.slash("status web")
    assert ack.status == 200, ack.body
    _wait_for("the status job to start", lambda: _jobs_active(bot.port) >= 1, 10)


def _sigterm_and_refuse_new_work(bot: BotProcess, slack: FakeSlack) -> float:
    """SIGTERM, then a new command must be refused (503) or find the port already closed."""
    sent = time.monotonic()
    bot.proc.send_signal(signal.SIGTERM)

    def draining() -> bool:
        try:
            return _get(bot.port, "/readyz")[0] == 503
        except OSError:
            return True

    _wait_for("/readyz to turn 503", draining, 5)
    sender = SlackSender(f"http://127.0.0.1:{bot.port}/slack/events", SIGNING_SECRET, slack)
    try:
        late = sender.slash("help")
    except OSError:  # connection refused: the server is already gone, equally fine
        pass
    else:
        assert late.status == 503, late.body
    return sent


def _audit_rows(db: Path) -> list[sqlite3.Row]:
    assert db.exists()
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "the WAL was not checkpointed: database not closed"
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return list(conn.execute("SELECT * FROM audit_events ORDER BY id"))
    finally:
        conn.close()


def _chain_ok(db: Path) -> None:
    store = AuditStore(db)
    try:
        assert store.verify().ok
    finally:
        store.close()


def test_sigterm_past_the_timeout_records_the_running_job_as_interrupted(
    tmp_path: Path, start_bot: Callable[[str], BotProcess], slack: FakeSlack, argocd: FakeArgoCD
) -> None:
    bot = start_bot("1s")
    # The start-up version check must be answered first: slowed down, it would hold the stop.
    _wait_for(
        "the start-up backend check", lambda: bool(json.loads(_get(bot.port, "/readyz")[1])["backends"]), 10
    )
    argocd.set_latency(5)  # every Argo CD answer takes 5 s: status outlives the 1 s shutdown timeout
    _slash_status(bot, slack)
    sent = _sigterm_and_refuse_new_work(bot, slack)

    assert bot.proc.wait(timeout=15) == 0, "".join(bot.lines)
    elapsed = time.monotonic() - sent
    # The timeout plus closing down, not held until the 5 s request (and whatever follows) ends.
    assert elapsed < 3.5, f"exit took {elapsed:.1f}s"

    db = tmp_path / "audit.db"
    rows = _audit_rows(db)
    interrupted = [r for r in rows if r["action"] == "status"]
    assert len(interrupted) == 1, [dict(r) for r in rows]
    row = interrupted[0]
    # The request's own row: who asked, where, for what; it only read, so nothing changed.
    assert (row["user_id"], row["channel"], row["target"]) == ("U0ALICE", "C0DEPLOYS", "web")
    assert row["outcome"] == "failed"
    assert row["detail"].startswith("interrupted: the bot shut down after ")
    assert row["command"] == "status web"
    assert len(row["correlation_id"]) == 8  # the request's id, to find its log lines
    assert not [r for r in rows if r["user_id"] == "gitops-bot"]
    _chain_ok(db)
    logs = bot.records()
    assert any(r.get("message") == "shutdown timeout: jobs interrupted" for r in logs)
    assert any(r.get("message") == "stopped" for r in logs)
    # The "working…" note does not stay: it says what happened and what to run again.
    shown = "\n".join(m.text for m in slack.ephemeral("U0ALICE"))
    assert "shut down before this finished" in shown, shown
    assert "Run `/gitops status web` again" in shown


def test_sigterm_within_the_timeout_lets_the_running_job_finish(
    tmp_path: Path, start_bot: Callable[[str], BotProcess], slack: FakeSlack, argocd: FakeArgoCD
) -> None:
    bot = start_bot("20s")
    argocd.set_latency(0.5)
    _slash_status(bot, slack)
    sent = _sigterm_and_refuse_new_work(bot, slack)

    assert bot.proc.wait(timeout=25) == 0, "".join(bot.lines)
    assert time.monotonic() - sent < 15, "the process must exit once the job ends, not at the timeout"

    db = tmp_path / "audit.db"
    rows = _audit_rows(db)
    finished = [r for r in rows if r["action"] == "status"]
    assert [r["outcome"] for r in finished] == ["ok"], [dict(r) for r in rows]
    assert finished[0]["target"] == "web"
    assert not [r for r in rows if r["outcome"] in ("unknown", "started")]
    _chain_ok(db)
    # The user got the answer in place of the "working…" ack, before the process went away.
    shown = "\n".join(m.text + json.dumps(m.blocks) for m in slack.ephemeral("U0ALICE"))
    assert "Healthy" in shown, shown


def _sync_running(bot: BotProcess, slack: FakeSlack) -> None:
    """`/gitops sync web`, until its channel card shows the operation running."""
    sender = SlackSender(f"http://127.0.0.1:{bot.port}/slack/events", SIGNING_SECRET, slack)
    assert sender.slash("sync web").status == 200
    slack.wait_for(lambda f: any("Running" in m.text for m in f.messages("C0DEPLOYS")), timeout=20)
    # The "working…" note is deleted once the card is noted as the request's message.
    slack.wait_for(lambda f: bool(f.recorded("response_url")), timeout=20)


def _card(slack: FakeSlack, needle: str) -> str:
    def found(fake: FakeSlack) -> bool:
        return any(needle in m.text + json.dumps(m.blocks) for m in fake.messages("C0DEPLOYS"))

    slack.wait_for(found, timeout=20)
    return next(
        m.text + json.dumps(m.blocks)
        for m in slack.messages("C0DEPLOYS")
        if needle in m.text + json.dumps(m.blocks)
    )


def _db_rows(db: Path, sql: str) -> list[dict[str, object]]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def _watched(db: Path) -> None:
    """Until the running sync is handed to the watcher (and so can be followed again)."""
    sql = "SELECT watch FROM inflight_requests WHERE watch IS NOT NULL"
    _wait_for("the sync to be watched", lambda: bool(_db_rows(db, sql)), 20)


def _final_row(db: Path, started_id: object) -> dict[str, object]:
    sql = f"SELECT * FROM audit_events WHERE request_id = {int(str(started_id))} AND outcome = 'ok'"  # noqa: S608
    _wait_for("the sync's final row", lambda: bool(_db_rows(db, sql)), 30)
    return _db_rows(db, sql)[0]


@pytest.mark.parametrize("argocd", [8.0], indirect=True)
def test_a_sync_running_at_shutdown_is_noted_then_followed_to_its_end_after_a_restart(
    tmp_path: Path, start_bot: Callable[[str], BotProcess], slack: FakeSlack, argocd: FakeArgoCD
) -> None:
    db = tmp_path / "audit.db"
    bot = start_bot("1s")
    _sync_running(bot, slack)
    _watched(db)
    bot.proc.send_signal(signal.SIGTERM)
    assert bot.proc.wait(timeout=15) == 0, "".join(bot.lines)  # no waiting for the 8 s sync

    rows = [dict(r) for r in _audit_rows(db) if r["action"] == "sync"]
    assert [r["outcome"] for r in rows] == ["started", "unknown"], rows
    started, noted = rows
    assert noted["request_id"] == started["id"]
    for row in rows:
        assert (row["user_id"], row["channel"], row["target"], row["command"]) == (
            "U0ALICE", "C0DEPLOYS", "web", "sync web",
        )  # fmt: skip
    assert "still running in Argo CD main" in noted["detail"]
    assert "Still running in Argo CD main when gitops-bot stopped" in _card(slack, "Still running")

    start_bot("1s")  # picks the sync up where Argo CD has got to, and finishes its card and row
    assert "Succeeded" in _card(slack, "Succeeded")
    final = _final_row(db, started["id"])
    assert (final["user_id"], final["target"]) == ("U0ALICE", "web")
    _chain_ok(db)
    assert len(argocd.requests("/api/v1/applications/web/sync")) == 1  # followed, not started again


@pytest.mark.parametrize("argocd", [8.0], indirect=True)
def test_a_sync_cut_off_by_kill_9_is_followed_again_at_the_next_start(
    tmp_path: Path, start_bot: Callable[[str], BotProcess], slack: FakeSlack, argocd: FakeArgoCD
) -> None:
    db = tmp_path / "audit.db"
    bot = start_bot("1s")
    _sync_running(bot, slack)
    _watched(db)
    bot.proc.kill()  # SIGKILL: no shutdown code runs at all
    bot.proc.wait(timeout=10)
    # The request was recorded when it was accepted, before Argo CD ran it.
    rows = _db_rows(db, "SELECT * FROM audit_events WHERE action = 'sync'")
    assert [(r["outcome"], r["user_id"], r["target"]) for r in rows] == [("started", "U0ALICE", "web")]

    start_bot("1s")
    assert "Succeeded" in _card(slack, "Succeeded")  # the same card, finished
    final = _final_row(db, rows[0]["id"])
    assert (final["user_id"], final["target"], final["command"]) == ("U0ALICE", "web", "sync web")
    _chain_ok(db)


def test_a_request_killed_before_its_operation_started_is_reported_at_the_next_start(
    tmp_path: Path, start_bot: Callable[[str], BotProcess], slack: FakeSlack, argocd: FakeArgoCD
) -> None:
    db = tmp_path / "audit.db"
    bot = start_bot("1s")
    argocd.set_latency(5)  # the sync request itself is still in flight when the bot dies
    sender = SlackSender(f"http://127.0.0.1:{bot.port}/slack/events", SIGNING_SECRET, slack)
    assert sender.slash("sync web").status == 200
    sql = "SELECT * FROM audit_events WHERE action = 'sync'"
    _wait_for("the started row", lambda: bool(_db_rows(db, sql)), 10)
    bot.proc.kill()
    bot.proc.wait(timeout=10)
    argocd.set_latency(0)

    start_bot("1s")  # the next start finds it and closes it
    slack.wait_for(
        lambda f: any("restarted before this finished" in m.text for m in f.ephemeral("U0ALICE")), timeout=20
    )
    shown = "\n".join(m.text for m in slack.ephemeral("U0ALICE"))
    assert "outcome is unknown" in shown
    assert "`/gitops status web` and `/gitops history web`" in shown
    sql_unknown = "SELECT * FROM audit_events WHERE outcome = 'unknown'"
    _wait_for("the unknown row", lambda: bool(_db_rows(db, sql_unknown)), 10)
    [ended] = _db_rows(db, sql_unknown)
    started = _db_rows(db, sql)[0]
    assert (ended["user_id"], ended["target"], ended["request_id"]) == ("U0ALICE", "web", started["id"])
    assert "killed or crashed" in str(ended["detail"])
    _chain_ok(db)


# -- the pool's side of it, in-process -----------------------------------------------------------------


def test_close_waits_for_running_jobs_and_then_refuses_new_ones() -> None:
    jobs = JobRunner(workers=2, queue_limit=2)
    release = threading.Event()

    def sync() -> None:
        release.wait(5)

    assert jobs.submit(sync, name="sync")
    threading.Timer(0.2, release.set).start()
    assert jobs.close(timeout=5) is True
    assert jobs.running() == []
    assert not jobs.submit(lambda: None, name="late")
    assert not jobs.has_capacity()


def test_at_the_deadline_queued_jobs_never_start_and_all_unfinished_ones_are_listed() -> None:
    jobs = JobRunner(workers=1, queue_limit=4)
    release, started = threading.Event(), []
    new_correlation_id()
    cid = current_correlation_id()

    def sync() -> None:
        started.append("sync")
        release.wait(5)

    assert jobs.submit(sync, name="sync")
    _wait_for("the first job to start", lambda: started == ["sync"], 5)
    assert jobs.submit(lambda: started.append("promote"), name="promote")
    assert jobs.running() == ["sync", "promote"]

    before = time.monotonic()
    assert jobs.close(timeout=0.2) is False
    assert 0.15 < time.monotonic() - before < 2
    unfinished = jobs.unfinished()
    assert [(j.name, j.started is not None) for j in unfinished] == [("sync", True), ("promote", False)]
    assert {j.correlation_id for j in unfinished} == {cid}  # the submitter's, for the audit row
    release.set()  # the running job ends; the queued one must still not start
    _wait_for("the running job to end", lambda: jobs.running() == ["promote"], 5)
    time.sleep(0.1)
    assert started == ["sync"]


def test_workers_do_not_hold_the_interpreter_at_exit() -> None:
    jobs = JobRunner(workers=1, queue_limit=1)
    assert jobs.submit(lambda: time.sleep(0.5), name="slow")
    threads = [t for t in threading.enumerate() if t.name.startswith("gitops-job")]
    assert threads
    assert all(t.daemon for t in threads)
    jobs.close(timeout=5)


def test_stop_waits_for_the_start_up_checks(tmp_path: Path, slack: FakeSlack, argocd: FakeArgoCD) -> None:
    """A daemon thread still waiting on a backend when the interpreter exits aborts the process
    (SIGABRT at the end of the demo): stop() joins the start-up work first."""
    from bot.app import build_runtime
    from tests.conftest import config_for

    argocd.set_latency(1.0)  # the version request outlives an immediate stop
    loaded = config_for(
        tmp_path,
        slack,
        extra_yaml=f"argocd:\n  - name: main\n    url: {argocd.base_url}\n    token_env: ARGOCD_TOKEN\n",
        extra_env={"ARGOCD_TOKEN": JWT_TOKEN},
    )
    runtime = build_runtime(loaded, port=0, host="127.0.0.1").start()
    assert any(t.name == "backend-versions" for t in threading.enumerate())
    runtime.stop()
    assert not [t.name for t in threading.enumerate() if t.name == "backend-versions"]
