"""A fake GitLab REST API (`/api/v4`) on 127.0.0.1, backed by real bare repositories.

Typical use::

    with FakeGitLab() as gitlab:
        project = gitlab.add_project("platform/deploy", bare_path, approvals_required=1)
        gitlab.protect("platform/deploy", "main")          # pushes to main now refused, GitLab's text
        client = httpx.Client(base_url=gitlab.api_url, headers={"PRIVATE-TOKEN": BOT_TOKEN})

A merge request's source is a branch pushed to the bare repository; merging it writes a real merge
(or squash) commit there. Users from the start: `gitops-bot` (BOT_TOKEN, a Developer: opens and
merges) and `reviewer` (REVIEWER_TOKEN, a Maintainer: approves). `set_pipeline` posts a pipeline on
a SHA (what `head_pipeline` shows); `throttle` answers 429 `Retry later` as GitLab's rack-attack
does; `requests()` shows what clients sent. Compared field by field with
contracts/gitlab/examples/*.json in tests/test_sandbox_gitlab.py.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox import git_protect
from sandbox import gitlab_fake_objects as objects
from sandbox.githost_fake import FakeHost
from sandbox.github_fake_git import BareRepo
from sandbox.github_fake_http import RecordedRequest, Reply
from sandbox.github_fake_state import Settle
from sandbox.gitlab_fake_api import GitLabApi
from sandbox.gitlab_fake_state import (
    DEVELOPER,
    MAINTAINER,
    NO_ACCESS,
    Approval,
    MergeRequest,
    Pipeline,
    Project,
    ProtectedBranch,
    User,
    World,
)

__all__ = ["BOT_TOKEN", "REVIEWER_TOKEN", "FakeGitLab", "RecordedRequest", "Settle"]

BOT_TOKEN = "glpat-" + "b0tT0kenSandbox00000"
REVIEWER_TOKEN = "glpat-" + "rev1ewerSandbox00000"
_SETTLED = Settle()


class FakeGitLab(FakeHost):
    """GitLab's REST API for merge-request promotions, over bare repositories on disk."""

    def __init__(self, *, settle: Settle = _SETTLED, clock: Callable[[], float] = time.time) -> None:
        self._world = World(clock, settle)
        self._api = GitLabApi(self._world, lambda: self.base_url)
        super().__init__(self._api.handle, self._api.who, "fake-gitlab")
        self.bot = self.add_user("gitops-bot", BOT_TOKEN, access=DEVELOPER, name="GitOps Bot")
        self.reviewer = self.add_user("reviewer", REVIEWER_TOKEN, access=MAINTAINER, name="Rita Reviewer")

    @property
    def api_url(self) -> str:
        """What a client's `api_url` setting names."""
        return self.base_url + "/api/v4"

    # -- users, projects, protection --------------------------------------------------------------------

    def add_user(
        self, username: str, token: str, *, access: int = DEVELOPER, name: str | None = None
    ) -> User:
        with self._world.lock:
            found = User(self._world.next_id(), username, name or username, token, access)
            self._world.users[token] = found
            return found

    def add_project(self, path: str, bare: Path, *, default_branch: str = "main", **settings: Any) -> Project:
        """Serve the bare repository at `bare` (created if missing) as project `path`. `settings`:
        `merge_method` (merge, rebase_merge, ff), `approvals_required`, `reset_approvals_on_push`,
        `merge_requests_author_approval`, `only_allow_merge_if_pipeline_succeeds` (Project fields)."""
        repository = BareRepo(bare) if (bare / "HEAD").exists() else BareRepo.init(bare, default_branch)
        with self._world.lock:
            project = Project(
                self._world.next_id(), path, repository, default_branch, created_at=self._world.clock()
            )
            for key, value in settings.items():
                if not hasattr(project, key):
                    raise TypeError(f"unknown project setting {key!r}")
                setattr(project, key, value)
            self._world.projects[project.id] = project
            return project

    def configure(self, path: str, **settings: Any) -> None:
        """Change project settings (as above) later; open merge requests are checked again."""
        with self._world.lock:
            project = self._project(path)
            for key, value in settings.items():
                setattr(project, key, value)
            for mr in project.merge_requests.values():
                self._world.touch(mr)

    def set_access(self, path: str, username: str, level: int) -> None:
        with self._world.lock:
            self._project(path).access[username] = level

    def protect(
        self,
        path: str,
        branch: str = "main",
        *,
        push_access_level: int = NO_ACCESS,
        merge_access_level: int = DEVELOPER,
        allow_force_push: bool = False,
        refuse_pushes: bool = True,
    ) -> ProtectedBranch:
        """Protect `branch` (a name or a wildcard): reported by protected_branches, merges need
        `merge_access_level`, and (with `refuse_pushes`) `git push` to it gets GitLab's refusal."""
        with self._world.lock:
            project = self._project(path)
            rule = ProtectedBranch(
                self._world.next_id(), branch, push_access_level, merge_access_level, allow_force_push
            )
            project.protected[branch] = rule
        if refuse_pushes:
            # Developers allowed to push: only force pushes are refused.
            git_protect.protect(
                project.bare.path, branch, style="gitlab", force_push_only=push_access_level != NO_ACCESS
            )
        return rule

    def unprotect(self, path: str, branch: str = "main") -> None:
        with self._world.lock:
            project = self._project(path)
            project.protected.pop(branch, None)
        git_protect.unprotect(project.bare.path, branch)

    # -- CI and people -----------------------------------------------------------------------------------

    def set_pipeline(self, path: str, sha: str, status: str, *, ref: str | None = None) -> int:
        """A pipeline on `sha` with `status` (running, success, failed, …); the newest one on an MR's
        head is its `head_pipeline`. Returns its id (call again with the same status to add another)."""
        with self._world.lock:
            project = self._project(path)
            now = self._world.clock()
            same = [p for p in project.pipelines if p.sha == sha]
            if same and same[-1].status in ("created", "pending", "running"):
                same[-1].status, same[-1].updated_at = status, now  # the running one finished
                pipeline = same[-1]
            else:
                pipeline = Pipeline(
                    self._world.next_id(), len(project.pipelines) + 1, sha, ref or sha, status, now, now
                )
                project.pipelines.append(pipeline)
            for mr in project.merge_requests.values():
                if mr.sha == sha:
                    self._world.touch(mr)
            return pipeline.id

    def approve(self, path: str, iid: int, by: str = "reviewer") -> None:
        """An approval given in the web UI."""
        with self._world.lock:
            _, mr = self._mr(path, iid)
            mr.approvals.append(Approval(by, mr.sha, self._world.clock()))
            self._world.touch(mr)

    def close(self, path: str, iid: int, by: str = "reviewer") -> None:
        """Closed in the web UI, without merging."""
        with self._world.lock:
            _, mr = self._mr(path, iid)
            now = self._world.clock()
            mr.state, mr.closed_at, mr.closed_by, mr.updated_at = "closed", now, by, now

    def merge_request(self, path: str, iid: int) -> dict[str, Any]:
        """The MR as a settled GET shows it (no read of the API spent)."""
        with self._world.lock:
            project, mr = self._mr(path, iid)
            status = self._world.status(project, mr)
            return objects.merge_request(self.base_url, self._world, project, mr, status)

    def merge_requests(self, path: str) -> list[MergeRequest]:
        with self._world.lock:
            return list(self._project(path).merge_requests.values())

    def _project(self, path: str) -> Project:
        found = self._world.project(path)
        if found is None:
            raise KeyError(f"no project {path!r}")
        return found

    def _mr(self, path: str, iid: int) -> tuple[Project, MergeRequest]:
        project = self._project(path)
        mr = project.merge_requests.get(iid)
        if mr is None:
            raise KeyError(f"no merge request !{iid} in {path}")
        self._world.refresh(project, mr)
        return project, mr

    # -- injected trouble ---------------------------------------------------------------------------------

    def throttle(
        self, *, retry_after: int = 60, times: int = 1, path: str = "", text: str = "Retry later\n"
    ) -> None:
        """The next `times` requests get GitLab's throttled answer: 429, a plain-text body, Retry-After."""
        reset = int(self._world.clock()) + retry_after
        headers = {
            "Retry-After": str(retry_after), "RateLimit-Name": "throttle_authenticated_api",
            "RateLimit-Limit": "2000", "RateLimit-Observed": "2001", "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(reset), "RateLimit-ResetTime": email.utils.formatdate(reset, usegmt=True),
        }  # fmt: skip
        self._faults.fail_next(Reply.text(429, text, headers), path=path, times=times)

    def fail_next(
        self,
        status: int = 502,
        *,
        path: str = "",
        method: str | None = None,
        times: int = 1,
        body: Any = None,
    ) -> None:
        """The next `times` requests under `path` get `status` and `body` (JSON; else GitLab's message)."""
        payload = body if body is not None else {"message": f"{status} Error"}
        self._faults.fail_next(Reply.json(status, payload), path=path, method=method, times=times)
