"""Flux rollbacks into a protected branch through a pull request (GitHub) or merge request (GitLab):
the real bot over HTTP with the fake Slack, the fake Kubernetes API with Flux's controllers, a real
bare repository whose `main` refuses pushes as the host does, and the fake host serving it."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.app import build_runtime
from sandbox.flux_fake import FakeKubernetes
from sandbox.flux_git import commit_file, make_deploy_repo
from sandbox.github_fake import BOT_TOKEN, FakeGitHub
from sandbox.gitlab_fake import BOT_TOKEN as GITLAB_BOT_TOKEN
from sandbox.gitlab_fake import FakeGitLab
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from services.audit.chain import AuditEvent
from services.backend import GitOpsBackend
from services.flux import build_flux_backends
from services.git import RepoCache
from tests.conftest import SIGNING_SECRET, config_for
from tests.test_events import row as audit_row
from tests.test_events import types

CHANNEL = "C0DEPLOYS"
REPO = "example/deploy"
MANIFEST = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: {replicas}\n"


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=cwd).stdout.strip()


class World:
    def __init__(self, tmp: Path, slack: FakeSlack, github: FakeGitHub, gitlab: FakeGitLab | None) -> None:
        self.tmp, self.slack, self.github, self.gitlab = tmp, slack, github, gitlab
        files = {"apps/prod/deployment.yaml": MANIFEST.format(replicas=2), "README.md": "deploy\n"}
        self.bare, self.work = make_deploy_repo(tmp / "git", files)
        if gitlab is not None:
            gitlab.add_project(REPO, self.bare)
        else:
            github.add_repo(REPO, self.bare)
        self.k8s = FakeKubernetes(tick=0.02, reconcile_seconds=0.1).start()
        self.k8s.add_git_repository("deploy", url=f"file://{self.bare}")
        self.k8s.add_kustomization("api", path="./apps/prod", source="deploy")
        self.sender: SlackSender | None = None
        self.audit_actions: list[str] = []
        self.rows: list[AuditEvent] = []

    def protect(self) -> None:
        if self.gitlab is not None:
            self.gitlab.protect(REPO, "main")
        else:
            self.github.protect(REPO, "main")

    @contextmanager
    def bot(self, mode: str = "pull_request") -> Iterator[World]:
        if self.gitlab is not None:
            host = f"host: gitlab\n    api_url: {self.gitlab.api_url}\n    token_env: GITLAB_TOKEN"
        else:
            host = f"host: github\n    api_url: {self.github.api_url}\n    token_env: GITHUB_TOKEN"
        extra = f"""
flux:
  - name: prod
    kubeconfig: {self.k8s.write_kubeconfig(self.tmp / "kubeconfig")}
    context: sandbox
repositories:
  - name: deploy
    url: file://{self.bare}
    branch: main
    mode: {mode}
    {host}
    project: {REPO}
git:
  cache_dir: {self.tmp / "cache"}
access:
  grants:
    - role: deployer
      users: [U0ALICE]
