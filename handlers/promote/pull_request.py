"""Promotions into a protected branch: through a pull request (GitHub) or merge request (GitLab).

For a repository in `mode: pull_request` the request pushes the promotion's commit (the same
byte-preserving edit) to the bot's own branch `gitops-bot/promote/<app>-<env>-<id>` and opens the
PR on it (`find_open` first: one PR per promotion, also after a restart). The Slack approvals stay
what they are — quorum, four eyes, bound to the diff — and are bound to the PR's head too: the
final approval merges only the commit the bot pushed, with that SHA as the host's precondition.
When the host is not ready yet (mergeability being computed, checks running, reviews missing)
the card says what is missing and a watch on the shared watcher reads the PR until it is; it
merges then and follows the deploy in the same message. A restart picks the watch up again
(`SPEC_KIND`, through the runtime's followers).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers import messages as msg
from handlers.blocks import Reply, escape
from handlers.cards import short_rev
from handlers.conversation import Conversation
from handlers.deps import Deps
from handlers.follow import DEFERRED, complete, follow
from handlers.promote.promoter import Promoter, profile
from handlers.resume import Follower
from services.backend import SyncRequest
from services.errors import BackendUnavailable, GitOpsBotError, UserError
from services.githost import ChangeRequest, Check, GitHost, HeadMoved, NotMergeable, Readiness
from services.githost.model import HOST_LABEL, NOUN
from services.promotion.model import ChangeRequestRecord, Promotion
from services.settings.model import GitRepository
from services.settings.types import format_duration
from services.watcher import Reservation

log = logging.getLogger(__name__)

SPEC_KIND = "promotion_pr"  # the in-flight spec of a promotion waiting for its host
BRANCH_PREFIX = "gitops-bot/promote/"
WAIT_TIMEOUT = timedelta(hours=24)  # how long an approved promotion waits for the host's rules
_PENDING = ("wait", "blocked")
_MARK = {"success": "✅", "failure": "❌", "pending": "⏳", "neutral": "➖"}


@dataclass(frozen=True)
class HostState:
    """One reading of the change request: itself, what the host says about merging it, its checks."""

    cr: ChangeRequest
    readiness: Readiness
    checks: tuple[Check, ...] = ()


@dataclass(frozen=True)
class _Ctx:
    """One promotion on its way through its change request."""

    promoter: Promoter
    promotion: Promotion
    conversation: Conversation
    repo: GitRepository
    host: GitHost
    record: ChangeRequestRecord
    who: str
    name: str
    checks: str  # what validators said at the commit stage (the audit detail)
    lead: str = ""  # said first on the card (mode auto: "switched to a pull request")
    updating: str = ""  # the head the bot asked the host to bring up to date (its head moves next)

    @property
    def label(self) -> str:
        return HOST_LABEL[self.host.kind]


def branch_for(promotion: Promotion) -> str:
    """The bot's branch for this promotion; a superseding request keeps it (same audit id)."""
    return f"{BRANCH_PREFIX}{promotion.app}-{promotion.to_env}-{promotion.audit_id}"


