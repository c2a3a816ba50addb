"""Flux rollbacks into a protected branch: through a pull request (GitHub) or merge request (GitLab).

For a repository in `mode: pull_request` (or `auto` once its branch refused a push as protected)
the confirmed rollback's commit (the same revert / restore) is pushed to the bot's own branch
`gitops-bot/rollback/<app>-<cluster>-<id>` and a PR is opened on it. The confirm button was the
human decision, so the bot merges as soon as the host says ready (a second identity approves on
the host where `approve_token_env` is set), with the pushed SHA as precondition; meanwhile the
card says what the host still needs and a watch on the shared watcher reads the PR. Merged, the
Kustomization is reconciled and followed on the same card, as a pushed rollback is. A push by
someone else to the branch, a close or a conflict ends it: the card says so, nothing is merged.
A restart picks the wait up again (`SPEC_KIND`, through the runtime's followers: `resume`).

`services.flux` knows no host: it only pushes to the branch (`FluxBackend.push_rollback`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError

from handlers import messages as msg
from handlers.blocks import Reply, context, escape, message, section
from handlers.cards import short_rev
from handlers.conversation import Conversation
from handlers.deps import Deps
from handlers.follow import DEFERRED, complete, follow, sync_renderer, sync_spec
from handlers.recording import target_of
from handlers.rollback.views import rollback_summary
from services.audit.chain import AuditEvent
from services.backend import AppRef, AppStatus, HistoryEntry, Operation, RollbackPlan, SyncRequest
from services.correlation import current_correlation_id
from services.errors import GitOpsBotError, UserError
from services.extensions.events import BOT_USER
from services.flux import FluxBackend
from services.git.errors import ProtectedBranch
from services.githost import ChangeRequest, Check, GitHost, HeadMoved, NotMergeable, Readiness
from services.githost.model import HOST_LABEL, NOUN
from services.promotion.store import ProtectedBranches
from services.settings.model import GitRepository
from services.watcher import Reservation

log = logging.getLogger(__name__)

SPEC_KIND = "rollback_pr"  # the in-flight spec of a rollback waiting for its host
BRANCH_PREFIX = "gitops-bot/rollback/"
WAIT_SECONDS = 6 * 3600.0  # how long a confirmed rollback waits for the host's rules
_PENDING = ("wait", "blocked")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Route:
    """How a confirmed Flux rollback reaches its branch."""

    backend: FluxBackend
    repo: GitRepository
    host: GitHost | None  # None: pushed to the branch
    protected: ProtectedBranches


@dataclass(frozen=True)
class _Reading:
    cr: ChangeRequest
    readiness: Readiness
    checks: tuple[Check, ...] = ()


@dataclass
class _Rollback:
    """One confirmed rollback on its way through its change request."""

    deps: Deps
    route: Route
    conversation: Conversation
    plan: RollbackPlan
    rollback_id: str  # the confirm button's pending id: the audit rows and the branch name carry it
    user: str
    by: str
    title: str
    note: str
    suspend: bool  # `rollback --suspend`: suspend the Kustomization once the rollback is applied
    channel: str  # where the request came from: the suspension's hold reminds there
    head: str = ""  # the commit the bot pushed (or its own update of the branch made)
    branch: str = ""

    @property
    def host(self) -> GitHost:
        assert self.route.host is not None
        return self.route.host

    @property
    def label(self) -> str:
        return HOST_LABEL[self.host.kind]

    def audit(self, step: str, detail: str) -> None:
        _audit(self.deps, self.plan, step, self.rollback_id, self.conversation.channel, detail)

    def after(self, final: AppStatus) -> str:
        return suspend_after(self.deps, self.plan.ref, suspend=self.suspend, user=self.user,
                             channel=self.channel)(final)  # fmt: skip


def suspend_after(
    deps: Deps, ref: AppRef, *, suspend: bool, user: str, channel: str
) -> Callable[[AppStatus], str]:
    """Once a Flux rollback is applied: suspend it when asked (a hold reminds until resumed);
    returns the note for the final card."""

    def after(final: AppStatus) -> str:
        if not suspend or ref.backend != "flux" or deps.ops is None:
            return ""
        hold = deps.ops.suspend_after_rollback(ref, user=user, channel=channel)
        return msg.ROLLBACK_SUSPENDED.format(hold=hold.id, args=escape(deps.ops.resolver.command_args(ref)))

    return after


def route_of(deps: Deps, plan: RollbackPlan) -> Route | None:
    """A Flux rollback's way to Git: None for Argo CD (no commit), else the repository and, when it
    takes changes through a PR (`pull_request`, or `auto` already refused), its host."""
    if deps.ops is None or plan.ref.backend != "flux":
        return None
    backend = deps.ops.resolver.backend(plan.ref)
    flux = getattr(backend, "inner", backend)  # behind the coalescing layer
    if not isinstance(flux, FluxBackend):
        return None
    repo = flux.rollback_repository(plan.ref)
    protected = ProtectedBranches(deps.audit.database)
    through_pr = repo.mode == "pull_request" or (
        repo.mode == "auto" and protected.known(repo.name, repo.branch)
    )
    return Route(flux, repo, _host(deps, repo) if through_pr else None, protected)


def _host(deps: Deps, repo: GitRepository) -> GitHost:
    host = deps.githosts.get(repo.name)
    if host is None:
        raise UserError(
            f"Repository `{repo.name}` takes changes through a pull request, but its token "
            f"(`{repo.token_env}`) is not set; nothing was pushed.",
            hint="Set it in the bot's environment and restart it.",
        )
    return host


def switched(
    deps: Deps, route: Route, plan: RollbackPlan, refused: ProtectedBranch, *, rollback_id: str, channel: str
) -> tuple[Route, str]:
    """`mode: auto` and the direct push was refused as protected: remember it and go through a PR.
    The first to record it says so (the card's note and a `rollback.protection_detected` row)."""
    repo, ref = route.repo, refused.refusal
    host = _host(deps, repo)
    if not route.protected.remember(repo.name, repo.branch, host=ref.host, code=ref.code):
        return replace(route, host=host), ""
    said = ref.reasons[0] if ref.reasons else (ref.ref_reason or "protected branch")
    why = (f"{ref.code}: {said}" if ref.code else said)[:200]
    _audit(deps, plan, "protection_detected", rollback_id, channel,
           f"`{repo.branch}` of {repo.name} is protected ({why}); switched to a pull request")  # fmt: skip
    lead = msg.PROTECTED_SWITCHED.format(
        repo=escape(repo.name), branch=escape(repo.branch), why=escape(why), noun=NOUN[host.kind]
    )
    return replace(route, host=host), lead


def through_pull_request(
    deps: Deps,
    route: Route,
    conversation: Conversation,
    plan: RollbackPlan,
    *,
    rollback_id: str,
    user: str,
    by: str,
    title: str,
    note: str,
    suspend: bool,
    channel: str,
    pointer: Reply | None = None,
) -> Reply:
    """Push the rollback's branch, open its PR, merge when the host is ready, reconcile, follow."""
    assert deps.ops is not None
    job = _Rollback(deps, route, conversation, plan, rollback_id, user, by, title, note, suspend, channel)
    job.branch = _branch(plan, rollback_id)
    reservation = deps.ops.watcher.reserve()
    try:
        pushed = route.backend.push_rollback(plan, initiated_by=by, to_branch=job.branch)
        job.head = pushed.sha
        opening = msg.ROLLBACK_PR_OPENING.format(noun=NOUN[job.host.kind], branch=escape(job.branch))
        conversation.announce(_card(job, opening), pointer=pointer)
        cr = job.host.find_open(job.branch, route.repo.branch)
        if cr is None:
            cr = job.host.create(job.branch, route.repo.branch, *_title_and_body(job),
                                 labels=route.repo.labels, reviewers=route.repo.reviewers)  # fmt: skip
            job.audit("pr_opened", f"{cr.ref} {cr.url} from {job.branch}")
        conversation.update(_card(job, msg.ROLLBACK_PR_OPENED.format(
            app=escape(plan.ref.name), url=cr.url, ref=cr.ref, branch=escape(job.branch))))  # fmt: skip
        return _act(job, _observe(job, cr.number), reservation)
    except BaseException:
        reservation.release()
        raise


def resume(deps: Deps, conversation: Conversation, spec: Mapping[str, Any], slot: Reservation) -> Reply:
    """After a restart: read the rollback's PR again and go on from there (merge when ready, wait
    again, or say it ended). Nothing is pushed again: the branch has the confirmed commit."""
    plan = _plan_from(spec["plan"])
    route = route_of(deps, plan)
    if route is None:
        raise UserError(f"`{plan.ref.display}` is no longer a Flux app; its rollback is not followed.")
    route = replace(route, host=route.host or _host(deps, route.repo))  # its PR exists: stay on it
    text = {k: str(spec.get(k) or "") for k in ("rollback_id", "user", "by", "title", "note", "channel")}
    job = _Rollback(deps, route, conversation, plan, text["rollback_id"], text["user"], text["by"],
                    text["title"], text["note"], bool(spec.get("suspend")), text["channel"],
                    head=str(spec["head"]), branch=str(spec["branch"]))  # fmt: skip
    return _act(job, _observe(job, int(spec["number"])), slot)


# -- what to do with a reading ----------------------------------------------------------------------


def _act(job: _Rollback, state: _Reading, reservation: Reservation) -> Reply:
    try:
        cr, kind = state.cr, state.readiness.kind
        if kind == "merged" and cr.merge_commit_sha:
            return _reconcile(job, cr, cr.merge_commit_sha, reservation)
        if cr.state == "open" and cr.head_sha != job.head:
            reservation.release()
            text = msg.ROLLBACK_PR_HEAD_MOVED.format(
                sha=short_rev(cr.head_sha), url=cr.url, ref=cr.ref, args=_args(job)
            )
            return _ended(job, cr, text, f"{short_rev(cr.head_sha)} pushed to it by someone else")
        if kind in ("closed", "merged", "conflict"):
            reservation.release()
            word = "in conflict with its base" if kind == "conflict" else cr.state
            text = msg.ROLLBACK_PR_CLOSED.format(url=cr.url, ref=cr.ref, state=word, host=job.label,
                                                 app=escape(job.plan.ref.name), args=_args(job))  # fmt: skip
            if kind == "conflict":
                with suppress(GitOpsBotError):
                    job.host.close(cr.number)
            return _ended(job, cr, text, f"{cr.ref} {word}")
        if state.readiness.needs_update:
            state = _update(job, state)
        if state.readiness.kind != "ready":
            state = _approve_on_host(job, state)
        if state.readiness.kind == "ready":
            return _merge(job, state, reservation)
        return _wait(job, state, reservation)
    except BaseException:
        reservation.release()
        raise


def _merge(job: _Rollback, state: _Reading, reservation: Reservation) -> Reply:
    cr = state.cr
    try:
        result = job.host.merge(cr.number, job.head, method=job.route.repo.merge_method,
                                title=f"{job.title} ({cr.ref})", message=_trailers(job),
                                remove_branch=job.route.repo.delete_branch)  # fmt: skip
    except HeadMoved:
        return _act(job, _observe(job, cr.number), reservation)
    except NotMergeable as exc:
        if exc.transient:
            return _wait(job, _observe(job, cr.number), reservation)
        reservation.release()
        why = msg.PROMOTE_PR_NOT_MERGEABLE.format(
            host=job.label, url=cr.url, ref=cr.ref, why=escape(exc.message)
        )
        return _ended(job, cr, msg.ROLLBACK_PR_NOT_MERGED.format(app=escape(job.plan.ref.name), why=why),
                      f"{cr.ref} not merged: {exc.message}")  # fmt: skip
    sha = result.sha or job.host.get(cr.number).merge_commit_sha or ""
    return _reconcile(job, cr, sha, reservation)


def _wait(job: _Rollback, state: _Reading, reservation: Reservation) -> Reply:
    ops = job.deps.ops
    assert ops is not None
    missing = _missing(job, state.readiness)
    job.audit("waiting", f"{state.cr.ref}: waiting for {job.label}: "
              + "; ".join(m.lstrip("• ") for m in missing.splitlines()))  # fmt: skip
    if job.conversation.on_watch is not None:  # a restart picks it up again (`resume`): before the card
        job.conversation.on_watch(_spec(job, state.cr.number))
    job.conversation.update(_waiting_card(job, state))
    head = job.head

    def done(last: _Reading) -> None:
        try:
            slot = ops.watcher.reserve()
        except UserError as exc:
            ended = _plain_end(job, exc.message)
            complete(job.conversation, lambda: ended, outcome="failed")
            return
        try:
            reply = _act(job, last, slot)
        except GitOpsBotError as exc:
            reply = _plain_end(job, getattr(exc, "message", str(exc)))
        if not reply.deferred:
            complete(job.conversation, lambda: reply)

    def gave_up(exc: BaseException) -> None:
        why = f"stopped waiting for {job.label}; {state.cr.ref} stays open and nothing was merged"
        complete(job.conversation, lambda: _plain_end(job, why), outcome="failed")

    def finished(s: _Reading) -> bool:
        return s.readiness.kind not in _PENDING or s.cr.head_sha != head or s.readiness.needs_update

    ops.watcher.watch(
        reservation, None, lambda: _observe(job, state.cr.number), what=f"{job.label} {job.host.project}",
        interval=1.0, timeout=WAIT_SECONDS, on_done=done, on_error=gave_up, finished=finished,
        on_progress=lambda s: job.conversation.update(_waiting_card(job, s)),
        progress_key=lambda s: (s.cr.head_sha, s.readiness),
        name=f"{state.cr.ref} of a rollback of {job.plan.ref.display}",
    )  # fmt: skip
    return DEFERRED


def _reconcile(job: _Rollback, cr: ChangeRequest, sha: str, reservation: Reservation) -> Reply:
    """Merged: reconcile with source and follow it on the same card, as a pushed rollback is."""
    deps, plan = job.deps, job.plan
    assert deps.ops is not None
    job.audit("merged", f"{cr.ref} merged as {short_rev(sha)} into {job.route.repo.branch}")
    merged = msg.ROLLBACK_PR_MERGED.format(url=cr.url, ref=cr.ref, branch=escape(job.route.repo.branch),
                                           sha=short_rev(sha))  # fmt: skip
    note = "\n".join(n for n in (job.note, merged) if n)
    request = SyncRequest(initiated_by=job.by)
    try:
        started = deps.ops.start_sync(plan.ref, request)
    except BaseException:
        reservation.release()
        raise
    operation = replace(started.operation or Operation("Running"), revision=sha,
                        message=f"merged {cr.ref} as {sha[:8]}; reconcile requested")  # fmt: skip
    started = replace(started, operation=operation)
    before = plan.current.revision if plan.current else None
    spec = sync_spec(request, user=job.user, before=before, note=note, title=job.title)
    spec["label"] = (
        f"{rollback_summary(plan).lower()} through {cr.ref}: {short_rev(before)} → {short_rev(sha)}"
    )
    render = sync_renderer(deps, {"ref": asdict(plan.ref), **spec})
    job.conversation.update(render(started, ""))
    return follow(deps, job.conversation, plan.ref, reservation, render, spec=spec, after=job.after)


# -- the host ------------------------------------------------------------------------------------------


def _observe(job: _Rollback, number: int) -> _Reading:
    cr = job.host.get(number)
    readiness = job.host.readiness(cr)
    return _Reading(cr, readiness, job.host.checks(cr) if cr.state == "open" else ())


def _update(job: _Rollback, state: _Reading) -> _Reading:
    """Behind its base: the host brings the branch up to date (the bot's own move of the head,
    guarded by `expected_head_sha`); the confirmed rollback is still what it merges."""
    with suppress(HeadMoved):
        job.host.update_branch(state.cr)
    after = _observe(job, state.cr.number)
    if after.cr.state == "open" and after.cr.head_sha != state.cr.head_sha:
        job.head = after.cr.head_sha
    return after


def _approve_on_host(job: _Rollback, state: _Reading) -> _Reading:
    if job.route.repo.approve_token_env is None:
        return state
    try:
        job.host.approve(state.cr.number, job.head, f"Rollback confirmed in Slack by {job.by} (gitops-bot).")
    except UserError as exc:
        log.warning("host approval refused", extra={"rollback": job.rollback_id, "error": exc.message})
        return state
    job.audit("host_approved", f"{state.cr.ref}: approving review for {job.by}")
    return _observe(job, state.cr.number)


# -- the spec a restart rebuilds the job from ----------------------------------------------------------


def _spec(job: _Rollback, number: int) -> dict[str, Any]:
    # The plan as confirmed (not planned again: history may have moved; the branch has its commit).
    p = job.plan
    plan = {"ref": asdict(p.ref), "to": _entry(p.to), "current": _entry(p.current) if p.current else None,
            "auto_sync": p.auto_sync, "path": p.path}  # fmt: skip
    return {"kind": SPEC_KIND, "what": f"{job.label} {job.host.project}", "plan": plan, "number": number,
            "rollback_id": job.rollback_id, "user": job.user, "by": job.by, "title": job.title,
            "note": job.note, "suspend": job.suspend, "channel": job.channel, "branch": job.branch,
            "head": job.head}  # fmt: skip


def _entry(entry: HistoryEntry) -> dict[str, Any]:
    return {**asdict(entry), "deployed_at": entry.deployed_at.isoformat() if entry.deployed_at else None}


def _plan_from(spec: Mapping[str, Any]) -> RollbackPlan:
    def entry(data: Mapping[str, Any]) -> HistoryEntry:
        at = data.get("deployed_at")
        return HistoryEntry(**{**data, "deployed_at": datetime.fromisoformat(at) if at else None})

    current = spec.get("current")
    return RollbackPlan(AppRef(**spec["ref"]), entry(spec["to"]), entry(current) if current else None,
                        bool(spec.get("auto_sync")), spec.get("path"))  # fmt: skip


# -- text ---------------------------------------------------------------------------------------------


def _branch(plan: RollbackPlan, rollback_id: str) -> str:
    name = _UNSAFE.sub("-", f"{plan.ref.name}-{plan.ref.instance}-{rollback_id}").strip("-.")
    return f"{BRANCH_PREFIX}{name}"[:200]


def _title_and_body(job: _Rollback) -> tuple[str, str]:
    plan, host = job.plan, job.host
    what = rollback_summary(plan)
    title = msg.ROLLBACK_PR_TITLE.format(app=plan.ref.name, what=what)[:250]
    link = _permalink(job)
    body = msg.ROLLBACK_PR_BODY.format(
        app=plan.ref.name, where=plan.ref.display, what=what, who=f"{job.by} (`{job.user}`)",
        link=f" ({link})" if link else "", noun=NOUN[host.kind], host=HOST_LABEL[host.kind],
        pending=job.rollback_id,
    )  # fmt: skip
    return title, body


def _trailers(job: _Rollback) -> str:
    return (
        f"Rollback confirmed in Slack by {job.by}.\n\nRequested-by: {job.by}\nRollback-Id: {job.rollback_id}"
    )


def _permalink(job: _Rollback) -> str | None:
    ts = job.conversation.message_ts
    if not ts:
        return None
    try:
        found = job.conversation.client.chat_getPermalink(channel=job.conversation.channel, message_ts=ts)
        return str(found["permalink"])
    except (SlackApiError, KeyError, TypeError):
        return None


def _args(job: _Rollback) -> str:
    ops = job.deps.ops
    return escape(ops.resolver.command_args(job.plan.ref) if ops is not None else job.plan.ref.name)


def _missing(job: _Rollback, readiness: Readiness) -> str:
    if readiness.kind == "wait" or not readiness.missing:
        return msg.PROMOTE_PR_WAIT_COMPUTING.format(host=job.label)
    return "\n".join(f"• {escape(line)}" for line in readiness.missing[:8])


def _card(job: _Rollback, text: str) -> Reply:
    body = "\n".join(n for n in (job.note, text) if n)
    blocks = [section(f"*{escape(job.title)}*"), section(body), context(f"`{escape(job.plan.ref.display)}`")]
    return message(job.title, blocks, in_channel=True)


def _waiting_card(job: _Rollback, state: _Reading) -> Reply:
    text = msg.ROLLBACK_PR_WAITING.format(
        app=escape(job.plan.ref.name), host=job.label, url=state.cr.url, ref=state.cr.ref,
        missing=_missing(job, state.readiness),
    )  # fmt: skip
    return _card(job, text)


def _ended(job: _Rollback, cr: ChangeRequest, text: str, why: str) -> Reply:
    job.audit("closed", f"{cr.ref}: {why}; not merged")
    if job.route.repo.delete_branch:
        with suppress(GitOpsBotError):
            job.host.delete_branch(job.branch)
    return replace(
        _card(job, text), detail=f"{rollback_summary(job.plan).lower()}: not merged: {why}", failed=True
    )


def _plain_end(job: _Rollback, why: str) -> Reply:
    text = msg.ROLLBACK_PR_NOT_MERGED.format(app=escape(job.plan.ref.name), why=escape(why))
    return replace(
        _card(job, text), detail=f"{rollback_summary(job.plan).lower()}: not merged: {why}", failed=True
    )


def _audit(deps: Deps, plan: RollbackPlan, step: str, rollback_id: str, channel: str, detail: str) -> None:
    """A row the moment a step happens (`rollback.pr_opened`, `.merged` …), by the bot."""
    row = AuditEvent(
        user_id=BOT_USER, user_name=BOT_USER, channel=channel, command=f"rollback {step}",
        target=target_of(deps, plan.ref), action=f"rollback.{step}", outcome="ok",
        detail=f"rollback {rollback_id}: {detail}", correlation_id=current_correlation_id(),
    )  # fmt: skip
    try:
        deps.audit.append(row)
    except GitOpsBotError:
        log.error("rollback step audit row not written", extra={"rollback": rollback_id, "step": step})
