"""Host-neutral records for pull requests (GitHub) and merge requests (GitLab).

The clients turn each host's JSON into these once; nothing above `services.githost` sees a raw
payload. Raw host values that have no common meaning (`mergeable_state`, `detailed_merge_status`)
are kept verbatim in `merge_state` for the audit trail and for messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

HostKind = Literal["github", "gitlab"]
ChangeState = Literal["open", "closed", "merged"]
MergeMethod = Literal["merge", "squash", "rebase"]
ReadinessKind = Literal["wait", "ready", "blocked", "conflict", "closed", "merged"]
CheckOutcome = Literal["pending", "success", "failure", "neutral"]

HOST_LABEL: dict[HostKind, str] = {"github": "GitHub", "gitlab": "GitLab"}
# What each host calls the thing, for messages ("PR #12", "MR !12").
NOUN: dict[HostKind, str] = {"github": "PR", "gitlab": "MR"}
SIGIL: dict[HostKind, str] = {"github": "#", "gitlab": "!"}


@dataclass(frozen=True)
class ChangeRequest:
    """A GitHub pull request or a GitLab merge request.

    `number` is GitHub's number or GitLab's per-project `iid`. `mergeable` is None while the host
    is still computing it (GitHub `mergeable: null`, GitLab `checking`/`unchecked`/`preparing`…),
    False when the branch conflicts with its base, True otherwise — it says nothing about reviews
    or checks: `Readiness` does. `merge_commit_sha` is only meaningful once `state == "merged"`
    (on GitHub it is the test merge commit before that).
    """

    host: HostKind
    number: int
    url: str
    title: str
    state: ChangeState
    head_branch: str
    base_branch: str
    head_sha: str
    author: str
    mergeable: bool | None
    merge_state: str
    merge_commit_sha: str | None
    draft: bool

    @property
    def ref(self) -> str:
        """`PR #12` / `MR !12`."""
        return f"{NOUN[self.host]} {SIGIL[self.host]}{self.number}"


@dataclass(frozen=True)
class Readiness:
    """What the bot should do with a change request now (githost-api.md §10).

    - `wait`: the host is still computing mergeability (or a pipeline runs); poll with backoff.
    - `ready`: the host would merge it now.
    - `blocked`: host-side requirements are missing; `missing` says which, one line each.
      `needs_update` when the branch is behind its base (GitHub `behind`, GitLab `need_rebase`):
      `update_branch` fixes it but moves the head, so approvals must be collected again.
    - `conflict`: terminal; the promotion has to be recreated from the new base.
    - `closed` / `merged`: terminal, whoever did it.
    """

    kind: ReadinessKind
    missing: tuple[str, ...] = ()
    merge_state: str = ""
    needs_update: bool = False

    @property
    def terminal(self) -> bool:
        return self.kind in ("conflict", "closed", "merged")


@dataclass(frozen=True)
class Check:
    """One CI signal on the head: a GitHub check run or commit status, or a GitLab pipeline.

    `status` is the host's lifecycle/state word as sent, `conclusion` GitHub's check-run conclusion
    (None until completed, and for statuses and pipelines). `outcome` is the common reading.
    """

    name: str
    status: str
    conclusion: str | None
    url: str | None
    kind: Literal["check_run", "status", "pipeline"]

    @property
    def outcome(self) -> CheckOutcome:
        if self.kind == "check_run":
            if self.status != "completed":
                return "pending"
            return _CHECK_RUN_OUTCOME.get(self.conclusion or "", "failure")
        return _STATE_OUTCOME.get(self.status, "pending")


_CHECK_RUN_OUTCOME: dict[str, CheckOutcome] = {
    "success": "success",
    "neutral": "neutral",
    "skipped": "neutral",
    "failure": "failure",
    "cancelled": "failure",
    "timed_out": "failure",
    "action_required": "failure",
}
# Commit-status states (GitHub) and pipeline statuses (GitLab) share one table.
_STATE_OUTCOME: dict[str, CheckOutcome] = {
    "success": "success",
    "failure": "failure",
    "error": "failure",
    "failed": "failure",
    "canceled": "failure",
    "canceling": "pending",
    "skipped": "neutral",
    "manual": "neutral",
}


def overall(checks: tuple[Check, ...]) -> CheckOutcome | None:
    """failure if any failed, pending if any is pending, success otherwise; None with no checks."""
    if not checks:
        return None
    outcomes = {check.outcome for check in checks}
    if "failure" in outcomes:
        return "failure"
    if "pending" in outcomes:
        return "pending"
    return "success" if "success" in outcomes else "neutral"


@dataclass(frozen=True)
class Review:
    """A GitHub review as listed (`state` APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED…)."""

    author: str
    state: str
    commit_id: str | None
    submitted_at: str | None


@dataclass(frozen=True)
class Approvals:
    """Who approved on the host, and (when the host says) how many approvals are still needed.

    GitHub: `approved_by` are the users whose latest review is APPROVED, `changes_requested` those
    whose latest is CHANGES_REQUESTED; `required`/`left` come from the branch rules when known.
    GitLab: from `GET …/approvals` (`approvals_required`, `approvals_left`).
    """

    approved_by: tuple[str, ...]
    required: int | None = None
    left: int | None = None
    changes_requested: tuple[str, ...] = ()


@dataclass(frozen=True)
class MergeResult:
    """`sha` is the merge (or squash) commit when the host said; None when it did not."""

    merged: bool
    sha: str | None
    message: str


@dataclass(frozen=True)
class RepoInfo:
    """Repository settings that decide how the bot may merge (GitHub `repos/get`)."""

    default_branch: str
    merge_methods: frozenset[MergeMethod]
    delete_branch_on_merge: bool
    can_push: bool | None


@dataclass(frozen=True)
class BranchProtection:
    """What the host says about a branch before any push (githost-api.md §4.1) — a hint only.

    The authoritative signal is the refused push itself. `sources` names where the rules came
    from (`classic`, `ruleset`, `protected_branch`). None in a field means "not stated".
    """

    branch: str
    protected: bool
    requires_pull_request: bool | None = None
    required_approvals: int | None = None
    required_checks: tuple[str, ...] = ()
    allowed_merge_methods: frozenset[MergeMethod] | None = None
    code_owner_review: bool = False
    dismiss_stale_reviews: bool = False
    require_last_push_approval: bool = False
    sources: tuple[str, ...] = ()
