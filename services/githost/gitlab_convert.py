"""GitLab v4 JSON (the doc examples in contracts/gitlab/examples) → the host-neutral records."""

from __future__ import annotations

from services.githost.model import Approvals, BranchProtection, ChangeRequest, ChangeState, Check
from services.githost.raw import flag, num, obj, objs, opt_text, text

# `detailed_merge_status` values while GitLab is still working it out (§6.4), and the legacy
# `merge_status` ones, for which mergeability is not known yet.
COMPUTING = frozenset({"unchecked", "checking", "preparing", "approvals_syncing", "cannot_be_merged_recheck"})
_STATES: dict[str, ChangeState] = {"opened": "open", "locked": "open", "closed": "closed", "merged": "merged"}
NO_ACCESS = 0  # access level "No access" (protected_branches.md)


def merge_request(data: object) -> ChangeRequest:
    """A single MR (GET, create, merge, update) or a list item.

    `locked` is short-lived and counts as open (as Kargo does). `merge_status` (deprecated since
    15.6) is only read when `detailed_merge_status` is absent.
    """
    mr = obj(data)
    status = text(mr, "detailed_merge_status") or text(mr, "merge_status")
    if status in COMPUTING or not status:
        mergeable: bool | None = None
    else:
        conflicted = status in ("conflict", "cannot_be_merged") or flag(mr, "has_conflicts") is True
        mergeable = not conflicted
    return ChangeRequest(
        host="gitlab",
        number=num(mr, "iid") or 0,
        url=text(mr, "web_url"),
        title=text(mr, "title"),
        state=_STATES.get(text(mr, "state"), "open"),
        head_branch=text(mr, "source_branch"),
        base_branch=text(mr, "target_branch"),
        head_sha=text(mr, "sha") or text(obj(mr.get("diff_refs")), "head_sha"),
        author=text(obj(mr.get("author")), "username"),
        mergeable=mergeable,
        merge_state=status,
        merge_commit_sha=opt_text(mr, "merge_commit_sha") or opt_text(mr, "squash_commit_sha"),
        draft=bool(flag(mr, "draft") or flag(mr, "work_in_progress")),
    )


def pipeline(data: object) -> Check | None:
    """`head_pipeline` of an MR, or one item of `…/pipelines` (id, sha, ref, status only)."""
    item = obj(data)
    if not item:
        return None
    number = num(item, "id")
    return Check(
        name=f"pipeline #{number}" if number is not None else "pipeline",
        status=text(item, "status"),
        conclusion=None,
        url=opt_text(item, "web_url"),
        kind="pipeline",
    )


def head_pipeline(data: object) -> Check | None:
    mr = obj(data)
    return pipeline(mr.get("head_pipeline")) or pipeline(mr.get("pipeline"))


def approvals(data: object) -> Approvals:
    """`GET …/approvals` or the `POST …/approve` answer (same shape)."""
    state = obj(data)
    users = tuple(text(obj(entry.get("user")), "username") for entry in objs(state.get("approved_by")))
    return Approvals(
        approved_by=users, required=num(state, "approvals_required"), left=num(state, "approvals_left")
    )


def protected_branch(branch: str, data: object) -> BranchProtection:
    """A protected branch (exact or wildcard match of `branch`).

    When no role may push (`push_access_levels` all "No access"), every change must go through an
    MR; otherwise it depends on who pushes, so `requires_pull_request` stays unknown.
    """
    rule = obj(data)
    push_levels = [num(level, "access_level") for level in objs(rule.get("push_access_levels"))]
    nobody_pushes = bool(push_levels) and all(level == NO_ACCESS for level in push_levels)
    return BranchProtection(
        branch=branch,
        protected=True,
        requires_pull_request=True if nobody_pushes else None,
        code_owner_review=flag(rule, "code_owner_approval_required") or False,
        sources=("protected_branch",),
    )
