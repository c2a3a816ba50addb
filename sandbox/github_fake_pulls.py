"""The fake GitHub's pull requests: list, create, get, update, merge, reviews, requested reviewers,
update-branch (githost-api.md §5, §7, §8). Merges happen in the bare repository, as GitHub's do.

Texts are GitHub's where the contract or public reports show them: 422 `A pull request already
exists for <owner>:<branch>.`, 422 `Can not approve your own pull request`, merge 405 `Pull Request
is not mergeable` / `… are not allowed on this repository.` / `Base branch was modified. Review and
try the merge again.`, 409 `Head branch was modified. Review and try the merge again.`
"""

from __future__ import annotations

from typing import Any

from sandbox import github_fake_objects as objects
from sandbox.github_fake_call import ApiError, Call, body_of, not_found, number_of
from sandbox.github_fake_git import Person
from sandbox.github_fake_http import Reply, paginate
from sandbox.github_fake_objects import Json, validation
from sandbox.github_fake_state import MERGE_METHODS, Pull, Review

_PULLS_DOC = "https://docs.github.com/rest/pulls/pulls"
_REVIEWS_DOC = "https://docs.github.com/rest/pulls/reviews"
_WEB_FLOW = Person("GitHub", "noreply@github.com")  # the committer of merges made on github.com
_NOT_ALLOWED = {
    "merge": "Merge commits are not allowed on this repository.",
    "squash": "Squash merges are not allowed on this repository.",
    "rebase": "Rebase merges are not allowed on this repository.",
}


def route(call: Call) -> Reply:
    """`rest` is what follows /repos/{owner}/{repo}: ["pulls", …]."""
    method, rest = call.request.method, call.rest
    if len(rest) == 1:
        return {"GET": _list, "POST": _create}.get(method, _no_method)(call)
    pull = _pull(call, number_of(rest[1]))
    tail = rest[2:]
    if not tail:
        return {"GET": _get, "PATCH": _update}.get(method, _no_method)(call, pull)
    handlers: dict[tuple[str, str], Any] = {
        ("merge", "PUT"): _merge,
        ("reviews", "GET"): _reviews,
        ("reviews", "POST"): _review,
        ("update-branch", "PUT"): _update_branch,
        ("requested_reviewers", "POST"): _request_reviewers,
        ("requested_reviewers", "DELETE"): _unrequest_reviewers,
    }
    handler = handlers.get((tail[0], method)) if len(tail) == 1 else None
    if handler is None:
        raise not_found()
    result: Reply = handler(call, pull)
    return result


def _no_method(*_: Any) -> Reply:
    raise not_found()


def _pull(call: Call, number: int) -> Pull:
    pull = call.repo.pulls.get(number)
    if pull is None:
        raise not_found()
    call.world.refresh(call.repo, pull)
    return pull


def _full(call: Call, pull: Pull, *, status: int = 200, fresh: bool = False) -> Reply:
    mergeability = (None, "unknown") if fresh else call.world.read_mergeability(call.repo, pull)
    body = objects.pull_request(call.links, call.world, call.repo, pull, mergeability)
    headers = {"location": body["url"]} if status == 201 else {}
    return Reply.json(status, body, headers)


def _branch_of(call: Call, head: str) -> str:
    """`owner:branch` or `branch` -> branch (this fake has no forks: another owner is invalid)."""
    owner, _, branch = head.rpartition(":")
    if owner and owner.lower() != call.repo.owner.lower():
        _invalid("head")
    return branch


def _invalid(field: str) -> None:
    raise ApiError(
        422, validation([{"resource": "PullRequest", "field": field, "code": "invalid"}], _PULLS_DOC)
    )


def _custom(message: str, doc: str = _PULLS_DOC) -> ApiError:
    return ApiError(422, validation([{"resource": "PullRequest", "code": "custom", "message": message}], doc))


# -- pulls ----------------------------------------------------------------------------------------------


