"""Promotions into a protected branch through a pull request: the real bot over HTTP with the fake
Slack, a real deploy repository (bare) whose `main` refuses pushes as GitHub does, the fake GitHub
serving it, and the fake Argo CD deploying the merge (the world: tests/promote_pr_support.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from sandbox.github_fake import FakeGitHub, Settle
from sandbox.gitlab_fake import FakeGitLab
from sandbox.slack_api import FakeSlack
from tests.promote_pr_support import REPO, World, git, github, world

__all__ = ["github", "world"]  # the fixtures, imported for the tests here


def _merged(w: World) -> None:
    """main's new head is GitHub's merge of the PR; nobody pushed to main."""
    parents = git("--git-dir", str(w.bare), "rev-list", "--parents", "-n", "1", "main").split()[1:]
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
        assert f"refs/heads/{pull.head_ref}" not in git("--git-dir", str(w.bare), "for-each-ref")
        assert w.argocd.requests("/api/v1/applications/api-prod/sync")
        merge = git("--git-dir", str(w.bare), "log", "-1", "--format=%B", "main")
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
        assert f"refs/heads/{pull.head_ref}" not in git("--git-dir", str(w.bare), "for-each-ref")


def test_a_push_to_the_pull_request_branch_is_not_merged_and_asks_again(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        (pull,) = w.github.pulls(REPO)
        branch = pull.head_ref
        git("fetch", "-q", "origin", branch, cwd=w.work)
        git("checkout", "-q", "-b", "theirs", "FETCH_HEAD", cwd=w.work)
        (w.work / "extra.txt").write_text("not approved\n")
        git("add", "extra.txt", cwd=w.work)
        git("commit", "-qm", "sneak in", cwd=w.work)
        git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=w.work)
        w.approve(card)
        again = w.card("Someone pushed")
        assert "promotion_approve" in json.dumps(again.blocks)
        assert w.head() == w.base
        w.approve(again)
        w.card("Deploy: *Succeeded*")
        _merged(w)
        assert "extra.txt" not in git("--git-dir", str(w.bare), "ls-tree", "-r", "--name-only", "main")
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
