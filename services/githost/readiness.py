"""What to do with a change request now: the host's mergeability words → `Readiness` (§5.5, §6.4, §10).

Pure functions: the clients fetch the details (rules, approvals, checks) only when the host says
"blocked", and pass them here to say *what* is missing, one human-readable line each.
"""

from __future__ import annotations

from services.githost.model import Approvals, BranchProtection, ChangeRequest, Check, Readiness

# GitHub `mergeable_state`: no enum in the description; values from Kargo's source (§5.5).
GITHUB_READY = frozenset({"clean", "unstable", "has_hooks"})

# GitLab `detailed_merge_status` (doc "Merge status" list).
GITLAB_WAIT = frozenset(
    {"unchecked", "checking", "preparing", "approvals_syncing", "ci_still_running", "merge_time"}
)
GITLAB_NEEDS_HUMAN: dict[str, str] = {
    "draft_status": "the MR is a draft: mark it ready on GitLab",
    "not_open": "the MR is not open",
    "discussions_not_resolved": "open discussions must be resolved on GitLab",
    "requested_changes": "a reviewer requested changes on GitLab",
    "merge_request_blocked": "the MR is blocked by another merge request",
    "jira_association_missing": "the title or description must mention a Jira issue",
    "title_regex": "the title does not match the project's required pattern",
    "security_policy_pipeline_check": "a security policy pipeline must pass",
    "security_policy_violations": "security policy violations must be resolved",
    "locked_paths": "a path changed by the MR is locked by someone else",
    "locked_lfs_files": "an LFS file changed by the MR is locked by someone else",
    "commits_status": "the commits do not meet the project's rules (sign-off, signatures …)",
}
# The deprecated `merge_status`, for GitLab versions without `detailed_merge_status`.
_LEGACY: dict[str, str] = {
    "can_be_merged": "mergeable",
    "cannot_be_merged": "conflict",
    "unchecked": "unchecked",
    "checking": "checking",
    "cannot_be_merged_recheck": "checking",
}


def _closed(cr: ChangeRequest) -> Readiness | None:
    if cr.state == "merged":
        return Readiness("merged", merge_state=cr.merge_state)
    if cr.state == "closed":
        return Readiness("closed", merge_state=cr.merge_state)
    return None


def github(
    pr: ChangeRequest,
    *,
    protection: BranchProtection | None = None,
    approvals: Approvals | None = None,
    checks: tuple[Check, ...] = (),
) -> Readiness:
    """§5.5: gate on `mergeable_state`, never on our own reading of the checks (only GitHub knows
    which are required); `protection`/`approvals`/`checks` only explain a `blocked`."""
    done = _closed(pr)
    if done is not None:
        return done
    state = pr.merge_state
    if pr.draft or state == "draft":
        return Readiness("blocked", ("the PR is a draft: mark it ready for review on GitHub",), state)
    if pr.mergeable is None or state == "unknown":
        return Readiness("wait", merge_state=state)
    if state == "dirty" or pr.mergeable is False:
        return Readiness("conflict", (f"the branch conflicts with `{pr.base_branch}`",), state)
    if state in GITHUB_READY:
        return Readiness("ready", merge_state=state)
    if state == "behind":
        line = f"the branch is behind `{pr.base_branch}` and must be updated (approvals are asked again)"
        return Readiness("blocked", (line,), state, needs_update=True)
    if state == "blocked":
        missing = _github_missing(protection, approvals, checks)
        return Readiness(
            "blocked",
            missing or ("GitHub's rules are not met yet (reviews, checks or conversations)",),
            state,
        )
    return Readiness("blocked", (f"GitHub reports the PR as `{state}`",), state)


def _github_missing(
    protection: BranchProtection | None, approvals: Approvals | None, checks: tuple[Check, ...]
) -> tuple[str, ...]:
    missing: list[str] = []
    approved = len(approvals.approved_by) if approvals else 0
    required = protection.required_approvals if protection else None
    if required and approved < required:
        missing.append(f"{required - approved} more approving review(s) on GitHub ({approved}/{required})")
    elif required is None and protection and protection.protected and not approved:
        # Classic protection does not show its review count without admin rights (§4.1).
        missing.append("an approving review on GitHub, if the branch rules require one")
    if protection and protection.code_owner_review:
        missing.append("an approving review from a code owner (if the change touches owned files)")
    if approvals and approvals.changes_requested:
        missing.append("changes requested by " + ", ".join(f"@{u}" for u in approvals.changes_requested))
    for name in protection.required_checks if protection else ():
        found = [check for check in checks if check.name == name]
        outcomes = {check.outcome for check in found}
        if not found:
            missing.append(f"required check `{name}` has not reported yet")
        elif "failure" in outcomes:
            missing.append(f"required check `{name}` failed")
        elif "pending" in outcomes:
            missing.append(f"required check `{name}` is still running")
    return tuple(missing)


def gitlab(
    mr: ChangeRequest, *, approvals: Approvals | None = None, pipeline: Check | None = None
) -> Readiness:
    """§6.4: merge only on `mergeable` (and not a draft), as Kargo does."""
    done = _closed(mr)
    if done is not None:
        return done
    status = mr.merge_state
    if status in _LEGACY and status not in GITLAB_WAIT:
        status = _LEGACY[status]  # only a legacy word can land here (can_be_merged …)
    if mr.draft and status != "draft_status":
        return Readiness("blocked", (GITLAB_NEEDS_HUMAN["draft_status"],), mr.merge_state)
    if status in GITLAB_WAIT or not status:
        return Readiness("wait", merge_state=mr.merge_state)
    if status == "mergeable":
        return Readiness("ready", merge_state=mr.merge_state)
    if status == "conflict":
        return Readiness("conflict", (f"the branch conflicts with `{mr.base_branch}`",), mr.merge_state)
    if status == "need_rebase":
        line = f"the branch must be rebased on `{mr.base_branch}` (approvals are asked again)"
        return Readiness("blocked", (line,), mr.merge_state, needs_update=True)
    if status == "not_approved":
        left = approvals.left if approvals else None
        line = f"{left} more approval(s) on GitLab" if left else "approvals on GitLab"
        if approvals and approvals.required:
            line += f" ({len(approvals.approved_by)}/{approvals.required})"
        return Readiness("blocked", (line,), mr.merge_state)
    if status in ("ci_must_pass", "status_checks_must_pass"):
        what = "the pipeline" if status == "ci_must_pass" else "the external status checks"
        state = f" (now `{pipeline.status}`)" if pipeline and status == "ci_must_pass" else ""
        return Readiness("blocked", (f"{what} must pass{state}",), mr.merge_state)
    if status.startswith("security_policy"):
        return Readiness(
            "blocked", (GITLAB_NEEDS_HUMAN.get(status, "a security policy must be satisfied"),), status
        )
    line = GITLAB_NEEDS_HUMAN.get(status, f"GitLab reports the MR as `{status}`")
    return Readiness("blocked", (line,), mr.merge_state)
