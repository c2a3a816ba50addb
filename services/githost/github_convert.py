"""GitHub JSON (the trimmed 2022-11-28 description) → the host-neutral records."""

from __future__ import annotations

from services.githost.model import (
    Approvals,
    BranchProtection,
    ChangeRequest,
    ChangeState,
    Check,
    MergeMethod,
    RepoInfo,
    Review,
)
from services.githost.raw import flag, num, obj, objs, opt_text, text, texts

METHODS: tuple[MergeMethod, ...] = ("merge", "squash", "rebase")
_REPO_FLAGS: dict[MergeMethod, str] = {
    "merge": "allow_merge_commit",
    "squash": "allow_squash_merge",
    "rebase": "allow_rebase_merge",
}


def pull_request(data: object) -> ChangeRequest:
    """A `pull-request` (pulls/get, create, update) or a `pull-request-simple` (pulls/list).

    The simple form has no `merged`/`mergeable`: it reads as "not merged unless merged_at",
    mergeability unknown.
    """
    pr = obj(data)
    head, base = obj(pr.get("head")), obj(pr.get("base"))
    merged = flag(pr, "merged")
    if merged is None:
        merged = pr.get("merged_at") is not None
    state: ChangeState = "merged" if merged else ("closed" if text(pr, "state") == "closed" else "open")
    return ChangeRequest(
        host="github",
        number=num(pr, "number") or 0,
        url=text(pr, "html_url"),
        title=text(pr, "title"),
        state=state,
        head_branch=text(head, "ref"),
        base_branch=text(base, "ref"),
        head_sha=text(head, "sha"),
        author=text(obj(pr.get("user")), "login"),
        mergeable=flag(pr, "mergeable"),
        merge_state=text(pr, "mergeable_state", "unknown"),
        merge_commit_sha=opt_text(pr, "merge_commit_sha"),
        draft=flag(pr, "draft") or False,
    )


def reviews(data: list[object]) -> tuple[Review, ...]:
    return tuple(
        Review(
            author=text(obj(review.get("user")), "login"),
            state=text(review, "state"),
            commit_id=opt_text(review, "commit_id"),
            submitted_at=opt_text(review, "submitted_at"),
        )
        for review in objs(data)
    )


def approvals(listed: tuple[Review, ...], *, required: int | None = None) -> Approvals:
    """The latest deciding review per user counts (reviews come in chronological order).

    A COMMENTED review changes nothing; DISMISSED withdraws an approval (a push with
    `dismiss_stale_reviews_on_push`).
    """
    latest: dict[str, str] = {}
    for review in listed:
        if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review.author] = review.state
    approved = tuple(user for user, state in latest.items() if state == "APPROVED")
    changes = tuple(user for user, state in latest.items() if state == "CHANGES_REQUESTED")
    left = None if required is None else max(0, required - len(approved))
    return Approvals(approved_by=approved, required=required, left=left, changes_requested=changes)


def check_runs(data: list[object]) -> tuple[Check, ...]:
    return tuple(
        Check(
            name=text(run, "name"),
            status=text(run, "status"),
            conclusion=opt_text(run, "conclusion"),
            url=opt_text(run, "html_url") or opt_text(run, "details_url"),
            kind="check_run",
        )
        for run in objs(data)
    )


def statuses(data: object) -> tuple[Check, ...]:
    """The contexts of a combined status (its own `state` is ignored: with no statuses at all it
    says `pending`, which would hold back a repository that only uses check runs)."""
    return tuple(
        Check(
            name=text(status, "context"),
            status=text(status, "state"),
            conclusion=None,
            url=opt_text(status, "target_url"),
            kind="status",
        )
        for status in objs(obj(data).get("statuses"))
    )


def repo_info(data: object) -> RepoInfo:
    repo = obj(data)
    # Fields the token may not see (merge settings need contents:write) read as allowed; the
    # merge call itself says 405 "… not allowed …" if not.
    methods = frozenset(m for m in METHODS if flag(repo, _REPO_FLAGS[m]) is not False)
    return RepoInfo(
        default_branch=text(repo, "default_branch"),
        merge_methods=methods,
        delete_branch_on_merge=flag(repo, "delete_branch_on_merge") or False,
        can_push=flag(obj(repo.get("permissions")), "push"),
    )


def protection(branch_name: str, branch: object, rules: list[object]) -> BranchProtection:
    """Classic protection (`repos/get-branch`) and rulesets (`repos/get-branch-rules`) together.

    Rulesets are separate from the `protected` flag (githost-api.md §4.1), so any `pull_request`
    or `required_status_checks` rule makes the branch count as protected here.
    """
    data = obj(branch)
    classic = flag(data, "protected") or False
    guard = obj(data.get("protection"))
    checks_cfg = obj(guard.get("required_status_checks"))
    checks = list(texts(checks_cfg.get("contexts")))
    checks += [text(c, "context") for c in objs(checks_cfg.get("checks")) if text(c, "context") not in checks]
    reviews_cfg = obj(guard.get("required_pull_request_reviews"))
    approvals_needed = num(reviews_cfg, "required_approving_review_count")
    if approvals_needed is None:
        approvals_needed = num(data, "required_approving_review_count")
    requires_pr = True if reviews_cfg else None
    code_owner = flag(reviews_cfg, "require_code_owner_reviews") or False
    dismiss = flag(reviews_cfg, "dismiss_stale_reviews") or False
    last_push = flag(reviews_cfg, "require_last_push_approval") or False
    allowed: frozenset[MergeMethod] | None = None
    sources = ["classic"] if classic else []
    for rule in objs(rules):
        kind, params = text(rule, "type"), obj(rule.get("parameters"))
        if kind == "pull_request":
            requires_pr = True
            count = num(params, "required_approving_review_count") or 0
            approvals_needed = max(approvals_needed or 0, count)
            code_owner = code_owner or bool(flag(params, "require_code_owner_review"))
            dismiss = dismiss or bool(flag(params, "dismiss_stale_reviews_on_push"))
            last_push = last_push or bool(flag(params, "require_last_push_approval"))
            methods = frozenset(m for m in METHODS if m in texts(params.get("allowed_merge_methods")))
            if methods:
                allowed = methods if allowed is None else allowed & methods
        elif kind == "required_status_checks":
            for check in objs(params.get("required_status_checks")):
                if (name := text(check, "context")) and name not in checks:
                    checks.append(name)
        else:
            continue
        if "ruleset" not in sources:
            sources.append("ruleset")
    return BranchProtection(
        branch=branch_name,
        protected=classic or "ruleset" in sources,
        requires_pull_request=requires_pr,
        required_approvals=approvals_needed,
        required_checks=tuple(checks),
        allowed_merge_methods=allowed,
        code_owner_review=code_owner,
        dismiss_stale_reviews=dismiss,
        require_last_push_approval=last_push,
        sources=tuple(sources),
    )