@dataclass(frozen=True)
class PullRequests:
    """The pull-request path of the promotion flow (Promoter.pull_requests)."""

    poll_seconds: float = 1.0  # first poll of a waiting PR; the watcher backs off from there

    def applies(self, deps: Deps, promotion: Promotion) -> bool:
        repo = deps.settings.repository(promotion.repository)
        return repo is not None and repo.mode == "pull_request"

    def propose(self, promoter: Promoter, promotion: Promotion, client: WebClient) -> ChangeRequestRecord:
        """Push the promotion's branch and open its PR, or adopt the one already open."""
        repo, host = _host(promoter.deps, promotion)
        record = promoter.store.change_request(promotion.id)
        if record is not None and record.diff_hash == promotion.diff_hash and record.state == "open":
            return record  # a retry of the same request: the PR has exactly this change
        branch = record.branch if record is not None else branch_for(promotion)
        author_name, author_email = profile(client, promotion.requester)
        sha = promoter.service.commit(
            promotion, approvers=(), author_name=author_name, author_email=author_email, to_branch=branch
        )
        cr = host.find_open(branch, repo.branch)
        if cr is None:
            title, body = _title_and_body(promoter, promotion, host, client)
            cr = host.create(branch, repo.branch, title, body, labels=repo.labels, reviewers=repo.reviewers)
            promoter.audit_step(promotion, "pr_opened", f"{cr.ref} {cr.url} from {branch}")
        record = promoter.store.attach_change_request(
            promotion.id, host=host.kind, number=cr.number, url=cr.url, branch=branch, head_sha=sha,
            diff_hash=promotion.diff_hash,
        )  # fmt: skip
        with suppress(GitOpsBotError):  # the card shows what it can; the merge re-reads anyway
            observe(promoter, promotion, host, record.number)
        return promoter.store.change_request(promotion.id) or record

    def not_opened(self, promoter: Promoter, promotion: Promotion, why: str) -> Reply:
        failed = promoter.store.mark(promotion.id, "failed", reason=f"pull request not opened: {why}"[:500])
        host = promoter.deps.githosts.get(promotion.repository)
        noun = NOUN[host.kind] if host is not None else "pull request"
        note = msg.PROMOTE_PR_NOT_OPENED.format(noun=noun, why=escape(why))
        card = promoter.view(failed, None, state="failed", note=note)
        return replace(card, detail=f"promotion {promotion.id}: pull request not opened: {why}", failed=True)

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
    ) -> Reply:
        """After the Slack approvals and the guard rails: merge now, or wait for the host. Also the
        way on for an approved promotion whose direct push was refused as protected (`lead`)."""
        try:
            repo, host = _host(promoter.deps, promotion)
            record = self.propose(promoter, promotion, conversation.client)
            state = observe(promoter, promotion, host, record.number)
        except (UserError, BackendUnavailable) as exc:
            reservation.release()
            why = exc.message if isinstance(exc, UserError) else f"{exc.backend}: {exc.message}"
            return promoter.not_committed(promotion, escape(why))
        ctx = _Ctx(promoter, promotion, conversation, repo, host, record, who, name, checks, lead)
        return self._act(ctx, state, reservation)

    def follower(self, promoter: Promoter) -> Follower:
        """Picks a waiting promotion up again after a restart."""

        def resume(
            deps: Deps, conversation: Conversation, spec: Mapping[str, Any], slot: Reservation
        ) -> Reply:
            promotion = promoter.store.get(str(spec["promotion"]))
            if promotion is None or promotion.status != "approved":
                raise UserError(f"promotion {spec['promotion']} is no longer waiting for its pull request")
            repo, host = _host(promoter.deps, promotion)
            record = promoter.store.change_request(promotion.id)
            if record is None:
                raise UserError(f"promotion {promotion.id} has no pull request")
            state = observe(promoter, promotion, host, record.number)
            who, name, checks, lead = (str(spec.get(k) or "") for k in ("who", "name", "checks", "lead"))
            ctx = _Ctx(promoter, promotion, conversation, repo, host, record, who, name, checks, lead)
            return self._act(ctx, state, slot)

        return resume

    # -- what to do with a reading ------------------------------------------------------------------

    def _act(self, ctx: _Ctx, state: HostState, reservation: Reservation) -> Reply:
        try:
            moved = state.cr.state == "open" and state.cr.head_sha != ctx.record.head_sha
            if moved and ctx.updating and ctx.updating == ctx.record.head_sha:
                updated = _updated(ctx, state)  # our own update landed (asynchronously)
                if isinstance(updated, Reply):
                    reservation.release()
                    return updated
                ctx, state = updated
            elif moved:
                reservation.release()
                return _head_moved(ctx, state)
            kind = state.readiness.kind
            if kind == "merged" and state.cr.merge_commit_sha:
                return _deploy(ctx, state.cr, state.cr.merge_commit_sha, reservation)
            if kind in ("closed", "merged", "conflict"):
                reservation.release()
                return _terminal(ctx, state)
            if state.readiness.needs_update and not ctx.updating:
                updated = _update_branch(ctx, state)
                if isinstance(updated, Reply):
                    reservation.release()
                    return updated
                ctx, state = updated
            if state.readiness.kind != "ready":
                state = _approve_on_host(ctx, state)
            if state.readiness.kind == "ready":
                return self._merge(ctx, state, reservation)
            return self._wait(ctx, state, reservation)
        except BaseException:
            reservation.release()
            raise

    def _merge(self, ctx: _Ctx, state: HostState, reservation: Reservation) -> Reply:
        promoter, promotion, cr = ctx.promoter, ctx.promotion, state.cr
        title, body = promoter.service.merge_message(promotion, promotion.approvals)
        try:
            result = ctx.host.merge(
                cr.number, ctx.record.head_sha, method=ctx.repo.merge_method, title=f"{title} ({cr.ref})",
                message=body, remove_branch=ctx.repo.delete_branch,
            )  # fmt: skip
        except HeadMoved:
            reservation.release()
            return _head_moved(ctx, observe(promoter, promotion, ctx.host, cr.number))
        except NotMergeable as exc:
            if exc.transient:
                return self._wait(ctx, observe(promoter, promotion, ctx.host, cr.number), reservation)
            reservation.release()
            note = msg.PROMOTE_PR_NOT_MERGEABLE.format(
                host=ctx.label, url=cr.url, ref=cr.ref, why=escape(exc.message)
            )
            return promoter.not_committed(promotion, note)
        sha = result.sha or ctx.host.get(cr.number).merge_commit_sha or ""
        return _deploy(ctx, cr, sha, reservation)

    def _wait(self, ctx: _Ctx, state: HostState, reservation: Reservation) -> Reply:
        """The card says what the host still needs; the watcher reads the PR until it has it."""
        promoter, promotion, conversation = ctx.promoter, ctx.promotion, ctx.conversation
        ops = promoter.deps.ops
        assert ops is not None
        missing = _missing(ctx, state.readiness)
        promoter.audit_step(promotion, "waiting", f"approved in Slack; waiting for {ctx.label}: "
                            + "; ".join(m.lstrip("• ") for m in missing.splitlines()))  # fmt: skip
        if conversation.on_watch is not None:  # before the card says so: a restart must find it
            spec = {"kind": SPEC_KIND, "promotion": promotion.id, "who": ctx.who, "name": ctx.name,
                    "checks": ctx.checks, "what": f"{ctx.label} {ctx.host.project}",
                    "lead": ctx.lead}  # fmt: skip
            conversation.on_watch(spec)
        conversation.update(_waiting_card(ctx, state))
        head = ctx.record.head_sha

        def done(last: HostState) -> None:
            try:
                slot = ops.watcher.reserve()
            except UserError as exc:
                reply = promoter.not_committed(promotion, escape(exc.message))
                complete(conversation, lambda: reply, outcome="failed")
                return
            try:
                reply = self._act(ctx, last, slot)
            except GitOpsBotError as exc:
                reply = promoter.not_committed(promotion, escape(getattr(exc, "message", str(exc))))
            if not reply.deferred:
                complete(conversation, lambda: reply)

        def ended(exc: BaseException) -> None:
            cr = state.cr
            note = msg.PROMOTE_PR_WAIT_ENDED.format(
                host=ctx.label, timeout=format_duration(WAIT_TIMEOUT), url=cr.url, ref=cr.ref,
                app=promotion.app, target=promotion.to_env, source=promotion.from_env,
            )  # fmt: skip
            with suppress(UserError):
                promoter.store.mark(promotion.id, "failed", reason=f"waited {WAIT_TIMEOUT} for {cr.ref}")
            card = promoter.view(promotion, None, state="failed", note=note)
            complete(conversation, lambda: replace(card, failed=True), outcome="failed")

        ops.watcher.watch(
            reservation, None, lambda: observe(promoter, promotion, ctx.host, state.cr.number),
            what=f"{ctx.label} {ctx.host.project}", interval=self.poll_seconds,
            timeout=WAIT_TIMEOUT.total_seconds(),
            on_progress=lambda s: conversation.update(_waiting_card(ctx, s)), on_done=done, on_error=ended,
            finished=lambda s: s.readiness.kind not in _PENDING or s.cr.head_sha != head
            or (s.readiness.needs_update and not ctx.updating),
            progress_key=lambda s: (s.cr.head_sha, s.readiness, _checks_text(s.checks)),
            name=f"{state.cr.ref} of promotion {promotion.id}",
        )  # fmt: skip
        return DEFERRED


