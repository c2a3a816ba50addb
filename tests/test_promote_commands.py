"""Transcript tests for /gitops promote: preview, four eyes, commit with trailers, sync, expiry, restart."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from bot.app import Runtime
from handlers.promote.executor import expire_promotions
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.flux_git import commit_file, make_deploy_repo
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from sandbox.slack_models import Message
from services.extensions.hookspecs import PROJECT
from services.extensions.manager import Extensions
from tests.conftest import config_for, start_on_argocd

CHANNEL = "C0DEPLOYS"
KUSTOMIZATION = """\
# {env} overlay: edited by gitops-bot promotions
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base   # shared manifests
images:
  - name: registry.example.com/api
    newTag: "{tag}"  # bumped by promotion
  - name: registry.example.com/sidecar
    newTag: 2.0.0
"""


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


class World:
    def __init__(self, tmp: Path, slack: FakeSlack) -> None:
        self.tmp, self.slack = tmp, slack
        files = {f"apps/api/{env}/kustomization.yaml": KUSTOMIZATION.format(env=env, tag=tag)
                 for env, tag in (("dev", "1.4.3"), ("staging", "1.4.2"), ("prod", "1.4.1"))}  # fmt: skip
        self.bare, self.work = make_deploy_repo(tmp / "git", files)
        self.argocd = FakeArgoCD(operation_seconds=0.2, tick=0.02).start()
        for env in ("dev", "staging", "prod"):
            self.argocd.add_app(f"api-{env}")
        self.runtime: Runtime | None = None
        self.sender: SlackSender | None = None

    @contextmanager
    def bot(
        self,
        *,
        prod_extra: str = "",
        top_extra: str = "",
        clock: Callable[[], datetime] | None = None,
        plugins: Mapping[str, str] | None = None,
    ) -> Iterator[World]:
        """`plugins`: entry-point name → "module:object", loaded as if installed (tests/plugin_probe.py)."""
        extra = f"""
argocd:
  - name: main
    url: {self.argocd.base_url}
    token_env: ARGOCD_TOKEN
repositories:
  - name: deploy
    url: file://{self.bare}
git:
  cache_dir: {self.tmp / "cache"}
environments:
  - name: dev
  - name: staging
  - name: prod
    approvals_required: 1
    approvers: {{users: [U0BOSS, U0CAROL]}}{prod_extra}
apps:
  - name: api
    environments:
      dev: {{backend: argocd, name: api-dev, repository: deploy, path: apps/api/dev}}
      staging: {{backend: argocd, name: api-staging, repository: deploy, path: apps/api/staging}}
      prod: {{backend: argocd, name: api-prod, repository: deploy, path: apps/api/prod}}
    promotion:
      images: [registry.example.com/api]
