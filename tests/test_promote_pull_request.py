"""Promotions into a protected branch through a pull request: the real bot over HTTP with the fake
Slack, a real deploy repository (bare) whose `main` refuses pushes as GitHub does, the fake GitHub
serving it, and the fake Argo CD deploying the merge."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.app import Runtime
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.flux_git import make_deploy_repo
from sandbox.github_fake import BOT_TOKEN, REVIEWER_TOKEN, FakeGitHub, Settle
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


def _git(*args: str, cwd: Path | None = None) -> str:
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
git:
  cache_dir: {self.tmp / "cache"}
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
        env = {"ARGOCD_TOKEN": JWT_TOKEN, "GITHUB_TOKEN": BOT_TOKEN, "GITHUB_APPROVE_TOKEN": REVIEWER_TOKEN,
               "GITLAB_TOKEN": GITLAB_BOT_TOKEN}  # fmt: skip
        loaded = config_for(self.tmp, self.slack, extra_yaml=extra, extra_env=env)
        self.runtime, self.sender = start_on_argocd(loaded, self.slack)
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

    def approve(self, card: Message, user: str = "U0BOSS") -> None:
        assert self.sender is not None
        self.sender.click(card, "promotion_approve", user_id=user, user_name=user.lower()[2:])

    def card(self, needle: str, timeout: float = 30) -> Message:
        def found(fake: FakeSlack) -> bool:
            return any(needle in json.dumps(m.blocks) for m in fake.messages(CHANNEL))

        self.slack.wait_for(found, timeout)
        return next(m for m in self.slack.messages(CHANNEL) if needle in json.dumps(m.blocks))

    def head(self, ref: str = "main") -> str:
        return _git("--git-dir", str(self.bare), "rev-parse", ref)

    def show(self, rev: str, path: str = PROD) -> str:
        return _git("--git-dir", str(self.bare), "show", f"{rev}:{path}")

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


def _merged(w: World) -> None:
    """main's new head is GitHub's merge of the PR; nobody pushed to main."""
    parents = _git("--git-dir", str(w.bare), "rev-list", "--parents", "-n", "1", "main").split()[1:]
    assert parents[0] == w.base  # the merge commit sits on the old head …
    assert len(parents) == 2  # … and brings in the PR's head: main was never pushed to directly
    assert 'newTag: "1.4.3"' in w.show("main")


def test_promotion_through_a_pull_request_merges_then_deploys(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        blocks = json.dumps(card.blocks)
        assert "PR #1" in blocks
        assert "gitops-bot/promote/api-prod-" in blocks
        assert w.head() == w.base  # only the PR branch was pushed
        (pull,) = w.github.pulls(REPO)
        shown = w.github.pull(REPO, pull.number)
        assert shown["base"]["ref"] == "main"
        assert [label["name"] for label in shown["labels"]] == ["promotion"]
        assert '+    newTag: "1.4.3"' in shown["body"]  # the diff, who asked, the card's link
        assert "U0ALICE" in shown["body"]
        assert "slack" in shown["body"].lower()
        w.approve(card)
        w.card("Deploy: *Succeeded*")
        _merged(w)
        assert w.github.pull(REPO, pull.number)["merged"] is True
        assert f"refs/heads/{pull.head_ref}" not in _git("--git-dir", str(w.bare), "for-each-ref")
        assert w.argocd.requests("/api/v1/applications/api-prod/sync")
        merge = _git("--git-dir", str(w.bare), "log", "-1", "--format=%B", "main")
        assert "Approved-by: U0BOSS" in merge
        time.sleep(0.2)
        assert {"promotion.pr_opened", "promotion.merged", "promotion.committed"} <= set(w.actions())


def test_mergeable_null_then_true_waits_then_merges(tmp_path: Path, fake_slack: FakeSlack) -> None:
    with FakeGitHub(prefix="/api/v3", settle=Settle(reads=4)) as github:
        world = World(tmp_path, fake_slack, github)
        github.protect(REPO, "main")
        try:
            with world.bot() as w:
                w.say("promote api --to prod --from dev")
                w.approve(w.card("PR #1"))
                final = w.card("Deploy: *Succeeded*")
                seen = " ".join(json.dumps(m.blocks) for m in final.history)
                assert "still working out whether it can merge" in seen or "computing" in seen
                _merged(w)
        finally:
            world.argocd.stop()


def test_a_failing_required_check_holds_the_merge_until_it_passes(world: World) -> None:
    world.github.protect(REPO, "main", required_checks=("ci",))
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        w.github.set_check(REPO, w.pr_head(), "ci", conclusion="failure")
        w.approve(card)
        waiting = json.dumps(w.card("waiting for GitHub").blocks)
        assert "required check `ci` failed" in waiting
        assert "promotion_approve" not in waiting
        time.sleep(1.0)
        assert w.head() == w.base  # nothing merged while the check fails
        w.github.set_check(REPO, w.pr_head(), "ci", conclusion="success")
        w.card("Deploy: *Succeeded*")
        _merged(w)
        assert "promotion.waiting" in w.actions()


def test_a_pull_request_closed_outside_slack_ends_the_request(world: World) -> None:
    world.github.protect(REPO, "main", required_checks=("ci",))
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        w.approve(w.card("PR #1"))
        w.card("waiting for GitHub")
        (pull,) = w.github.pulls(REPO)
        w.github.close(REPO, pull.number)
        ended = w.card("outside Slack")
        assert not [b for b in ended.blocks if b.get("type") in ("actions", "input")]
        time.sleep(0.3)
        assert "promotion.closed" in w.actions()
        assert w.head() == w.base
        assert f"refs/heads/{pull.head_ref}" not in _git("--git-dir", str(w.bare), "for-each-ref")


def test_a_push_to_the_pull_request_branch_is_not_merged_and_asks_again(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        (pull,) = w.github.pulls(REPO)
        branch = pull.head_ref
        _git("fetch", "-q", "origin", branch, cwd=w.work)
        _git("checkout", "-q", "-b", "theirs", "FETCH_HEAD", cwd=w.work)
        (w.work / "extra.txt").write_text("not approved\n")
        _git("add", "extra.txt", cwd=w.work)
        _git("commit", "-qm", "sneak in", cwd=w.work)
        _git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=w.work)
        w.approve(card)
        again = w.card("Someone pushed")
        assert "promotion_approve" in json.dumps(again.blocks)
        assert w.head() == w.base
        w.approve(again)
        w.card("Deploy: *Succeeded*")
        _merged(w)
        assert "extra.txt" not in _git("--git-dir", str(w.bare), "ls-tree", "-r", "--name-only", "main")
        assert len(w.github.pulls(REPO)) == 1


def test_one_pull_request_per_request_across_a_restart_and_a_double_click(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
    time.sleep(0.1)
    with world.bot() as w:
        clicks = [threading.Thread(target=w.approve, args=(card,)) for _ in range(2)]
        for click in clicks:
            click.start()
        for click in clicks:
            click.join()
        w.card("Deploy: *Succeeded*")
        _merged(w)
        assert len(w.github.pulls(REPO)) == 1
        creates = [r for r in w.github.requests("/api/v3/repos/example/deploy/pulls") if r.method == "POST"
                   and r.path.rstrip("/").endswith("/pulls")]  # fmt: skip
        assert len(creates) == 1


def test_the_second_identity_approves_on_github_when_reviews_are_required(world: World) -> None:
    world.github.protect(REPO, "main", required_approving_review_count=1)
    with world.bot(repo_extra="\n    approve_token_env: GITHUB_APPROVE_TOKEN") as w:
        w.say("promote api --to prod --from dev")
        w.approve(w.card("PR #1"))
        w.card("Deploy: *Succeeded*")
        _merged(w)
        reviews = [r for r in w.github.requests() if r.method == "POST" and r.path.endswith("/reviews")]
        assert [r.user for r in reviews] == ["reviewer"]
        assert "U0BOSS" in str(reviews[0].body)


def test_a_promotion_waiting_for_its_checks_is_picked_up_after_a_restart(world: World) -> None:
    world.github.protect(REPO, "main", required_checks=("ci",))
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        w.approve(w.card("PR #1"))
        w.card("waiting for GitHub")
    head = world.pr_head()
    world.github.set_check(REPO, head, "ci", conclusion="success")
    with world.bot() as w:
        w.card("Deploy: *Succeeded*")
        _merged(w)
        assert len(w.github.pulls(REPO)) == 1


def test_a_promotion_through_a_gitlab_merge_request(
    tmp_path: Path, fake_slack: FakeSlack, github: FakeGitHub
) -> None:
    with FakeGitLab() as gitlab:
        world = World(tmp_path, fake_slack, github, gitlab)
        gitlab.protect(REPO, "main")
        try:
            with world.bot() as w:
                w.say("promote api --to prod --from dev")
                card = w.card("MR !1")
                assert w.head() == w.base
                (mr,) = gitlab.merge_requests(REPO)
                shown = gitlab.merge_request(REPO, mr.iid)
                assert shown["target_branch"] == "main"
                assert shown["source_branch"].startswith("gitops-bot/promote/api-prod-")
                w.approve(card)
                w.card("Deploy: *Succeeded*")
                _merged(w)
                assert gitlab.merge_request(REPO, mr.iid)["state"] == "merged"
                assert not github.requests()  # the GitHub fake only stood by
        finally:
            world.argocd.stop()