def _list(call: Call) -> Reply:
    request, repo = call.request, call.repo
    state = request.first("state") or "open"
    if state not in ("open", "closed", "all"):
        raise ApiError(
            422, validation([{"resource": "Issue", "field": "state", "code": "invalid"}], _PULLS_DOC)
        )
    head = request.first("head")
    head_owner, _, head_branch = head.rpartition(":") if head else ("", "", "")
    base = request.first("base")
    found = []
    for pull in repo.pulls.values():
        call.world.refresh(repo, pull)
        if state != "all" and pull.state != state:
            continue
        if head and (
            head_branch != pull.head_ref or (head_owner and head_owner.lower() != repo.owner.lower())
        ):
            continue
        if base and base != pull.base_ref:
            continue
        found.append(pull)
    sort = request.first("sort") or "created"
    newest_first = (request.first("direction") or ("desc" if sort == "created" else "asc")) == "desc"
    found.sort(
        key=lambda p: (p.updated_at if sort == "updated" else p.created_at, p.number), reverse=newest_first
    )
    page, link = paginate(found, request, call.links.web, default=30)
    items = [objects.pull_request(call.links, call.world, repo, p) for p in page]
    return Reply.json(200, items, link)


_CREATE = {
    "title": (str, ()), "head": (str, ()), "head_repo": (str, ()), "base": (str, ()), "body": (str, ()),
    "maintainer_can_modify": (bool, ()), "draft": (bool, ()), "issue": (int, ()),
}  # fmt: skip


def _create(call: Call) -> Reply:
    call.need("write")
    data = body_of(call.request, _CREATE, ("head", "base"))
    repo, world = call.repo, call.world
    if not data.get("title"):
        raise ApiError(
            422, validation([{"resource": "PullRequest", "field": "title", "code": "missing_field"}])
        )
    branch = _branch_of(call, data["head"])
    head, base = repo.bare.branch_sha(branch), repo.bare.branch_sha(data["base"])
    if head is None:
        _invalid("head")
    if base is None:
        _invalid("base")
    assert head is not None
    assert base is not None
    for other in repo.pulls.values():
        world.refresh(repo, other)
        if other.state == "open" and other.head_ref == branch and other.base_ref == data["base"]:
            raise _custom(f"A pull request already exists for {repo.owner}:{branch}.")
    if not repo.bare.commits_between(base, head):
        raise _custom(f"No commits between {data['base']} and {branch}")
    now = world.clock()
    number = max([0, *repo.pulls]) + 1
    pull = Pull(
        number=number, id=world.next_id(), title=data["title"], body=data.get("body"), author=call.user.login,
        head_ref=branch, base_ref=data["base"], head_sha=head, base_sha=base, created_at=now,
        draft=bool(data.get("draft", False)),
        maintainer_can_modify=bool(data.get("maintainer_can_modify", False)),
        last_pusher=call.user.login,
    )  # fmt: skip
    repo.pulls[number] = pull
    repo.bare.update_ref(f"refs/pull/{number}/head", head)
    world.touch(pull)
    return _full(call, pull, status=201, fresh=True)


def _get(call: Call, pull: Pull) -> Reply:
    return _full(call, pull)


_UPDATE = {
    "title": (str, ()), "body": (str, ()), "state": (str, ("open", "closed")), "base": (str, ()),
    "maintainer_can_modify": (bool, ()),
}  # fmt: skip


def _update(call: Call, pull: Pull) -> Reply:
    call.need("write")
    data = body_of(call.request, _UPDATE)
    now = call.world.clock()
    if "base" in data and data["base"] != pull.base_ref:
        base = call.repo.bare.branch_sha(data["base"])
        if base is None:
            _invalid("base")
        assert base is not None
        pull.base_ref, pull.base_sha = data["base"], base
        call.world.touch(pull)
    for name in ("title", "body", "maintainer_can_modify"):
        if name in data:
            setattr(pull, name, data[name])
    if data.get("state") == "closed" and pull.state == "open":
        pull.state, pull.closed_at = "closed", now
    elif data.get("state") == "open" and pull.state == "closed":
        if pull.merged or call.repo.bare.branch_sha(pull.head_ref) is None:
            raise _custom("state cannot be changed. The pull request cannot be reopened.")
        pull.state, pull.closed_at = "open", None
        call.world.touch(pull)
        call.world.refresh(call.repo, pull)
    pull.updated_at = now
    return _full(call, pull)