# -- the host --------------------------------------------------------------------------------------------


def _host(deps: Deps, promotion: Promotion) -> tuple[GitRepository, GitHost]:
    repo = deps.settings.repository(promotion.repository)
    if repo is None:
        raise UserError(f"Repository `{promotion.repository}` is no longer configured; nothing was pushed.")
    host = deps.githosts.get(repo.name)
    if host is None:
        raise UserError(
            f"Repository `{repo.name}` takes changes through a pull request, but its token "
            f"(`{repo.token_env}`) is not set; nothing was pushed.",
            hint="Set it in the bot's environment and restart it.",
        )
    return repo, host


def observe(promoter: Promoter, promotion: Promotion, host: GitHost, number: int) -> HostState:
    """Read the PR, what the host says about merging it and its checks; the card's record follows."""
    cr = host.get(number)
    readiness = host.readiness(cr)
    checks = host.checks(cr) if cr.state == "open" else ()
    promoter.store.update_change_request(
        promotion.id, state=cr.state, readiness=readiness.kind, missing="\n".join(readiness.missing),
        checks=_checks_text(checks),
    )  # fmt: skip
    return HostState(cr, readiness, checks)


def _approve_on_host(ctx: _Ctx, state: HostState) -> HostState:
    """With a second identity configured (`approve_token_env`), its APPROVE review on the head the
    Slack approvers approved, once per head; then the PR is read again."""
    promoter, promotion, cr = ctx.promoter, ctx.promotion, state.cr
    if ctx.repo.approve_token_env is None or ctx.record.host_approved_sha == cr.head_sha:
        return state
    approvers = ", ".join(promotion.approvals) or "nobody (no approval policy)"
    try:
        ctx.host.approve(cr.number, ctx.record.head_sha, f"Approved in Slack by {approvers} (gitops-bot).")
    except UserError as exc:
        log.warning("host approval refused", extra={"promotion": promotion.id, "error": exc.message})
        return state
    promoter.store.update_change_request(promotion.id, host_approved_sha=cr.head_sha)
    promoter.audit_step(promotion, "host_approved", f"{cr.ref}: approving review for {approvers}")
    return observe(promoter, promotion, ctx.host, cr.number)


