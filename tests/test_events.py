"""Audit rows → typed events, the audit trail's listeners, the event schema, and the real bot
sending drift and lock events to a webhook receiver."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.app import StartupError, build_runtime
from handlers.admin.reminders import expire_locks
from sandbox.slack_api import FakeSlack
from services.audit.query import AuditQuery
from services.audit.trail import AuditEvent, AuditStore, Outcome
from services.extensions.events import audit_listener, document, encode, events_for
from services.extensions.model import Event
from services.store.sqlite import SqliteDatabase
from tests.conftest import config_for
from tests.drift_support import Clock, Drift, drift
from tests.test_webhook_notifier import Receiver, wait_for

__all__ = ["drift"]

SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "events.schema.json").read_text())
_ids = iter(range(1, 10_000))


def row(action: str, outcome: Outcome, detail: str = "", *, target: str = "web/prod", user: str = "U0BOB",
        request_id: int | None = None, command: str = "") -> AuditEvent:  # fmt: skip
    """A committed row as handlers/recording.py writes it."""
    return AuditEvent(
        user_id=user, user_name="bob" if user == "U0BOB" else user, channel="C0DEPLOYS",
        command=command or action, target=target, action=action, outcome=outcome, detail=detail,
        correlation_id="1186dc5e", duration_ms=1429, ts=datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
        id=next(_ids), request_id=request_id,
    )  # fmt: skip


def types(r: AuditEvent) -> list[str]:
    found = events_for(r)
    for e in found:
        jsonschema.validate(document(e), SCHEMA, format_checker=jsonschema.FormatChecker())
    return [e.type for e in found]


def test_a_sync_is_started_then_finished_whatever_its_outcome() -> None:
    started = row("sync", "started", command="sync web staging")
    [begin] = events_for(started)
    assert (begin.type, begin.id, begin.actor, begin.target) == ("sync.started", f"audit-{started.id}",
                                                                 "U0BOB", "web/prod")  # fmt: skip
    done = row("sync", "ok", "revision 124198b → 8a39d4c; phase Succeeded", request_id=started.id)
    [end] = events_for(done)
    assert end.type == "sync.finished"
    assert (end.data["revision_before"], end.data["revision"]) == ("124198b", "8a39d4c")
    assert (end.data["request_id"], end.data["outcome"]) == (started.id, "ok")
    assert (end.data["correlation_id"], end.data["duration_ms"]) == ("1186dc5e", 1429)
    assert types(row("sync", "denied", "needs the deployer role", request_id=started.id)) == ["sync.finished"]
    assert types(row("drift_sync", "failed", "argocd: down", request_id=started.id)) == ["sync.finished"]
    assert types(row("sync", "denied", "rate limited")) == []  # refused before it was accepted


def test_read_only_commands_and_refusals_are_no_events() -> None:
    for action in ("status", "diff", "history", "help", "audit", "whoami", "drift", "drift_diff", "invalid"):
        assert types(row(action, "ok", "revision b51e39e")) == []
    assert types(row("promotion_approve", "started")) == []
    assert types(row("promotion_approve", "denied", "needs the approver role", request_id=9)) == []
    assert types(row("lock", "failed", "`staging` is already locked")) == []
    assert types(row("suspend", "failed", "Argo CD has no suspend.")) == []
    assert types(row("notify", "failed", "webhook hooks: gave up on …", user="gitops-bot")) == []


def test_a_promotion_with_approval_end_to_end() -> None:
    assert types(row("promote", "started")) == []
    # The request has a row of its own, written when the request is made; the command's result adds nothing.
    requested = row("promotion.requested", "ok", "promotion a76Y: web 1.4.1 → 1.4.2")
    [asked] = events_for(requested)
    assert (asked.type, asked.actor, asked.data["summary"]) == (
        "promotion.requested",
        "U0BOB",
        "web 1.4.1 → 1.4.2",
    )
    assert types(row("promote", "ok", "promotion a76Y0CnztjEDF8Ch: sent to approval")) == []
    assert types(row("promote", "ok", "promotion a76Y: web 1.4.1 → 1.4.2")) == []
    [partial] = events_for(row("promotion_approve", "ok", "promotion a76Y: approval 1 of 2"))
    assert partial.type == "promotion.approved"
    assert (partial.data["approvals"], partial.data["approvals_required"], partial.data["final"]) == (
        1,
        2,
        False,
    )
    final = row("promotion.approved", "ok", "promotion a76Y: approved 2 of 2")
    [approved] = events_for(final)
    assert (approved.type, approved.id) == ("promotion.approved", f"audit-{final.id}")
    assert (approved.data["final"], approved.data["approvals"], approved.data["approvals_required"]) == (
        True,
        2,
        2,
    )
    last = row("promotion_approve", "ok", "promotion a76Y: commit 479d2c9, deploy Succeeded")
    [deployed] = events_for(last)
    assert (deployed.type, deployed.id) == ("promotion.deployed", f"audit-{last.id}")
    data = deployed.data
    assert (data["promotion_id"], data["commit"], data["phase"]) == ("a76Y", "479d2c9", "Succeeded")
    assert "479d2c9" in deployed.summary


def test_every_way_a_promotion_ends() -> None:
    p = "promotion uXjS: "
    assert types(row("promote", "ok", p + "commit 13368e9, deploy Succeeded")) == ["promotion.deployed"]
    assert types(row("promotion_approve", "failed", p + "commit 13368e9, deploy Failed")) == [
        "promotion.failed"
    ]
    assert types(row("promotion_approve", "failed", p + "commit 13368e9, not deployed: prod locked")) == [
        "promotion.failed"
    ]
    committed = row("promotion.committed", "ok", p + "commit 13368e9 to deploy", user="gitops-bot")
    (pushed,) = events_for(committed)
    assert (pushed.type, pushed.data["commit"], pushed.data["repository"]) == (
        "promotion.committed", "13368e9", "deploy")  # fmt: skip
    assert types(row("promotion_approve", "failed", p + "not committed: git: push refused")) == [
        "promotion.failed"
    ]
    assert types(row("promotion_reject", "ok", p + "rejected: not today")) == ["promotion.rejected"]
    assert types(row("promote", "failed", p + "blocked: change window")) == ["promotion.blocked"]
    assert types(row("promotion_approve", "ok", p + "target moved, approvals reset")) == [
        "promotion.superseded"
    ]
    assert types(row("promotion_approve", "ok", p + "nothing left to promote")) == ["promotion.redundant"]
    assert types(row("promote", "ok", "nothing to promote")) == []
    assert types(row("promote", "failed", "no app called `webb`")) == []
    expired = row("promotion.expired", "ok", p + "expired after 4h", user="gitops-bot")
    [e] = events_for(expired)
    assert (e.type, e.actor, e.data["promotion_id"]) == ("promotion.expired", "gitops-bot", "uXjS")


def test_rollbacks_locks_and_other_commands() -> None:
    assert types(row("rollback", "started")) == []
    assert types(row("rollback", "ok", "to #3")) == ["rollback.requested"]
    assert types(row("rollback_confirm", "started")) == ["rollback.started"]
    assert types(row("rollback_confirm", "ok", "rollback to #3: 479d2c9 → b51e39e", request_id=18)) == [
        "rollback.finished"]  # fmt: skip
    assert types(row("rollback_cancel", "ok", "cancelled")) == ["rollback.cancelled"]
    assert types(row("lock", "ok", "locked staging", target="staging")) == ["lock.set"]
    assert types(row("unlock", "ok", "unlocked staging", target="staging")) == ["lock.released"]
    [e] = events_for(
        row("lock.expired", "ok", "lock 4 on prod/web expired (set by U0ALICE: qa)", user="gitops-bot")
    )
    assert (e.type, e.data["lock_id"], e.data["scope"]) == ("lock.expired", 4, "prod/web")
    assert types(row("suspend", "ok", "suspended at 8a39d4c")) == ["command.suspend"]
    assert types(row("hold_release", "ok", "auto-sync re-enabled, hold #2")) == ["command.hold_release"]
    assert types(row("drift_ack", "ok", "acknowledged")) == ["drift.acknowledged"]
    assert types(row("resume", "unknown", "still running when gitops-bot stopped")) == ["command.resume"]


def test_the_body_is_canonical_json() -> None:
    at = datetime(2026, 11, 2, 9, 0, 1, 250000, tzinfo=UTC)
    e = Event(id="audit-3", type="drift.opened", at=at, actor="gitops-bot", target="web/prod",
              summary="Drift: Räplicas", data={"b": 1, "a": 2})  # fmt: skip
    body = encode(e)
    assert body.isascii()
    assert "R\\u00e4plicas" in body
    assert json.loads(body)["at"] == "2026-11-02T09:00:01.250Z"
    assert list(json.loads(body)) == sorted(json.loads(body))
    assert json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")) == body


# -- the audit trail's listeners ------------------------------------------------------------------------


def test_listeners_hear_each_committed_row_once_with_its_id(tmp_path: Path) -> None:
    store = AuditStore(tmp_path / "audit.db")
    heard: list[AuditEvent] = []
    store.subscribe(heard.append)
    store.subscribe(lambda e: 1 / 0)  # type: ignore[func-returns-value]  # a broken listener is contained
    written = store.append(row("sync", "started"))
    many = store.append_many([row("lock", "ok", "locked prod"), row("unlock", "ok", "unlocked prod")])
    assert [e.id for e in heard] == [written.id, *(e.id for e in many)]
    assert all(e.ts is not None for e in heard)
    store.close()


def test_a_row_written_in_a_callers_transaction_is_heard_only_after_commit(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "audit.db")
    store = AuditStore(database)
    heard: list[tuple[int | None, bool]] = []
    store.subscribe(lambda e: heard.append((e.id, database.db.in_transaction)))
    with database.transaction():
        store.append(row("sync", "ok", request_id=1))
        assert heard == []  # not committed yet
    assert heard == [(1, False)]  # after the commit, outside the transaction
    try:
        with database.transaction():
            store.append(row("sync", "ok", request_id=2))
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert len(heard) == 1  # a row rolled back is never announced
    assert store.count() == 1
    database.close()


def test_the_listener_hands_each_event_to_the_notifiers(tmp_path: Path) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.events: list[Event] = []

        def notify(self, event: Event) -> None:
            self.events.append(event)

    store, notifiers = AuditStore(tmp_path / "audit.db"), Recorder()
    store.subscribe(audit_listener(notifiers))
    store.append(row("status", "ok"))
    done = store.append(row("promotion_approve", "ok", "promotion p1: commit abc1234, deploy Succeeded"))
    assert [(e.id, e.type) for e in notifiers.events] == [(f"audit-{done.id}", "promotion.deployed")]
    store.close()


# -- the real bot ---------------------------------------------------------------------------------------


def notifier_yaml(receiver: Receiver, events: str = "['*']") -> str:
    return f"""