# -- merging ----------------------------------------------------------------------------------------------

_MERGE = {
    "commit_title": (str, ()), "commit_message": (str, ()), "sha": (str, ()),
    "merge_method": (str, MERGE_METHODS),
}  # fmt: skip


def _merge(call: Call, pull: Pull) -> Reply:
    call.need("write")
    data = body_of(call.request, _MERGE, nullable=True)
    repo, world = call.repo, call.world
    method = data.get("merge_method", "merge")
    if pull.state != "open":
        raise ApiError(405, {"message": "Pull Request is not mergeable", "documentation_url": _PULLS_DOC})
    if "sha" in data and data["sha"] != pull.head_sha:
        message = "Head branch was modified. Review and try the merge again."
        raise ApiError(409, {"message": message, "documentation_url": _PULLS_DOC})
    if not repo.method_allowed(method, pull.base_ref):
        raise ApiError(405, {"message": _NOT_ALLOWED[method], "documentation_url": _PULLS_DOC})
    mergeable, state = world.mergeability(repo, pull)  # GitHub decides on the spot, not from a cached read
    pull.settled = (mergeable, state)
    if not mergeable or state in ("dirty", "blocked", "behind", "draft"):
        raise ApiError(405, {"message": "Pull Request is not mergeable", "documentation_url": _PULLS_DOC})
    sha = _merged_sha(call, pull, method, data)
    if sha is None or not repo.bare.update_ref(f"refs/heads/{pull.base_ref}", sha, pull.base_sha):
        message = "Base branch was modified. Review and try the merge again."
        raise ApiError(405, {"message": message, "documentation_url": _PULLS_DOC})
    now = world.clock()
    pull.state, pull.closed_at, pull.merged_at, pull.updated_at = "closed", now, now, now
    pull.merged_by, pull.merge_commit_sha = call.user.login, sha
    if repo.delete_branch_on_merge:
        repo.bare.delete_ref(f"refs/heads/{pull.head_ref}")
    return Reply.json(200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"})


def _merged_sha(call: Call, pull: Pull, method: str, data: Json) -> str | None:
    bare, user = call.repo.bare, call.user
    if method == "rebase":
        return bare.rebase(pull.base_sha, pull.head_sha, _WEB_FLOW)
    if method == "squash":
        title = data.get("commit_title") or f"{pull.title} (#{pull.number})"
        subjects = [bare.commit(c).message for c in bare.commits_between(pull.base_sha, pull.head_sha)]
        detail = data.get("commit_message", "\n\n".join(f"* {s}" for s in subjects))
        author = (call.world.user_by_login(pull.author) or user).person
        return bare.squash_commit(
            pull.base_sha, pull.head_sha, f"{title}\n\n{detail}".strip(), author, _WEB_FLOW
        )
    title = (
        data.get("commit_title")
        or f"Merge pull request #{pull.number} from {call.repo.owner}/{pull.head_ref}"
    )
    detail = data.get("commit_message", pull.title)
    return bare.merge_commit(
        pull.base_sha, pull.head_sha, f"{title}\n\n{detail}".strip(), user.person, _WEB_FLOW
    )


def _update_branch(call: Call, pull: Pull) -> Reply:
    call.need("write")
    data = body_of(call.request, {"expected_head_sha": (str, ())}, nullable=True)
    bare = call.repo.bare
    if data.get("expected_head_sha", pull.head_sha) != pull.head_sha:
        raise ApiError(422, validation([], message="expected head sha didn’t match current head ref."))
    if bare.is_ancestor(pull.base_sha, pull.head_sha):
        raise ApiError(422, validation([], message="There are no new commits on the base branch."))
    message = f"Merge branch '{pull.base_ref}' into {pull.head_ref}"
    sha = bare.merge_commit(pull.head_sha, pull.base_sha, message, call.user.person, _WEB_FLOW)
    if sha is None:
        raise ApiError(422, validation([], message="merge conflict between base and head"))
    if not bare.update_ref(f"refs/heads/{pull.head_ref}", sha, pull.head_sha):
        raise ApiError(422, validation([], message="expected head sha didn’t match current head ref."))
    pull.last_pusher = call.user.login
    call.world.refresh(call.repo, pull)  # a new head: approvals may be dismissed
    html = f"{call.links.web}/{call.repo.full_name}/pull/{pull.number}"
    return Reply.json(202, {"message": "Updating pull request branch.", "url": html})


# -- reviews ------------------------------------------------------------------------------------------------


def _reviews(call: Call, pull: Pull) -> Reply:
    page, link = paginate(pull.reviews, call.request, call.links.web, default=30)
    items = [objects.review(call.links, call.world, call.repo, pull, r) for r in page]
    return Reply.json(200, items, link)


_REVIEW = {
    "commit_id": (str, ()), "body": (str, ()), "event": (str, ("APPROVE", "REQUEST_CHANGES", "COMMENT")),
    "comments": (list, ()),
}  # fmt: skip
_STATES = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}


