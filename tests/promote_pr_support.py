"""The world the pull-request promotion tests run in: the real bot over HTTP with the fake Slack, a
real deploy repository (bare) served by the fake GitHub (or GitLab), and the fake Argo CD deploying.

`github` and `world` are fixtures (import them into a test module); `world`'s `main` refuses pushes
as GitHub does, so a promotion goes through a pull request.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.app import Runtime
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.flux_git import make_deploy_repo
from sandbox.github_fake import BOT_TOKEN, REVIEWER_TOKEN, FakeGitHub
from sandbox.gitlab_fake import BOT_TOKEN as GITLAB_BOT_TOKEN
from sandbox.gitlab_fake import FakeGitLab
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from sandbox.slack_models import Message
from tests.conftest import config_for, start_on_argocd

CHANNEL = "C0DEPLOYS"
REPO = "example/deploy"
PROD = "apps/api/prod/kustomization.yaml"
KUSTOMIZATION = """\
# {env} overlay: edited by gitops-bot promotions
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
images:
  - name: registry.example.com/api
    newTag: "{tag}"  # bumped by promotion
"""

APPS = """
git:
  cache_dir: {cache}
environments:
  - name: dev
  - name: prod
    approvals_required: 1
    approvers: {{users: [U0BOSS, U0CAROL]}}
apps:
  - name: api
    environments:
      dev: {{backend: argocd, name: api-dev, repository: deploy, path: apps/api/dev}}
      prod: {{backend: argocd, name: api-prod, repository: deploy, path: apps/api/prod}}
    promotion:
      images: [registry.example.com/api]
access:
  grants:
    - role: deployer
      users: [U0ALICE, U0BOSS]
"""


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=cwd).stdout.strip()


class World:
    def __init__(
        self, tmp: Path, slack: FakeSlack, github: FakeGitHub, gitlab: FakeGitLab | None = None
    ) -> None:
        self.tmp, self.slack, self.github, self.gitlab = tmp, slack, github, gitlab
        files = {f"apps/api/{env}/kustomization.yaml": KUSTOMIZATION.format(env=env, tag=tag)
                 for env, tag in (("dev", "1.4.3"), ("prod", "1.4.1"))}  # fmt: skip
        self.bare, self.work = make_deploy_repo(tmp / "git", files)
        self.base = self.head()
        if gitlab is not None:
            gitlab.add_project(REPO, self.bare)
        else:
            github.add_repo(REPO, self.bare)
        self.argocd = FakeArgoCD(operation_seconds=0.2, tick=0.02).start()
        for env in ("dev", "prod"):
            self.argocd.add_app(f"api-{env}")
        self.runtime: Runtime | None = None
        self.sender: SlackSender | None = None

    @contextmanager
    def bot(self, *, repo_extra: str = "") -> Iterator[World]:
        host = f"""    host: github
    api_url: {self.github.api_url}
    project: {REPO}
    token_env: GITHUB_TOKEN
    labels: [promotion]
    reviewers: [reviewer]{repo_extra}"""
        if self.gitlab is not None:
            host = f"""    host: gitlab
    api_url: {self.gitlab.api_url}
    project: {REPO}
    token_env: GITLAB_TOKEN
    labels: [promotion]{repo_extra}"""
        extra = f"""
argocd:
  - name: main
    url: {self.argocd.base_url}
    token_env: ARGOCD_TOKEN
repositories:
  - name: deploy
    url: file://{self.bare}
    mode: pull_request
{host}
""" + APPS.format(cache=self.tmp / "cache")
        env = {"GITHUB_APPROVE_TOKEN": REVIEWER_TOKEN}
        with self.running_on(extra, env):
            yield self

    @contextmanager
    def running_on(self, extra_yaml: str, extra_env: dict[str, str]) -> Iterator[None]:
        """The bot on this world's config plus `extra_yaml`, with the hosts' and Argo CD's tokens."""
        env = {"ARGOCD_TOKEN": JWT_TOKEN, "GITHUB_TOKEN": BOT_TOKEN, "GITLAB_TOKEN": GITLAB_BOT_TOKEN}
        loaded = config_for(self.tmp, self.slack, extra_yaml=extra_yaml, extra_env=env | extra_env)
        self.runtime, self.sender = start_on_argocd(loaded, self.slack)
        try:
            yield
        finally:
            self.runtime.stop()

    def say(self, text: str, user: str = "U0ALICE") -> None:
        assert self.sender is not None
        assert (
            self.sender.slash(text, user_id=user, user_name=user.lower()[2:], channel_id=CHANNEL).status
            == 200
        )

    def approve(self, card: Message, user: str = "U0BOSS") -> None:
        assert self.sender is not None
        self.sender.click(card, "promotion_approve", user_id=user, user_name=user.lower()[2:])

    def card(self, needle: str, timeout: float = 30) -> Message:
        def found(fake: FakeSlack) -> bool:
            return any(needle in json.dumps(m.blocks) for m in fake.messages(CHANNEL))

        self.slack.wait_for(found, timeout)
        return next(m for m in self.slack.messages(CHANNEL) if needle in json.dumps(m.blocks))

    def head(self, ref: str = "main") -> str:
        return git("--git-dir", str(self.bare), "rev-parse", ref)

    def show(self, rev: str, path: str = PROD) -> str:
        return git("--git-dir", str(self.bare), "show", f"{rev}:{path}")

    def actions(self) -> list[str]:
        assert self.runtime is not None
        return [r.action for r in self.runtime.deps.audit.recent(limit=100)]

    def pr_head(self) -> str:
        (pull,) = self.github.pulls(REPO)
        return str(self.github.pull(REPO, pull.number)["head"]["sha"])


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(prefix="/api/v3") as fake:
        yield fake


@pytest.fixture
def world(tmp_path: Path, fake_slack: FakeSlack, github: FakeGitHub) -> Iterator[World]:
    w = World(tmp_path, fake_slack, github)
    github.protect(REPO, "main")  # `git push` to main now fails with GH006
    try:
        yield w
    finally:
        w.argocd.stop()