def _update_branch(ctx: _Ctx, state: HostState) -> tuple[_Ctx, HostState] | Reply:
    """The branch is behind its base (GitHub `behind`, GitLab `need_rebase`): the host brings it up
    to date (`expected_head_sha`: the head the approvers approved), which moves the head, at once
    or a moment later (both answer 202); `_updated` then decides about the approvals."""
    try:
        ctx.host.update_branch(state.cr)
    except HeadMoved:  # pushed to meanwhile: the next reading handles the moved head
        return ctx, observe(ctx.promoter, ctx.promotion, ctx.host, state.cr.number)
    ctx = replace(ctx, updating=state.cr.head_sha)
    after = observe(ctx.promoter, ctx.promotion, ctx.host, state.cr.number)
    if after.cr.state == "open" and after.cr.head_sha != state.cr.head_sha:
        return _updated(ctx, after)
    return ctx, after


def _updated(ctx: _Ctx, after: HostState) -> tuple[_Ctx, HostState] | Reply:
    """The head moved by the bot's own update. When the promotion's change on the base as it is
    now is still the approved diff, the update brought base commits only: the approvals stand and
    bind the new head. Otherwise it is a moved head: the change is pushed again, approvals asked."""
    promoter, promotion, cr = ctx.promoter, ctx.promotion, after.cr
    if promoter.service.still_current(promotion) is not None:
        return _head_moved(ctx, after)
    record = promoter.store.update_change_request(promotion.id, head_sha=cr.head_sha) or ctx.record
    moved = f"{short_rev(ctx.record.head_sha)} → {short_rev(cr.head_sha)}"
    promoter.audit_step(
        promotion,
        "pr_updated",
        f"{cr.ref}: brought up to date with {ctx.repo.branch} ({moved}); approvals kept",
    )
    note = msg.PROMOTE_PR_UPDATED.format(url=cr.url, ref=cr.ref, branch=escape(ctx.repo.branch))
    lead = f"{ctx.lead}\n{note}" if ctx.lead else note
    return replace(ctx, record=record, lead=lead, updating=""), after


