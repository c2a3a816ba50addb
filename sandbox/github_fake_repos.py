"""The fake GitHub's repository calls: the repository, branches and their rules, check runs and
statuses of a commit, git refs, file contents, and a pull request's labels and comments (issues).

A ref update through the API on a protected branch is refused with 422 `Protected branch update
failed for <ref>.` / `Repository rule violations found` (GitHub's status code and wording for this
path are unverified, githost-api.md §4.2 "API-only commits").
"""

from __future__ import annotations

import base64
import re
from typing import Any

from sandbox import github_fake_objects as objects
from sandbox.github_fake_call import ApiError, Call, body_of, not_found, number_of
from sandbox.github_fake_git import ZERO
from sandbox.github_fake_http import Reply, paginate
from sandbox.github_fake_objects import error, validation
from sandbox.github_fake_state import Comment, Label

_REFS_DOC = "https://docs.github.com/rest/git/refs"
_SHA = re.compile(r"^[0-9a-f]{40}$")


def route(call: Call) -> Reply:
    """`rest` is what follows /repos/{owner}/{repo}."""
    rest, method = call.rest, call.request.method
    if not rest:
        if method != "GET":
            raise not_found()
        return Reply.json(200, objects.repository(call.links, call.world, call.repo, call.user, full=True))
    head = rest[0]
    if head == "branches" and len(rest) > 1 and method == "GET":
        return _branch(call, "/".join(rest[1:]))
    if rest[:2] == ["rules", "branches"] and len(rest) > 2 and method == "GET":
        return Reply.json(200, objects.branch_rules(call.repo, "/".join(rest[2:])))
    if head == "commits" and len(rest) > 2 and method == "GET":
        return _commit_checks(call, "/".join(rest[1:-1]), rest[-1])
    if head == "git":
        return _refs(call)
    if head == "contents" and len(rest) > 1:
        return _contents(call, "/".join(rest[1:]))
    if head == "issues" and len(rest) == 3 and method == "POST":
        return _issue(call, number_of(rest[1]), rest[2])
    raise not_found()


def _branch(call: Call, name: str) -> Reply:
    sha = call.repo.bare.branch_sha(name)
    if sha is None:
        raise ApiError(
            404, error("Branch not found", 404, "https://docs.github.com/rest/branches/branches#get-a-branch")
        )
    return Reply.json(200, objects.branch(call.links, call.repo, name, call.repo.bare.commit(sha)))


def _commit_checks(call: Call, ref: str, what: str) -> Reply:
    sha = call.repo.bare.sha(ref)
    if sha is None:
        raise ApiError(422 if what == "check-runs" else 404, error(f"No commit found for SHA: {ref}", 422))
    if what == "check-runs":
        runs = sorted(call.repo.checks.get(sha, []), key=lambda r: r.id, reverse=True)
        if name := call.request.first("check_name"):
            runs = [r for r in runs if r.name == name]
        if call.request.first("filter", "latest") == "latest":  # the newest run of each name
            runs = [r for i, r in enumerate(runs) if all(o.name != r.name for o in runs[:i])]
        page, link = paginate(runs, call.request, call.links.web, default=30)
        body = {
            "total_count": len(runs),
            "check_runs": [objects.check_run(call.links, call.repo, r) for r in page],
        }
        return Reply.json(200, body, link)
    if what == "status":
        return Reply.json(200, objects.combined_status(call.links, call.world, call.repo, sha))
    raise not_found()


# -- git refs -------------------------------------------------------------------------------------------


def _protected(call: Call, ref: str) -> None:
    branch = ref.removeprefix("refs/heads/")
    rules = call.repo.rules_for(branch) if ref.startswith("refs/heads/") else None
    if rules is None:
        return
    if rules.kind == "ruleset":
        message = "Repository rule violations found\n\nChanges must be made through a pull request.\n\n"
    else:
        message = f"Protected branch update failed for {ref}."
    raise ApiError(422, validation([], _REFS_DOC, message))


