"""Open promotion cards kept in step with their pull / merge request: a scheduled job, leader only.

A promotion waiting for its Slack approvals has a PR (GitHub) or MR (GitLab) whose checks and
mergeability change on their own, and which people may close, merge or push to outside Slack.
Every `git.pull_request_refresh` the leader reads each such PR once (`get`); only when what the
host says about it moved since the last reading (state, head, mergeability words) — or, for a
`blocked` PR, every `full_every` runs, since a required check going from running to failed leaves
GitHub's `blocked` as it is — does it read the rest (readiness, checks: `observe`) and edit the
card, and only when the card's PR section changed. So a quiet PR costs one request a run.

- closed, or gone (404), outside Slack: the request ends, the card says so without buttons, a
  `promotion.closed` row, the branch deleted (`delete_branch`);
- merged outside Slack before the approvals: the request ends and nothing is deployed from an
  unapproved merge; the card says Argo CD / Flux deploys it on its own, with the command to do it
  now (`promotion.merged_outside`);
- conflicting with its base: the PR is closed, the branch deleted, the request ends;
- someone pushed to the branch: the approvals so far no longer hold; the request is superseded by
  a fresh one (same card and PR), the branch gets the promotion's change back, approve again.

Approved promotions are not touched: the merge flow's own watch reads those (pull_request.py).
A rate-limited host is skipped until its `retry_after`; a host that does not answer keeps its
cards as they are until the next run. Nothing here raises out of `run`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers import messages as msg
from handlers.blocks import Reply, escape
from handlers.cards import short_rev
from handlers.promote.promoter import Promoter, profile
from handlers.promote.pull_request import observe
from handlers.promote.views import change_request_text
from services.errors import BackendUnavailable, GitOpsBotError, UserError
from services.githost import ChangeRequest, GitHost, HostNotFound, HostRateLimited
from services.githost.model import HOST_LABEL, NOUN, SIGIL, HostKind
from services.leader.election import Leadership
from services.promotion.model import ChangeRequestRecord, Promotion
from services.settings.model import GitRepository

log = logging.getLogger(__name__)

RATE_LIMIT_FLOOR = 60.0  # seconds a rate-limited host is left alone when it did not say how long
_Mark = tuple[str, str, str, bool | None, bool]  # state, head, merge words, mergeable, draft


@dataclass
class _Seen:
    mark: _Mark
    quiet_runs: int = 0  # runs since the last full reading


@dataclass(frozen=True)
class _Open:
    """One open request and its PR, as the run found them."""

    promotion: Promotion
    record: ChangeRequestRecord
    repo: GitRepository
    host: GitHost

    @property
    def label(self) -> str:
        return HOST_LABEL[self.host.kind]


@dataclass
class PullRequestRefresh:
    promoter: Promoter
    client: WebClient
    leadership: Leadership
    full_every: int = 5  # a `blocked` PR is read in full at least every this many runs
    clock: Callable[[], float] = time.monotonic
    # promotion id → its last reading; host → clock() at which it may be read again
    _seen: dict[str, _Seen] = field(default_factory=dict, init=False, repr=False)
    _paused: dict[str, float] = field(default_factory=dict, init=False, repr=False)

    def run(self) -> int:
        """One pass; returns how many cards it edited (0 when not the leader)."""
        if not self.leadership.is_leader():
            return 0
        edited = 0
        seen: set[str] = set()
        for item in self._open():
            seen.add(item.promotion.id)
            host_key = _host_key(item.repo)
            if self._paused.get(host_key, 0.0) > self.clock():
                continue  # rate limited: not even a read until it said we may
            try:
                edited += self._refresh(item)
            except HostRateLimited as exc:
                wait = exc.retry_after if exc.retry_after is not None else RATE_LIMIT_FLOOR
                self._paused[host_key] = self.clock() + wait
                log.warning("git host rate limited; its cards wait", extra={"host": host_key, "wait_s": wait})
            except GitOpsBotError as exc:  # host down, a token to rotate…: the card stays as it is
                log.warning("pull request not refreshed", extra={"promotion": item.promotion.id,
                                                                 "error": str(exc)[:300]})  # fmt: skip
            except Exception:  # one bad PR must not stop the others, nor the scheduler
                log.exception("pull request refresh failed", extra={"promotion": item.promotion.id})
        for gone in set(self._seen) - seen:
            del self._seen[gone]
        return edited

    def _open(self) -> list[_Open]:
        """Requests waiting for their Slack approvals that have an open PR on a configured host."""
        promoter = self.promoter
        found = []
        for promotion in promoter.store.open_requests():
            if promotion.status != "pending":
                continue  # approved: the merge flow's watch reads its PR
            record = promoter.store.change_request(promotion.id)
            repo = promoter.deps.settings.repository(promotion.repository)
            host = promoter.deps.githosts.get(promotion.repository)
            if record is None or record.state != "open" or repo is None or host is None:
                continue
            found.append(_Open(promotion, record, repo, host))
        return found

    # -- one PR ---------------------------------------------------------------------------------------

    def _refresh(self, item: _Open) -> int:
        try:
            cr = item.host.get(item.record.number)
        except HostNotFound:
            why = f"{_ref(item.record)} is gone from {item.label} (404) outside Slack"
            return self._end(item, "closed", why, _gone_note(item))
        if cr.state == "open" and cr.head_sha != item.record.head_sha:
            return self._head_moved(item, cr)
        mark: _Mark = (cr.state, cr.head_sha, cr.merge_state, cr.mergeable, cr.draft)
        last = self._seen.get(item.promotion.id)
        if last is not None and last.mark == mark:
            # Only `blocked` hides changes behind the same words (a required check running → failed).
            due = item.record.readiness == "blocked" and last.quiet_runs + 1 >= self.full_every
            if not due:
                last.quiet_runs += 1
                return 0
        state = observe(self.promoter, item.promotion, item.host, cr.number)
        self._seen[item.promotion.id] = _Seen(mark)
        kind = state.readiness.kind
        if kind == "merged":
            return self._merged_outside(item, state.cr)
        if kind == "closed":
            note = msg.PROMOTE_PR_CLOSED.format(url=cr.url, ref=cr.ref, host=item.label, **_names(item))
            return self._end(item, "closed", f"{cr.ref} was closed on {item.label} outside Slack", note)
        if kind == "conflict":
            note = msg.PROMOTE_PR_CONFLICT.format(url=cr.url, ref=cr.ref, branch=escape(item.repo.branch),
                                                  **_names(item))  # fmt: skip
            why = f"{cr.ref} conflicts with {item.repo.branch}; closed"
            return self._end(item, "conflict", why, note, readiness="conflict", close=True)
        now = self.promoter.store.change_request(item.promotion.id)
        if now is None or change_request_text(now) == change_request_text(item.record):
            return 0  # what the card shows of the PR is what it showed
        current = self._still_pending(item)
        if current is None:
            return 0
        self.promoter.refresh_card(self.client, current, state="pending")
        return 1

    def _end(
        self,
        item: _Open,
        step: str,
        why: str,
        note: str,
        *,
        state: str = "closed",
        readiness: str = "closed",
        close: bool = False,
    ) -> int:
        """The request ends: its PR (closed when `close`) and branch, status, audit row and card."""
        promoter, promotion = self.promoter, item.promotion
        if self._still_pending(item) is None:
            return 0
        if close:
            with suppress(GitOpsBotError):  # the card and the trail say it ended all the same
                item.host.close(item.record.number)
        promoter.store.update_change_request(promotion.id, state=state, readiness=readiness, missing="")
        if item.repo.delete_branch:
            with suppress(GitOpsBotError):
                item.host.delete_branch(item.record.branch)
        try:
            failed = promoter.store.mark(promotion.id, "failed", reason=why)
        except UserError:  # a click ended it first; its card says what happened
            return 0
        promoter.audit_step(failed, step, why)
        promoter.refresh_card(self.client, failed, state="failed", note=note)
        self._seen.pop(promotion.id, None)
        return 1

    def _merged_outside(self, item: _Open, cr: ChangeRequest) -> int:
        """Merged on the host before the Slack approvals: never deployed by the bot from here."""
        promotion = item.promotion
        sha = cr.merge_commit_sha or ""
        try:
            backend = self.promoter.service.target_ref(promotion).backend
        except UserError:  # the app left the configuration; the command still names it
            backend = "argocd"
        command = f"{self.promoter.deps.settings.slack.command} sync {promotion.app} {promotion.to_env}"
        note = msg.PROMOTE_PR_MERGED_OUTSIDE.format(
            url=cr.url, ref=cr.ref, host=item.label, sha=short_rev(sha) if sha else "?",
            tool="Flux" if backend == "flux" else "Argo CD", command=command,
        )  # fmt: skip
        why = (f"{cr.ref} was merged on {item.label} outside Slack" + (f" as {short_rev(sha)}" if sha else "")
               + " without the Slack approvals; not deployed by the bot")  # fmt: skip
        return self._end(item, "merged_outside", why, note, state="merged", readiness="merged")

    def _head_moved(self, item: _Open, cr: ChangeRequest) -> int:
        """Someone pushed to the promotion's branch while it waited: a fresh request (no approvals)
        for the change as it is now, pushed back to the branch, on the same card and PR."""
        promoter, promotion, record = self.promoter, item.promotion, item.record
        current = self._still_pending(item)
        if current is None:
            return 0
        newer = promoter.service.plan(promotion.app, promotion.to_env, promotion.from_env)
        if newer.empty:
            why = (
                f"{cr.ref}: someone pushed to its branch and nothing is left to promote on {item.repo.branch}"
            )
            note = msg.PROMOTE_NOT_COMMITTED.format(why=escape(why))
            return self._end(item, "pr_head_moved", why, note, close=True)
        fresh = promoter.store.supersede(current.id, newer)
        self._seen.pop(promotion.id, None)
        moved = f"{cr.ref}: {short_rev(cr.head_sha)} pushed by someone else while waiting for approval"
        promoter.audit_step(promotion, "pr_head_moved", f"{moved}; approvals asked again")
        author_name, author_email = profile(self.client, fresh.requester)
        try:
            sha = promoter.service.commit(fresh, approvers=(), author_name=author_name,
                                          author_email=author_email, to_branch=record.branch)  # fmt: skip
        except (UserError, BackendUnavailable) as exc:
            why = exc.message if isinstance(exc, UserError) else f"{exc.backend}: {exc.message}"
            self._show(fresh, promoter.not_committed(fresh, escape(why)))
            return 1
        promoter.store.attach_change_request(
            fresh.id, host=item.host.kind, number=cr.number, url=cr.url, branch=record.branch, head_sha=sha,
            diff_hash=fresh.diff_hash,
        )  # fmt: skip
        with suppress(GitOpsBotError):  # the card shows what it can; the next run reads it again
            observe(promoter, fresh, item.host, cr.number)
        note = msg.PROMOTE_PR_HEAD_MOVED_PENDING.format(sha=short_rev(cr.head_sha), url=cr.url, ref=cr.ref)
        self._show(fresh, promoter.view(fresh, newer, state="pending", note=note))
        return 1

    # -- helpers ------------------------------------------------------------------------------------------

    def _still_pending(self, item: _Open) -> Promotion | None:
        """The request as stored now, if still waiting for approvals (a click may have moved it)."""
        current = self.promoter.store.get(item.promotion.id)
        return current if current is not None and current.status == "pending" else None

    def _show(self, promotion: Promotion, card: Reply) -> None:
        if not promotion.message_ts:
            return
        with suppress(SlackApiError):
            self.client.chat_update(channel=promotion.channel, ts=promotion.message_ts, text=card.text,
                                    blocks=list(card.blocks))  # fmt: skip


def _host_key(repo: GitRepository) -> str:
    """Rate limits are per host (and token), not per repository."""
    return f"{repo.host}:{repo.api_url or ''}"


def _names(item: _Open) -> dict[str, str]:
    p = item.promotion
    return {"app": p.app, "target": p.to_env, "source": p.from_env}


def _ref(record: ChangeRequestRecord) -> str:
    kind: HostKind = "gitlab" if record.host == "gitlab" else "github"
    return f"{NOUN[kind]} {SIGIL[kind]}{record.number}"


def _gone_note(item: _Open) -> str:
    return msg.PROMOTE_PR_GONE.format(url=item.record.url, ref=_ref(item.record), host=item.label,
                                      **_names(item))  # fmt: skip