# -- outcomes ----------------------------------------------------------------------------------------------


def _deploy(ctx: _Ctx, cr: ChangeRequest, sha: str, reservation: Reservation) -> Reply:
    """Merged: the promotion is committed (the merge commit), then synced and followed as today."""
    promoter, promotion, conversation = ctx.promoter, ctx.promotion, ctx.conversation
    ops = promoter.deps.ops
    assert ops is not None
    promoter.store.update_change_request(promotion.id, state="merged", readiness="merged", missing="")
    promotion = promoter.store.mark(promotion.id, "committed", commit_sha=sha)
    promoter.audit_step(promotion, "merged", f"{cr.ref} merged as {short_rev(sha)} into {ctx.repo.branch}")
    promoter.audit_step(promotion, "committed", f"commit {short_rev(sha)} to {promotion.repository}")
    promoter.close_redundant(conversation.client, promotion)
    note = msg.PROMOTE_PR_MERGED.format(
        url=cr.url, ref=cr.ref, branch=escape(ctx.repo.branch), sha=short_rev(sha)
    )
    note = f"{ctx.lead}\n{note}" if ctx.lead else note
    conversation.update(promoter.view(promotion, None, state="committed", note=note))
    lock = promoter.blocking_lock(promotion)  # a freeze set while it waited still stops the deploy
    if lock is not None:
        reservation.release()
        return promoter.not_deployed(promotion, sha, lock)
    ref = promoter.service.target_ref(promotion)
    ops.start_sync(ref, SyncRequest(initiated_by=ctx.name or ctx.who))
    spec = {"kind": "promotion", "promotion": promotion.id, "note": note, "sha": sha, "checks": ctx.checks}
    card = promoter.deploy_card(promotion, note, sha, ctx.checks)
    return follow(promoter.deps, conversation, ref, reservation, card, spec=spec)


def _terminal(ctx: _Ctx, state: HostState) -> Reply:
    """Closed outside Slack, or conflicting with its base: the request ends; the card says so."""
    promoter, promotion, cr = ctx.promoter, ctx.promotion, state.cr
    names = {"app": promotion.app, "target": promotion.to_env, "source": promotion.from_env}
    if state.readiness.kind == "conflict":
        with suppress(GitOpsBotError):
            ctx.host.close(cr.number)
        note = msg.PROMOTE_PR_CONFLICT.format(url=cr.url, ref=cr.ref, branch=escape(ctx.repo.branch), **names)
        step, why = "conflict", f"{cr.ref} conflicts with {ctx.repo.branch}; closed"
    else:
        note = msg.PROMOTE_PR_CLOSED.format(url=cr.url, ref=cr.ref, host=ctx.label, **names)
        step, why = "closed", f"{cr.ref} was {cr.state} on {ctx.label} outside Slack"
    promoter.store.update_change_request(promotion.id, state="closed")
    if ctx.repo.delete_branch:
        with suppress(GitOpsBotError):
            ctx.host.delete_branch(ctx.record.branch)
    failed = promoter.store.mark(promotion.id, "failed", reason=why)
    promoter.audit_step(failed, step, why)
    card = promoter.view(failed, None, state="failed", note=note)
    return replace(card, detail=f"promotion {promotion.id}: not merged: {why}", failed=True)