def _refs(call: Call) -> Reply:
    rest, method, bare = call.rest, call.request.method, call.repo.bare
    if len(rest) > 2 and rest[1] == "ref" and method == "GET":
        ref = "refs/" + "/".join(rest[2:])
        sha = bare.refs(ref).get(ref)
        if sha is None:
            raise ApiError(404, error("Not Found", 404, _REFS_DOC))
        return Reply.json(200, objects.git_ref(call.links, call.repo, ref, sha))
    if rest[1:] == ["refs"] and method == "POST":
        call.need("write")
        data = body_of(call.request, {"ref": (str, ()), "sha": (str, ())}, ("ref", "sha"))
        ref, sha = data["ref"], data["sha"]
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, validation([], _REFS_DOC, "Reference name is invalid"))
        if not _SHA.match(sha) or bare.sha(sha) is None:
            raise ApiError(422, validation([], _REFS_DOC, "Object does not exist"))
        _protected(call, ref)
        if not bare.update_ref(ref, sha, ZERO):
            raise ApiError(422, validation([], _REFS_DOC, "Reference already exists"))
        body = objects.git_ref(call.links, call.repo, ref, sha)
        return Reply.json(201, body, {"location": body["url"]})
    if len(rest) > 2 and rest[1] == "refs" and method in ("PATCH", "DELETE"):
        call.need("write")
        ref = "refs/" + "/".join(rest[2:])
        old = bare.refs(ref).get(ref)
        if old is None:
            raise ApiError(422, validation([], _REFS_DOC, "Reference does not exist"))
        _protected(call, ref)
        if method == "DELETE":
            bare.delete_ref(ref, old)
            return Reply(204, b"", headers={})
        data = body_of(call.request, {"sha": (str, ()), "force": (bool, ())}, ("sha",))
        if bare.sha(data["sha"]) is None:
            raise ApiError(422, validation([], _REFS_DOC, "Object does not exist"))
        if not data.get("force") and not bare.is_ancestor(old, data["sha"]):
            raise ApiError(422, validation([], _REFS_DOC, "Update is not a fast forward"))
        bare.update_ref(ref, data["sha"], old)
        return Reply.json(200, objects.git_ref(call.links, call.repo, ref, data["sha"]))
    raise not_found()


# -- contents (the API-only way to commit one file) ------------------------------------------------------

_PUT_CONTENT = {
    "message": (str, ()), "content": (str, ()), "sha": (str, ()), "branch": (str, ()),
    "committer": (dict, ()),
    "author": (dict, ()),
}  # fmt: skip


