"""Validators on promotions, syncs and rollbacks (issue 15): a blocking finding removes Approve and
says why, a warning shows on the card, they run again on approval and right before the commit, a
plugin that raises is named and nothing half-runs, and an admin's --force passes what may be passed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.plugin_probe import PROBE
from tests.test_promote_commands import CHANNEL, World, world
from tests.test_promote_guards import _ephemeral, _fresh_card, _text

__all__ = ["world"]  # the fixture, shared
PLUGIN = {"probe": "tests.plugin_probe:PROBE"}


@pytest.fixture(autouse=True)
def _probe() -> Iterator[None]:
    PROBE.reset()
    yield
    PROBE.reset()


def test_a_blocking_check_removes_approve_and_says_why(world: World) -> None:
    PROBE.block = "prod is frozen for the audit"
    with world.bot(plugins=PLUGIN) as w:
        w.say("promote api --to prod --from dev", user="U0BOSS")
        card = w.card("prod is frozen for the audit")
        shown = _text(card)
        assert "promotion_approve" not in shown
        assert "Not requested" in shown
        assert "/gitops promote api --to prod --from dev" in shown
        w.audited("promote")
        assert w.runtime is not None
        rows = [r for r in w.runtime.deps.audit.recent(limit=20) if r.action == "promote"]
        result = next(r for r in rows if r.outcome != "started")
        assert result.outcome == "failed"
        assert "blocked: probe block: prod is frozen" in result.detail
        change = PROBE.seen[0]
        assert (change.action, change.app, change.env, change.source_env) == ("promote", "api", "prod", "dev")
        assert [(c.kind, c.old, c.new, c.image) for c in change.changes] == [
            ("image", "1.4.1", "1.4.3", "registry.example.com/api:1.4.3")
        ]
        assert change.source is not None
        assert change.stage == "request"
        assert "promote api to prod" not in w.remote_log()


def test_a_warning_shows_on_the_card_and_approve_stays(world: World) -> None:
    PROBE.warn = "the release notes are not linked"
    with world.bot(plugins=PLUGIN) as w:
        w.say("promote api --to prod --from dev")
        card = w.card("promotion_approve")
        assert "the release notes are not linked" in _text(card)
        assert w.sender is not None
        w.sender.click(card, "promotion_approve", user_id="U0BOSS", user_name="boss")
        w.card("Deploy: *Succeeded*")
        assert [c.stage for c in PROBE.seen][-1] == "commit"
        assert "promote api to prod" in w.remote_log()


def test_a_block_that_appears_before_the_commit_stops_it(world: World) -> None:
    with world.bot(plugins=PLUGIN) as w:
        w.say("promote api --to prod --from dev")
        card = w.card("promotion_approve")
        PROBE.block = "the change window closed"
        assert w.sender is not None
        w.sender.click(card, "promotion_approve", user_id="U0BOSS", user_name="boss")
        w.slack.wait_for(lambda f: "the change window closed" in _fresh_card(w, card), timeout=20)
        shown = _fresh_card(w, card)
        assert "promotion_approve" not in shown
        assert "promote api to prod" not in w.remote_log()
        assert not w.argocd.requests("/api/v1/applications/api-prod/sync")


def test_the_check_right_before_the_commit_stops_it_and_pushes_nothing(world: World) -> None:
    PROBE.block, PROBE.stage = "the window closed a moment ago", "commit"
    with world.bot(plugins=PLUGIN) as w:
        w.say("promote api --to prod --from dev")
        card = w.card("promotion_approve")
        assert w.sender is not None
        w.sender.click(card, "promotion_approve", user_id="U0BOSS", user_name="boss")
        w.slack.wait_for(lambda f: "Not committed" in _fresh_card(w, card), timeout=20)
        shown = _fresh_card(w, card)
        assert "the window closed a moment ago" in shown
        assert "promotion_approve" not in shown
        assert "promote api to prod" not in w.remote_log()
        w.audited("promotion_approve")
        assert w.runtime is not None
        rows = [r for r in w.runtime.deps.audit.recent(limit=20) if r.action == "promotion_approve"]
        assert any("not committed" in r.detail for r in rows)


def test_a_plugin_that_raises_is_named_and_nothing_runs(world: World) -> None:
    PROBE.fail = True
    with world.bot(plugins=PLUGIN) as w:
        w.say("promote api --to staging --from dev")
        answer = _ephemeral(w, "U0ALICE", "plugin `probe` failed")
        assert "Reference `" in answer
        w.say("sync api staging")
        _ephemeral(w, "U0ALICE", "nothing was done")
        w.audited("sync")
        assert "promote api to staging" not in w.remote_log()
        assert not w.argocd.requests("/api/v1/applications/api-staging/sync")


def test_sync_and_rollback_are_checked_and_force_passes_what_the_validator_lets_pass(world: World) -> None:
    PROBE.block = "no deploys during the migration"
    with world.bot(plugins=PLUGIN) as w:
        w.say("sync api prod")
        refusal = _ephemeral(w, "U0ALICE", "no deploys during the migration")
        assert "Not synced" in refusal
        assert "api prod" in refusal
        w.say("rollback api prod")
        _ephemeral(w, "U0ALICE", "Not rolled back")
        assert not w.argocd.requests("/api/v1/applications/api-prod/sync")
        assert {c.action for c in PROBE.seen} == {"sync", "rollback"}
        PROBE.block, PROBE.warn = "", "window overridden with --force"
        w.say("sync api prod --force", user="U0ADMIN")
        w.slack.wait_for(lambda f: any("Succeeded" in _text(m) for m in f.messages(CHANNEL)), timeout=30)
        assert PROBE.seen[-1].force is True
        w.audited("sync")
        assert w.runtime is not None
        done = [r for r in w.runtime.deps.audit.recent(limit=30) if r.action == "sync" and r.outcome == "ok"]
        assert done
        assert "window overridden with --force" in done[0].detail


WINDOW = """\
validators:
  - kind: change_window
    environments: [prod]
    timezone: Europe/Berlin
    deny:
      - {days: [fri], from: "16:00", to: "24:00"}
      - {days: [sat, sun]}
      - {days: [mon], from: "00:00", to: "08:00"}
"""


def test_a_change_window_that_closes_between_request_and_approval_blocks_the_commit(world: World) -> None:
    now = [datetime(2026, 12, 4, 14, 50, tzinfo=UTC)]  # Friday 15:50 in Berlin: still open
    with world.bot(top_extra=WINDOW, clock=lambda: now[0]) as w:
        w.say("promote api --to prod --from dev")
        card = w.card("promotion_approve")
        assert "change freeze" not in _text(card)
        now[0] += timedelta(minutes=20)  # 16:10: the freeze began
        assert w.sender is not None
        w.sender.click(card, "promotion_approve", user_id="U0BOSS", user_name="boss")
        w.slack.wait_for(lambda f: "change freeze until Mon 08:00" in _fresh_card(w, card), timeout=20)
        assert "promotion_approve" not in _fresh_card(w, card)
        assert "promote api to prod" not in w.remote_log()
        assert not w.argocd.requests("/api/v1/applications/api-prod/sync")
        w.say("sync api prod")
        assert "(Europe/Berlin)" in _ephemeral(w, "U0ALICE", "change freeze until Mon 08:00")
        w.say("promote api --to prod --from dev --force", user="U0ADMIN")  # an admin passes, shown
        forced = w.card("overridden with --force")
        assert "promotion_approve" in _text(forced)