def _head_moved(ctx: _Ctx, state: HostState) -> Reply:
    """Someone pushed to the promotion's branch: nothing is merged. The branch gets the promotion's
    change back (recomputed on the base as it is now) and the card asks for the approvals again."""
    promoter, promotion, cr = ctx.promoter, ctx.promotion, state.cr
    newer = promoter.service.plan(promotion.app, promotion.to_env, promotion.from_env)
    if newer.empty:
        return promoter.not_committed(promotion, "nothing is left to promote on the base branch.")
    fresh = promoter.store.supersede(promotion.id, newer)
    if ctx.conversation.message_ts:
        promoter.store.set_message(fresh.id, ctx.conversation.message_ts, channel=ctx.conversation.channel)
        fresh = promoter.store.get(fresh.id) or fresh
    promoter.audit_step(promotion, "pr_head_moved", f"{cr.ref}: {short_rev(cr.head_sha)} pushed by someone "
                        "else; not merged, approvals asked again")  # fmt: skip
    author_name, author_email = profile(ctx.conversation.client, fresh.requester)
    sha = promoter.service.commit(
        fresh, approvers=(), author_name=author_name, author_email=author_email, to_branch=ctx.record.branch
    )
    promoter.store.attach_change_request(
        fresh.id, host=ctx.host.kind, number=cr.number, url=cr.url, branch=ctx.record.branch, head_sha=sha,
        diff_hash=fresh.diff_hash,
    )  # fmt: skip
    with suppress(GitOpsBotError):
        observe(promoter, fresh, ctx.host, cr.number)
    note = msg.PROMOTE_PR_HEAD_MOVED.format(sha=short_rev(cr.head_sha), url=cr.url, ref=cr.ref)
    card = promoter.view(fresh, newer, state="pending", note=note)
    return replace(card, detail=f"promotion {promotion.id}: {cr.ref} head moved, approvals reset")


# -- text ----------------------------------------------------------------------------------------------------


def _waiting_card(ctx: _Ctx, state: HostState) -> Reply:
    note = msg.PROMOTE_PR_WAITING.format(
        host=ctx.label, url=state.cr.url, ref=state.cr.ref, missing=_missing(ctx, state.readiness)
    )
    note = f"{ctx.lead}\n{note}" if ctx.lead else note
    return ctx.promoter.view(ctx.promotion, None, state="approved", note=note)


def _missing(ctx: _Ctx, readiness: Readiness) -> str:
    if readiness.kind == "wait" or not readiness.missing:
        return msg.PROMOTE_PR_WAIT_COMPUTING.format(host=ctx.label)
    return "\n".join(f"• {escape(line)}" for line in readiness.missing[:8])


def _checks_text(checks: tuple[Check, ...]) -> str:
    return ", ".join(f"{c.name} {_MARK[c.outcome]}" for c in checks[:12])


def _title_and_body(promoter: Promoter, p: Promotion, host: GitHost, client: WebClient) -> tuple[str, str]:
    title = msg.PROMOTE_PR_TITLE.format(app=p.app, target=p.to_env, summary=p.summary)[:250]
    link = _card_url(client, p)
    requester = f"{p.requester_name} (`{p.requester}`)" if p.requester_name else f"`{p.requester}`"
    body = msg.PROMOTE_PR_BODY.format(
        app=p.app, source=p.from_env, target=p.to_env, requester=requester, summary=p.summary,
        link=f" ({link})" if link else "", noun=NOUN[host.kind], host=HOST_LABEL[host.kind],
        diff=p.diff.replace("```", "` ` `")[:50_000], audit_id=p.audit_id,
    )  # fmt: skip
    return title, body


def _card_url(client: WebClient, promotion: Promotion) -> str | None:
    if not promotion.message_ts:
        return None
    try:
        return str(
            client.chat_getPermalink(channel=promotion.channel, message_ts=promotion.message_ts)["permalink"]
        )
    except (SlackApiError, KeyError, TypeError):
        return None