def _unprocessable(message: str) -> ApiError:
    # pulls/create-review answers `validation-error-simple`: errors are strings.
    return ApiError(422, {"message": "Unprocessable Entity", "errors": [message],
                          "documentation_url": f"{_REVIEWS_DOC}#create-a-review-for-a-pull-request",
                          "status": "422"})  # fmt: skip


def _review(call: Call, pull: Pull) -> Reply:
    data = body_of(call.request, _REVIEW, nullable=True)
    event, login = data.get("event"), call.user.login
    if login == pull.author and event == "APPROVE":
        raise _unprocessable("Can not approve your own pull request")
    if login == pull.author and event == "REQUEST_CHANGES":
        raise _unprocessable("Can not request changes on your own pull request")
    if event in ("REQUEST_CHANGES", "COMMENT") and not data.get("body"):
        raise _unprocessable(f"Review body is required for {event}")  # (wording unverified)
    commit_id = data.get("commit_id", pull.head_sha)
    if call.repo.bare.sha(commit_id) is None:
        raise _unprocessable("Commit could not be found")  # (wording unverified)
    if event is None and any(r.user == login and r.state == "PENDING" for r in pull.reviews):
        raise _unprocessable("User can only have one pending review per pull request")
    now = call.world.clock()
    state = _STATES.get(str(event), "PENDING")
    item = Review(
        call.world.next_id(), login, data.get("body", ""), state, commit_id, None if event is None else now
    )
    pull.reviews.append(item)
    if state in ("APPROVED", "CHANGES_REQUESTED") and login in pull.requested_reviewers:
        pull.requested_reviewers.remove(login)
    if state != "PENDING":
        call.world.touch(pull)
    return Reply.json(200, objects.review(call.links, call.world, call.repo, pull, item))


def _reviewers(call: Call, pull: Pull) -> list[str]:
    data = body_of(call.request, {"reviewers": (list, ()), "team_reviewers": (list, ())})
    logins = [str(x) for x in data.get("reviewers", [])]
    if pull.author in logins:
        raise ApiError(422, validation([], message="Review cannot be requested from pull request author."))
    for login in logins:
        if call.world.user_by_login(login) is None:
            message = (
                "Reviews may only be requested from collaborators. One or more of the users or teams you "
                f"specified is not a collaborator of the {call.repo.full_name} repository."
            )
            raise ApiError(422, validation([], message=message))
    return logins


def _request_reviewers(call: Call, pull: Pull) -> Reply:
    call.need("write")
    for login in _reviewers(call, pull):
        if login not in pull.requested_reviewers:
            pull.requested_reviewers.append(login)
    return Reply.json(201, objects.pull_request(call.links, call.world, call.repo, pull))


def _unrequest_reviewers(call: Call, pull: Pull) -> Reply:
    call.need("write")
    for login in _reviewers(call, pull):
        if login in pull.requested_reviewers:
            pull.requested_reviewers.remove(login)
    return Reply.json(200, objects.pull_request(call.links, call.world, call.repo, pull))
