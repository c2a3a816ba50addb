"""A promotion's way from approved to deployed, with its guard rails checked at each step.

Deploy locks are checked when the request is made (handlers/authz.py), again on every approval
click, right before the commit and right before the deploy: a freeze set while a request waits
stops it at whichever step comes next. Only an admin's `--force` on the request passes a lock,
and the card says so. The requester's right to promote is checked again before the commit too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers import messages as msg
from handlers.blocks import Reply, escape, escape_except_mentions
from handlers.cards import short_rev
from handlers.conversation import Conversation
from handlers.deps import Deps
from handlers.follow import Render, RendererFactory, follow
from handlers.promote.checks import audit_note, blocking, finding_lines, planned_change
from handlers.promote.views import PromotionView, change_request_text, promotion_card
from services.access.locks import Lock
from services.audit.chain import AuditEvent
from services.backend import AppStatus, SyncRequest
from services.correlation import current_correlation_id
from services.errors import BackendUnavailable, GitOpsBotError, PermissionDenied, UserError
from services.extensions.events import BOT_USER
from services.extensions.manager import PluginFailed
from services.extensions.model import Finding
from services.git.errors import ProtectedBranch
from services.githost.model import NOUN
from services.promotion.model import ChangeRequestRecord
from services.promotion.service import Promotion, PromotionPlan, PromotionService
from services.promotion.store import PromotionStore
from services.watcher import Reservation

log = logging.getLogger(__name__)


class ChangeRequestFlow(Protocol):
    """Promotions through a pull / merge request (handlers/promote/pull_request.py)."""

    def applies(self, deps: Deps, promotion: Promotion) -> bool: ...

    def propose(self, promoter: Promoter, promotion: Promotion, client: WebClient) -> ChangeRequestRecord: ...

    def not_opened(self, promoter: Promoter, promotion: Promotion, why: str) -> Reply: ...

    def deliver(
        self,
        promoter: Promoter,
        promotion: Promotion,
        conversation: Conversation,
        reservation: Reservation,
        *,
        checks: str,
        who: str,
        name: str,
        lead: str = "",
    ) -> Reply: ...


@dataclass(frozen=True)
class Promoter:
    deps: Deps
    service: PromotionService
    store: PromotionStore
    pull_requests: ChangeRequestFlow | None = None  # for repositories in mode pull_request

    def through_pull_request(self, promotion: Promotion) -> ChangeRequestFlow | None:
        """The pull-request path when this promotion's repository takes changes that way."""
        flow = self.pull_requests
        if flow is None:
            return None
        return flow if flow.applies(self.deps, promotion) or self._found_protected(promotion) else None

    def _found_protected(self, promotion: Promotion) -> bool:
        """`mode: auto` whose branch already refused a push as protected: straight to a PR."""
        repo = self.deps.settings.repository(promotion.repository)
        return repo is not None and repo.mode == "auto" and self.store.protected.known(repo.name, repo.branch)

    # -- the card -----------------------------------------------------------------------------------

    def view(
        self,
        promotion: Promotion,
        plan: PromotionPlan | None,
        *,
        state: str,
        note: str = "",
        findings: Sequence[Finding] | None = None,
    ) -> Reply:
        """The card. Pending cards show what the validators say now (computed when not given)."""
        ops = self.deps.ops
        source_status = running_since = auto_sync = None
        recheck = state == "pending" and findings is None and self.deps.extensions is not None
        if ops is not None and plan is None and recheck:  # the validators need the change as it is now
            plan = _quiet(lambda: self.service.plan(promotion.app, promotion.to_env, promotion.from_env))
        if ops is not None and plan is not None:
            source_status, running_since = self._source(plan)
            target = _quiet(lambda: ops.status(plan.target_ref))
            auto_sync = target.auto_sync if target is not None else None
        if recheck and plan is not None:
            try:
                findings = self._validate(plan, promotion.requester, bool(promotion.forced_by), "request",
                                          source_status, running_since)  # fmt: skip
            except PluginFailed as exc:  # shown; the approval click runs them again and refuses
                findings = [Finding(exc.plugin, "warn", msg.PROMOTE_PLUGIN_FAILED.format(plugin=exc.plugin))]
        locks = self.deps.locks.active(env=promotion.to_env, now=self.deps.clock()) if self.deps.locks else []
        diff = plan.diff if plan is not None else promotion.diff
        change_request = self.store.change_request(promotion.id) if self.pull_requests is not None else None
        notes = [note] if note else []
        if state == "pending":
            notes.insert(0, self._lock_note(promotion))
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
                note="\n".join(n for n in notes if n),
                findings=tuple(findings or ()),
                change_request=change_request_text(change_request) if change_request else "",
            )
        )

    # -- validators ---------------------------------------------------------------------------------

    def findings(self, plan: PromotionPlan, *, user: str, forced: bool, stage: str) -> list[Finding]:
        """What the validators say about this plan now (PluginFailed when one raises)."""
        if self.deps.extensions is None:
            return []
        source, since = self._source(plan)
        return self._validate(plan, user, forced, stage, source, since)

    def _validate(
        self,
        plan: PromotionPlan,
        user: str,
        forced: bool,
        stage: str,
        source: AppStatus | None,
        since: datetime | None,
    ) -> list[Finding]:
        if self.deps.extensions is None:
            return []
        change = planned_change(self.deps, plan, user=user, forced=forced, stage=stage, source=source,
                                source_since=since)  # fmt: skip
        return self.deps.extensions.validate(change)

    def _source(self, plan: PromotionPlan) -> tuple[AppStatus | None, datetime | None]:
        """The source environment now, and since when it runs what it runs."""
        ops = self.deps.ops
        if ops is None:
            return None, None
        status = _quiet(lambda: ops.status(plan.source_ref))
        history = _quiet(lambda: ops.resolver.backend(plan.source_ref).history(plan.source_ref))
        return status, history[0].deployed_at if history else None

    def blocked(self, promotion: Promotion, plan: PromotionPlan, found: Sequence[Finding]) -> Reply:
        """End a request a validator blocks: the card says why and how to ask again."""
        why = audit_note(blocking(found))
        ended = self.store.mark(promotion.id, "failed", reason=f"blocked: {why}"[:500])
        retry = msg.PROMOTE_RETRY.format(
            app=promotion.app, target=promotion.to_env, source=promotion.from_env
        )
        note = msg.PROMOTE_BLOCKED.format(retry=retry)
        card = self.view(ended, plan, state="blocked", note=note, findings=found)
        return replace(card, detail=f"promotion {promotion.id}: blocked: {why}", failed=True)

    def refresh_card(self, client: WebClient, promotion: Promotion, *, state: str, note: str = "") -> None:
        """Edit the request's card in place (it is never replaced through a response_url)."""
        if not promotion.message_ts:
            return
        card = self.view(promotion, None, state=state, note=note)
        try:
            client.chat_update(channel=promotion.channel, ts=promotion.message_ts, text=card.text,
                               blocks=list(card.blocks))  # fmt: skip
        except SlackApiError:
            return

    def permalink(self, client: WebClient, promotion: Promotion, *, label: str | None = None) -> str:
        """A link to the request's card, or its id when Slack gives none."""
        if promotion.message_ts:
            try:
                link = client.chat_getPermalink(channel=promotion.channel, message_ts=promotion.message_ts)
                return f"<{link['permalink']}|{escape(label or 'promotion ' + promotion.id)}>"
            except (SlackApiError, KeyError, TypeError):
                pass
        return f"promotion `{escape(promotion.id)}`"

    # -- guard rails --------------------------------------------------------------------------------

    def blocking_lock(self, promotion: Promotion) -> Lock | None:
        """The deploy lock that stops this promotion now (None when none, or passed with --force)."""
        if self.deps.locks is None or promotion.forced_by:
            return None
        names = {promotion.app}
        with suppress(UserError):  # the app left the configuration: its name still matches a lock
            names.add(self.service.target_ref(promotion).name)
        return self.deps.locks.blocking(promotion.to_env, names, now=self.deps.clock())

    def _lock_note(self, promotion: Promotion) -> str:
        if promotion.forced_by:
            return msg.PROMOTE_FORCED.format(user=escape(promotion.forced_by), target=promotion.to_env)
        lock = self.blocking_lock(promotion)
        if lock is None:
            return ""
        return msg.PROMOTE_LOCKED.format(
            scope=escape(lock.scope), user=escape(lock.created_by), reason=escape(lock.reason.rstrip("."))
        )

    def _stopped(self, promotion: Promotion) -> str | None:
        """Why the commit must not happen now (a lock, the requester's right), or None."""
        lock = self.blocking_lock(promotion)
        if lock is not None:
            return msg.PROMOTE_LOCKED_AT_COMMIT.format(
                scope=escape(lock.scope), user=escape(lock.created_by), reason=escape(lock.reason.rstrip("."))
            )
        if self.deps.authz is not None:
            try:
                self.deps.authz.policy.check(promotion.requester, "promote", env=promotion.to_env,
                                             app=promotion.app, force=bool(promotion.forced_by))  # fmt: skip
            except PermissionDenied as exc:
                return escape_except_mentions(f"the requester may no longer: {exc.reason}", exc.mentions)
        return None

    # -- commit and deploy --------------------------------------------------------------------------

    def deliver(self, promotion: Promotion, conversation: Conversation, *, who: str, name: str) -> Reply:
        """Commit, push, sync / reconcile and watch; every step edits the same card."""
        stopped = self._stopped(promotion)
        if stopped is not None:
            return self.not_committed(promotion, stopped)
        ops = self.deps.ops
        assert ops is not None
        try:  # the change as it is now, right before the commit: a window may have closed
            found = self.findings(self._plan_of(promotion), user=who, forced=bool(promotion.forced_by),
                                  stage="commit")  # fmt: skip
        except PluginFailed:
            self.store.mark(promotion.id, "failed", reason="a plugin failed while checking the change")
            raise
        except (UserError, BackendUnavailable) as exc:
            why = exc.message if isinstance(exc, UserError) else f"{exc.backend}: {exc.message}"
            return self.not_committed(promotion, escape(why))
        if blocking(found):
            why = msg.PROMOTE_VALIDATORS_BLOCKED.format(findings=finding_lines(blocking(found)))
            return self.not_committed(promotion, why, findings=found)
        checked = finding_lines(found)
        author_name, author_email = profile(conversation.client, promotion.requester)
        try:
            reservation = ops.watcher.reserve()  # following the deploy must be possible before we commit
        except UserError as exc:
            return self.not_committed(promotion, escape(exc.message))
        flow = self.through_pull_request(promotion)
        if flow is not None:  # a protected branch: merge the promotion's pull request instead
            return flow.deliver(self, promotion, conversation, reservation, checks=audit_note(found), who=who,
                                name=name)  # fmt: skip
        try:
            sha = self.service.commit(
                promotion, approvers=promotion.approvals, author_name=author_name, author_email=author_email
            )
        except ProtectedBranch as exc:
            switched = self._switch(promotion, exc)
            if switched is None:
                reservation.release()
                return self.not_committed(promotion, escape(exc.message))
            flow, lead = switched
            return flow.deliver(self, promotion, conversation, reservation, checks=audit_note(found), who=who,
                                name=name, lead=lead)  # fmt: skip
        except (UserError, BackendUnavailable) as exc:  # a conflict, Git down: nothing was pushed
            reservation.release()
            why = exc.message if isinstance(exc, UserError) else f"{exc.backend}: {exc.message}"
            return self.not_committed(promotion, escape(why))
        promotion = self.store.mark(promotion.id, "committed", commit_sha=sha)
        self.audit_step(promotion, "committed", f"commit {short_rev(sha)} to {promotion.repository}")
        self.close_redundant(conversation.client, promotion)
        note = msg.PROMOTE_COMMITTED.format(sha=short_rev(sha), repo=escape(promotion.repository))
        note += f"\n{checked}" if checked else ""  # warnings, and checks passed with --force
        conversation.update(self.view(promotion, None, state="committed", note=note))
        lock = self.blocking_lock(promotion)  # a freeze set during the commit still stops the deploy
        if lock is not None:
            reservation.release()
            return self.not_deployed(promotion, sha, lock)
        ref = self.service.target_ref(promotion)
        try:
            ops.start_sync(ref, SyncRequest(initiated_by=name or who))
        except GitOpsBotError:
            reservation.release()
            raise
        checks = audit_note(found)
        spec = {"kind": "promotion", "promotion": promotion.id, "note": note, "sha": sha, "checks": checks}
        card = self.deploy_card(promotion, note, sha, checks)
        return follow(self.deps, conversation, ref, reservation, card, spec=spec)

    def _switch(self, promotion: Promotion, refused: ProtectedBranch) -> tuple[ChangeRequestFlow, str] | None:
        """`mode: auto` and the push was refused as protected: remember the repository as PR-only
        (said once: the card's note and a `protection_detected` row), and go the PR way."""
        repo = self.deps.settings.repository(promotion.repository)
        if repo is None or repo.mode != "auto" or self.pull_requests is None:
            return None
        if promotion.repository not in self.deps.githosts:
            return None  # no token: the refusal is what the user sees
        ref = refused.refusal
        first = self.store.protected.remember(repo.name, repo.branch, host=ref.host, code=ref.code)
        why = protection_reason(refused)
        if not first:
            return self.pull_requests, ""
        self.audit_step(promotion, "protection_detected", f"`{repo.branch}` of {repo.name} is protected "
                        f"({why}); switched to a pull request")  # fmt: skip
        noun = NOUN[repo.host] if repo.host is not None else "pull request"
        lead = msg.PROTECTED_SWITCHED.format(repo=escape(repo.name), branch=escape(repo.branch),
                                             why=escape(why), noun=noun)  # fmt: skip
        return self.pull_requests, lead

    def audit_step(
        self, promotion: Promotion, step: str, detail: str, *, user: str = BOT_USER, user_name: str = BOT_USER
    ) -> None:
        """A row the moment a step happens (`promotion.requested`, `.approved`, `.committed`): the
        trail and the notifiers learn of it then, in order, not only when the command's result
        row is written (after a deploy that may take minutes)."""
        row = AuditEvent(
            user_id=user, user_name=user_name, channel=promotion.channel, command=f"promotion {step}",
            target=f"{promotion.app}/{promotion.to_env}", action=f"promotion.{step}", outcome="ok",
            detail=f"promotion {promotion.id}: {detail}", correlation_id=current_correlation_id(),
        )  # fmt: skip
        try:
            self.deps.audit.append(row)
        except GitOpsBotError:  # the command's result row still records it
            log.error("promotion step audit row not written", extra={"promotion": promotion.id, "step": step})

    def deploy_card(self, promotion: Promotion, note: str, sha: str, checks: str = "") -> Render:
        """The card while the deploy runs, and once it ended (with the audit detail; `checks`: what
        validators said at the commit, e.g. a change window passed with --force)."""

        def render(status: AppStatus | None, extra: str) -> Reply:
            if status is None or status.operation_in_progress:
                if extra:  # the watch ended before the deploy did
                    return self.view(promotion, None, state="committed", note=f"{note}\n{extra}")
                return self._syncing(promotion, note, status)
            phase = status.operation.phase if status.operation else "Succeeded"
            shown = f"{note}\nDeploy: *{escape(phase)}*" + (f"\n{extra}" if extra else "")
            card = self.view(promotion, None, state="committed", note=shown)
            detail = f"promotion {promotion.id}: commit {short_rev(sha)}, deploy {phase}"
            detail += f"; validators: {checks}" if checks else ""
            return replace(card, detail=detail, failed=phase != "Succeeded")

        return render

    def close_redundant(self, client: WebClient, done: Promotion) -> None:
        """Other open requests for the same app and environment with nothing left to promote now
        close themselves, their cards pointing at the one that did it."""
        for other in self.store.open_for(done.app, done.to_env):
            if other.id == done.id:
                continue
            fresh = _quiet(partial(self.service.still_current, other))
            if fresh is None or not fresh.empty:
                continue  # still something to promote (or cannot tell): it stays open
            closed = self.store.close_redundant(other.id, done_by=done.id)
            if closed is not None:
                note = msg.PROMOTE_REDUNDANT.format(by=self.permalink(client, done))
                self.refresh_card(client, closed, state="redundant", note=note)

    def _plan_of(self, promotion: Promotion) -> PromotionPlan:
        return self.service.plan(promotion.app, promotion.to_env, promotion.from_env)

    def not_committed(self, promotion: Promotion, why: str, *, findings: Sequence[Finding] = ()) -> Reply:
        failed = self.store.mark(promotion.id, "failed", reason=_plain(why))
        retry = msg.PROMOTE_RETRY.format(
            app=promotion.app, target=promotion.to_env, source=promotion.from_env
        )
        note = msg.PROMOTE_NOT_COMMITTED.format(why=why) + "\n" + retry
        card = self.view(
            failed, None, state="failed", note=note, findings=[f for f in findings if not f.blocks]
        )
        return replace(card, detail=f"promotion {promotion.id}: not committed: {_plain(why)}", failed=True)

    def not_deployed(self, promotion: Promotion, sha: str, lock: Lock) -> Reply:
        ref = _quiet(lambda: self.service.target_ref(promotion))
        status: AppStatus | None = (
            _quiet(lambda: self.deps.ops.status(ref)) if self.deps.ops and ref else None
        )
        where = f"{promotion.app} {promotion.to_env}"
        note = msg.PROMOTE_NOT_DEPLOYED.format(
            sha=short_rev(sha), repo=escape(promotion.repository), scope=escape(lock.scope),
            user=escape(lock.created_by), reason=escape(lock.reason.rstrip(".")),
            command=f"/gitops sync {where}",
        ) + (msg.PROMOTE_NOT_DEPLOYED_AUTO if status is not None and status.auto_sync else "")  # fmt: skip
        card = self.view(promotion, None, state="committed", note=note)
        detail = f"promotion {promotion.id}: commit {short_rev(sha)}, not deployed: {lock.scope} locked"
        return replace(card, detail=detail, failed=True)

    def _syncing(self, promotion: Promotion, note: str, status: AppStatus | None) -> Reply:
        phase = status.operation.phase if status is not None and status.operation else "Running"
        return self.view(promotion, None, state="committed", note=f"{note}\nDeploy: {escape(phase)}…")