"""
        env = {"GITHUB_TOKEN": BOT_TOKEN, "GITLAB_TOKEN": GITLAB_BOT_TOKEN}
        loaded = config_for(self.tmp, self.slack, extra_yaml=extra, extra_env=env)
        repos = RepoCache(self.tmp / "cache", loaded.settings.repositories, loaded.secrets.git_credentials)
        flux = build_flux_backends(loaded.settings, loaded.secrets, repos, poll_interval=0.05)
        backends: dict[str, GitOpsBackend] = {f"flux:{name}": b for name, b in flux.items()}
        runtime = build_runtime(loaded, port=0, host="127.0.0.1", backends=backends).start()
        self.sender = SlackSender(
            f"http://127.0.0.1:{runtime.server.port}/slack/events", SIGNING_SECRET, self.slack
        )
        try:
            yield self
        finally:
            time.sleep(0.2)
            self.rows = runtime.deps.audit.recent(limit=200)
            self.audit_actions = [r.action for r in self.rows]
            self.details = [r.detail for r in runtime.deps.audit.recent(limit=200)]
            runtime.stop()

    def say(self, text: str) -> None:
        assert self.sender is not None
        assert self.sender.slash(text, user_id="U0ALICE", user_name="alice", channel_id=CHANNEL).status == 200

    def channel(self, *needles: str, timeout: float = 30) -> str:
        def shown() -> list[str]:
            texts = [m.text + json.dumps(m.blocks) for m in self.slack.messages(CHANNEL)]
            return [t for t in texts if all(n in t for n in needles)]

        self.slack.wait_for(lambda _: bool(shown()), timeout)
        return shown()[0]

    def confirm_rollback(self) -> None:
        assert self.sender is not None
        self.say("rollback api")
        self.slack.wait_for(
            lambda f: any("rollback_confirm" in json.dumps(m.blocks) for m in f.ephemeral("U0ALICE"))
        )
        card = next(
            m for m in reversed(self.slack.ephemeral("U0ALICE")) if "rollback_confirm" in json.dumps(m.blocks)
        )
        self.sender.click(card, "rollback_confirm", user_id="U0ALICE", user_name="alice")

    def deployed_bad_version(self) -> str:
        """A bad commit (7 replicas), applied; then the branch is protected."""
        bad = commit_file(
            self.work, "apps/prod/deployment.yaml", MANIFEST.format(replicas=7), "scale api to 7"
        )
        self.k8s.fetch_sources()
        self.say("sync api")
        self.channel("Succeeded")
        self.protect()
        return bad

    def rollback_held_by_check(self, *needles: str) -> str:
        """A bad version deployed, `main` then requiring the check `ci`, the rollback confirmed: its
        card waits for GitHub (and shows `needles`)."""
        self.deployed_bad_version()
        self.github.protect(REPO, "main", required_checks=("ci",))
        self.confirm_rollback()
        return self.channel("waiting for GitHub", *needles)

    def show(self, rev: str = "main", path: str = "apps/prod/deployment.yaml") -> str:
        return _git("--git-dir", str(self.bare), "show", f"{rev}:{path}")

    def parents(self, rev: str = "main") -> list[str]:
        return _git("--git-dir", str(self.bare), "rev-list", "--parents", "-n", "1", rev).split()[1:]


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(prefix="/api/v3") as fake:
        yield fake


@pytest.fixture
def world(tmp_path: Path, fake_slack: FakeSlack, github: FakeGitHub) -> Iterator[World]:
    """A world on the fake GitHub; its fake Kubernetes stops after the test."""
    w = World(tmp_path, fake_slack, github, None)
    try:
        yield w
    finally:
        w.k8s.stop()


def test_a_flux_rollback_through_a_gitlab_merge_request(
    tmp_path: Path, fake_slack: FakeSlack, github: FakeGitHub
) -> None:
    with FakeGitLab() as gitlab:
        world = World(tmp_path, fake_slack, github, gitlab)
        try:
            with world.bot() as w:
                bad = w.deployed_bad_version()
                before = _git("--git-dir", str(w.bare), "rev-parse", "main")
                w.confirm_rollback()
                final = w.channel("Merged", "MR !1", "Succeeded")
                assert "replicas: 2" in w.show()
                parents = w.parents()
                assert parents[0] == before  # GitLab merged: main was never pushed to
                assert len(parents) == 2
                (mr,) = gitlab.merge_requests(REPO)
                shown = gitlab.merge_request(REPO, mr.iid)
                assert shown["state"] == "merged"
                assert shown["source_branch"].startswith("gitops-bot/rollback/api-prod-")
                assert shown["title"].startswith("Roll back api: Revert")
                assert "alice" in shown["description"]
                assert bad[:7] in final or "revert" in final.lower()
                assert not github.requests()
            assert {"rollback.pr_opened", "rollback.merged"} <= set(world.audit_actions)
            applied = world.k8s.object("kustomizations", "api")
            assert _git("--git-dir", str(world.bare), "rev-parse", "main") in str(applied["status"])
        finally:
            world.k8s.stop()


def test_a_flux_rollback_through_a_github_pull_request_waits_for_its_check(
    world: World, github: FakeGitHub
) -> None:
    with world.bot() as w:
        waiting = w.rollback_held_by_check()
        assert "required check `ci` has not reported yet" in waiting
        assert "replicas: 7" in w.show()  # nothing merged while the check is missing
        (pull,) = github.pulls(REPO)
        head = github.pull(REPO, pull.number)["head"]["sha"]
        github.set_check(REPO, head, "ci", conclusion="success")
        w.channel("Merged", "PR #1", "Succeeded")
        assert "replicas: 2" in w.show()
        assert github.pull(REPO, pull.number)["merged"] is True
        assert len(w.parents()) == 2
        body = github.pull(REPO, pull.number)["body"]
        assert "alice" in body
        assert "slack" in body.lower()
    assert {"rollback.pr_opened", "rollback.waiting", "rollback.merged"} <= set(world.audit_actions)


def test_a_flux_rollback_waiting_for_its_check_is_picked_up_after_a_restart(
    world: World, github: FakeGitHub, fake_slack: FakeSlack
) -> None:
    with world.bot() as w:
        w.rollback_held_by_check("PR #1")
    card = next(
        m for m in fake_slack.messages(CHANNEL) if "waiting for GitHub" in m.text + json.dumps(m.blocks)
    )
    assert "Still running in GitHub example/deploy" in json.dumps(card.blocks)  # noted at the shutdown
    first = world.rows
    with world.bot() as w:

        def waiting_again(_: object) -> bool:
            shown = fake_slack.find_message(CHANNEL, card.ts)
            text = json.dumps(shown.blocks) if shown is not None else ""
            return "waiting for GitHub" in text and "Still running" not in text

        fake_slack.wait_for(waiting_again, 30)  # picked up: the card waits for the check again
        assert "replicas: 7" in w.show()
        (pull,) = github.pulls(REPO)
        github.set_check(REPO, github.pull(REPO, pull.number)["head"]["sha"], "ci", conclusion="success")
        w.channel("Merged", "PR #1", "Succeeded")
        final = fake_slack.find_message(CHANNEL, card.ts)
        assert final is not None
        assert "Succeeded" in final.text + json.dumps(final.blocks)  # the same message ends it
        assert "replicas: 2" in w.show()
        assert github.pull(REPO, pull.number)["merged"] is True
        merges = [r for r in github.requests() if r.method == "PUT" and r.path.endswith("/merge")]
        assert len(merges) == 1
    main = _git("--git-dir", str(world.bare), "rev-parse", "main")
    assert main in str(world.k8s.object("kustomizations", "api")["status"])  # reconciled
    (started,) = [r for r in first if r.action == "rollback_confirm" and r.outcome == "started"]
    ends = [r for r in world.rows if r.request_id == started.id]
    (ok,) = [r for r in ends if r.outcome == "ok"]  # one result row, from the runtime that took it up
    assert "through PR #1" in ok.detail
    assert [r.outcome for r in ends if r.outcome != "ok"] == ["unknown"]  # the shutdown's note
    assert [r.action for r in world.rows].count("rollback.merged") == 1


def test_a_flux_rollback_pull_request_closed_outside_slack_says_so(world: World, github: FakeGitHub) -> None:
    with world.bot() as w:
        w.rollback_held_by_check()
        (pull,) = github.pulls(REPO)
        github.close(REPO, pull.number)
        w.channel("outside Slack", "did not happen")
        assert "replicas: 7" in w.show()
    assert "rollback.closed" in world.audit_actions
    assert "rollback.merged" not in world.audit_actions


def test_auto_mode_switches_a_refused_rollback_to_a_pull_request(world: World) -> None:
    with world.bot(mode="auto") as w:
        w.deployed_bad_version()
        w.confirm_rollback()
        final = w.channel("Merged", "PR #1", "Succeeded")
        assert "is protected (GH006" in final
        assert "switched to a PR" in final
        assert "replicas: 2" in w.show()
    assert "rollback.protection_detected" in world.audit_actions
    assert any("GH006" in d for d in world.details)


def test_the_change_request_steps_are_typed_events() -> None:
    p, r = "promotion uXjS: ", "rollback pa1: "
    for step in ("pr_opened", "waiting", "host_approved", "merged", "closed", "conflict", "pr_head_moved",
                 "pr_updated"):  # fmt: skip
        assert types(audit_row(f"promotion.{step}", "ok", p + "PR #3 something", user="gitops-bot")) == [
            f"promotion.{step}"
        ]
    for step in ("pr_opened", "waiting", "host_approved", "merged", "closed"):
        assert types(audit_row(f"rollback.{step}", "ok", r + "MR !2 something", user="gitops-bot")) == [
            f"rollback.{step}"
        ]
    detected = "`main` of deploy is protected (GH006: Changes must be made through a pull request.); switched"
    for family, prefix in (("promotion", p), ("rollback", r)):
        assert types(audit_row(f"{family}.protection_detected", "ok", prefix + detected)) == [
            "protection.detected"
        ]
