"""`mode: auto`: push, and on a protected-branch refusal switch to a pull request and say so once;
and a PR that falls behind its base (`behind`) brought up to date without asking the approvers again
when the promotion's change is unchanged. The real bot over HTTP, the fake Slack, a real bare
repository whose `main` refuses pushes as GitHub / GitLab do, the fake hosts and the fake Argo CD."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sandbox.github_fake import FakeGitHub
from sandbox.gitlab_fake import FakeGitLab
from sandbox.slack_api import FakeSlack
from tests.promote_pr_support import APPS, CHANNEL, KUSTOMIZATION, PROD, REPO, World, git, github

__all__ = ["github"]  # the fixture, imported for the tests here

DEV = "apps/api/dev/kustomization.yaml"


class AutoWorld(World):
    @contextmanager
    def running(self, mode: str = "auto") -> Iterator[AutoWorld]:
        if self.gitlab is not None:
            host = f"host: gitlab\n    api_url: {self.gitlab.api_url}\n    token_env: GITLAB_TOKEN"
        else:
            host = f"host: github\n    api_url: {self.github.api_url}\n    token_env: GITHUB_TOKEN"
        extra = f"""
argocd:
  - name: main
    url: {self.argocd.base_url}
    token_env: ARGOCD_TOKEN
repositories:
  - name: deploy
    url: file://{self.bare}
    mode: {mode}
    {host}
    project: {REPO}
