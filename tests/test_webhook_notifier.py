"""The built-in webhook notifier against a real HTTP receiver on 127.0.0.1, with a real SQLite file:
every event once and correctly signed, filters, retries after the receiver comes back, the outbox
replayed by the next process, dead letters in the audit trail, permanent refusals."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from services.audit.query import AuditQuery
from services.audit.trail import AuditEvent, AuditStore
from services.extensions.builtin import notifiers as plugin
from services.extensions.context import PluginContext
from services.extensions.delivery import Backoff, WebhookDelivery, build_delivery
from services.extensions.events import encode, events_for
from services.extensions.model import Event
from services.settings.extensions import WebhookNotifier
from services.settings.model import Settings
from services.store.db import Database
from services.store.sqlite import SqliteDatabase
from tests.db_engines import Opener

SECRET = "whsec-7d1f0c2e9b"
FAST = Backoff(base=0.05, cap=0.2)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """A webhook endpoint as a careful receiver writes one: it refuses a request that is not JSON or
    whose signature does not verify (401), and answers what the test scripts (`replies`)."""

    secret: str | None = SECRET
    port: int = 0
    replies: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # consumed in order, then 200
    always: int | None = None  # answer every request with this status
    received: list[Received] = field(default_factory=list)  # the requests it accepted (2xx)
    attempts: list[Received] = field(default_factory=list)  # every request
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                got = Received({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                receiver.attempts.append(got)
                status, headers = receiver._answer(got)
                if 200 <= status < 300:
                    receiver.received.append(got)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/gitops"

    def _answer(self, got: Received) -> tuple[int, dict[str, str]]:
        if got.headers.get("content-type") != "application/json":
            return 415, {}
        try:
            json.loads(got.body)
        except ValueError:
            return 400, {}
        if self.secret is not None and not verify(self.secret, got):
            return 401, {}
        if self.replies:
            return self.replies.pop(0)
        return (self.always, {}) if self.always is not None else (204, {})

    def ids(self) -> list[str]:
        return [r.headers["x-gitops-bot-delivery"] for r in self.received]


def verify(secret: str, got: Received, *, tolerance: float = 300) -> bool:
    """What docs/events.md tells receivers to do."""
    timestamp = got.headers.get("x-gitops-bot-timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + got.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + expected, got.headers.get("x-gitops-bot-signature", ""))


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def event(n: int, kind: str = "sync.finished", target: str = "web/prod") -> Event:
    return Event(
        id=f"audit-{n}", type=kind, at=datetime(2026, 11, 2, 9, 0, n % 60, tzinfo=UTC), actor="U0ALICE",
        target=target, summary=f"event {n}", data={"outcome": "ok", "correlation_id": f"c{n:07d}"},
    )  # fmt: skip


def notifier(url: str, *, name: str = "hooks", events: tuple[str, ...] = ("*",), attempts: int = 8,
             secret_env: str | None = "HOOK_SECRET") -> WebhookNotifier:  # noqa: S107  # fmt: skip
    return WebhookNotifier(kind="webhook", name=name, url=url, secret_env=secret_env, events=events,
                           max_attempts=attempts)  # fmt: skip


def secrets(name: str | None) -> str | None:
    return SECRET if name == "HOOK_SECRET" else None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def database(any_database: Database) -> Database:
    return any_database  # SQLite and PostgreSQL (tests/db_engines.py)


@pytest.fixture
def deliveries() -> Iterator[list[WebhookDelivery]]:
    started: list[WebhookDelivery] = []
    yield started
    for d in started:
        d.stop()
    plugin.gitops_bot_shutdown()


def run(database: Database, *notifiers: WebhookNotifier, into: list[WebhookDelivery]) -> WebhookDelivery:
    delivery = build_delivery(database, notifiers, secrets, backoff=FAST).start()
    into.append(delivery)
    return delivery


def test_every_event_arrives_once_correctly_signed(
    receiver: Receiver, database: Database, deliveries: list[WebhookDelivery]
) -> None:
    delivery = run(database, notifier(receiver.url), into=deliveries)
    sent = [event(n) for n in range(1, 26)]
    for e in sent:
        delivery.notify(e)
        delivery.notify(e)  # the same event again: it is in the outbox once, sent once
    wait_for(lambda: len(receiver.received) == 25)
    time.sleep(0.2)  # nothing more arrives
    assert sorted(receiver.ids()) == sorted(e.id for e in sent)
    assert len(receiver.attempts) == 25  # none refused, none repeated
    for got in receiver.received:
        assert verify(SECRET, got)
        assert got.headers["user-agent"].startswith("gitops-bot/")
        assert got.headers["x-gitops-bot-event"] == "sync.finished"
        original = next(e for e in sent if e.id == got.headers["x-gitops-bot-delivery"])
        assert got.body == encode(original).encode()
        assert (got.event["id"], got.event["version"]) == (original.id, 1)
    wait_for(lambda: {r.state for r in delivery.outbox.rows()} == {"delivered"})


def test_a_wrong_secret_is_refused_by_the_receiver_and_dead_lettered(
    database: Database, deliveries: list[WebhookDelivery]
) -> None:
    strict = Receiver(secret="another-secret").start()
    try:
        delivery = run(database, notifier(strict.url), into=deliveries)
        delivery.notify(event(1))
        wait_for(lambda: [r.state for r in delivery.outbox.rows()] == ["dead"])
        assert [a.headers["x-gitops-bot-delivery"] for a in strict.attempts] == [
            "audit-1"
        ]  # 401: not retried
        assert strict.received == []
    finally:
        strict.stop()


def test_filters_pick_events_per_notifier(database: Database, deliveries: list[WebhookDelivery]) -> None:
    promotions, drift = Receiver().start(), Receiver().start()
    try:
        delivery = run(
            database,
            notifier(promotions.url, name="promotions", events=("promotion.*",)),
            notifier(drift.url, name="drift", events=("drift.opened",)),
            into=deliveries,
        )
        kinds = [
            "promotion.requested",
            "promotion.deployed",
            "drift.opened",
            "drift.resolved",
            "sync.started",
        ]
        for n, kind in enumerate(kinds, 1):
            delivery.notify(event(n, kind))
        wait_for(lambda: len(promotions.received) == 2 and len(drift.received) == 1)
        time.sleep(0.2)
        assert [r.event["type"] for r in promotions.received] == ["promotion.requested", "promotion.deployed"]
        assert [r.event["type"] for r in drift.received] == ["drift.opened"]
        assert len(delivery.outbox.rows()) == 3  # events nobody wants are not queued
    finally:
        promotions.stop()
        drift.stop()


def test_receiver_down_then_up_gets_each_event_once_after_backoff(
    receiver: Receiver, database: Database, deliveries: list[WebhookDelivery]
) -> None:
    receiver.stop()
    delivery = run(database, notifier(receiver.url), into=deliveries)
    for n in (1, 2, 3):
        delivery.notify(event(n))
    wait_for(lambda: len(rows := delivery.outbox.rows()) == 3 and all(r.attempts >= 2 for r in rows))
    [row, *_] = delivery.outbox.rows()
    assert row.state == "pending"
    assert (row.last_error or "").startswith("connection failed")
    receiver.start()  # the same port again
    wait_for(lambda: len(receiver.received) == 3)
    time.sleep(0.3)
    assert sorted(receiver.ids()) == ["audit-1", "audit-2", "audit-3"]
    assert all(verify(SECRET, r) for r in receiver.received)


def test_outbox_is_replayed_by_the_next_process(open_again: Opener, receiver: Receiver) -> None:
    receiver.stop()
    first = open_again()
    delivery = build_delivery(first, [notifier(receiver.url)], secrets, backoff=FAST).start()
    for n in range(1, 6):
        delivery.notify(event(n))
    wait_for(
        lambda: (
            len(rows := delivery.outbox.rows()) == 5 and all(r.attempts >= 1 and r.last_error for r in rows)
        )
    )
    assert delivery.stop(timeout=2.0)
    first.close()  # the process is gone; its outbox is in the file

    receiver.start()
    second = open_again()
    settings = Settings.model_validate({"notifiers": [notifier(receiver.url).model_dump()]})
    context = PluginContext(second, lambda: datetime.now(UTC), {"HOOK_SECRET": SecretStr(SECRET)})
    try:
        plugin.gitops_bot_configure(settings, None, context)  # the next start, as the bot does it
        wait_for(lambda: len(receiver.received) == 5)
        time.sleep(0.3)
        assert sorted(receiver.ids()) == [f"audit-{n}" for n in range(1, 6)]
        assert all(verify(SECRET, r) for r in receiver.received)
    finally:
        plugin.gitops_bot_shutdown()
        second.close()


def test_dead_letter_after_max_attempts_is_in_the_audit_trail(
    receiver: Receiver, database: Database, deliveries: list[WebhookDelivery]
) -> None:
    receiver.always = 500
    delivery = run(database, notifier(receiver.url, attempts=3), into=deliveries)
    delivery.notify(event(7, "promotion.deployed", target="web/prod"))
    wait_for(lambda: [r.state for r in delivery.outbox.rows()] == ["dead"])
    assert [a.headers["x-gitops-bot-delivery"] for a in receiver.attempts] == ["audit-7"] * 3
    page = AuditStore(database).search(AuditQuery(action="notify"))
    [row] = page.events
    assert (row.user_id, row.outcome, row.target) == ("gitops-bot", "failed", "web/prod")
    assert row.detail == "webhook hooks: gave up on promotion.deployed audit-7 after 3 attempts: HTTP 500"
    assert row.correlation_id == "c0000007"
    assert events_for(row) == []  # the notifier's own rows are never events: no loops
    assert AuditStore(database).verify().ok  # written into the hash chain like any row


def test_a_4xx_is_permanent(
    receiver: Receiver, database: Database, deliveries: list[WebhookDelivery]
) -> None:
    receiver.always = 410
    delivery = run(database, notifier(receiver.url, attempts=8), into=deliveries)
    delivery.notify(event(1))
    wait_for(lambda: [r.state for r in delivery.outbox.rows()] == ["dead"])
    time.sleep(0.3)
    assert len(receiver.attempts) == 1
    [row] = AuditStore(database).search(AuditQuery(action="notify")).events
    assert row.detail.endswith("after 1 attempt: HTTP 410")


def test_retry_after_is_honoured(
    receiver: Receiver, database: Database, deliveries: list[WebhookDelivery]
) -> None:
    receiver.replies = [(429, {"Retry-After": "1"}), (503, {"Retry-After": "1"})]
    delivery = run(database, notifier(receiver.url), into=deliveries)
    delivery.notify(event(1))
    wait_for(lambda: len(receiver.received) == 1)
    first, second, third = receiver.attempts
    assert min(second.at - first.at, third.at - second.at) >= 0.9  # not FAST's 0.05 s
    wait_for(lambda: [r.state for r in delivery.outbox.rows()] == ["delivered"])  # once the answer is read


def test_logs_name_neither_the_secret_nor_the_url_token(
    database: Database, deliveries: list[WebhookDelivery], caplog: pytest.LogCaptureFixture
) -> None:
    down = Receiver().start()
    down.stop()
    url = f"http://127.0.0.1:{down.port}/hook?token=tok-91a3"  # config refuses user:password@
    caplog.set_level(logging.DEBUG)
    delivery = run(database, notifier(url, attempts=2), into=deliveries)
    delivery.notify(event(1))
    wait_for(lambda: [r.state for r in delivery.outbox.rows()] == ["dead"])
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    [row] = AuditStore(database).search(AuditQuery(action="notify")).events
    for secret in (SECRET, "tok-91a3"):
        assert secret not in logged
        assert secret not in row.detail
        assert secret not in repr(delivery.senders["hooks"])


def test_configuring_again_replaces_the_delivery_thread(tmp_path: Path, receiver: Receiver) -> None:
    database = SqliteDatabase(tmp_path / "bot.db")
    settings = Settings.model_validate({"notifiers": [notifier(receiver.url).model_dump()]})
    context = PluginContext(database, lambda: datetime.now(UTC), {"HOOK_SECRET": SecretStr(SECRET)})
    try:
        for _ in range(3):
            plugin.gitops_bot_configure(settings, None, context)
        assert sum(t.name == "webhook-delivery" for t in threading.enumerate()) == 1
        plugin.gitops_bot_notify(event(1))
        wait_for(lambda: receiver.ids() == ["audit-1"])
        plugin.gitops_bot_configure(Settings.model_validate({}), None, context)  # no notifiers now
        wait_for(lambda: not any(t.name == "webhook-delivery" for t in threading.enumerate()), timeout=3)
        assert plugin.current() is None
    finally:
        plugin.gitops_bot_shutdown()
        database.close()


def test_a_secret_env_that_is_not_set_is_refused(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "bot.db")
    try:
        with pytest.raises(ValueError, match="HOOK_SECRET") as refused:
            build_delivery(database, [notifier("http://127.0.0.1:9/x")], lambda name: None)
        assert SECRET not in str(refused.value)
    finally:
        database.close()


def test_rows_the_outbox_never_got_are_taken_from_the_audit_trail_on_start(
    tmp_path: Path, receiver: Receiver
) -> None:
    # The audit trail is the source: a row appended while no delivery ran (or whose hand-over a
    # kill -9 lost) is sent by the next start; history from before the notifier existed is not.
    database = SqliteDatabase(tmp_path / "bot.db")
    store = AuditStore(database)
    lock = AuditEvent(user_id="U0ALICE", user_name="alice", action="lock", outcome="ok", target="prod",
                      command="lock prod --reason freeze", detail="prod locked")  # fmt: skip
    before = store.append(lock)
    first = build_delivery(database, [notifier(receiver.url)], secrets, backoff=FAST).start()
    assert first.stop()
    lost = store.append(lock)  # nobody listening: as if the process died right after the append
    second = build_delivery(database, [notifier(receiver.url)], secrets, backoff=FAST).start()
    try:
        wait_for(lambda: receiver.ids() == [f"audit-{lost.id}"])
        time.sleep(0.2)
        assert receiver.ids() == [f"audit-{lost.id}"]  # not the row from before, and once
        assert f"audit-{before.id}" not in receiver.ids()
        assert receiver.received[0].event["type"] == "lock.set"
    finally:
        second.stop()
        store.close()
        database.close()
