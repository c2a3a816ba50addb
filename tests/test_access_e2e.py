"""Access control, locks and hardening, end to end through Slack, the bot and the fake Argo CD."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from handlers.admin.reminders import expire_locks
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.slack_api import FakeSlack
from tests.conftest import config_for, start_on_argocd
from tests.test_argocd_commands import CHANNEL, Bot

ACCESS = """
environments:
  - name: dev
  - name: prod
apps:
  - name: api
    environments:
      dev: {{backend: argocd, name: api-dev}}
      prod: {{backend: argocd, name: api-prod}}
argocd:
  - name: main
    url: {url}
    token_env: ARGOCD_TOKEN
access:
  grants:
    - role: deployer
      users: [U0DEV]
      environments: [dev]
    - role: deployer
      users: [U0DEPLOY]
    - role: admin
      users: [U0ADMIN]
    - role: viewer
      users: [U0VIEW]
  rate_limit:
    commands: 3
    per: 1m
"""


@contextmanager
def guarded_bot(tmp_path: Path, fake_slack: FakeSlack, grants: str = "") -> Iterator[Bot]:
    """The bot with ACCESS, plus `grants` (more `access.grants` entries, indented four spaces)."""
    argocd = FakeArgoCD(operation_seconds=0.2, tick=0.02).start()
    argocd.add_app("api-dev")
    argocd.add_app("api-prod")
    loaded = config_for(
        tmp_path,
        fake_slack,
        extra_yaml=ACCESS.format(url=argocd.base_url).replace("  rate_limit:", grants + "  rate_limit:"),
        extra_env={"ARGOCD_TOKEN": JWT_TOKEN},
    )
    runtime, sender = start_on_argocd(loaded, fake_slack)
    try:
        yield Bot(runtime, sender, fake_slack, argocd)
    finally:
        runtime.stop()
        argocd.stop()


@pytest.fixture
def guarded(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[Bot]:
    with guarded_bot(tmp_path, fake_slack) as bot:
        yield bot


def _last_row(bot: Bot, count: int) -> object:
    return bot.audit_rows(count)[0]


def test_viewer_may_read_but_not_sync(guarded: Bot) -> None:
    guarded.say("status api prod", user="U0VIEW")
    guarded.wait_ephemeral("Healthy", user="U0VIEW")
    guarded.say("sync api prod", user="U0VIEW")
    shown = guarded.wait_ephemeral("Not allowed", user="U0VIEW")
    assert "deployer" in shown
    assert _last_row(guarded, 2).outcome == "denied"  # type: ignore[attr-defined]
    assert not guarded.argocd.requests("/api/v1/applications/api-prod/sync")


def test_grants_are_scoped_per_environment(guarded: Bot) -> None:
    guarded.say("sync api prod", user="U0DEV")
    guarded.wait_ephemeral("Not allowed", user="U0DEV")
    guarded.say("sync api-prod", user="U0DEV")  # the bare Argo CD name is the same target
    guarded.slack.wait_for(lambda f: guarded.ephemeral_text("U0DEV").count("Not allowed") >= 2, timeout=20)
    guarded.say("sync api dev", user="U0DEV")
    guarded.wait_channel("Succeeded")
    assert not guarded.argocd.requests("/api/v1/applications/api-prod/sync")


def test_help_lists_only_what_the_caller_may_run(guarded: Bot) -> None:
    guarded.say("help", user="U0VIEW")
    shown = guarded.wait_ephemeral("Only the subcommands you may run", user="U0VIEW")
    assert "/gitops status" in shown
    assert "/gitops sync" not in shown
    guarded.say("help", user="U0ADMIN")
    assert "/gitops lock" in guarded.wait_ephemeral("/gitops lock", user="U0ADMIN")


def test_whoami_shows_roles(guarded: Bot) -> None:
    guarded.say("whoami", user="U0DEV")
    shown = guarded.wait_ephemeral("Roles", user="U0DEV")
    assert "deployer" in shown
    assert "in dev" in shown


def test_lock_blocks_sync_until_admin_forces_or_unlocks(guarded: Bot) -> None:
    guarded.say("lock prod --reason 'release freeze' --ttl 2h", user="U0ADMIN")
    guarded.wait_channel("locked `prod`")
    guarded.say("sync api prod", user="U0DEPLOY")
    assert "release freeze" in guarded.wait_ephemeral("is locked", user="U0DEPLOY")
    guarded.say("status api prod", user="U0DEPLOY")
    status = guarded.wait_ephemeral("Healthy", user="U0DEPLOY")
    assert "release freeze" in status.split("Healthy", 1)[1]  # the lock shows in status
    guarded.say("sync api prod --force", user="U0DEPLOY")  # --force is for admins only
    guarded.slack.wait_for(lambda f: "--force" in guarded.ephemeral_text("U0DEPLOY"), timeout=20)
    guarded.say("sync api prod --force", user="U0ADMIN")
    card = guarded.wait_channel("Succeeded")
    assert "overridden" in json.dumps(card.blocks)
    guarded.say("unlock prod", user="U0ADMIN")
    guarded.wait_channel("unlocked `prod`")
    rows = guarded.runtime.deps.audit.recent(limit=20)
    assert any(r.action == "sync" and "overridden" in r.detail for r in rows)


def test_expired_lock_is_announced_once(guarded: Bot) -> None:
    guarded.say("lock dev --reason 'db migration' --ttl 30m", user="U0ADMIN")
    guarded.wait_channel("locked `dev`")
    deps = dataclasses.replace(guarded.runtime.deps, clock=lambda: datetime.now(UTC) + timedelta(hours=1))
    assert expire_locks(deps, guarded.runtime.app.client) == 1
    assert expire_locks(deps, guarded.runtime.app.client) == 0
    guarded.wait_channel("has expired")


def test_mutating_commands_are_rate_limited(guarded: Bot) -> None:
    for _ in range(3):
        guarded.say("sync api dev --dry-run", user="U0DEPLOY")
    answer = guarded.say("sync api dev --dry-run", user="U0DEPLOY")
    assert "Slow down" in str(answer["text"])


def test_a_replayed_request_is_refused_and_runs_once(guarded: Bot) -> None:
    body = urllib.parse.urlencode(
        {
            "command": "/gitops",
            "text": "whoami",
            "user_id": "U0VIEW",
            "user_name": "view",
            "channel_id": CHANNEL,
            "team_id": "T0SANDBOX",
            "response_url": guarded.slack.response_url(CHANNEL, "U0VIEW"),
            "trigger_id": "1.2.3",
        }
    ).encode()
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": guarded.sender.sign(body, stamp),
    }
    assert guarded.sender.send_raw(body, headers).status == 200
    assert guarded.sender.send_raw(body, headers).status == 401
    guarded.audit_rows(1)
    time.sleep(0.3)
    assert guarded.runtime.deps.audit.count() == 1


def test_commit_messages_cannot_ping_the_channel(guarded: Bot) -> None:
    guarded.argocd.push_revision("api-prod", message="<!channel> hotfix by <@U0ADMIN>", replicas=3)
    guarded.say("sync api prod", user="U0DEPLOY")
    guarded.wait_channel("Succeeded")
    guarded.say("history api prod", user="U0DEPLOY")
    shown = guarded.wait_ephemeral("History of api-prod", user="U0DEPLOY")
    assert "<!channel>" not in shown
    assert "&lt;!channel&gt;" in shown


def test_audit_query_answers_in_a_thread_with_more(guarded: Bot) -> None:
    from services.audit.trail import AuditEvent

    guarded.runtime.deps.audit.append_many(
        [
            AuditEvent(
                user_id="U0DEPLOY", action="sync", outcome="ok", target="api/prod", detail=f"row #{i}."
            )
            for i in range(45)
        ]
    )
    guarded.say("audit api --env prod", user="U0VIEW")
    parent = guarded.wait_channel("Audit")
    guarded.slack.wait_for(lambda f: any(m.thread_ts == parent.ts for m in f.messages(CHANNEL)), timeout=20)
    first = next(m for m in guarded.slack.messages(CHANNEL) if m.thread_ts == parent.ts)
    assert "row #44." in json.dumps(first.blocks)  # newest first
    assert "row #0." not in json.dumps(first.blocks)  # (a button's random value may hold "n0")
    guarded.sender.click(first, "audit_more", user_id="U0VIEW")
    guarded.slack.wait_for(
        lambda f: sum(m.thread_ts == parent.ts for m in f.messages(CHANNEL)) >= 2, timeout=10
    )
    pages = [m for m in guarded.slack.messages(CHANNEL) if m.thread_ts == parent.ts]
    assert "row #24." in json.dumps(pages[1].blocks)
