"""`/gitops promote`: preview card → (approvals) → commit → sync / reconcile → watch, in one message.

The card goes to the environment's approvals channel (`environments[].approvals_channel`, else
`slack.alerts_channel`) when one is set, with a link in the requester's channel; otherwise it
stays where the command was typed. Its buttons edit it in place; refusals go to the clicker.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from handlers import messages as msg
from handlers.blocks import Reply, escape, message, plain_notice, section
from handlers.caller import Caller
from handlers.clicks import Click, register_click
from handlers.conversation import Conversation
from handlers.deps import Deps, Executor
from handlers.grammar.parser import CommandRequest
from handlers.promote.checks import blocking
from handlers.promote.promoter import Promoter
from handlers.promote.views import ACTION_APPROVE, ACTION_REJECT, INPUT_REASON
from services.audit.trail import AuditEvent
from services.errors import BackendUnavailable, GitOpsBotError, UserError
from services.extensions.events import BOT_USER
from services.extensions.model import Finding
from services.pending import ButtonExpired
from services.promotion.service import Promotion, PromotionPlan
from services.promotion.store import PromotionStore
from services.settings.types import format_duration

__all__ = ["Promoter", "expire_promotions", "promote_executor", "register"]

log = logging.getLogger(__name__)


def promote_executor(promoter: Promoter) -> Executor:
    def run(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        deps, service, store = promoter.deps, promoter.service, promoter.store
        assert request.app is not None
        assert request.to is not None
        plan = service.plan(request.app, request.to, request.from_env)
        if plan.empty:
            text = msg.PROMOTE_NOTHING.format(app=escape(plan.app), target=plan.to_env, source=plan.from_env)
            return plain_notice(text, detail="nothing to promote")
        if deps.authz is not None:
            deps.authz.target(caller, "promote", plan.target_ref, force=request.force, now=deps.clock())
        found = promoter.findings(plan, user=caller.user_id, forced=request.force, stage="request")
        env = deps.settings.environment(plan.to_env)
        need = env.approvals_required if env is not None else 0
        ttl = env.approval_timeout if env is not None else deps.settings.operations.confirm_ttl
        promotion = store.create(
            plan, requester=caller.user_id, requester_name=caller.user_name, channel=caller.channel_id,
            approvals_required=need, ttl=ttl, forced_by=caller.user_id if request.force else None,
        )  # fmt: skip
        if blocking(found):  # shown to the requester, never sent for approval
            return promoter.blocked(promotion, plan, found)
        promoter.audit_step(promotion, "requested", promotion.summary, user=caller.user_id,
                            user_name=caller.user_name)  # fmt: skip
        if need == 0:
            conversation.announce(
                promoter.view(promotion, plan, state="approved", note="No approval needed.", findings=found)
            )
            return promoter.deliver(promotion, conversation, who=caller.user_id, name=caller.user_name)
        card = promoter.view(promotion, plan, state="pending", findings=found)
        elsewhere = deps.settings.approvals_channel(plan.to_env)
        if elsewhere and elsewhere != caller.channel_id:
            pointer = _ask_elsewhere(promoter, promotion, card, elsewhere, conversation)
            if pointer is not None:
                return _propose(promoter, promotion, conversation, pointer, elsewhere=True, plan=plan,
                                found=found)  # fmt: skip
        conversation.announce(card)
        if conversation.message_ts:
            store.set_message(promotion.id, conversation.message_ts, channel=conversation.channel)
        return _propose(promoter, promotion, conversation, card, elsewhere=False, plan=plan, found=found)

    return run


def _propose(
    promoter: Promoter,
    promotion: Promotion,
    conversation: Conversation,
    shown: Reply,
    *,
    elsewhere: bool,
    plan: PromotionPlan,
    found: list[Finding],
) -> Reply:
    """In a repository that takes changes through a pull request: open it now, so the card links it
    and the host's checks run while people approve. `shown` is what the command answers otherwise
    (the card, or the pointer to it in the approvals channel when `elsewhere`)."""
    flow = promoter.through_pull_request(promotion)
    if flow is None:
        return shown
    stored = promoter.store.get(promotion.id) or promotion
    try:
        flow.propose(promoter, stored, conversation.client)
    except (UserError, BackendUnavailable) as exc:
        why = exc.message if isinstance(exc, UserError) else f"{exc.backend}: {exc.message}"
        failed = flow.not_opened(promoter, stored, why)
        if elsewhere:  # the card in the approvals channel loses its buttons too
            ended = promoter.store.get(promotion.id) or stored
            promoter.refresh_card(conversation.client, ended, state="failed", note=failed.text)
        return failed
    if elsewhere:
        promoter.refresh_card(conversation.client, stored, state="pending")
        return shown
    return promoter.view(stored, plan, state="pending", findings=found)


def _ask_elsewhere(
    promoter: Promoter, promotion: Promotion, card: Reply, channel: str, conversation: Conversation
) -> Reply | None:
    """Post the card in the approvals channel and answer the requester with a link to it; None
    when the bot cannot post there (the card then stays in the requester's channel)."""
    try:
        posted = conversation.client.chat_postMessage(
            channel=channel, text=card.text, blocks=list(card.blocks)
        )
    except SlackApiError:
        return None
    promoter.store.set_message(promotion.id, str(posted["ts"]), channel=channel)
    stored = promoter.store.get(promotion.id) or promotion
    link = promoter.permalink(conversation.client, stored, label=msg.PROMOTE_CARD_LINK)
    text = msg.PROMOTE_ELSEWHERE.format(
        user=escape(promotion.requester), app=escape(promotion.app), target=promotion.to_env,
        summary=escape(promotion.summary), channel=channel, link=f": {link}" if link.startswith("<") else "",
    )  # fmt: skip
    return message(
        text, [section(text)], in_channel=True, detail=f"promotion {promotion.id}: sent to approval"
    )


def register(app: App, promoter: Promoter) -> None:
    def locate(click: Click, deps: Deps) -> str:
        promotion = promoter.store.get(click.value)
        return f"{promotion.app}/{promotion.to_env}" if promotion is not None else ""

    register_click(app, promoter.deps, ACTION_APPROVE, lambda c, d, conv: _approve(promoter, c, conv),
                   slow=True, changes=True, locate=locate)  # fmt: skip
    register_click(app, promoter.deps, ACTION_REJECT, lambda c, d, conv: _reject(promoter, c, conv),
                   slow=True, changes=True, locate=locate)  # fmt: skip


def _approve(promoter: Promoter, click: Click, conversation: Conversation) -> tuple[Reply, str]:
    deps, store, service = promoter.deps, promoter.store, promoter.service
    promotion = _load(store, click.value)
    target = f"{promotion.app}/{promotion.to_env}"
    if deps.authz is not None:  # at click time, for whoever clicked
        deps.authz.policy.check(click.caller.user_id, "approve", env=promotion.to_env, app=promotion.app)
    lock = promoter.blocking_lock(promotion) if promotion.open else None
    if lock is not None:  # a freeze set after the request: no approval counts while it holds
        promoter.refresh_card(click.client, promotion, state="pending")
        raise UserError(
            msg.PROMOTE_APPROVE_LOCKED.format(
                scope=lock.scope, user=lock.created_by, reason=lock.reason.rstrip(".")
            ),
            mentions=[lock.created_by],
        )
    plan, found = None, None  # what the validators say now; the card below shows the same
    if promotion.open and deps.extensions is not None:  # a window may have closed since the request
        plan = service.plan(promotion.app, promotion.to_env, promotion.from_env)
        found = promoter.findings(plan, user=click.caller.user_id, forced=bool(promotion.forced_by),
                                  stage="request")  # fmt: skip
        if blocking(found):
            conversation.adopt(promotion.message_ts or click.message.ts, channel=promotion.channel)
            return promoter.blocked(promotion, plan, found), target
    promotion = store.approve(promotion.id, click.caller.user_id, now=deps.clock())
    conversation.adopt(promotion.message_ts or click.message.ts, channel=promotion.channel)
    if promotion.became_approved:  # the commit follows: say so before it, in the trail's order
        have, need = len(promotion.approvals), promotion.approvals_required
        promoter.audit_step(promotion, "approved", f"approved {have} of {need}", user=click.caller.user_id,
                            user_name=click.caller.user_name)  # fmt: skip
    if not promotion.became_approved:
        card = promoter.view(promotion, plan, state="pending", findings=found)
        have, need = len(promotion.approvals), promotion.approvals_required
        return replace(card, detail=f"promotion {promotion.id}: approval {have} of {need}"), target
    newer = service.still_current(promotion)
    if newer is not None and newer.empty:  # someone else already promoted these versions
        return _redundant(promoter, click, promotion), target
    if newer is not None:  # the target moved: show what would be committed now and ask again
        promotion = store.supersede(promotion.id, newer)
        if conversation.message_ts:
            store.set_message(promotion.id, conversation.message_ts)
        card = promoter.view(
            promotion, newer, state="pending", note=msg.PROMOTE_SUPERSEDED.format(target=target)
        )
        return replace(card, detail=f"promotion {promotion.id}: target moved, approvals reset"), target
    reply = promoter.deliver(promotion, conversation, who=click.caller.user_id, name=click.caller.user_name)
    return reply, target


def _redundant(promoter: Promoter, click: Click, promotion: Promotion) -> Reply:
    done = promoter.store.last_committed(promotion.app, promotion.to_env)
    closed = promoter.store.close_redundant(promotion.id, done_by=done.id if done else None) or promotion
    if done is not None:
        note = msg.PROMOTE_REDUNDANT.format(by=promoter.permalink(click.client, done))
    else:
        note = msg.PROMOTE_REDUNDANT_GIT.format(target=promotion.to_env, source=promotion.from_env)
    card = promoter.view(closed, None, state="redundant", note=note)
    return replace(card, detail=f"promotion {promotion.id}: nothing left to promote", failed=False)


def _reject(promoter: Promoter, click: Click, conversation: Conversation) -> tuple[Reply, str]:
    deps, store = promoter.deps, promoter.store
    promotion = _load(store, click.value)
    target = f"{promotion.app}/{promotion.to_env}"
    if deps.authz is not None:
        deps.authz.policy.check(click.caller.user_id, "approve", env=promotion.to_env, app=promotion.app)
    reason = _typed_reason(click.body) or "no reason given"
    promotion = store.reject(promotion.id, click.caller.user_id, reason, now=deps.clock())
    conversation.adopt(promotion.message_ts or click.message.ts, channel=promotion.channel)
    note = msg.PROMOTE_REJECTED.format(user=escape(click.caller.user_id), reason=escape(reason))
    card = promoter.view(promotion, None, state="rejected", note=note)
    return replace(card, detail=f"promotion {promotion.id}: rejected: {reason}", failed=False), target


def expire_promotions(promoter: Promoter, client: Any) -> int:
    """Scheduler job: expired requests get their card edited (buttons gone), each once."""
    expired = promoter.store.expire_due(now=promoter.deps.clock())
    _audit_expired(promoter, expired)
    for promotion in expired:
        ttl = format_duration(promotion.expires_at - promotion.created_at)
        note = msg.PROMOTE_EXPIRED.format(
            ttl=ttl, app=promotion.app, target=promotion.to_env, source=promotion.from_env
        )
        promoter.refresh_card(client, promotion, state="expired", note=note)
    return len(expired)


def _audit_expired(promoter: Promoter, expired: list[Promotion]) -> None:
    """`promotion.expired` rows of the bot's own: the trail and the notifiers learn of it too."""
    rows = [
        AuditEvent(
            user_id=BOT_USER, user_name=BOT_USER, channel=p.channel, command="promotion expiry",
            target=f"{p.app}/{p.to_env}", action="promotion.expired", outcome="ok",
            detail=f"promotion {p.id}: expired after {format_duration(p.expires_at - p.created_at)}",
        )
        for p in expired
    ]  # fmt: skip
    if rows:
        try:
            promoter.deps.audit.append_many(rows)
        except GitOpsBotError:
            log.error("promotion expiry audit rows not written", extra={"rows": len(rows)})


def _load(store: PromotionStore, value: str) -> Promotion:
    promotion = store.get(value)
    if promotion is None:
        raise ButtonExpired("This promotion is no longer known to the bot. Ask for it again with `promote`.")
    return promotion


def _typed_reason(body: dict[str, Any]) -> str:
    values = ((body.get("state") or {}).get("values")) or {}
    for block in values.values():
        entry = block.get(INPUT_REASON) if isinstance(block, dict) else None
        if isinstance(entry, dict) and entry.get("value"):
            return str(entry["value"]).strip()[:500]
    return ""
