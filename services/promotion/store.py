"""Promotion requests in the bot's database: created, approved, rejected, expired, committed.

Every status change reads and writes the row inside one `BEGIN IMMEDIATE` transaction, so two
approvers clicking at the same moment, or Slack delivering one click twice, are serialised: the
approval that reaches the required count is the only one that sees `became_approved`, and every
later call finds the request no longer pending. That is what makes the commit happen once.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.errors import PermissionDenied, UserError
from services.promotion.model import (
    FINAL_STATUSES,
    STATUSES,
    ChangeRequestRecord,
    Promotion,
    PromotionPlan,
    PromotionStatus,
)
from services.store.db import Conflict, Database, Tx

_MAX_ID = 64  # ids come back from Slack button values; anything longer is not ours
_MAX_TEXT = 500  # reasons are shown in Slack messages; bound what we keep
_CR_FIELDS = frozenset(
    {"head_sha", "diff_hash", "state", "readiness", "missing", "checks", "host_approved_sha"}
)
_CR_COLUMNS = (
    "audit_id", "host", "number", "url", "branch", "head_sha", "diff_hash", "state", "readiness", "missing",
    "checks", "host_approved_sha",
)  # fmt: skip


def _bounded(value: str | None) -> str | None:
    return value[:2000] if value is not None else None


def _ts(at: datetime) -> str:
    # One fixed, UTC form, so SQL string comparison of timestamps is time order.
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC)


def _why_not(p: Promotion, at: datetime) -> str:
    """What happened to a request that can no longer be approved or rejected."""
    if p.status == "pending" and p.expires_at <= at:
        return "This promotion request has expired. Run `promote` again for a fresh one."
    return {
        "approved": "This promotion was already approved; it is being committed.",
        "committed": f"This promotion was already committed ({(p.commit_sha or '')[:8]}).",
        "rejected": f"This promotion was rejected by <@{p.rejected_by}>." if p.rejected_by else "",
        "expired": "This promotion request has expired. Run `promote` again for a fresh one.",
        "failed": "This promotion failed; run `promote` again to retry.",
        "superseded": "This request was replaced by a newer one because the target changed; "
        "review and approve the new request instead.",
        "redundant": "Nothing left to promote: the target already runs these versions"
        + (f" (done by promotion `{p.superseded_by}`)." if p.superseded_by else "."),
    }.get(p.status) or f"This promotion is {p.status}."


def _closed(p: Promotion, at: datetime) -> UserError:
    return UserError(_why_not(p, at), mentions=[p.rejected_by] if p.rejected_by else [])


class ProtectedBranches:
    """Repositories in `mode: auto` whose branch refused a push as protected (migration 17): from
    then on their promotions and Flux rollbacks go straight to a pull / merge request, and the
    switch is said once. Kept across restarts; keyed by branch, so a new branch is tried again."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def known(self, repository: str, branch: str) -> bool:
        with self._db.read() as tx:
            rows = tx.query(
                "SELECT 1 FROM protected_branches WHERE repository = ? AND branch = ?", [repository, branch]
            )
            return any(True for _ in rows)

    def remember(
        self, repository: str, branch: str, *, host: str | None, code: str | None, now: datetime | None = None
    ) -> bool:
        """Record the refusal; True only for the call that recorded it first (that one says so)."""
        with self._db.transaction() as db:
            cursor = db.execute(
                "INSERT INTO protected_branches (repository, branch, host, code, detected_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [repository, branch, host, code, _ts(_now(now))],
            )
            return bool(cursor.rowcount)


class PromotionStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.protected = ProtectedBranches(db)

    def create(
        self,
        plan: PromotionPlan,
        *,
        requester: str,
        requester_name: str,
        channel: str,
        approvals_required: int,
        ttl: timedelta,
        now: datetime | None = None,
        audit_id: str | None = None,
        message_ts: str | None = None,
        forced_by: str | None = None,
    ) -> Promotion:
        """Store a request for `plan` (its id becomes the request's). With no approvals required
        the request is approved at once and the returned value has `became_approved`.
        `forced_by`: the admin who passed --force (locks do not stop this request)."""
        if plan.empty:
            raise UserError(f"Nothing to promote: `{plan.app}` in `{plan.to_env}` already matches.")
        if approvals_required < 0:
            raise ValueError("approvals_required must not be negative")
        with self._db.transaction() as db:
            return self._insert(
                db, plan, requester=requester, requester_name=requester_name, channel=channel,
                approvals_required=approvals_required, ttl=ttl, at=_now(now),
                audit_id=audit_id or plan.id, message_ts=message_ts, forced_by=forced_by,
            )  # fmt: skip

    def get(self, promotion_id: str) -> Promotion | None:
        with self._db.read() as tx:
            return self._get(tx, promotion_id)

    def set_message(self, promotion_id: str, ts: str, *, channel: str | None = None) -> None:
        """Remember the Slack message showing the request, to update it when the status changes."""
        with self._db.transaction() as db:
            db.execute(
                "UPDATE promotions SET message_ts = ?, channel = coalesce(?, channel) WHERE id = ?",
                [ts, channel, promotion_id[:_MAX_ID]],
            )

    def approve(self, promotion_id: str, user: str, *, now: datetime | None = None) -> Promotion:
        """Add `user`'s approval. Four eyes: the requester cannot approve (PermissionDenied); one
        approval per person and only while pending and unexpired (UserError saying why not)."""
        at = _now(now)
        with self._db.transaction() as db:
            p = self._pending(db, promotion_id, at)
            if user == p.requester:
                raise PermissionDenied("you requested this promotion; someone else must approve it")
            if user in p.approvals:
                missing = p.approvals_missing
                raise UserError(
                    "You already approved this promotion"
                    + (f"; it still needs {missing} more approval(s) from someone else." if missing else ".")
                )
            approvals = (*p.approvals, user)
            done = len(approvals) >= p.approvals_required
            status: PromotionStatus = "approved" if done else "pending"
            self._update(db, p.id, at, approvals=json.dumps(approvals), status=status)
            return replace(p, approvals=approvals, status=status, became_approved=done)

    def reject(self, promotion_id: str, user: str, reason: str, *, now: datetime | None = None) -> Promotion:
        """Refuse the request (the requester may withdraw their own); only while pending."""
        at = _now(now)
        text = " ".join(reason.split())[:_MAX_TEXT] or None
        with self._db.transaction() as db:
            p = self._pending(db, promotion_id, at)
            self._update(db, p.id, at, status="rejected", rejected_by=user, reason=text)
            return replace(p, status="rejected", rejected_by=user, reason=text)

    def expire_due(self, *, now: datetime | None = None) -> list[Promotion]:
        """Pending requests past their deadline, now "expired"; each is returned by one call only."""
        at = _ts(_now(now))
        with self._db.transaction() as db:
            rows = list(
                db.query(
                    "UPDATE promotions SET status = 'expired', updated_at = ? "
                    "WHERE status = 'pending' AND expires_at <= ? RETURNING *",
                    [at, at],
                )
            )
        return sorted((_promotion(r) for r in rows), key=lambda p: (p.expires_at, p.id))

    def mark(
        self,
        promotion_id: str,
        status: PromotionStatus,
        *,
        commit_sha: str | None = None,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> Promotion:
        """Record an outcome ("committed" with its SHA, "failed" with a reason). A request already
        in a final state keeps it (UserError): a late failure must not overwrite a commit."""
        if status not in STATUSES:
            raise ValueError(f"unknown promotion status {status!r}")
        at = _now(now)
        with self._db.transaction() as db:
            p = self._require(db, promotion_id)
            if p.status in FINAL_STATUSES:
                raise _closed(p, at)
            fields: dict[str, Any] = {"status": status}
            if commit_sha is not None:
                fields["commit_sha"] = commit_sha
            if reason is not None:
                fields["reason"] = " ".join(reason.split())[:_MAX_TEXT]
            self._update(db, p.id, at, **fields)
            found = self._get(db, p.id)
            assert found is not None  # the row was just updated inside this transaction
            return found

    def supersede(
        self, promotion_id: str, new_plan: PromotionPlan, *, now: datetime | None = None
    ) -> Promotion:
        """The target moved after the request was made: close this request as "superseded" and
        return a new one for `new_plan` with no approvals, the same requester, channel, message,
        approval policy, time to live and audit id. Buttons of the old request stop working, so
        nobody approves a diff they did not see."""
        at = _now(now)
        with self._db.transaction() as db:
            p = self._require(db, promotion_id)
            if p.status not in ("pending", "approved"):
                raise _closed(p, at)
            if new_plan.id == p.id:
                raise ValueError("a superseding plan needs an id of its own")
            # An empty new plan (someone else promoted the same versions meanwhile) ends it here.
            if new_plan.empty:
                self._update(db, p.id, at, status="redundant")
                return replace(p, status="redundant")
            self._update(db, p.id, at, status="superseded", superseded_by=new_plan.id)
            return self._insert(
                db, new_plan, requester=p.requester, requester_name=p.requester_name, channel=p.channel,
                approvals_required=p.approvals_required, ttl=p.expires_at - p.created_at, at=at,
                audit_id=p.audit_id, message_ts=p.message_ts, forced_by=p.forced_by,
            )  # fmt: skip

    def close_redundant(
        self, promotion_id: str, *, done_by: str | None, now: datetime | None = None
    ) -> Promotion | None:
        """Nothing is left to promote (another request or commit did it): close an open request.
        Returns it closed, or None when it was no longer open (each is closed by one call)."""
        at = _now(now)
        with self._db.transaction() as db:
            p = self._require(db, promotion_id)
            if p.status not in ("pending", "approved"):
                return None
            self._update(db, p.id, at, status="redundant", superseded_by=done_by)
            return replace(p, status="redundant", superseded_by=done_by)

    def open_for(self, app: str, to_env: str) -> list[Promotion]:
        """Open (pending or approved) requests to promote `app` into `to_env`, oldest first."""
        with self._db.read() as tx:
            rows = tx.query(
                "SELECT * FROM promotions WHERE app = ? AND to_env = ? AND status IN ('pending', 'approved') "
                "ORDER BY created_at, id",
                [app, to_env],
            )
            return [_promotion(r) for r in rows]

    def last_committed(self, app: str, to_env: str) -> Promotion | None:
        with self._db.read() as tx:
            rows = list(
                tx.query(
                    "SELECT * FROM promotions WHERE app = ? AND to_env = ? AND status = 'committed' "
                    "ORDER BY updated_at DESC, id DESC LIMIT 1",
                    [app, to_env],
                )
            )
        return _promotion(rows[0]) if rows else None

    def history(self, audit_id: str) -> list[Promotion]:
        """Every request of one promotion (the first and those that superseded it), oldest first."""
        with self._db.read() as tx:
            rows = tx.query(
                "SELECT * FROM promotions WHERE audit_id = ? ORDER BY created_at, id", [audit_id[:_MAX_ID]]
            )
            return [_promotion(r) for r in rows]

    def open_requests(self) -> list[Promotion]:
        """Pending and approved requests, oldest first (to re-render or finish after a restart)."""
        with self._db.read() as tx:
            rows = tx.query(
                "SELECT * FROM promotions WHERE status IN ('pending', 'approved') ORDER BY created_at, id"
            )
            return [_promotion(r) for r in rows]

    # -- the pull / merge request of a promotion (repositories in mode pull_request) ----------------

    def attach_change_request(
        self,
        promotion_id: str,
        *,
        host: str,
        number: int,
        url: str,
        branch: str,
        head_sha: str,
        diff_hash: str,
        state: str = "open",
        now: datetime | None = None,
    ) -> ChangeRequestRecord:
        """Record the change request opened (or adopted) for this promotion; a second call for the
        same promotion (a retry, a superseding request) replaces the first."""
        at = _ts(_now(now))
        with self._db.transaction() as db:
            p = self._require(db, promotion_id)
            db.execute(
                "INSERT INTO promotion_change_requests (audit_id, host, number, url, branch, head_sha, "
                "diff_hash, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (audit_id) DO UPDATE SET host = excluded.host, number = excluded.number, "
                "url = excluded.url, branch = excluded.branch, head_sha = excluded.head_sha, "
                "diff_hash = excluded.diff_hash, state = excluded.state, updated_at = excluded.updated_at",
                [p.audit_id, host, number, url, branch, head_sha, diff_hash, state, at, at],
            )
            found = self._change_request(db, p.audit_id)
        assert found is not None  # just written
        return found

    def update_change_request(
        self, promotion_id: str, *, now: datetime | None = None, **fields: str | None
    ) -> ChangeRequestRecord | None:
        """Change stored fields (head_sha, diff_hash, state, readiness, missing, checks,
        host_approved_sha); None when the promotion has no change request."""
        unknown = set(fields) - _CR_FIELDS
        if unknown:
            raise ValueError(f"not a change request field: {sorted(unknown)}")
        at = _ts(_now(now))
        with self._db.transaction() as db:
            p = self._require(db, promotion_id)
            if fields:
                names = sorted(fields)
                assignments = ", ".join(f"{name} = ?" for name in names)  # names checked above
                db.execute(
                    f"UPDATE promotion_change_requests SET {assignments}, updated_at = ? "  # noqa: S608
                    "WHERE audit_id = ?",
                    [*(_bounded(fields[n]) for n in names), at, p.audit_id],
                )
            return self._change_request(db, p.audit_id)

    def change_request(self, promotion_id: str) -> ChangeRequestRecord | None:
        with self._db.read() as tx:
            p = self._get(tx, promotion_id)
            return self._change_request(tx, p.audit_id) if p is not None else None

    @staticmethod
    def _change_request(db: Tx, audit_id: str) -> ChangeRequestRecord | None:
        rows = list(db.query("SELECT * FROM promotion_change_requests WHERE audit_id = ?", [audit_id]))
        if not rows:
            return None
        row = rows[0]
        return ChangeRequestRecord(**{k: row[k] for k in _CR_COLUMNS})

    # -- internals; the caller holds the database lock ----------------------------------------------

    def _insert(
        self,
        db: Tx,
        plan: PromotionPlan,
        *,
        requester: str,
        requester_name: str,
        channel: str,
        approvals_required: int,
        ttl: timedelta,
        at: datetime,
        audit_id: str,
        message_ts: str | None,
        forced_by: str | None = None,
    ) -> Promotion:
        auto = approvals_required == 0
        p = Promotion(
            id=plan.id, app=plan.app, from_env=plan.from_env, to_env=plan.to_env,
            repository=plan.repository, target_file=plan.target_file, base_sha=plan.base_sha,
            diff_hash=plan.diff_hash, summary=plan.summary, requester=requester,
            requester_name=requester_name, channel=channel, message_ts=message_ts,
            status="approved" if auto else "pending", approvals=(), approvals_required=approvals_required,
            rejected_by=None, reason=None, created_at=at, expires_at=at + ttl, commit_sha=None,
            audit_id=audit_id, diff=plan.diff, became_approved=auto, forced_by=forced_by,
        )  # fmt: skip
        row = {
            name: getattr(p, name)
            for name in (
                "id", "audit_id", "app", "from_env", "to_env", "repository", "target_file", "base_sha",
                "diff_hash", "diff", "summary", "requester", "requester_name", "channel", "message_ts",
                "status", "approvals_required", "forced_by",
            )
        }  # fmt: skip
        row.update(approvals="[]", created_at=_ts(at), expires_at=_ts(p.expires_at), updated_at=_ts(at))
        try:
            with db.savepoint():
                db.insert("promotions", row)
        except Conflict:
            # The same plan requested twice (a repeated delivery of the "request" click).
            raise UserError("This promotion was already requested; see the request message.") from None
        return p

    def _get(self, db: Tx, promotion_id: str) -> Promotion | None:
        rows = list(db.query("SELECT * FROM promotions WHERE id = ?", [promotion_id[:_MAX_ID]]))
        return _promotion(rows[0]) if rows else None

    def _require(self, db: Tx, promotion_id: str) -> Promotion:
        found = self._get(db, promotion_id)
        if found is None:
            raise UserError("This promotion request is not known to the bot. Run `promote` again.")
        return found

    def _pending(self, db: Tx, promotion_id: str, at: datetime) -> Promotion:
        """The request, if it still takes approvals and rejections; UserError saying why not."""
        p = self._require(db, promotion_id)
        if p.status != "pending" or p.expires_at <= at:
            raise _closed(p, at)
        return p

    @staticmethod
    def _update(db: Tx, promotion_id: str, at: datetime, **fields: Any) -> None:
        names = sorted(fields)
        assignments = ", ".join(f"{name} = ?" for name in names)  # names are ours, never user text
        db.execute(
            f"UPDATE promotions SET {assignments}, updated_at = ? WHERE id = ?",  # noqa: S608
            [*(fields[n] for n in names), _ts(at), promotion_id],
        )


def _promotion(row: dict[str, Any]) -> Promotion:
    return Promotion(
        id=row["id"],
        app=row["app"],
        from_env=row["from_env"],
        to_env=row["to_env"],
        repository=row["repository"],
        target_file=row["target_file"],
        base_sha=row["base_sha"],
        diff_hash=row["diff_hash"],
        summary=row["summary"],
        requester=row["requester"],
        requester_name=row["requester_name"],
        channel=row["channel"],
        message_ts=row["message_ts"],
        status=row["status"],
        approvals=tuple(json.loads(row["approvals"])),
        approvals_required=int(row["approvals_required"]),
        rejected_by=row["rejected_by"],
        reason=row["reason"],
        created_at=datetime.fromisoformat(row["created_at"]),
        expires_at=datetime.fromisoformat(row["expires_at"]),
        commit_sha=row["commit_sha"],
        audit_id=row["audit_id"],
        diff=row["diff"],
        superseded_by=row["superseded_by"],
        forced_by=row.get("forced_by"),
    )
