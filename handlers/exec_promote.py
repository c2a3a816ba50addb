"""`/gitops promote`: preview card → (approvals) → commit → sync / reconcile → watch, in one message."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from handlers import messages as msg
from handlers.blocks import Reply, escape
from handlers.clicks import Click, register_click
from handlers.conversation import Conversation
from handlers.deps import Caller, Deps, Executor
from handlers.grammar import CommandRequest
from handlers.views_promote import ACTION_APPROVE, ACTION_REJECT, INPUT_REASON, PromotionView, promotion_card
from handlers.views_rollback import plain_notice
from handlers.views_status import short_rev
from services.backend import SyncRequest
from services.errors import GitOpsBotError
from services.pending import ButtonExpired
from services.promotion import Promotion, PromotionPlan, PromotionService
from services.promotion_store import PromotionStore


@dataclass(frozen=True)
class Promoter:
    deps: Deps
    service: PromotionService
    store: PromotionStore

    def view(self, promotion: Promotion, plan: PromotionPlan | None, *, state: str, note: str = "") -> Reply:
        ops = self.deps.ops
        source_status = running_since = auto_sync = None
        if ops is not None and plan is not None:
            source_status = _quiet(lambda: ops.status(plan.source_ref))
            history = _quiet(lambda: ops.resolver.backend(plan.source_ref).history(plan.source_ref))
            running_since = history[0].deployed_at if history else None
            target = _quiet(lambda: ops.status(plan.target_ref))
            auto_sync = target.auto_sync if target is not None else None
        locks = self.deps.locks.active(env=promotion.to_env, now=self.deps.clock()) if self.deps.locks else []
        diff = plan.diff if plan is not None else promotion.diff
        return promotion_card(
            PromotionView(
                id=promotion.id,
                app=promotion.app,
                source=promotion.from_env,
                target=promotion.to_env,
                summary=promotion.summary,
                diff=diff,
                requester=promotion.requester,
                source_status=source_status,
                running_since=running_since,
                target_auto_sync=auto_sync,
                locks=locks,
                approvals=promotion.approvals,
                approvals_required=promotion.approvals_required,
                expires_at=promotion.expires_at,
                state=state,
                note=note,
            )
        )

    def deliver(self, promotion: Promotion, conversation: Conversation, *, who: str, name: str) -> Reply:
        """Commit, push, sync / reconcile and watch; every step edits the same card."""
        author_name, author_email = _profile(conversation, promotion.requester)
        sha = self.service.commit(
            promotion, approvers=promotion.approvals, author_name=author_name, author_email=author_email
        )
        promotion = self.store.mark(promotion.id, "committed", commit_sha=sha)
        note = msg.PROMOTE_COMMITTED.format(sha=short_rev(sha), repo=escape(promotion.repository))
        conversation.update(self.view(promotion, None, state="committed", note=note))
        ops = self.deps.ops
        assert ops is not None
        ref = self.service.target_ref(promotion)
        request = SyncRequest(initiated_by=name or who)
        final = ops.sync(
            ref, request, on_progress=lambda s: conversation.update(self._syncing(promotion, note, s))
        )
        phase = final.operation.phase if final.operation else "Succeeded"
        card = self.view(promotion, None, state="committed", note=f"{note}\nDeploy: *{escape(phase)}*")
        return replace(card, detail=f"promotion {promotion.id}: commit {short_rev(sha)}, deploy {phase}",
                       failed=phase != "Succeeded")  # fmt: skip

    def _syncing(self, promotion: Promotion, note: str, status: Any) -> Reply:
        phase = status.operation.phase if status.operation else "Running"
        return self.view(promotion, None, state="committed", note=f"{note}\nDeploy: {escape(phase)}…")


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
        env = deps.settings.environment(plan.to_env)
        need = env.approvals_required if env is not None else 0
        ttl = env.approval_timeout if env is not None else deps.settings.operations.confirm_ttl
        promotion = store.create(
            plan, requester=caller.user_id, requester_name=caller.user_name, channel=caller.channel_id,
            approvals_required=need, ttl=ttl,
        )  # fmt: skip
        if need == 0:
            conversation.announce(
                promoter.view(promotion, plan, state="approved", note="No approval needed.")
            )
            return promoter.deliver(promotion, conversation, who=caller.user_id, name=caller.user_name)
        card = promoter.view(promotion, plan, state="pending")
        conversation.announce(card)
        if conversation.message_ts:
            store.set_message(promotion.id, conversation.message_ts)
        return card

    return run


def register(app: App, promoter: Promoter) -> None:
    register_click(
        app, promoter.deps, ACTION_APPROVE, lambda c, d, conv: _approve(promoter, c, conv), slow=True
    )
    register_click(
        app, promoter.deps, ACTION_REJECT, lambda c, d, conv: _reject(promoter, c, conv), slow=True
    )


def _approve(promoter: Promoter, click: Click, conversation: Conversation) -> tuple[Reply, str]:
    deps, store, service = promoter.deps, promoter.store, promoter.service
    promotion = _load(store, click.value)
    target = f"{promotion.app}/{promotion.to_env}"
    if deps.authz is not None:  # at click time, for whoever clicked
        deps.authz.policy.check(click.caller.user_id, "approve", env=promotion.to_env, app=promotion.app)
    promotion = store.approve(promotion.id, click.caller.user_id, now=deps.clock())
    became_approved = promotion.became_approved
    conversation.adopt(promotion.message_ts or _message_ts(click))
    if not became_approved:
        card = promoter.view(promotion, None, state="pending")
        have, need = len(promotion.approvals), promotion.approvals_required
        return replace(card, detail=f"promotion {promotion.id}: approval {have} of {need}"), target
    newer = service.still_current(promotion)
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


def _reject(promoter: Promoter, click: Click, conversation: Conversation) -> tuple[Reply, str]:
    deps, store = promoter.deps, promoter.store
    promotion = _load(store, click.value)
    target = f"{promotion.app}/{promotion.to_env}"
    if deps.authz is not None:
        deps.authz.policy.check(click.caller.user_id, "approve", env=promotion.to_env, app=promotion.app)
    reason = _typed_reason(click.body) or "no reason given"
    promotion = store.reject(promotion.id, click.caller.user_id, reason, now=deps.clock())
    conversation.adopt(promotion.message_ts or _message_ts(click))
    note = msg.PROMOTE_REJECTED.format(user=escape(click.caller.user_id), reason=escape(reason))
    card = promoter.view(promotion, None, state="rejected", note=note)
    return replace(card, detail=f"promotion {promotion.id}: rejected: {reason}", failed=False), target


def expire_promotions(promoter: Promoter, client: Any) -> int:
    """Scheduler job: expired requests get their card edited (buttons gone), each once."""
    expired = promoter.store.expire_due(now=promoter.deps.clock())
    for promotion in expired:
        if not promotion.message_ts:
            continue
        ttl = promotion.expires_at - promotion.created_at
        card = promoter.view(promotion, None, state="expired", note=msg.PROMOTE_EXPIRED.format(ttl=ttl))
        try:
            client.chat_update(channel=promotion.channel, ts=promotion.message_ts, text=card.text,
                               blocks=list(card.blocks))  # fmt: skip
        except SlackApiError:
            continue
    return len(expired)


def _load(store: PromotionStore, value: str) -> Promotion:
    promotion = store.get(value)
    if promotion is None:
        raise ButtonExpired("This promotion is no longer known to the bot. Run `/gitops promote` again.")
    return promotion


def _message_ts(click: Click) -> str:
    container = click.body.get("container") or {}
    return str(container.get("message_ts") or (click.body.get("message") or {}).get("ts") or "")


def _typed_reason(body: dict[str, Any]) -> str:
    values = ((body.get("state") or {}).get("values")) or {}
    for block in values.values():
        entry = block.get(INPUT_REASON) if isinstance(block, dict) else None
        if isinstance(entry, dict) and entry.get("value"):
            return str(entry["value"]).strip()[:500]
    return ""


def _profile(conversation: Conversation, user_id: str) -> tuple[str | None, str | None]:
    """The requester's Slack name and email for the commit author (when Slack tells us)."""
    try:
        profile = conversation.client.users_info(user=user_id)["user"]["profile"]
    except (SlackApiError, KeyError, TypeError):
        return None, None
    return profile.get("real_name") or None, profile.get("email") or None


def _quiet(fn: Any) -> Any:
    try:
        return fn()
    except GitOpsBotError:  # the preview shows what it can; the promotion does not depend on it
        return None
