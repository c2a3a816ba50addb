"""Open promotion cards kept in step with their pull request by the scheduled refresh: the real bot
over HTTP with the fake Slack, a protected bare deploy repository served by the fake GitHub, and the
fake Argo CD. The job's `run` is called directly (the scheduler runs it every minute)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
from apscheduler.triggers.interval import IntervalTrigger

from handlers.promote.refresh import PullRequestRefresh
from sandbox.flux_git import commit_files
from sandbox.github_fake import REVIEWER_TOKEN
from sandbox.slack_models import Message
from services.leader.election import AlwaysLeader, Leadership
from services.promotion.model import Promotion
from tests.conftest import BotFactory
from tests.promote_pr_support import CHANNEL, KUSTOMIZATION, PROD, REPO, World, git, github, world

__all__ = ["github", "world"]  # the fixtures, imported for the tests here

PULL = f"/api/v3/repos/{REPO}/pulls/1"


class NotLeader:
    """Another replica holds the lease."""

    def is_leader(self) -> bool:
        return False

    def start(self) -> None:
        """Nothing to run."""

    def stop(self) -> None:
        """Nothing to release."""


def _job(w: World, leadership: Leadership | None = None) -> PullRequestRefresh:
    runtime = w.runtime
    assert runtime is not None
    assert runtime.promoter is not None
    return PullRequestRefresh(runtime.promoter, runtime.app.client, leadership or AlwaysLeader())


def _now(w: World, card: Message) -> Message:
    found = w.slack.find_message(CHANNEL, card.ts)
    assert found is not None
    return found


def _text(message: Message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def _refresh_until(w: World, job: PullRequestRefresh, card: Message, needle: str, runs: int = 6) -> str:
    """Run the job until the card shows `needle` (GitHub computes mergeability a moment later)."""
    for _ in range(runs):
        job.run()
        shown = _text(_now(w, card))
        if needle in shown:
            return shown
    raise AssertionError(f"{needle!r} never shown; the card says {_text(_now(w, card))}")


def _promotion(w: World) -> Promotion:
    assert w.runtime is not None
    assert w.runtime.promoter is not None
    return w.runtime.promoter.store.history(_audit_id(w))[-1]  # a superseding request is the last


def _audit_id(w: World) -> str:
    assert w.runtime is not None
    rows = [r for r in w.runtime.deps.audit.recent(limit=100) if r.action == "promotion.requested"]
    return rows[0].detail.split()[1].rstrip(":")


def _branches(w: World) -> str:
    return git("--git-dir", str(w.bare), "for-each-ref", "refs/heads/")


def _no_buttons(message: Message) -> bool:
    return not [b for b in message.blocks if b.get("type") in ("actions", "input")]


def test_a_failing_required_check_then_passing_shows_on_the_card_without_a_click(world: World) -> None:
    world.github.protect(REPO, "main", required_checks=("ci",))
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        job = _job(w)
        w.github.set_check(REPO, w.pr_head(), "ci", conclusion="failure")
        shown = _refresh_until(w, job, card, "required check `ci` failed")
        assert "ci ❌" in shown
        assert "promotion_approve" in shown  # still waiting for the Slack approvals
        w.github.set_check(REPO, w.pr_head(), "ci", conclusion="success")
        shown = _refresh_until(w, job, card, "GitHub: ready to merge")
        assert "ci ✅" in shown
        assert "required check" not in shown
        assert "promotion_approve" in shown
        assert w.head() == w.base  # nothing merged: the Slack approvals are still missing
        assert _promotion(w).status == "pending"
        assert "promotion.approved" not in w.actions()


def test_a_pull_request_closed_outside_slack_ends_the_request(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        (pull,) = w.github.pulls(REPO)
        assert f"refs/heads/{pull.head_ref}" in _branches(w)
        w.github.close(REPO, pull.number)
        assert _job(w).run() == 1
        ended = _now(w, card)
        assert "was closed on GitHub outside Slack" in _text(ended)
        assert "/gitops promote api --to prod --from dev" in _text(ended)
        assert _no_buttons(ended)
        assert "promotion.closed" in w.actions()
        promotion = _promotion(w)
        assert promotion.status == "failed"
        assert "outside Slack" in (promotion.reason or "")
        assert f"refs/heads/{pull.head_ref}" not in _branches(w)  # delete_branch (default true)
        assert w.head() == w.base
        assert _job(w).run() == 0  # ended once: nothing left to refresh


def test_merged_outside_slack_ends_the_request_without_deploying(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        head = w.pr_head()
        merged = httpx.put(
            f"{w.github.api_url}/repos/{REPO}/pulls/1/merge",
            headers={"Authorization": f"Bearer {REVIEWER_TOKEN}"},
            json={"sha": head},
        )  # a human clicks Merge on github.com
        assert merged.status_code == 200, merged.text
        assert _job(w).run() == 1
        ended = _now(w, card)
        text = _text(ended)
        assert "merged on GitHub" in text
        assert "without the Slack approvals" in text
        assert "Argo CD will deploy it on its own schedule" in text
        assert "`/gitops sync api prod`" in text
        assert _no_buttons(ended)
        assert _promotion(w).status == "failed"
        assert "promotion.merged_outside" in w.actions()
        assert not w.argocd.requests("/api/v1/applications/api-prod/sync")  # not deployed by the bot
        w.say("sync api prod")  # the suggestion runs as written
        deadline = time.monotonic() + 15
        while not w.argocd.requests("/api/v1/applications/api-prod/sync") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert w.argocd.requests("/api/v1/applications/api-prod/sync")


def test_a_conflict_with_the_base_closes_the_pull_request_and_ends_the_request(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        (pull,) = w.github.pulls(REPO)
        w.github.unprotect(REPO, "main")  # a hotfix lands on main the same line the PR changes
        commit_files(w.work, {PROD: KUSTOMIZATION.format(env="prod", tag="1.4.2")}, "hotfix")
        w.github.protect(REPO, "main")
        shown = _refresh_until(w, _job(w), card, "conflicts with `main`")
        assert "promotion_approve" not in shown
        assert w.github.pull(REPO, pull.number)["state"] == "closed"
        assert f"refs/heads/{pull.head_ref}" not in _branches(w)
        assert _promotion(w).status == "failed"
        assert "promotion.conflict" in w.actions()


def test_nothing_changed_costs_one_host_request_and_no_slack_edit(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        job = _job(w)
        for _ in range(3):  # the first readings settle what the card shows
            job.run()
        updates = len(w.slack.recorded("chat.update"))
        w.github.clear_requests()
        for _ in range(2 * job.full_every):
            assert job.run() == 0
        reads = w.github.requests()
        assert len(reads) <= 2 * job.full_every  # one per run for the one open PR …
        assert {(r.method, r.path) for r in reads} <= {("GET", PULL)}  # … the PR itself, nothing else
        assert len(w.slack.recorded("chat.update")) == updates
        assert "promotion_approve" in _text(_now(w, card))


def test_a_rate_limited_host_is_skipped_then_resumed(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        job = _job(w)
        job.run()
        w.github.rate_limited("gitops-bot", reset_in=1.0)
        w.github.close(REPO, 1)
        w.github.clear_requests()
        assert job.run() == 0  # the read is refused: the card stays
        tried = len(w.github.requests())
        assert tried <= 1
        assert job.run() == 0
        assert len(w.github.requests()) == tried  # skipped until the reset: not even a read
        assert not _no_buttons(_now(w, card))
        assert _promotion(w).status == "pending"
        deadline = time.monotonic() + 10
        while job.run() == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "was closed on GitHub outside Slack" in _text(_now(w, card))
        assert _promotion(w).status == "failed"


def test_a_host_that_does_not_answer_keeps_the_card_until_the_next_run(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        before = _text(_now(w, card))
        job = _job(w)
        w.github.go_down()
        assert job.run() == 0
        assert _text(_now(w, card)) == before
        w.github.come_up()
        w.github.close(REPO, 1)
        assert job.run() == 1
        assert "outside Slack" in _text(_now(w, card))


def test_a_push_to_the_branch_while_waiting_asks_for_the_approvals_again(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        first = _promotion(w)
        (pull,) = w.github.pulls(REPO)
        branch = pull.head_ref
        git("fetch", "-q", "origin", branch, cwd=w.work)
        git("checkout", "-q", "-b", "theirs", "FETCH_HEAD", cwd=w.work)
        (w.work / "extra.txt").write_text("not approved\n")
        git("add", "extra.txt", cwd=w.work)
        git("commit", "-qm", "sneak in", cwd=w.work)
        git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=w.work)
        theirs = git("rev-parse", "HEAD", cwd=w.work)
        assert _job(w).run() == 1
        again = _now(w, card)
        shown = _text(again)
        assert "approvals given so far no longer count" in shown
        assert "promotion_approve" in shown
        fresh = _promotion(w)
        assert fresh.id != first.id
        assert fresh.status == "pending"
        assert fresh.id in shown  # the buttons are the fresh request's
        assert w.head(branch) != theirs  # the promotion's change is back on its branch
        tree = git("--git-dir", str(w.bare), "ls-tree", "-r", "--name-only", branch)
        assert "extra.txt" not in tree
        assert "promotion.pr_head_moved" in w.actions()
        w.approve(again)
        w.card("Deploy: *Succeeded*")
        assert "extra.txt" not in git("--git-dir", str(w.bare), "ls-tree", "-r", "--name-only", "main")
        assert len(w.github.pulls(REPO)) == 1


def test_a_replica_that_is_not_the_leader_does_nothing(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("PR #1")
        before = _text(_now(w, card))
        w.github.close(REPO, 1)
        w.github.clear_requests()
        assert _job(w, NotLeader()).run() == 0
        assert w.github.requests() == []
        assert _text(_now(w, card)) == before
        assert _promotion(w).status == "pending"


def test_the_scheduler_refreshes_pull_requests_every_minute(world: World, bot: BotFactory) -> None:
    with world.bot() as w:
        assert w.runtime is not None
        job = w.runtime.scheduler.get_job("promotion-pr-refresh")
        assert job is not None
        assert isinstance(job.trigger, IntervalTrigger)
        assert job.trigger.interval == timedelta(seconds=60)
    runtime, _ = bot()  # no repository takes pull requests: no such job
    assert runtime.scheduler.get_job("promotion-pr-refresh") is None
