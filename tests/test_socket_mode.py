"""Socket Mode: the same app and listeners, requests arriving as envelopes (no signature)."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from slack_bolt.request import BoltRequest
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.app import Runtime, build_runtime
from sandbox.slack_api import FakeSlack
from services.audit.trail import AuditEvent
from tests.conftest import APP_TOKEN, BOT_TOKEN, config_for


def test_socket_mode_dispatches_commands_without_a_signature(tmp_path: Path, fake_slack: FakeSlack) -> None:
    loaded = config_for(tmp_path, fake_slack, app_token=True)
    runtime = build_runtime(loaded, port=0, host="127.0.0.1")  # not started: no websocket needed
    try:
        assert runtime.mode == "socket"
        assert runtime.socket_handler is not None
        payload = {
            "command": "/gitops",
            "text": "help promote",
            "user_id": "U0ALICE",
            "user_name": "alice",
            "channel_id": "C0DEPLOYS",
            "team_id": "T0SANDBOX",
            "response_url": fake_slack.response_url("C0DEPLOYS", "U0ALICE"),
            "trigger_id": "1.2.3",
        }
        response = runtime.app.dispatch(BoltRequest(body=payload, mode="socket_mode"))
        assert response.status == 200
        body = json.loads(response.body)
        assert "/gitops promote" in json.dumps(body["blocks"])
        deadline = time.monotonic() + 5
        while runtime.deps.audit.count() < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert runtime.deps.audit.recent()[0].action == "help"
    finally:
        runtime.stop()


def test_http_mode_without_signing_secret_is_refused_at_start(tmp_path: Path, fake_slack: FakeSlack) -> None:
    from bot.app import missing_slack_settings
    from bot.config import parse_config_text

    loaded = parse_config_text(
        "", environ={"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_API_URL": fake_slack.base_url}
    )
    missing = missing_slack_settings(loaded)
    assert len(missing) == 1
    assert missing[0].startswith("SLACK_SIGNING_SECRET")


# -- redelivered envelopes ---------------------------------------------------------------------------


class RecordingSocketClient:
    """What Bolt's Socket Mode handler needs of a client: a logger, and a way to acknowledge."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("tests.socket_client")
        self.acks: list[SocketModeResponse] = []

    def send_socket_mode_response(self, response: SocketModeResponse) -> None:
        self.acks.append(response)


def _slash(fake_slack: FakeSlack, text: str, trigger_id: str) -> dict[str, str]:
    return {
        "command": "/gitops",
        "text": text,
        "user_id": "U0ALICE",
        "user_name": "alice",
        "channel_id": "C0DEPLOYS",
        "team_id": "T0SANDBOX",
        "response_url": fake_slack.response_url("C0DEPLOYS", "U0ALICE"),
        "trigger_id": trigger_id,
    }


def _settled_rows(runtime: Runtime, count: int) -> list[AuditEvent]:
    deadline = time.monotonic() + 10
    while runtime.deps.audit.count() < count:
        assert time.monotonic() < deadline, f"expected {count} audit rows"
        time.sleep(0.02)
    time.sleep(0.3)  # a second run would have written its row by now
    return runtime.deps.audit.recent()


def test_a_redelivered_envelope_is_acknowledged_but_runs_once(
    tmp_path: Path, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    runtime = build_runtime(config_for(tmp_path, fake_slack, app_token=True), port=0, host="127.0.0.1")
    client = RecordingSocketClient()
    payload = _slash(fake_slack, "help promote", "13345224609.738474920.8088930838d88f008e0")
    try:
        assert runtime.socket_handler is not None
        runtime.socket_handler.handle(client, SocketModeRequest("slash_commands", "env-1", payload))
        again = SocketModeRequest(
            "slash_commands", "env-1", dict(payload), retry_attempt=1, retry_reason="timeout"
        )
        runtime.socket_handler.handle(client, again)
        rows = _settled_rows(runtime, 2)
    finally:
        runtime.stop()
    assert [a.envelope_id for a in client.acks] == ["env-1", "env-1"]  # both acknowledged
    assert "/gitops promote" in json.dumps(client.acks[0].payload)
    assert client.acks[1].payload is None  # the duplicate gets a bare ack: nothing ran
    assert sorted(r.action for r in rows) == ["help", "replay"]
    [replay] = [r for r in rows if r.action == "replay"]
    assert (replay.outcome, replay.user_id, replay.command) == ("denied", "U0ALICE", "help promote")
    assert "envelope_id" in replay.detail
    dropped = [r for r in caplog.records if r.getMessage() == "duplicate Slack delivery dropped"]
    assert len(dropped) == 1
    assert f"{fake_slack.root_url}response/" not in str(vars(dropped[0]))  # no response_url logged


def test_a_new_envelope_with_a_seen_trigger_id_runs_once(tmp_path: Path, fake_slack: FakeSlack) -> None:
    runtime = build_runtime(config_for(tmp_path, fake_slack, app_token=True), port=0, host="127.0.0.1")
    client = RecordingSocketClient()
    payload = _slash(fake_slack, "whoami", "2.2.2")
    try:
        assert runtime.socket_handler is not None
        runtime.socket_handler.handle(client, SocketModeRequest("slash_commands", "env-a", payload))
        runtime.socket_handler.handle(client, SocketModeRequest("slash_commands", "env-b", dict(payload)))
        rows = _settled_rows(runtime, 2)
    finally:
        runtime.stop()
    assert [a.envelope_id for a in client.acks] == ["env-a", "env-b"]
    assert sorted(r.action for r in rows) == ["replay", "whoami"]
    assert "trigger_id" in next(r.detail for r in rows if r.action == "replay")


# -- connecting ------------------------------------------------------------------------------------


def test_a_failed_websocket_is_not_logged_as_connected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The fake Slack hands out a WebSocket URL but speaks no WebSocket: the handshake fails, as
    # behind a proxy that blocks wss. The client logs that and retries; it does not raise.
    caplog.set_level(logging.INFO)
    with FakeSlack(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as fake:
        runtime = build_runtime(config_for(tmp_path, fake, app_token=True), port=0, host="127.0.0.1").start()
        try:
            assert len(fake.recorded("apps.connections.open")) >= 1
            url = f"http://127.0.0.1:{runtime.server.port}/readyz"
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(url, timeout=15)
            assert answer.value.code == 503
            assert json.loads(answer.value.read())["checks"]["slack_socket"] is False
        finally:
            runtime.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "bot.app"]
    assert "connected to Slack in Socket Mode" not in messages
    assert any(
        m.startswith("Socket Mode: Slack issued a connection URL but the WebSocket did not open")
        for m in messages
    )