notifiers:
  - kind: webhook
    name: hooks
    url: {receiver.url}
    events: {events}
"""


@pytest.fixture
def receiver() -> Any:
    r = Receiver(secret=None).start()  # the drift harness passes no extra environment: unsigned here
    yield r
    r.stop()


def test_drift_opened_and_resolved_reach_the_webhook(drift: Drift, receiver: Receiver) -> None:
    with drift.bot(extra_yaml=notifier_yaml(receiver, "['drift.*']")) as runtime:
        drift.argocd.set_health("app-00004", "Degraded", "CrashLoopBackOff")
        drift.scan()
        drift.scan()  # still open: no second drift.opened
        drift.argocd.set_health("app-00004", "Healthy")
        drift.scan()
        wait_for(lambda: len(receiver.received) == 2)
        time.sleep(0.3)
        opened, resolved = (r.event for r in receiver.received)
        assert [opened["type"], resolved["type"]] == ["drift.opened", "drift.resolved"]
        assert opened["actor"] == "gitops-bot"
        assert opened["target"] == resolved["target"] == "main/app-00004"
        assert "CrashLoopBackOff" in opened["data"]["reason"]
        assert opened["data"]["incident_id"] == resolved["data"]["incident_id"]
        assert all("x-gitops-bot-signature" not in r.headers for r in receiver.received)  # no secret_env
        rows = runtime.deps.audit.search(AuditQuery(action="drift.opened")).events
        assert [r.detail.split(":")[0] for r in rows] == [
            f"incident {opened['data']['incident_id']} (failing)"
        ]


def test_an_expired_lock_is_audited_and_notified(drift: Drift, receiver: Receiver) -> None:
    clock = Clock()
    with drift.bot(extra_yaml=notifier_yaml(receiver, "['lock.*']"), clock=clock) as runtime:
        locks = runtime.deps.locks
        assert locks is not None
        locks.lock("prod", app=None, reason="release freeze", ttl=timedelta(minutes=5), by="U0ALICE",
                   channel="C0DEPLOYS", now=clock())  # fmt: skip
        clock.advance(600)
        assert expire_locks(runtime.deps, runtime.app.client) == 1
        wait_for(lambda: len(receiver.received) == 1)
        [got] = receiver.received
        assert (got.event["type"], got.event["target"]) == ("lock.expired", "prod")
        assert got.event["data"]["scope"] == "prod"
        [audited] = runtime.deps.audit.search(AuditQuery(action="lock.expired")).events
        assert "release freeze" in audited.detail


def test_a_webhook_whose_secret_is_not_set_stops_the_start_and_says_which(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    extra = (
        "notifiers:\n  - {kind: webhook, name: hooks, url: 'http://127.0.0.1:9/x', secret_env: HOOK_SECRET}\n"
    )
    loaded = config_for(tmp_path, fake_slack, extra_yaml=extra)
    assert any("HOOK_SECRET is not set; the bot will not start" in w for w in loaded.warnings)
    with pytest.raises(StartupError, match="HOOK_SECRET"):
        build_runtime(loaded, port=0, host="127.0.0.1")
