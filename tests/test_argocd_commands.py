"""Transcript tests: /gitops against the real app, the fake Slack and the fake Argo CD server."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import Runtime
from handlers.rollback.reminders import remind_holds
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from sandbox.slack_models import Message
from tests.conftest import config_for, start_on_argocd

CHANNEL = "C0DEPLOYS"


def _config(argocd: FakeArgoCD) -> str:
    return f"""
argocd:
  - name: main
    url: {argocd.base_url}
    token_env: ARGOCD_TOKEN
    timeouts: {{connect: 2, read: 5}}
environments:
  - name: dev
  - name: prod
apps:
  - name: api
    environments:
      dev: {{backend: argocd, name: api-dev}}
      prod: {{backend: argocd, name: api-prod, project: payments}}
operations:
  sync_timeout: 30s
access:
  grants:
    - role: deployer
      users: [U0ALICE, U0BOB]
"""


class Bot:
    def __init__(self, runtime: Runtime, sender: SlackSender, slack: FakeSlack, argocd: FakeArgoCD) -> None:
        self.runtime, self.sender, self.slack, self.argocd = runtime, sender, slack, argocd

    def say(self, text: str, user: str = "U0ALICE") -> dict[str, object]:
        sent = self.sender.slash(text, user_id=user, user_name=user.lower()[2:], channel_id=CHANNEL)
        assert sent.status == 200, sent.body
        assert sent.elapsed < 2.5
        return sent.json_body or {}

    def ephemeral_text(self, user: str = "U0ALICE") -> str:
        return "\n".join(m.text + json.dumps(m.blocks) for m in self.slack.ephemeral(user))

    def wait_ephemeral(self, needle: str, user: str = "U0ALICE", timeout: float = 20) -> str:
        self.slack.wait_for(lambda f: needle in self.ephemeral_text(user), timeout=timeout)
        return self.ephemeral_text(user)

    def wait_channel(self, needle: str, timeout: float = 25) -> Message:
        def found(fake: FakeSlack) -> bool:
            return any(needle in m.text for m in fake.messages(CHANNEL))

        self.slack.wait_for(found, timeout=timeout)
        return next(m for m in self.slack.messages(CHANNEL) if needle in m.text)

    def audit_rows(self, count: int, timeout: float = 20) -> list[object]:
        deadline = time.monotonic() + timeout
        while self.runtime.deps.audit.count() < count:
            assert time.monotonic() < deadline, f"audit rows: {self.runtime.deps.audit.count()} < {count}"
            time.sleep(0.02)
        return list(self.runtime.deps.audit.recent(limit=count))


def _fake(operation_seconds: float = 0.3) -> FakeArgoCD:
    fake = FakeArgoCD(operation_seconds=operation_seconds, tick=0.02).start()
    fake.add_app("api-dev", labels={"team": "payments"}, images=("registry.example.com/api:1.4.2",))
    fake.add_app(
        "api-prod",
        project="payments",
        labels={"team": "payments"},
        images=("registry.example.com/api:1.4.2",),
    )
    fake.add_app("web-prod", labels={"team": "web"}, history=1)
    return fake


@contextmanager
def _bot(tmp_path: Path, fake_slack: FakeSlack, argocd: FakeArgoCD) -> Iterator[Bot]:
    loaded = config_for(
        tmp_path, fake_slack, extra_yaml=_config(argocd), extra_env={"ARGOCD_TOKEN": JWT_TOKEN}
    )
    runtime, sender = start_on_argocd(loaded, fake_slack)
    try:
        yield Bot(runtime, sender, fake_slack, argocd)
    finally:
        runtime.stop()
        argocd.stop()


@pytest.fixture
def gitops(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[Bot]:
    with _bot(tmp_path, fake_slack, _fake()) as bot:
        yield bot


@pytest.fixture
def slow_gitops(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[Bot]:
    with _bot(tmp_path, fake_slack, _fake(operation_seconds=30)) as bot:
        yield bot


def test_status_of_one_app_in_detail(gitops: Bot) -> None:
    ack = gitops.say("status api prod")
    assert "Working on" in str(ack["text"])
    shown = gitops.wait_ephemeral("Healthy")
    assert "api-prod" in shown
    assert "registry.example.com/api:1.4.2" in shown
    assert "/applications/argocd/api-prod" in shown  # link button to the Argo CD UI
    get = [r for r in gitops.argocd.requests("/api/v1/applications/api-prod") if r.method == "GET"]
    assert get[-1].query.get("project") == ["payments"]  # so a missing app is a 404, not a 403


def test_status_all_lists_only_apps_needing_attention(gitops: Bot) -> None:
    gitops.argocd.drift("web-prod", replicas=7)
    gitops.argocd.clear_requests()
    gitops.say("status --all")
    shown = gitops.wait_ephemeral("need attention")
    assert "web-prod" in shown
    assert "api-dev" not in shown.split("need attention", 1)[1]
    lists = gitops.argocd.requests("/api/v1/applications")
    assert len([r for r in lists if r.path == "/api/v1/applications"]) == 1
    assert "fields" in lists[0].query


def test_unknown_app_suggests_the_nearest_name(gitops: Bot) -> None:
    gitops.say("status apy prod")
    shown = gitops.wait_ephemeral("No app called")
    assert "`api`" in shown
    [row] = gitops.audit_rows(1)
    assert row.outcome == "failed"  # type: ignore[attr-defined]


def test_sync_updates_one_channel_message_to_succeeded(gitops: Bot) -> None:
    before = gitops.argocd.app("api-prod")["status"]["sync"]["revision"]
    sha = gitops.argocd.push_revision("api-prod", image="registry.example.com/api:1.4.3", message="bump api")
    gitops.say("sync api prod --prune")
    card = gitops.wait_channel("Succeeded")
    assert card.edited  # one message, updated in place
    assert len([m for m in gitops.slack.messages(CHANNEL) if "Sync api-prod" in m.text]) == 1
    [sync] = gitops.argocd.requests("/api/v1/applications/api-prod/sync")
    assert sync.headers.get("content-type") == "application/json"
    assert sync.body["prune"] is True
    assert sync.body["project"] == "payments"
    [row] = gitops.audit_rows(1)
    assert row.action == "sync"  # type: ignore[attr-defined]
    assert row.outcome == "ok"  # type: ignore[attr-defined]
    assert before[:7] in row.detail  # type: ignore[attr-defined]
    assert sha[:7] in row.detail  # type: ignore[attr-defined]


def test_failed_sync_is_reported_and_audited_as_failed(gitops: Bot) -> None:
    gitops.argocd.push_revision("api-dev", replicas=3)
    gitops.argocd.fail_next_sync("api-dev", message="one or more objects failed to apply")
    gitops.say("sync api dev")
    card = gitops.wait_channel("Failed")
    assert "failed to apply" in json.dumps(card.blocks)
    [row] = gitops.audit_rows(1)
    assert row.outcome == "failed"  # type: ignore[attr-defined]


def test_sync_while_an_operation_runs_is_refused_clearly(slow_gitops: Bot) -> None:
    gitops = slow_gitops
    gitops.argocd.push_revision("api-dev", replicas=4)
    gitops.say("sync api dev")
    gitops.wait_channel("Running", timeout=15)
    gitops.say("sync api dev", user="U0BOB")
    shown = gitops.wait_ephemeral("another operation is already in progress", user="U0BOB")
    assert "Traceback" not in shown


def test_batch_sync_by_selector(gitops: Bot) -> None:
    gitops.say("sync --selector team=payments")
    card = gitops.wait_channel("Sync 2 apps")
    gitops.slack.wait_for(lambda f: "2 / 2" in json.dumps(f.messages(CHANNEL)[-1].blocks), timeout=15)
    assert card.ts == gitops.slack.messages(CHANNEL)[-1].ts
    synced = {r.path for r in gitops.argocd.requests() if r.path.endswith("/sync")}
    assert synced == {"/api/v1/applications/api-dev/sync", "/api/v1/applications/api-prod/sync"}


def test_diff_shows_a_summary_and_the_change(gitops: Bot) -> None:
    gitops.argocd.push_revision("api-prod", image="registry.example.com/api:1.4.3")
    gitops.say("diff api prod")
    shown = gitops.wait_ephemeral("Diff api-prod")
    assert "1.4.2" in shown
    assert "1.4.3" in shown
    assert "managedFields" not in shown


def test_diff_in_sync_says_nothing_would_change(gitops: Bot) -> None:
    gitops.say("diff api dev")
    assert "nothing would change" in gitops.wait_ephemeral("nothing would change")


def test_history_newest_first(gitops: Bot) -> None:
    gitops.say("history api prod")
    shown = gitops.wait_ephemeral("History of api-prod")
    assert shown.index("#3") < shown.index("#2") < shown.index("#1")
    assert "current" in shown


def _card(gitops: Bot, user: str = "U0ALICE") -> Message:
    return next(m for m in reversed(gitops.slack.ephemeral(user)) if "rollback_" in json.dumps(m.blocks))


def test_rollback_confirm_then_runs_once(gitops: Bot) -> None:
    gitops.say("rollback api prod")
    gitops.wait_ephemeral("Roll back api-prod?")
    card = _card(gitops)
    assert not gitops.argocd.requests("/api/v1/applications/api-prod/rollback")  # nothing before the click
    gitops.sender.click(card, "rollback_confirm", user_id="U0ALICE", user_name="alice")
    gitops.wait_channel("Succeeded")
    [rollback] = gitops.argocd.requests("/api/v1/applications/api-prod/rollback")
    assert rollback.body["id"] == 2  # a JSON number: the entry before the current one
    rows = gitops.audit_rows(4)  # each changing request: `started` when accepted, then its result
    assert [(r.action, r.outcome) for r in rows] == [  # type: ignore[attr-defined]
        ("rollback_confirm", "ok"),
        ("rollback_confirm", "started"),
        ("rollback", "ok"),
        ("rollback", "started"),
    ]
    assert rows[0].request_id == rows[1].id  # type: ignore[attr-defined]
    assert {r.target for r in rows} == {"api/prod"}  # type: ignore[attr-defined]  # one target, both entry points
    # A second click on the same card does nothing more.
    gitops.sender.click(card, "rollback_confirm", user_id="U0ALICE", user_name="alice")
    gitops.audit_rows(6)
    assert len(gitops.argocd.requests("/api/v1/applications/api-prod/rollback")) == 1


def test_rollback_with_autosync_disables_it_holds_and_reminds(gitops: Bot) -> None:
    gitops.argocd.add_app("pay", auto_sync=True, history=3)
    gitops.say("rollback main/pay")
    gitops.wait_ephemeral("Automated sync is on")
    card = _card(gitops)
    gitops.sender.click(card, "rollback_disable_autosync", user_id="U0ALICE", user_name="alice")
    gitops.wait_channel("Succeeded")
    [patch] = [r for r in gitops.argocd.requests("/api/v1/applications/pay") if r.method == "PATCH"]
    assert json.loads(patch.body["patch"]) == {"spec": {"syncPolicy": {"automated": None}}}
    [hold] = gitops.runtime.deps.ops.holds.open_holds()  # type: ignore[union-attr]
    later = datetime.now(UTC) + timedelta(hours=5)
    deps = gitops.runtime.deps
    posted = remind_holds(dataclasses.replace(deps, clock=lambda: later), gitops.runtime.app.client)
    assert posted == 1
    reminder = gitops.wait_channel("still *off*")
    gitops.sender.click(reminder, "hold_release", user_id="U0BOB")
    gitops.wait_channel("back *on*")
    patches = [r for r in gitops.argocd.requests("/api/v1/applications/pay") if r.method == "PATCH"]
    assert "automated" in json.loads(patches[-1].body["patch"])["spec"]["syncPolicy"]
    assert json.loads(patches[-1].body["patch"])["spec"]["syncPolicy"]["automated"] is not None
    assert gitops.runtime.deps.ops.holds.open_holds() == []  # type: ignore[union-attr]
    assert hold.id


def test_argocd_down_is_a_clear_failure(gitops: Bot) -> None:
    gitops.argocd.go_down()
    try:
        gitops.say("status api prod")
        shown = gitops.wait_ephemeral("not answering")
        assert "main" in shown
        [row] = gitops.audit_rows(1)
        assert row.outcome == "failed"  # type: ignore[attr-defined]
    finally:
        gitops.argocd.come_up()


def test_argocd_slow_still_acks_at_once(gitops: Bot) -> None:
    gitops.argocd.set_latency(1.5)
    started = time.monotonic()
    ack = gitops.say("status api prod")
    assert time.monotonic() - started < 1.0
    assert "Working on" in str(ack["text"])
    gitops.wait_ephemeral("Healthy", timeout=20)


def test_forbidden_app_is_a_denial(gitops: Bot) -> None:
    gitops.argocd.forbid("api-dev")
    gitops.say("sync api dev")
    gitops.wait_ephemeral("Not allowed")
    [row] = gitops.audit_rows(1)
    assert row.outcome == "denied"  # type: ignore[attr-defined]


def test_whoami_and_readyz_show_the_argocd_version(gitops: Bot) -> None:
    gitops.say("whoami")
    assert "v3.6.0+sandbox" in gitops.wait_ephemeral("v3.6.0+sandbox")
    url = f"http://127.0.0.1:{gitops.runtime.server.port}/readyz"
    with urllib.request.urlopen(url, timeout=15) as response:
        ready = json.loads(response.read())
    assert ready["backends"] == {"argocd:main": "v3.6.0+sandbox"}
    assert [r.path for r in gitops.argocd.requests("/api/version")]  # asked at start (and cached)


def test_invalid_revision_never_reaches_argocd(gitops: Bot) -> None:
    answer = gitops.say("sync api prod --revision 'main;rm -rf /'")
    assert str(answer["text"]).startswith(":warning:")
    gitops.audit_rows(1)
    assert not [r for r in gitops.argocd.requests() if r.method != "GET"]
