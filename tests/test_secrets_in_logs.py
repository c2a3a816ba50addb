"""Tokens and the signing secret never reach logs, audit rows or Slack replies."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

from bot.app import build_runtime
from bot.logs import configure_logging
from handlers.blocks import Reply
from handlers.caller import Caller
from handlers.conversation import Conversation
from handlers.grammar.parser import CommandRequest
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from services.redaction import Redactor
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, config_for

ARGOCD_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJnaXRvcHMtYm90In0.c2lnbmF0dXJlLXNlY3JldA"


def test_no_secret_in_any_log_line_or_audit_row(tmp_path: Path, fake_slack: FakeSlack) -> None:
    loaded = config_for(
        tmp_path,
        fake_slack,
        extra_yaml=(
            "argocd:\n  - name: main\n    url: https://argocd.example.com\n    token_env: ARGOCD_TOKEN\n"
        ),
        extra_env={"ARGOCD_TOKEN": ARGOCD_TOKEN},
    )
    secrets = [BOT_TOKEN, SIGNING_SECRET, ARGOCD_TOKEN]
    assert set(secrets) <= set(loaded.secrets.values())
    stream = io.StringIO()
    handler = configure_logging("DEBUG", Redactor(loaded.secrets.values()), stream=stream)

    def leaky(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        raise RuntimeError(f"backend said: bad token {ARGOCD_TOKEN} / {BOT_TOKEN}")

    runtime = build_runtime(loaded, port=0, host="127.0.0.1", extra_executors={"status": leaky}).start()
    try:
        url = f"http://127.0.0.1:{runtime.server.port}/slack/events"
        sender = SlackSender(url, SIGNING_SECRET, fake_slack)
        sender.slash("help")
        sender.slash("status api")
        sender.slash(f"lock prod --reason 'pasted {BOT_TOKEN} by mistake'")
        SlackSender(url, "wrong-secret", fake_slack).slash("help")
        deadline = time.monotonic() + 5
        while runtime.deps.audit.count() < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        rows = runtime.deps.audit.recent()
    finally:
        runtime.stop()
        logging.getLogger().removeHandler(handler)
    logs = stream.getvalue()
    assert logs.count("\n") > 5, "the run must have logged something to search"
    for line in logs.splitlines():
        json.loads(line)  # JSON lines, every one
    audit_text = json.dumps([r.__dict__ for r in rows], default=str)
    slack_text = json.dumps([c.args for c in fake_slack.recorded()], default=str)
    slack_text += json.dumps([m.text + json.dumps(m.blocks) for m in fake_slack.ephemeral()])
    for secret in secrets:
        assert secret not in logs
        assert secret not in audit_text
        assert secret not in slack_text
    assert "[REDACTED]" in audit_text  # the pasted token was scrubbed, not dropped silently
    assert any('"correlation_id"' in line and rows[0].correlation_id in line for line in logs.splitlines())