access:
  grants:
    - role: deployer
      users: [U0ALICE, U0BOSS]
    - role: admin
      users: [U0ADMIN]
{top_extra}"""
        loaded = config_for(self.tmp, self.slack, extra_yaml=extra, extra_env={"ARGOCD_TOKEN": JWT_TOKEN})
        if plugins:  # named in config as if installed (the config loader would look them up)
            settings = loaded.settings.model_copy(update={"plugins": tuple(plugins)})
            found = {n: EntryPoint(n, v, PROJECT) for n, v in plugins.items()}
            extensions, problems = Extensions.load(settings, available=found)
            assert not problems, problems
            loaded = dataclasses.replace(loaded, settings=settings, extensions=extensions)
        self.runtime, self.sender = start_on_argocd(loaded, self.slack, clock=clock)
        try:
            yield self
        finally:
            self.runtime.stop()

    def say(self, text: str, user: str = "U0ALICE") -> None:
        assert self.sender is not None
        assert (
            self.sender.slash(text, user_id=user, user_name=user.lower()[2:], channel_id=CHANNEL).status
            == 200
        )

    def card(self, needle: str, timeout: float = 30) -> Message:
        self.slack.wait_for(
            lambda f: any(needle in json.dumps(m.blocks) for m in f.messages(CHANNEL)), timeout
        )
        return next(m for m in self.slack.messages(CHANNEL) if needle in json.dumps(m.blocks))

    def audited(self, action: str, timeout: float = 10) -> None:
        """Wait until the result row for `action` landed (not only its `started` row)."""
        assert self.runtime is not None
        deadline = time.monotonic() + timeout
        rows = self.runtime.deps.audit.recent
        while not any(r.action == action and r.outcome != "started" for r in rows(limit=50)):
            assert time.monotonic() < deadline, f"no audit row for {action}"
            time.sleep(0.05)

    def remote_log(self) -> str:
        return _git("--git-dir", str(self.bare), "log", "-1", "--format=%an <%ae>%n%B")

    def remote_diff(self) -> str:
        return _git("--git-dir", str(self.bare), "show", "--format=", "HEAD")


@pytest.fixture
def world(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[World]:
    w = World(tmp_path, fake_slack)
    try:
        yield w
    finally:
        w.argocd.stop()


def test_promote_without_approval_commits_syncs_and_keeps_comments(world: World) -> None:
    with world.bot():
        world.say("promote api --to staging")
        world.card("Deploy: *Succeeded*")
        log = world.remote_log()
        assert "promote api to staging" in log
        assert "Requested-by:" in log
        assert "Audit-Id:" in log
        diff = world.remote_diff()
        changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
        assert changed == [
            '-    newTag: "1.4.2"  # bumped by promotion',
            '+    newTag: "1.4.3"  # bumped by promotion',
        ]
        assert world.argocd.requests("/api/v1/applications/api-staging/sync")


def test_prod_needs_another_person_to_approve(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev", user="U0BOSS")
        card = w.card("promotion_approve")
        assert "1.4.1" in json.dumps(card.blocks)
        assert "1.4.3" in json.dumps(card.blocks)
        assert w.sender is not None
        w.sender.click(card, "promotion_approve", user_id="U0BOSS", user_name="boss")  # own request
        w.slack.wait_for(
            lambda f: any("someone else" in m.text + json.dumps(m.blocks) for m in f.ephemeral("U0BOSS"))
        )
        w.sender.click(card, "promotion_approve", user_id="U0ALICE", user_name="alice")  # not an approver
        w.slack.wait_for(lambda f: any("Not allowed" in m.text for m in f.ephemeral("U0ALICE")))
        assert "promote api to prod" not in w.remote_log()
        w.sender.click(card, "promotion_approve", user_id="U0CAROL", user_name="carol")
        w.card("Deploy: *Succeeded*")
        w.audited("promotion_approve")
        time.sleep(0.2)  # the successful approval's row lands right after the denied ones
        log = w.remote_log()
        assert "promote api to prod" in log
        assert "Approved-by:" in log
        assert "U0CAROL" in log
        assert w.argocd.requests("/api/v1/applications/api-prod/sync")
        rows = w.runtime.deps.audit.recent(limit=10)  # type: ignore[union-attr]
        promotion_id = log.split("Audit-Id:", 1)[1].split()[0]
        linked = [r for r in rows if promotion_id in r.detail]
        assert {r.action for r in linked} >= {"promote", "promotion_approve"}
        outcomes = sorted(r.outcome for r in rows if r.action == "promotion_approve")
        assert outcomes == ["denied", "denied", "ok", "started", "started", "started"]


def test_reject_records_the_reason(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("promotion_reject")
        assert w.sender is not None
        w.sender.click(
            card,
            "promotion_reject",
            user_id="U0BOSS",
            user_name="boss",
            inputs={"reject_reason": "not today"},
        )
        assert "not today" in json.dumps(w.card("Rejected by").blocks)
        assert "promote api to prod" not in w.remote_log()


def test_target_moved_before_approval_asks_again(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("promotion_approve")
        content = KUSTOMIZATION.format(env="prod", tag="1.4.1").replace("2.0.0", "2.0.1")
        commit_file(w.work, "apps/api/prod/kustomization.yaml", content, "sidecar bump")
        assert w.sender is not None
        w.sender.click(card, "promotion_approve", user_id="U0BOSS", user_name="boss")
        again = w.card("approve again")
        assert "promote api" not in w.remote_log()
        w.sender.click(again, "promotion_approve", user_id="U0BOSS", user_name="boss")
        w.card("Deploy: *Succeeded*")
        assert "2.0.1" in (_git("--git-dir", str(w.bare), "show", "HEAD:apps/api/prod/kustomization.yaml"))


def test_expired_request_edits_the_card(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        w.card("promotion_approve")
        w.audited("promote")  # the card's ts is stored once the request is answered
        assert w.runtime is not None
        deps = dataclasses.replace(w.runtime.deps, clock=lambda: datetime.now(UTC) + timedelta(hours=2))
        promoter = w.runtime.promoter  # type: ignore[attr-defined]
        assert expire_promotions(dataclasses.replace(promoter, deps=deps), w.runtime.app.client) == 1
        expired = json.dumps(w.card("Expired").blocks)
        assert "nobody approved within 1h" in expired  # durations read like everywhere else
        assert "`/gitops promote api --to prod --from dev`" in expired


def test_pending_approval_survives_a_restart(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("promotion_approve")
    time.sleep(0.1)
    with world.bot() as w:
        assert w.sender is not None
        w.sender.click(card, "promotion_approve", user_id="U0BOSS", user_name="boss")
        w.card("Deploy: *Succeeded*")
        assert "promote api to prod" in w.remote_log()