""" + APPS.format(cache=self.tmp / "cache")
        with self.running_on(extra, {}):
            yield self

    def details(self, action: str) -> list[str]:
        assert self.runtime is not None
        return [r.detail for r in self.runtime.deps.audit.recent(limit=200) if r.action == action]

    def card_with(self, *needles: str, timeout: float = 30) -> str:
        """The blocks of the first message showing all of `needles` (waits for it)."""

        def shown() -> list[str]:
            texts = [json.dumps(m.blocks) for m in self.slack.messages(CHANNEL)]
            return [t for t in texts if all(n in t for n in needles)]

        self.slack.wait_for(lambda _: bool(shown()), timeout)
        return shown()[0]


def _base_commit(w: World, name: str, text: str) -> str:
    """A commit straight onto the bare repository's `main` (a colleague's merge), hooks bypassed."""
    git("pull", "-q", "--rebase", "origin", "main", cwd=w.work)
    (w.work / name).parent.mkdir(parents=True, exist_ok=True)
    (w.work / name).write_text(text)
    git("add", name, cwd=w.work)
    git("commit", "-qm", f"add {name}", cwd=w.work)
    sha = git("rev-parse", "HEAD", cwd=w.work)
    git("--git-dir", str(w.bare), "fetch", "-q", str(w.work), f"+{sha}:refs/heads/main")
    return sha


@pytest.fixture
def world(tmp_path: Path, fake_slack: FakeSlack, github: FakeGitHub) -> Iterator[AutoWorld]:
    w = AutoWorld(tmp_path, fake_slack, github)
    try:
        yield w
    finally:
        w.argocd.stop()


def test_auto_pushes_directly_while_the_branch_takes_pushes(world: AutoWorld) -> None:
    with world.running() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("promotion_approve")
        assert "PR #" not in json.dumps(card.blocks)
        w.approve(card)
        w.card("Deploy: *Succeeded*")
        assert 'newTag: "1.4.3"' in w.show("main")
        assert git("--git-dir", str(w.bare), "rev-parse", "main^") == w.base  # a plain commit on main
        assert not w.github.pulls(REPO)
        assert not w.details("promotion.protection_detected")


def test_a_protected_refusal_switches_to_a_pull_request_once_and_is_remembered(world: AutoWorld) -> None:
    world.github.protect(REPO, "main")  # pushes to main now fail with GH006
    with world.running() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("promotion_approve")
        assert "PR #" not in json.dumps(card.blocks)  # nothing known yet: a direct push is tried
        w.approve(card)
        final = w.card("Deploy: *Succeeded*")
        text = json.dumps(final.blocks)
        assert "is protected (GH006" in text
        assert "switched to a PR" in text
        (pull,) = w.github.pulls(REPO)
        assert w.github.pull(REPO, pull.number)["merged"] is True
        parents = git("--git-dir", str(w.bare), "rev-list", "--parents", "-n", "1", "main").split()[1:]
        assert len(parents) == 2  # main got GitHub's merge, never a push
        time.sleep(0.2)
        (detected,) = w.details("promotion.protection_detected")
        assert "GH006" in detected
        assert "promotion.merged" in w.actions()
    _base_commit(world, DEV, KUSTOMIZATION.format(env="dev", tag="1.4.4"))
    with world.running() as w:  # a restart keeps it: the next request opens its PR straight away
        w.say("promote api --to prod --from dev")
        card = w.card("PR #2")
        assert "switched to a" not in json.dumps(card.blocks)
        w.approve(card)
        final = w.card_with("PR #2", "Deploy: *Succeeded*")
        assert "switched to a" not in final
        assert len(w.github.pulls(REPO)) == 2
        assert 'newTag: "1.4.4"' in w.show("main")
        time.sleep(0.2)
        assert len(w.details("promotion.protection_detected")) == 1


def test_a_gitlab_refusal_switches_to_a_merge_request(
    tmp_path: Path, fake_slack: FakeSlack, github: FakeGitHub
) -> None:
    with FakeGitLab() as gitlab:
        world = AutoWorld(tmp_path, fake_slack, github, gitlab)
        gitlab.protect(REPO, "main")
        try:
            with world.running() as w:
                w.say("promote api --to prod --from dev")
                w.approve(w.card("promotion_approve"))
                final = json.dumps(w.card("Deploy: *Succeeded*").blocks)
                assert "is protected" in final
                assert "switched to a MR" in final
                (mr,) = gitlab.merge_requests(REPO)
                assert gitlab.merge_request(REPO, mr.iid)["state"] == "merged"
                assert 'newTag: "1.4.3"' in w.show("main")
        finally:
            world.argocd.stop()


def test_a_branch_behind_its_base_is_updated_and_the_approvals_stand(world: AutoWorld) -> None:
    world.github.protect(REPO, "main", strict=True)
    with world.running(mode="pull_request") as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        before = w.pr_head()
        other = _base_commit(w, "docs/NOTES.md", "unrelated\n")  # the PR is now `behind`
        w.approve(card)
        final = json.dumps(w.card("Deploy: *Succeeded*").blocks)
        assert "approvals stand" in final
        after = w.pr_head()
        assert after != before  # GitHub merged the base into the branch
        assert 'newTag: "1.4.3"' in w.show("main")
        assert w.show("main", "docs/NOTES.md") == "unrelated"
        assert git("--git-dir", str(w.bare), "merge-base", "--is-ancestor", other, "main") == ""
        updates = [r for r in w.github.requests() if r.path.endswith("/update-branch")]
        assert len(updates) == 1
        time.sleep(0.2)
        assert "promotion.pr_updated" in w.actions()
        assert "promotion.pr_head_moved" not in w.actions()


def test_a_base_change_to_the_promoted_file_asks_the_approvers_again(world: AutoWorld) -> None:
    world.github.protect(REPO, "main", strict=True)
    with world.running(mode="pull_request") as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        # within the diff's context, but not next to the promoted line: merges cleanly, changes the diff
        text = w.show("main", PROD).replace("kind: Kustomization", "kind: Kustomization  # reviewed")
        _base_commit(w, PROD, text + "\n")
        w.approve(card)
        again = w.card("approve again")
        assert "promotion_approve" in json.dumps(again.blocks)
        assert 'newTag: "1.4.1"' in w.show("main")  # nothing merged
        assert "promotion.pr_updated" not in w.actions()
        w.approve(again)
        w.card_with("PR #1", "Deploy: *Succeeded*")
        assert "# reviewed" in w.show("main", PROD)
        assert 'newTag: "1.4.3"' in w.show("main", PROD)
        assert len(w.github.pulls(REPO)) == 1
