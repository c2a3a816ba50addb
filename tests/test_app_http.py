"""Signed Slack requests over HTTP to the real app served by the real server (waitress)."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request

from bot.database import open_state
from handlers.blocks import Reply, message, section
from handlers.caller import Caller
from handlers.conversation import Conversation
from handlers.grammar.parser import CommandRequest
from handlers.grammar.spec import SUBCOMMANDS
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from services.audit.trail import AuditStore
from services.errors import BackendUnavailable
from tests.conftest import SIGNING_SECRET, BotFactory


def _text_of(blocks: list[dict[str, object]]) -> str:
    return json.dumps(blocks)


def _wait_rows(runtime_db: AuditStore, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while runtime_db.count() < count:
        assert time.monotonic() < deadline, f"expected {count} audit rows, have {runtime_db.count()}"
        time.sleep(0.02)


def test_help_lists_every_subcommand_and_is_audited(bot: BotFactory) -> None:
    runtime, sender = bot()
    sent = sender.slash("help", user_id="U0ALICE")
    assert sent.status == 200
    assert sent.json_body is not None
    body = _text_of(sent.json_body["blocks"])
    for name in SUBCOMMANDS:
        assert f"/gitops {name}" in body, name
    _wait_rows(runtime.deps.audit, 1)
    row = runtime.deps.audit.recent()[0]
    assert (row.user_id, row.action, row.outcome, row.command) == ("U0ALICE", "help", "ok", "help")


def test_help_for_one_subcommand_shows_flags_and_example(bot: BotFactory) -> None:
    _, sender = bot()
    sent = sender.slash("help sync")
    assert sent.json_body is not None
    body = _text_of(sent.json_body["blocks"])
    assert "--prune" in body
    assert "/gitops sync" in body


def test_unknown_subcommand_suggests_the_closest(bot: BotFactory) -> None:
    runtime, sender = bot()
    sent = sender.slash("stauts api")
    assert sent.status == 200
    assert sent.json_body is not None
    assert "status" in _text_of(sent.json_body["blocks"])
    assert "Unknown subcommand" in sent.json_body["text"]
    _wait_rows(runtime.deps.audit, 1)
    row = runtime.deps.audit.recent()[0]
    assert row.outcome == "failed"
    assert row.action == "invalid"


def test_git_option_smuggling_is_refused(bot: BotFactory) -> None:
    runtime, sender = bot()
    sent = sender.slash("sync api --revision --upload-pack=touch /tmp/x")
    assert sent.json_body is not None
    assert sent.json_body["text"].startswith(":warning:")
    _wait_rows(runtime.deps.audit, 1)
    assert runtime.deps.audit.recent()[0].outcome == "failed"


def test_subcommand_without_backend_answers_plainly(bot: BotFactory) -> None:
    runtime, sender = bot()
    sent = sender.slash("sync api prod")
    assert sent.json_body is not None
    assert "not available here" in sent.json_body["text"]
    _wait_rows(runtime.deps.audit, 1)
    row = runtime.deps.audit.recent()[0]
    assert (row.action, row.target, row.outcome) == ("sync", "api/prod", "failed")


def test_forged_signature_is_401_and_not_audited(bot: BotFactory) -> None:
    runtime, sender = bot()
    forged = SlackSender(sender.bot_url, "not-the-signing-secret", sender.fake)
    sent = forged.slash("help")
    assert sent.status == 401
    time.sleep(0.2)
    assert runtime.deps.audit.count() == 0


def test_stale_timestamp_is_401(bot: BotFactory, fake_slack: FakeSlack) -> None:
    runtime, sender = bot()
    stale = SlackSender(sender.bot_url, SIGNING_SECRET, fake_slack, clock=lambda: time.time() - 600)
    assert stale.slash("help").status == 401
    assert runtime.deps.audit.count() == 0


def test_unsigned_request_is_401(bot: BotFactory) -> None:
    runtime, sender = bot()
    sent = sender.send_raw(
        b"command=%2Fgitops&text=help", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert sent.status == 401
    assert runtime.deps.audit.count() == 0


def test_ack_is_immediate_while_the_work_is_slow(bot: BotFactory, fake_slack: FakeSlack) -> None:
    release = threading.Event()

    def slow_status(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        release.wait(5)
        return message("status done", [section(f"*{request.app}* is Healthy")])

    runtime, sender = bot({"status": slow_status})
    sent = sender.slash("status api", user_id="U0ALICE")
    assert sent.status == 200
    assert sent.json_body is not None
    assert "Working on" in sent.json_body["text"]
    assert sent.elapsed < 1.0  # the work is still blocked: the ack cannot have waited for it
    assert runtime.deps.audit.count() == 0
    release.set()
    fake_slack.wait_for(lambda f: any("Healthy" in _text_of(m.blocks) for m in f.ephemeral("U0ALICE")))
    # The final answer replaced the "working…" message instead of adding a second one.
    texts = [m.text for m in fake_slack.ephemeral("U0ALICE")]
    assert not any("Working on" in t for t in texts)
    _wait_rows(runtime.deps.audit, 1)
    row = runtime.deps.audit.recent()[0]
    assert (row.action, row.target, row.outcome) == ("status", "api", "ok")


def test_internal_error_shows_only_a_correlation_id(bot: BotFactory, fake_slack: FakeSlack) -> None:
    def broken(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        raise RuntimeError("kaboom at /srv/secret/path.py line 12")

    runtime, sender = bot({"status": broken})
    sender.slash("status api", user_id="U0ALICE")
    fake_slack.wait_for(
        lambda f: any("ref" in m.text or "Reference" in m.text for m in f.ephemeral("U0ALICE"))
    )
    _wait_rows(runtime.deps.audit, 1)
    row = runtime.deps.audit.recent()[0]
    assert row.outcome == "error"
    shown = " ".join(m.text + _text_of(m.blocks) for m in fake_slack.ephemeral("U0ALICE"))
    assert "kaboom" not in shown
    assert "Traceback" not in shown
    assert row.correlation_id
    assert row.correlation_id in shown


def test_backend_down_is_a_clear_failure(bot: BotFactory, fake_slack: FakeSlack) -> None:
    def down(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        raise BackendUnavailable("Argo CD main", "connection refused")

    runtime, sender = bot({"status": down})
    sender.slash("status api", user_id="U0ALICE")
    fake_slack.wait_for(lambda f: any("not answering" in m.text for m in f.ephemeral("U0ALICE")))
    _wait_rows(runtime.deps.audit, 1)
    row = runtime.deps.audit.recent()[0]
    assert row.outcome == "failed"
    assert "connection refused" in row.detail


def test_health_ready_and_metrics(bot: BotFactory) -> None:
    runtime, sender = bot()
    sender.slash("help")
    base = f"http://127.0.0.1:{runtime.server.port}"
    with urllib.request.urlopen(f"{base}/healthz", timeout=15) as r:
        assert r.status == 200
    with urllib.request.urlopen(f"{base}/readyz", timeout=15) as r:
        ready = json.loads(r.read())
    assert ready["status"] == "ready"
    assert ready["checks"] == {"config": True, "database": True}
    assert ready["mode"] == "http"
    _wait_rows(runtime.deps.audit, 1)
    with urllib.request.urlopen(f"{base}/metrics", timeout=15) as r:
        text = r.read().decode()
    assert 'gitops_bot_commands_total{outcome="ok",subcommand="help"} 1.0' in text
    assert "gitops_bot_ack_latency_seconds_bucket" in text
    assert "gitops_bot_backend_request_seconds" in text


def test_audit_rows_survive_restart(bot: BotFactory) -> None:
    runtime, sender = bot()
    sender.slash("help", user_id="U0ALICE")
    sender.slash("whoami", user_id="U0BOB")
    _wait_rows(runtime.deps.audit, 2)
    runtime.stop()
    database = open_state(runtime.loaded)  # the configured database: the SQLite file, or PostgreSQL
    try:
        rows = AuditStore(database).recent()
        assert [(r.user_id, r.action) for r in rows] == [("U0BOB", "whoami"), ("U0ALICE", "help")]
    finally:
        database.close()


def test_unknown_button_is_answered_and_audited(bot: BotFactory, fake_slack: FakeSlack) -> None:
    runtime, sender = bot()
    posted = runtime.app.client.chat_postMessage(
        channel="C0DEPLOYS",
        text="old card",
        blocks=[
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "retired_button",
                        "text": {"type": "plain_text", "text": "Go"},
                    }
                ],
            }
        ],
    )
    card = next(m for m in fake_slack.messages("C0DEPLOYS") if m.ts == posted["ts"])
    sent = sender.click(card, "retired_button", user_id="U0BOB")
    assert sent.status == 200
    fake_slack.wait_for(lambda f: any("no longer active" in m.text for m in f.ephemeral("U0BOB")))
    _wait_rows(runtime.deps.audit, 1)
    row = runtime.deps.audit.recent()[0]
    assert (row.user_id, row.action, row.outcome) == ("U0BOB", "click", "failed")


def test_a_slack_retry_of_the_same_body_runs_once(bot: BotFactory, fake_slack: FakeSlack) -> None:
    # Slack's redelivery: the same body, a new timestamp and signature, X-Slack-Retry-Num set.
    runtime, sender = bot()
    body = urllib.parse.urlencode(
        {
            "command": "/gitops",
            "text": "whoami",
            "user_id": "U0ALICE",
            "user_name": "alice",
            "channel_id": "C0DEPLOYS",
            "team_id": "T0SANDBOX",
            "response_url": fake_slack.response_url("C0DEPLOYS", "U0ALICE"),
            "trigger_id": "4444.5555.abcdef",
        }
    ).encode()
    stamp = int(time.time())
    for attempt, headers in enumerate(
        ({}, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    ):
        signed = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(stamp + attempt),
            "X-Slack-Signature": sender.sign(body, stamp + attempt),
            **headers,
        }
        assert sender.send_raw(body, signed).status == 200  # acknowledged, so Slack stops retrying
    _wait_rows(runtime.deps.audit, 2)
    time.sleep(0.3)
    rows = runtime.deps.audit.recent()
    assert sorted(r.action for r in rows) == ["replay", "whoami"]
    [replay] = [r for r in rows if r.action == "replay"]
    assert (replay.outcome, replay.user_id, replay.command) == ("denied", "U0ALICE", "whoami")
    assert "retry 1" in replay.detail


def test_a_retried_body_without_ids_is_refused_by_its_hash(bot: BotFactory) -> None:
    # An Events API delivery carries event_id; one without any id is still known by its body.
    runtime, sender = bot()
    body = json.dumps({"type": "event_callback", "team_id": "T0SANDBOX", "event": {"type": "app_mention"}})
    stamp = int(time.time())
    answers = []
    for attempt in (0, 1):
        signed = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": str(stamp + attempt),
            "X-Slack-Signature": sender.sign(body.encode(), stamp + attempt),
            **({"X-Slack-Retry-Num": "1"} if attempt else {}),
        }
        answers.append(sender.send_raw(body.encode(), signed).status)
    assert answers[1] == 200
    _wait_rows(runtime.deps.audit, 1)
    [row] = runtime.deps.audit.recent()
    assert (row.action, row.outcome, row.user_id) == ("replay", "denied", "unknown")
    assert "same body" in row.detail
