"""The fake GitLab's `/api/v4`: authentication, the rate-limit headers, and the project, merge request,
approval, pipeline and protected-branch calls (contracts/gitlab/SOURCE.md's endpoint table).

`:id` is the numeric project id or its URL-encoded path, a protected branch name is URL-encoded too.
Errors are GitLab's shapes: `{"message": "404 Not found"}`, `{"message": "401 Unauthorized"}`,
Grape's `{"error": "title is missing"}` (400) for a missing or malformed parameter, and for a second
open merge request from one source branch a 409 whose message is a list (`conflict!` with the
validation errors). Merge checks run in GitLab's order: 401 (may not merge), 405 (cannot be merged
now), 409 (`sha` is not the head), then the merge; a merge that fails is 422 `Branch cannot be merged`.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from sandbox import gitlab_fake_objects as objects
from sandbox.github_fake_git import Person
from sandbox.github_fake_http import Reply, Request, paginate
from sandbox.gitlab_fake_state import Approval, MergeRequest, Project, User, World, iso

Json = dict[str, Any]
_BOT = Person("GitLab", "gitlab@localhost")


class GitLabError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def _message(status: int, text: str) -> GitLabError:
    return GitLabError(status, {"message": text})


_NOT_FOUND = "404 Not found"


Spec = Mapping[str, type | tuple[type, ...]]


def _params(request: Request, spec: Spec, required: tuple[str, ...] = ()) -> Json:
    """Query and body parameters (JSON or a form), checked the way Grape does: 400 when missing or invalid."""
    data: Json = {k: v[-1] for k, v in request.query.items()}
    if request.body.strip():
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            data.update(urllib.parse.parse_qsl(request.body.decode()))
        else:
            try:
                body = json.loads(request.body)
            except ValueError:
                raise GitLabError(
                    400, {"error": "The provided content-type 'application/json' is not valid JSON"}
                ) from None
            if not isinstance(body, dict):
                raise GitLabError(400, {"error": "body is invalid"})
            data.update(body)
    missing = [name for name in required if data.get(name) in (None, "")]
    if missing:
        raise GitLabError(400, {"error": ", ".join(f"{name} is missing" for name in missing)})
    for name, types in spec.items():
        if name not in data:
            continue
        value = data[name]
        if bool in (types if isinstance(types, tuple) else (types,)) and value in ("true", "false"):
            data[name] = value == "true"  # a form or a query sends booleans as text
        elif (
            isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,))
        ) or not isinstance(value, types):
            raise GitLabError(400, {"error": f"{name} is invalid"})
    return data


def _labels(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return [str(x).strip() for x in items if str(x).strip()]


class GitLabApi:
    def __init__(self, world: World, root: Callable[[], str]) -> None:
        self.world = world
        self._root = root
        self._observed: dict[str, int] = {}
        self._ids = itertools.count(1)

    def user_of(self, request: Request) -> User | None:
        token = request.headers.get("private-token")
        if token is None:
            scheme, _, rest = request.headers.get("authorization", "").partition(" ")
            token = rest.strip() if scheme.lower() == "bearer" else None
        return self.world.users.get(token) if token else None

    def who(self, request: Request) -> str | None:
        found = self.user_of(request)
        return found.username if found is not None else None

    def handle(self, request: Request) -> Reply:
        headers = {"x-request-id": f"fake-{next(self._ids):08x}"}
        with self.world.lock:
            try:
                reply = self._handle(request, headers)
            except GitLabError as exc:
                reply = Reply.json(exc.status, exc.body)
        return reply.with_headers(headers)

    def _handle(self, request: Request, headers: dict[str, str]) -> Reply:
        parts = request.segments
        if parts[:2] != ["api", "v4"]:
            raise _message(404, _NOT_FOUND)
        user = self.user_of(request)
        if user is None:
            raise _message(401, "401 Unauthorized")
        headers.update(self._rate_headers(user))
        rest = parts[2:]
        if len(rest) < 2 or rest[0] != "projects":
            raise _message(404, _NOT_FOUND)
        project = self.world.project(rest[1])
        if project is None or self.world.access(project, user) <= 0:
            raise _message(404, "404 Project Not Found")
        call = _Call(self.world, request, user, project, rest[2:], self._root())
        return call.route()

    def _rate_headers(self, user: User) -> dict[str, str]:
        # GitLab.com's throttle_authenticated_api; what a self-managed instance sends when it is on.
        observed = self._observed.get(user.username, 0) + 1
        self._observed[user.username] = observed
        reset = int(self.world.clock()) // 60 * 60 + 60
        return {
            "RateLimit-Name": "throttle_authenticated_api", "RateLimit-Limit": "2000",
            "RateLimit-Observed": str(observed), "RateLimit-Remaining": str(max(0, 2000 - observed)),
            "RateLimit-Reset": str(reset), "RateLimit-ResetTime": email.utils.formatdate(reset, usegmt=True),
        }  # fmt: skip


class _Call:
    def __init__(
        self, world: World, request: Request, user: User, project: Project, rest: list[str], web: str
    ) -> None:
        self.world, self.request, self.user, self.project, self.rest, self.web = (
            world, request, user, project, rest, web,
        )  # fmt: skip

    def route(self) -> Reply:
        rest, method = self.rest, self.request.method
        if not rest and method == "GET":
            return Reply.json(200, objects.project_body(self.web, self.project))
        if rest[:1] == ["protected_branches"] and method == "GET":
            return self._protected(rest[1] if len(rest) > 1 else None)
        if rest[:2] == ["repository", "branches"] and len(rest) == 3 and method == "GET":
            return self._branch(rest[2])
        if rest[:1] == ["merge_requests"]:
            if len(rest) == 1:
                return self._list() if method == "GET" else self._create() if method == "POST" else self._no()
            mr = self._mr(rest[1])
            action = (rest[2] if len(rest) == 3 else "", method)
            handler = {
                ("", "GET"): self._get, ("", "PUT"): self._update, ("approve", "POST"): self._approve,
                ("unapprove", "POST"): self._unapprove, ("approvals", "GET"): self._approvals,
                ("pipelines", "GET"): self._pipelines, ("merge", "PUT"): self._merge,
                ("rebase", "PUT"): self._rebase, ("notes", "POST"): self._note,
            }.get(action)  # fmt: skip
            if handler is not None and len(rest) <= 3:
                return handler(mr)
        return self._no()

    def _no(self) -> Reply:
        raise _message(404, _NOT_FOUND)

    def _mr(self, iid: str) -> MergeRequest:
        mr = self.project.merge_requests.get(int(iid)) if iid.isdigit() else None
        if mr is None:
            raise _message(404, "404 Not found")
        self.world.refresh(self.project, mr)
        return mr

    def _show(self, mr: MergeRequest, status: int = 200, detailed: str | None = None) -> Reply:
        shown = detailed or self.world.read_status(self.project, mr)
        return Reply.json(status, objects.merge_request(self.web, self.world, self.project, mr, shown))

    def _need_developer(self) -> None:
        if self.world.access(self.project, self.user) < 30:
            raise _message(403, "403 Forbidden")

    # -- protected branches and branches ------------------------------------------------------------------

    def _protected(self, name: str | None) -> Reply:
        items = sorted(self.project.protected.values(), key=lambda p: p.id)
        if name is None:
            return Reply.json(
                200, [objects.protected_branch(p, (p.id * 10 + 1, p.id * 10 + 2)) for p in items]
            )
        found = self.project.protected.get(name)
        if found is None:
            raise _message(404, "404 Not found")
        return Reply.json(200, objects.protected_branch(found, (found.id * 10 + 1, found.id * 10 + 2)))

    def _branch(self, name: str) -> Reply:
        sha = self.project.bare.branch_sha(name)
        if sha is None:
            raise _message(404, "404 Branch Not Found")
        rule = self.project.protection(name)
        level = self.world.access(self.project, self.user)
        can_push = rule is None or (rule.push_access_level != 0 and level >= rule.push_access_level)
        body = {"name": name, "merged": False, "protected": rule is not None,
        "default": name == self.project.default_branch,
                "developers_can_push": rule is None or rule.push_access_level == 30,
                "developers_can_merge": rule is None or rule.merge_access_level == 30, "can_push": can_push,
                "web_url": f"{self.web}/{self.project.path}/-/tree/{name}", "commit": {"id": sha,
                "short_id": sha[:8]}}  # fmt: skip
        return Reply.json(200, body)

    # -- merge requests ---------------------------------------------------------------------------------

    def _list(self) -> Reply:
        q = self.request
        state = q.first("state") or "all"
        found = []
        for mr in self.project.merge_requests.values():
            self.world.refresh(self.project, mr)
            if state != "all" and mr.state != state:
                continue
            if q.first("source_branch") and mr.source_branch != q.first("source_branch"):
                continue
            if q.first("target_branch") and mr.target_branch != q.first("target_branch"):
                continue
            found.append(mr)
        found.sort(key=lambda m: (m.created_at, m.iid), reverse=q.first("sort", "desc") == "desc")
        page, link = paginate(found, q, self.web, default=20)
        items = [
            objects.merge_request(self.web, self.world, self.project, m, m.settled or "checking")
            for m in page
        ]
        return Reply.json(
            200, items, {**link, "x-total": str(len(found)), "x-per-page": q.first("per_page", "20")}
        )

    _CREATE: ClassVar[Spec] = {
        "source_branch": str, "target_branch": str, "title": str, "description": str, "labels": (str, list),
        "remove_source_branch": bool, "squash": bool, "reviewer_ids": list, "assignee_ids": list,
        "allow_collaboration": bool, "draft": bool,
    }  # fmt: skip

    def _create(self) -> Reply:
        self._need_developer()
        data = _params(self.request, self._CREATE, ("source_branch", "target_branch", "title"))
        bare, world = self.project.bare, self.world
        source, target = data["source_branch"], data["target_branch"]
        head, base = bare.branch_sha(source), bare.branch_sha(target)
        if head is None or base is None:
            missing = source if head is None else target
            which = "Source" if head is None else "Target"
            raise GitLabError(422, {"message": [f'{which} branch "{missing}" does not exist']})
        for other in self.project.merge_requests.values():
            world.refresh(self.project, other)
            if other.state == "opened" and other.source_branch == source and other.target_branch == target:
                message = f"Another open merge request already exists for this source branch: !{other.iid}"
                raise GitLabError(409, {"message": [message]})
        now = world.clock()
        iid = max([0, *self.project.merge_requests]) + 1
        title = data["title"]
        mr = MergeRequest(
            iid=iid, id=world.next_id(), title=title, description=data.get("description", ""),
            author=self.user.username,
            source_branch=source, target_branch=target, sha=head, base_sha=base, created_at=now,
            updated_at=now,
            draft=bool(data.get("draft")) or title.lower().startswith(("draft:", "[draft]")),
            labels=_labels(data.get("labels")), reviewers=[int(i) for i in data.get("reviewer_ids", [])],
            squash=bool(data.get("squash", False)),
            remove_source_branch=data.get("remove_source_branch"), heads=[head],
        )  # fmt: skip
        self.project.merge_requests[iid] = mr
        bare.update_ref(f"refs/merge-requests/{iid}/head", head)
        world.touch(mr)
        return self._show(mr, 201, "preparing")

    def _get(self, mr: MergeRequest) -> Reply:
        return self._show(mr)

    _UPDATE: ClassVar[Spec] = {
        "state_event": str, "title": str, "description": str, "labels": (str, list),
        "add_labels": (str, list),
        "remove_labels": (str, list), "target_branch": str, "remove_source_branch": bool, "squash": bool,
    }  # fmt: skip

    def _update(self, mr: MergeRequest) -> Reply:
        self._need_developer()
        data = _params(self.request, self._UPDATE)
        if not set(data) & set(self._UPDATE):
            raise GitLabError(
                400,
                {"error": ", ".join(self._UPDATE) + " are missing, at least one parameter must be provided"},
            )
        now = self.world.clock()
        event = data.get("state_event")
        if event == "close" and mr.state == "opened":
            mr.state, mr.closed_at, mr.closed_by = "closed", now, self.user.username
        elif event == "reopen" and mr.state == "closed":
            mr.state, mr.closed_at, mr.closed_by = "opened", None, None
            self.world.touch(mr)
        elif event not in (None, "close", "reopen"):
            raise GitLabError(400, {"error": "state_event does not have a valid value"})
        for name in ("title", "description", "squash"):
            if name in data:
                setattr(mr, name, data[name])
        if "remove_source_branch" in data:
            mr.remove_source_branch = data["remove_source_branch"]
        if "labels" in data:
            mr.labels = _labels(data["labels"])
        mr.labels += [x for x in _labels(data.get("add_labels")) if x not in mr.labels]
        mr.labels = [x for x in mr.labels if x not in _labels(data.get("remove_labels"))]
        if "target_branch" in data:
            base = self.project.bare.branch_sha(data["target_branch"])
            if base is None:
                raise GitLabError(
                    422, {"message": [f'Target branch "{data["target_branch"]}" does not exist']}
                )
            mr.target_branch, mr.base_sha = data["target_branch"], base
            self.world.touch(mr)
        mr.updated_at = now
        return self._show(mr)

    # -- approvals ------------------------------------------------------------------------------------------

    def _approvals(self, mr: MergeRequest) -> Reply:
        return Reply.json(200, objects.approvals(self.web, self.world, self.project, mr))

    def _approve(self, mr: MergeRequest) -> Reply:
        data = _params(self.request, {"sha": str, "approval_password": str})
        if "sha" in data and data["sha"] != mr.sha:
            raise _message(409, f"SHA does not match HEAD of source branch: {mr.sha}")
        already = any(a.user == self.user.username for a in mr.approvals)
        own = mr.author == self.user.username and not self.project.merge_requests_author_approval
        if already or own or mr.state != "opened" or self.world.access(self.project, self.user) < 30:
            raise _message(
                401, "401 Unauthorized"
            )  # the approval service refused (lib/api/merge_request_approvals.rb)
        mr.approvals.append(Approval(self.user.username, mr.sha, self.world.clock()))
        self.world.touch(mr)
        return Reply.json(201, objects.approvals(self.web, self.world, self.project, mr))

    def _unapprove(self, mr: MergeRequest) -> Reply:
        before = len(mr.approvals)
        mr.approvals = [a for a in mr.approvals if a.user != self.user.username]
        if len(mr.approvals) == before:
            raise _message(404, "404 Not found")
        self.world.touch(mr)
        return Reply.json(201, objects.approvals(self.web, self.world, self.project, mr))

    def _pipelines(self, mr: MergeRequest) -> Reply:
        found = sorted(
            (p for p in self.project.pipelines if p.sha in mr.heads), key=lambda p: p.id, reverse=True
        )
        page, link = paginate(found, self.request, self.web, default=20)
        return Reply.json(
            200, [{"id": p.id, "sha": p.sha, "ref": p.ref, "status": p.status} for p in page], link
        )

    def _note(self, mr: MergeRequest) -> Reply:
        data = _params(self.request, {"body": str}, ("body",))
        mr.notes += 1
        now = iso(self.world.clock())
        author = objects.user(self.web, self.user)
        body = {"id": self.world.next_id(), "type": None, "body": data["body"], "author": author,
        "created_at": now,
                "updated_at": now, "system": False, "noteable_id": mr.id, "noteable_type": "MergeRequest",
                "noteable_iid": mr.iid, "resolvable": False, "confidential": False,
                "internal": False}  # fmt: skip
        return Reply.json(201, body)

    # -- merging -------------------------------------------------------------------------------------------

    _MERGE: ClassVar[Spec] = {
        "sha": str, "should_remove_source_branch": bool, "squash": bool, "merge_commit_message": str,
        "squash_commit_message": str, "auto_merge": bool, "merge_when_pipeline_succeeds": bool,
    }  # fmt: skip

    def _merge(self, mr: MergeRequest) -> Reply:
        data = _params(self.request, self._MERGE)
        project, world, bare = self.project, self.world, self.project.bare
        if not world.can_merge(project, self.user, mr.target_branch):
            raise _message(401, "401 Unauthorized")
        status = world.status(project, mr)  # decided now, not from a cached read
        mr.settled = status
        if status != "mergeable":
            raise _message(405, "405 Method Not Allowed")
        if "sha" in data and data["sha"] != mr.sha:
            raise _message(409, "SHA does not match HEAD of source branch")
        squash = bool(data.get("squash", mr.squash))
        author = self.user.person
        if squash:
            message = data.get("squash_commit_message") or mr.title
            tip = bare.squash_commit(mr.base_sha, mr.sha, message, author, author)
            squashed = tip
            if tip is not None:  # GitLab merges the squashed commit with a merge commit
                merged = self._merge_commit(mr, tip, data)
                tip = merged
        else:
            squashed = None
            tip = self._merge_commit(mr, mr.sha, data)
        if tip is None or not bare.update_ref(f"refs/heads/{mr.target_branch}", tip, mr.base_sha):
            mr.merge_error = "Branch cannot be merged"
            raise _message(422, "Branch cannot be merged")
        now = world.clock()
        mr.state, mr.merged_at, mr.merged_by, mr.updated_at = "merged", now, self.user.username, now
        mr.merge_commit_sha, mr.squash_commit_sha, mr.squash = tip, squashed, squash
        remove = data.get("should_remove_source_branch", mr.remove_source_branch)
        if remove:
            bare.delete_ref(f"refs/heads/{mr.source_branch}")
        return self._show(mr, 200, "not_open")

    def _merge_commit(self, mr: MergeRequest, head: str, data: Json) -> str | None:
        bare = self.project.bare
        if self.project.merge_method == "ff":
            return head if bare.is_ancestor(mr.base_sha, head) else None
        ref = f"{self.project.path}!{mr.iid}"
        default = f"Merge branch '{mr.source_branch}' into '{mr.target_branch}'"
        message = data.get("merge_commit_message") or f"{default}\n\n{mr.title}\n\nSee merge request {ref}"
        return bare.merge_commit(mr.base_sha, head, message, self.user.person, self.user.person)

    def _rebase(self, mr: MergeRequest) -> Reply:
        self._need_developer()
        rule = self.project.protection(mr.source_branch)
        if rule is not None and not rule.allow_force_push:
            raise _message(403, "Source branch is protected from force push")
        rebased = self.project.bare.rebase(mr.base_sha, mr.sha, _BOT)
        if rebased is None or not self.project.bare.update_ref(
            f"refs/heads/{mr.source_branch}", rebased, mr.sha
        ):
            mr.merge_error = "Rebase failed: conflicts"
            raise _message(409, "Failed to enqueue the rebase operation")
        self.world.refresh(self.project, mr)
        return Reply.json(202, {"rebase_in_progress": True})