def _contents(call: Call, path: str) -> Reply:
    repo, bare = call.repo, call.repo.bare
    if call.request.method == "GET":
        ref = call.request.first("ref") or repo.default_branch
        data, blob = bare.read(ref, path), bare.blob_sha(ref, path)
        if data is None or blob is None:
            raise ApiError(404, error("Not Found", 404))
        return Reply.json(200, _file(call, path, blob, data))
    if call.request.method != "PUT":
        raise not_found()
    call.need("write")
    body = body_of(call.request, _PUT_CONTENT, ("message", "content"))
    branch = body.get("branch", repo.default_branch)
    parent = bare.branch_sha(branch)
    if parent is None:
        raise ApiError(404, error(f"Branch {branch} not found", 404))
    current = bare.blob_sha(parent, path)
    if current is not None and body.get("sha") != current:
        message = (
            f"{path} does not match {body.get('sha', '')}" if "sha" in body else '"sha" wasn\'t supplied.'
        )
        raise ApiError(409 if "sha" in body else 422, error(message, 409 if "sha" in body else 422))
    try:
        content = base64.b64decode(body["content"], validate=True)
    except ValueError:
        raise ApiError(422, validation([], message="content is not valid Base64")) from None
    if repo.rules_for(branch) is not None:
        raise ApiError(
            409,
            error(
                "Repository rule violations found\n\nChanges must be made through a pull request.\n\n", 409
            ),
        )
    sha = bare.write_file(parent, path, content, body["message"], call.user.person, call.user.person)
    if not bare.update_ref(f"refs/heads/{branch}", sha, parent):
        raise ApiError(409, error(f"{path} does not match {current or ''}", 409))
    info, blob = bare.commit(sha), bare.blob_sha(sha, path) or ""
    r = call.links.repo(repo)
    result = {
        "content": _file(call, path, blob, content),
        "commit": {"sha": sha, "node_id": objects.node_id("Commit", int(sha[:7], 16)),
        "url": f"{r}/git/commits/{sha}",
                   "html_url": f"{call.links.web}/{repo.full_name}/commit/{sha}",
                   "author": {"name": info.author.name, "email": info.author.email, "date": info.author_date},
                   "committer": {"name": info.committer.name, "email": info.committer.email,
                   "date": info.committer_date},
                   "message": info.message, "tree": {"sha": info.tree, "url": f"{r}/git/trees/{info.tree}"},
                   "parents": [{"sha": p, "url": f"{r}/git/commits/{p}",
                   "html_url": f"{call.links.web}/{repo.full_name}/commit/{p}"}
                               for p in info.parents],
                   "verification": {"verified": False, "reason": "unsigned", "signature": None,
                   "payload": None,
                                    "verified_at": None}},
    }  # fmt: skip
    return Reply.json(201 if current is None else 200, result)


def _file(call: Call, path: str, blob: str, data: bytes) -> dict[str, Any]:
    r, web = call.links.repo(call.repo), f"{call.links.web}/{call.repo.full_name}"
    return {
        "type": "file", "encoding": "base64", "size": len(data), "name": path.rsplit("/", 1)[-1],
        "path": path,
        "content": base64.b64encode(data).decode(), "sha": blob, "url": f"{r}/contents/{path}",
        "git_url": f"{r}/git/blobs/{blob}", "html_url": f"{web}/blob/{call.repo.default_branch}/{path}",
        "download_url": f"{web}/raw/{call.repo.default_branch}/{path}",
        "_links": {"self": f"{r}/contents/{path}", "git": f"{r}/git/blobs/{blob}",
                   "html": f"{web}/blob/{call.repo.default_branch}/{path}"},
    }  # fmt: skip


# -- issues (a pull request is an issue): labels, comments -----------------------------------------------


def _issue(call: Call, number: int, what: str) -> Reply:
    pull = call.repo.pulls.get(number)
    if pull is None:
        raise ApiError(404, error("Not Found", 404))
    call.need("write" if what == "labels" else "read")
    if what == "comments":
        data = body_of(call.request, {"body": (str, ())}, ("body",))
        item = Comment(call.world.next_id(), call.user.login, data["body"], call.world.clock())
        pull.comments.append(item)
        body = objects.comment(call.links, call.world, call.repo, number, item)
        return Reply.json(201, body, {"location": body["url"]})
    if what != "labels":
        raise not_found()
    try:
        raw = call.request.json()
    except ValueError:
        raise ApiError(400, error("Problems parsing JSON", 400)) from None
    names = _label_names(raw.get("labels") if isinstance(raw, dict) else raw)
    for name in names:
        if name not in call.repo.labels:
            call.repo.labels[name] = Label(call.world.next_id(), name)
        if name not in pull.labels:
            pull.labels.append(name)
    return Reply.json(200, [objects.label(call.links, call.repo, call.repo.labels[n]) for n in pull.labels])


def _label_names(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise ApiError(422, validation([{"resource": "Label", "field": "labels", "code": "missing_field"}]))
    names = [v.get("name") if isinstance(v, dict) else v for v in value]
    if not all(isinstance(n, str) and n for n in names):
        raise ApiError(422, validation([{"resource": "Label", "field": "name", "code": "invalid"}]))
    return [str(n) for n in names]
