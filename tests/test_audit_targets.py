"""One audit target per app, whatever the entry point: `/gitops audit APP` finds commands and clicks.

A cancelled rollback, an executed one, a bare backend name and a refused self-approval all land
under `api/prod`, so the trail of an app reads as what happened to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.slack_api import FakeSlack
from services.audit.trail import AuditQuery
from tests.test_argocd_commands import CHANNEL, Bot, _bot, _card, _fake
from tests.test_promote_commands import World, world

__all__ = ["world"]  # the fixture, shared


@pytest.fixture
def gitops(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[Bot]:
    with _bot(tmp_path, fake_slack, _fake()) as bot:
        yield bot


def _audit_thread(bot: Bot, query: str, user: str = "U0ALICE") -> str:
    """Run `/gitops audit …` and return the first page posted in its thread."""
    before = len(bot.slack.messages(CHANNEL))
    bot.say(f"audit {query}", user=user)

    def paged(fake: FakeSlack) -> bool:
        return any(m.thread_ts for m in fake.messages(CHANNEL)[before:])

    bot.slack.wait_for(paged, timeout=20)
    page = next(m for m in bot.slack.messages(CHANNEL)[before:] if m.thread_ts)
    return json.dumps(page.blocks)


def _results(bot: Bot, count: int) -> list[object]:
    return [r for r in bot.audit_rows(count) if r.outcome != "started"]  # type: ignore[attr-defined]


def test_a_cancelled_rollback_reads_as_cancelled_under_the_app(gitops: Bot) -> None:
    gitops.say("rollback api prod")
    gitops.wait_ephemeral("Roll back api-prod?")
    gitops.sender.click(_card(gitops), "rollback_cancel", user_id="U0ALICE", user_name="alice")
    gitops.wait_ephemeral("cancelled")
    rows = gitops.audit_rows(3)
    assert {r.target for r in rows} == {"api/prod"}  # type: ignore[attr-defined]
    page = _audit_thread(gitops, "api")
    assert "rollback_cancel" in page
    assert "cancelled" in page


def test_an_executed_rollback_and_a_bare_name_sync_are_found_by_app(gitops: Bot) -> None:
    gitops.say("rollback api prod")
    gitops.wait_ephemeral("Roll back api-prod?")
    gitops.sender.click(_card(gitops), "rollback_confirm", user_id="U0ALICE", user_name="alice")
    gitops.wait_channel("Succeeded")
    gitops.say("sync api-prod")  # the Argo CD name of the same app
    gitops.slack.wait_for(lambda f: sum("Succeeded" in m.text for m in f.messages(CHANNEL)) >= 2, timeout=25)
    rows = _results(gitops, 6)
    assert {(r.action, r.target) for r in rows} == {  # type: ignore[attr-defined]
        ("rollback", "api/prod"), ("rollback_confirm", "api/prod"), ("sync", "api/prod"),
    }  # fmt: skip
    page = _audit_thread(gitops, "api --env prod")
    assert "rollback_confirm" in page
    assert "*sync*" in page


def test_a_refused_self_approval_is_under_the_app_not_the_button_value(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev", user="U0BOSS")
        card = w.card("promotion_approve")
        assert w.sender is not None
        assert w.runtime is not None
        w.sender.click(card, "promotion_approve", user_id="U0BOSS", user_name="boss")
        w.slack.wait_for(
            lambda f: any("someone else" in m.text + json.dumps(m.blocks) for m in f.ephemeral("U0BOSS"))
        )
        w.audited("promotion_approve")
        rows = w.runtime.deps.audit.recent(limit=10)
        denied = [r for r in rows if r.action == "promotion_approve" and r.outcome == "denied"]
        assert [r.target for r in denied] == ["api/prod"]
        assert {r.target for r in rows if r.action == "promote"} == {"api/prod"}
        found = w.runtime.deps.audit.search(AuditQuery(app="api"))
        assert any(e.action == "promotion_approve" and e.outcome == "denied" for e in found.events)