def promotion_renderer(promoter: Promoter) -> RendererFactory:
    """Draws a promotion's deploy card again after a restart (see handlers/follow.py)."""

    def factory(deps: Deps, spec: Mapping[str, Any]) -> Render:
        promotion = promoter.store.get(str(spec["promotion"]))
        if promotion is None:
            raise UserError(f"promotion {spec['promotion']} is no longer known")
        note, sha, checks = (str(spec.get(k) or "") for k in ("note", "sha", "checks"))
        return promoter.deploy_card(promotion, note, sha, checks)

    return factory


def protection_reason(refused: ProtectedBranch) -> str:
    """`GH006: Changes must be made through a pull request.` — the host's own words, bounded."""
    ref = refused.refusal
    said = ref.reasons[0] if ref.reasons else (ref.ref_reason or "protected branch")
    return (f"{ref.code}: {said}" if ref.code else said)[:200]


def _plain(mrkdwn: str) -> str:
    """Audit detail text from a Slack-escaped note."""
    return mrkdwn.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def profile(client: WebClient, user_id: str) -> tuple[str | None, str | None]:
    """The requester's Slack name and email for the commit author (when Slack tells us)."""
    try:
        found = client.users_info(user=user_id)["user"]["profile"]
    except (SlackApiError, KeyError, TypeError):
        return None, None
    return found.get("real_name") or None, found.get("email") or None


def _quiet(fn: Any) -> Any:
    try:
        return fn()
    except GitOpsBotError:  # the card shows what it can; the promotion does not depend on it
        return None
