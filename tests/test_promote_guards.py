"""Promotion guard rails held at every step: a freeze set while a request waits stops it; only an
admin's `--force` on the request passes; a request someone else already did closes itself; the
card goes where approvers look."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

from handlers.conversation import Conversation
from sandbox.slack_models import Message
from services.promotion.service import Promotion, PromotionService
from tests.test_promote_commands import CHANNEL, World, world

__all__ = ["world"]  # the fixture, shared

APPROVALS = "C0APPROVALS"
HOUR = timedelta(hours=1)


def _text(message: Message) -> str:
    return message.text + json.dumps(message.blocks)


def _ephemeral(w: World, user: str, needle: str) -> str:
    w.slack.wait_for(lambda f: any(needle in _text(m) for m in f.ephemeral(user)), timeout=20)
    return next(_text(m) for m in w.slack.ephemeral(user) if needle in _text(m))


def _fresh_card(w: World, card: Message) -> str:
    found = w.slack.find_message(card.channel, card.ts)
    assert found is not None, "the card must never be deleted"
    return _text(found)


def _approve(w: World, card: Message, user: str = "U0BOSS") -> None:
    assert w.sender is not None
    w.sender.click(card, "promotion_approve", user_id=user, user_name=user.lower()[2:])


def test_a_freeze_set_after_the_request_refuses_approval_until_unlocked(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev")
        card = w.card("promotion_approve")
        w.say("lock prod --reason 'release freeze'", user="U0ADMIN")
        w.slack.wait_for(lambda f: any("locked `prod`" in m.text for m in f.messages(CHANNEL)), 20)
        _approve(w, card)
        refusal = _ephemeral(w, "U0BOSS", "not recorded")
        assert "<@U0ADMIN>" in refusal  # a mention, not escaped text
        assert "&lt;@" not in refusal
        w.slack.wait_for(lambda f: "Approving and committing wait" in _fresh_card(w, card), timeout=20)
        shown = _fresh_card(w, card)
        assert "is locked by <@U0ADMIN>" in shown
        assert "promotion_approve" in shown  # the buttons stay for when the freeze ends
        assert "promote api to prod" not in w.remote_log()
        assert not w.argocd.requests("/api/v1/applications/api-prod/sync")
        w.audited("promotion_approve")
        assert w.runtime is not None
        rows = [r for r in w.runtime.deps.audit.recent(limit=20) if r.action == "promotion_approve"]
        assert {(r.outcome, r.target) for r in rows} == {("started", "api/prod"), ("failed", "api/prod")}

        w.say("unlock prod", user="U0ADMIN")
        w.slack.wait_for(lambda f: any("unlocked `prod`" in m.text for m in f.messages(CHANNEL)), 20)
        _approve(w, card)
        w.card("Deploy: *Succeeded*")
        assert "promote api to prod" in w.remote_log()


def test_only_an_admins_force_on_the_request_passes_the_lock_and_the_card_says_so(world: World) -> None:
    with world.bot() as w:
        w.say("lock prod --reason freeze", user="U0ADMIN")
        w.slack.wait_for(lambda f: any("locked `prod`" in m.text for m in f.messages(CHANNEL)), 20)
        w.say("promote api --to prod --from dev", user="U0ALICE")
        assert "is locked" in _ephemeral(w, "U0ALICE", "is locked")
        w.say("promote api --to prod --from dev --force", user="U0ALICE")  # a deployer may not force
        assert "--force" in _ephemeral(w, "U0ALICE", "Not allowed")
        w.say("promote api --to prod --from dev --force", user="U0ADMIN")
        card = w.card("promotion_approve")
        assert "Requested with `--force` by <@U0ADMIN>" in _text(card)
        _approve(w, card)
        w.card("Deploy: *Succeeded*")
        assert "promote api to prod" in w.remote_log()


class _LockAfterCommit(PromotionService):
    """The freeze lands while the commit is being pushed: the deploy step must see it."""

    def __init__(self, inner: PromotionService, take_lock: object) -> None:
        self.__dict__.update(inner.__dict__)
        self._take_lock = take_lock

    def commit(self, promotion: Promotion, **kwargs: object) -> str:  # type: ignore[override]
        sha = super().commit(promotion, **kwargs)  # type: ignore[arg-type]
        self._take_lock()  # type: ignore[operator]
        return sha


def _conversation(w: World) -> Conversation:
    assert w.runtime is not None
    return Conversation(lambda **kw: None, w.runtime.app.client, channel=CHANNEL, user="U0BOSS")


def test_the_lock_is_checked_again_right_before_the_commit(world: World) -> None:
    with world.bot() as w:
        assert w.runtime is not None
        promoter = w.runtime.promoter
        assert promoter is not None
        plan = promoter.service.plan("api", "prod", "dev")
        created = promoter.store.create(plan, requester="U0ALICE", requester_name="alice", channel=CHANNEL,
                                        approvals_required=0, ttl=HOUR)  # fmt: skip
        assert w.runtime.deps.locks is not None
        w.runtime.deps.locks.lock("prod", app=None, reason="freeze", ttl=None, by="U0ADMIN", channel=CHANNEL)
        reply = promoter.deliver(created, _conversation(w), who="U0BOSS", name="boss")
        assert reply.failed
        assert "Not committed" in json.dumps(reply.blocks)
        assert "locked by <@U0ADMIN>" in json.dumps(reply.blocks)
        assert "promote api to prod" not in w.remote_log()
        stored = promoter.store.get(created.id)
        assert stored is not None
        assert stored.status == "failed"


def test_the_lock_is_checked_again_right_before_the_deploy(world: World) -> None:
    with world.bot() as w:
        assert w.runtime is not None
        promoter = w.runtime.promoter
        assert promoter is not None
        locks = w.runtime.deps.locks
        assert locks is not None

        def take_lock() -> None:
            locks.lock("prod", app="api", reason="incident", ttl=None, by="U0ADMIN", channel=CHANNEL)

        racing = dataclasses.replace(promoter, service=_LockAfterCommit(promoter.service, take_lock))
        plan = promoter.service.plan("api", "prod", "dev")
        created = promoter.store.create(plan, requester="U0ALICE", requester_name="alice", channel=CHANNEL,
                                        approvals_required=0, ttl=HOUR)  # fmt: skip
        reply = racing.deliver(created, _conversation(w), who="U0BOSS", name="boss")
        shown = json.dumps(reply.blocks)
        assert "not deployed" in shown
        assert "`/gitops sync api prod`" in shown
        assert "promote api to prod" in w.remote_log()  # committed: Git has it
        assert not w.argocd.requests("/api/v1/applications/api-prod/sync")  # but nothing deployed


def test_a_duplicate_request_closes_itself_once_the_other_is_done(world: World) -> None:
    with world.bot() as w:
        w.say("promote api --to prod --from dev", user="U0ALICE")
        first = w.card("promotion_approve")
        w.say("promote api --to prod --from dev", user="U0BOSS")
        w.slack.wait_for(
            lambda f: sum("promotion_approve" in json.dumps(m.blocks) for m in f.messages(CHANNEL)) >= 2, 20
        )
        second = [m for m in w.slack.messages(CHANNEL) if "promotion_approve" in json.dumps(m.blocks)][1]
        _approve(w, first, user="U0CAROL")
        w.card("Deploy: *Succeeded*")
        w.slack.wait_for(lambda f: "Nothing left to promote" in _fresh_card(w, second), timeout=20)
        closed = _fresh_card(w, second)
        assert "already done by" in closed
        assert "promotion_approve" not in closed  # no dead buttons
        assert "replaced by a newer one" not in closed
        _approve(w, second, user="U0CAROL")  # a click on an old copy of the card
        assert "Nothing left to promote" in _ephemeral(w, "U0CAROL", "Nothing left")
        assert w.remote_log().count("promote api to prod") == 1


def test_the_card_goes_to_the_approvals_channel_with_a_link_from_the_requester(world: World) -> None:
    world.slack.add_channel(APPROVALS, "prod-approvals")
    with world.bot(prod_extra=f"\n    approvals_channel: {APPROVALS}") as w:
        w.say("promote api --to prod --from dev", user="U0ALICE")
        w.slack.wait_for(
            lambda f: any("promotion_approve" in json.dumps(m.blocks) for m in f.messages(APPROVALS)), 20
        )
        card = next(m for m in w.slack.messages(APPROVALS) if "promotion_approve" in json.dumps(m.blocks))
        w.slack.wait_for(lambda f: any("Approval is requested in" in m.text for m in f.messages(CHANNEL)), 20)
        pointer = next(m for m in w.slack.messages(CHANNEL) if "Approval is requested in" in m.text)
        assert f"<#{APPROVALS}>" in pointer.text
        assert "promotion_approve" not in json.dumps(pointer.blocks)
        _approve(w, card)
        w.slack.wait_for(lambda f: "Deploy: *Succeeded*" in _fresh_card(w, card), timeout=30)
        assert "promote api to prod" in w.remote_log()
