"""The records of a promotion: the plan (what would change) and the stored request (who asked,
who approved, what happened). Both frozen; `PromotionStore` is the only writer of the latter."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

from services.backend import AppRef
from services.promotion.yaml_edit import VersionDelta

# redundant: nothing left to promote, because another promotion (or a commit) already did it.
PromotionStatus = Literal[
    "pending", "approved", "rejected", "expired", "committed", "failed", "superseded", "redundant"
]
STATUSES: tuple[str, ...] = get_args(PromotionStatus)
# Nothing more happens to a promotion in one of these states; buttons on it only explain why.
FINAL_STATUSES: frozenset[str] = frozenset(
    {"rejected", "expired", "committed", "failed", "superseded", "redundant"}
)


@dataclass(frozen=True)
class PromotionPlan:
    """What promoting `app` from `from_env` to `to_env` would change, computed at `base_sha`."""

    id: str  # opaque and url-safe; becomes the promotion's id when it is requested
    app: str
    from_env: str
    to_env: str
    repository: str  # the configured repository holding the target environment
    target_file: str  # repository path of the file the commit changes
    base_sha: str  # head of the target branch the diff was computed on
    diff: str  # unified, git-style diff of target_file ("" when empty)
    diff_hash: str  # sha256 hex of `diff`: what approvers saw, compared before committing
    summary: str  # "api 1.4.2 → 1.4.3"
    empty: bool  # nothing to promote: the target already runs the source's versions
    source_ref: AppRef
    target_ref: AppRef
    changes: tuple[VersionDelta, ...] = ()  # what the commit changes, value by value


@dataclass(frozen=True)
class Promotion:
    """A requested promotion as stored. `audit_id` links every audit row of the request; it is the
    first request's id and survives `supersede` (which gives the new request a new `id`)."""

    id: str
    app: str
    from_env: str
    to_env: str
    repository: str
    target_file: str
    base_sha: str
    diff_hash: str
    summary: str
    requester: str
    requester_name: str
    channel: str
    message_ts: str | None
    status: PromotionStatus
    approvals: tuple[str, ...]
    approvals_required: int
    rejected_by: str | None
    reason: str | None
    created_at: datetime
    expires_at: datetime
    commit_sha: str | None
    audit_id: str
    diff: str = ""
    superseded_by: str | None = None  # the newer request; for "redundant", the one that did it
    forced_by: str | None = None  # the admin whose --force on the request passes deploy locks
    # True only on the value returned by the one call that moved the request to "approved"
    # (create with no approval policy, or the approval that reached the count): the caller that
    # sees it commits; every other caller sees False or an error. Not stored.
    became_approved: bool = field(default=False, compare=False)

    @property
    def open(self) -> bool:
        return self.status not in FINAL_STATUSES

    @property
    def approvals_missing(self) -> int:
        return max(0, self.approvals_required - len(self.approvals))


@dataclass(frozen=True)
class ChangeRequestRecord:
    """The pull request (GitHub) or merge request (GitLab) a promotion goes through, as stored.

    `head_sha` is the commit the bot pushed to `branch`, which the Slack approvals are bound to
    (with the diff hash); `diff_hash` the diff that commit makes. `state` is open / closed /
    merged; `readiness` the host's last word (wait, ready, blocked, conflict …), `missing` what
    is still missing there, one item per line, `checks` the CI signals as shown.
    """

    audit_id: str
    host: str
    number: int
    url: str
    branch: str
    head_sha: str
    diff_hash: str
    state: str
    readiness: str = ""
    missing: str = ""
    checks: str = ""
    host_approved_sha: str | None = None
