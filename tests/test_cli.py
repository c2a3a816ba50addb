"""The console script as an operator runs it: exit codes and what it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sandbox.slack_api import FakeSlack
from tests.conftest import BOT_TOKEN

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_with_a_slack_setting_but_no_bot_token_lists_what_is_missing(tmp_path: Path) -> None:
    # Only a run with no Slack setting at all becomes the demo (tests/test_demo.py); one set means
    # an operator is configuring a real workspace and must hear what is still missing.
    done = _cli("run", env={"PYTHONPATH": str(ROOT), "SLACK_SIGNING_SECRET": "s3cr3t-value"}, cwd=tmp_path)
    assert done.returncode == 2
    assert "SLACK_BOT_TOKEN" in done.stderr
    assert "demo" not in done.stdout
    assert "Traceback" not in done.stderr


def test_run_with_bot_token_only_names_the_remaining_setting(tmp_path: Path) -> None:
    done = _cli("run", env={"PYTHONPATH": str(ROOT), "SLACK_BOT_TOKEN": "xoxb-123456789"}, cwd=tmp_path)
    assert done.returncode == 2
    assert "SLACK_BOT_TOKEN" not in done.stderr
    assert "SLACK_SIGNING_SECRET" in done.stderr
    assert "demo" not in done.stdout
    assert "xoxb-123456789" not in done.stderr + done.stdout


def test_check_config_on_the_example_passes() -> None:
    done = _cli("check-config", "--config", "examples/gitops-bot.yaml")
    assert done.returncode == 0, done.stderr
    assert "examples/gitops-bot.yaml" in done.stdout


def test_check_config_reports_all_problems_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "argocd:\n  - name: Main\n    url: not-a-url\n    token_env: ARGOCD_TOKEN\nserver:\n  port: 0\n"
    )
    done = _cli("check-config", "--config", str(bad), env={"PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert done.returncode == 1
    assert "argocd[0].url" in done.stderr
    assert "argocd[0].name" in done.stderr
    assert "server.port" in done.stderr
    assert "Traceback" not in done.stderr


def test_explicit_missing_config_file_is_an_error(tmp_path: Path) -> None:
    done = _cli("check-config", "--config", str(tmp_path / "nope.yaml"), env={"PYTHONPATH": str(ROOT)})
    assert done.returncode == 1
    assert "nope.yaml" in done.stderr


# -- Socket Mode credentials, against the fake Slack -------------------------------------------------


def _socket_run(tmp_path: Path, fake_slack: FakeSlack, app_token: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": app_token,
        "SLACK_API_URL": fake_slack.base_url,
    }
    return _cli("run", "--port", "0", "--host", "127.0.0.1", env=env, cwd=tmp_path)


def test_a_refused_app_token_is_worded_and_exits_2(tmp_path: Path, fake_slack: FakeSlack) -> None:
    revoked = "xapp-1-A0REVOKED-1234567890-0123456789abcdef"
    done = _socket_run(tmp_path, fake_slack, revoked)
    assert done.returncode == 2, done.stderr
    assert "SLACK_APP_TOKEN was refused by Slack (invalid_auth)" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert revoked not in done.stderr + done.stdout
    assert BOT_TOKEN not in done.stderr + done.stdout
    assert "connected to Slack in Socket Mode" not in done.stdout
    # The fake saw the attempt, made with the app token (the bot token is refused there).
    assert [c.response.get("error") for c in fake_slack.recorded("apps.connections.open")] == ["invalid_auth"]


def test_a_bot_token_given_as_app_token_is_named_before_connecting(
    tmp_path: Path, fake_slack: FakeSlack
) -> None:
    done = _socket_run(tmp_path, fake_slack, "xoxb-0000-pasted-in-the-wrong-place")
    assert done.returncode == 2
    assert "SLACK_APP_TOKEN: not an app-level token (those start with xapp-)" in done.stderr
    assert "pasted-in-the-wrong-place" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert fake_slack.recorded("apps.connections.open") == []


def test_a_refused_bot_token_names_the_variable_and_exits_2(tmp_path: Path, fake_slack: FakeSlack) -> None:
    env = {
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": "xoxb-1-revoked-token-value",
        "SLACK_SIGNING_SECRET": "s3cr3t-value",
        "SLACK_API_URL": fake_slack.base_url,
    }
    done = _cli("run", "--port", "0", "--host", "127.0.0.1", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "SLACK_BOT_TOKEN was refused by Slack (auth.test: invalid_auth)" in done.stderr
    assert "revoked-token-value" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
