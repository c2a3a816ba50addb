"""Socket Mode: the same app and listeners, requests arriving as envelopes (no signature)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from slack_bolt.request import BoltRequest

from bot.app import build_runtime
from sandbox.slack_api import FakeSlack
from tests.conftest import config_for


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
