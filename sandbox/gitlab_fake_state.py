"""The fake GitLab's world: users with tokens and access levels, projects over real bare repositories,
protected branches, merge requests, approvals and pipelines (githost-api.md §6, §7, §9, §12).

`detailed_merge_status` is worked out as GitLab reports it: `preparing` in the create response,
`checking` while it settles (`Settle`: reads and/or seconds), then `not_open`, `draft_status`,
`conflict` (a real conflict, `git merge-tree`), `need_rebase` (semi-linear / fast-forward projects
whose target moved), `not_approved`, `ci_still_running` / `ci_must_pass` (pipelines must succeed)
or `mergeable`.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sandbox.github_fake_git import BareRepo, Person
from sandbox.github_fake_state import Settle

GUEST, DEVELOPER, MAINTAINER, NO_ACCESS = 10, 30, 40, 0
ACCESS_NAMES = {0: "No one", 30: "Developers + Maintainers", 40: "Maintainers", 60: "Admins"}
RUNNING = frozenset({"created", "waiting_for_resource", "preparing", "pending", "running", "scheduled"})


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class User:
    id: int
    username: str
    name: str
    token: str
    access: int = DEVELOPER  # on every project of the fake

    @property
    def person(self) -> Person:
        return Person(self.name, f"{self.username}@example.com")


@dataclass
class ProtectedBranch:
    id: int
    name: str  # a name or a wildcard such as release/*
    push_access_level: int = NO_ACCESS
    merge_access_level: int = DEVELOPER
    allow_force_push: bool = False
    code_owner_approval_required: bool = False


@dataclass
class Pipeline:
    id: int
    iid: int
    sha: str
    ref: str
    status: str  # created, pending, running, success, failed, canceled, skipped, manual, …
    created_at: float
    updated_at: float


@dataclass
class Approval:
    user: str
    sha: str
    at: float


@dataclass
class MergeRequest:
    iid: int
    id: int
    title: str
    description: str | None
    author: str
    source_branch: str
    target_branch: str
    sha: str  # head of the source branch
    base_sha: str  # target branch tip when last read
    created_at: float
    updated_at: float
    draft: bool = False
    state: Literal["opened", "closed", "merged", "locked"] = "opened"
    labels: list[str] = field(default_factory=list)
    reviewers: list[int] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    notes: int = 0
    squash: bool = False
    remove_source_branch: bool | None = None
    merged_by: str | None = None
    merged_at: float | None = None
    closed_by: str | None = None
    closed_at: float | None = None
    merge_commit_sha: str | None = None
    squash_commit_sha: str | None = None
    merge_error: str | None = None
    heads: list[str] = field(default_factory=list)  # every head it had: its pipelines
    prepared: bool = False
    reads_left: int = 0
    settle_at: float = 0.0
    settled: str | None = None


@dataclass
class Project:
    id: int
    path: str  # path_with_namespace
    bare: BareRepo
    default_branch: str = "main"
    merge_method: Literal["merge", "rebase_merge", "ff"] = "merge"
    approvals_required: int = 0
    reset_approvals_on_push: bool = True
    merge_requests_author_approval: bool = False
    only_allow_merge_if_pipeline_succeeds: bool = False
    protected: dict[str, ProtectedBranch] = field(default_factory=dict)
    access: dict[str, int] = field(default_factory=dict)  # username -> level, overrides User.access
    merge_requests: dict[int, MergeRequest] = field(default_factory=dict)
    pipelines: list[Pipeline] = field(default_factory=list)
    created_at: float = 0.0

    def protection(self, branch: str) -> ProtectedBranch | None:
        return next((p for p in self.protected.values() if fnmatch.fnmatchcase(branch, p.name)), None)


class World:
    """Everything the fake knows, behind one lock; `clock` gives epoch seconds."""

    def __init__(self, clock: Callable[[], float], settle: Settle) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.settle = settle
        self.users: dict[str, User] = {}  # by token
        self.projects: dict[int, Project] = {}
        self._ids = 100

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def user(self, username: str) -> User | None:
        return next((u for u in self.users.values() if u.username == username), None)

    def user_by_id(self, user_id: int) -> User | None:
        return next((u for u in self.users.values() if u.id == user_id), None)

    def project(self, ref: str) -> Project | None:
        """By numeric id or by path (`group/sub/project`, already unquoted)."""
        if ref.isdigit():
            return self.projects.get(int(ref))
        return next((p for p in self.projects.values() if p.path.lower() == ref.lower()), None)

    def access(self, project: Project, user: User) -> int:
        return project.access.get(user.username, user.access)

    def can_merge(self, project: Project, user: User, branch: str) -> bool:
        rule = project.protection(branch)
        level = self.access(project, user)
        if rule is None:
            return level >= DEVELOPER
        return rule.merge_access_level != NO_ACCESS and level >= rule.merge_access_level

    # -- merge requests following the bare repository ---------------------------------------------------

    def touch(self, mr: MergeRequest) -> None:
        now = self.clock()
        mr.updated_at = now
        mr.settled = None
        mr.reads_left = self.settle.reads
        mr.settle_at = now + self.settle.seconds

    def refresh(self, project: Project, mr: MergeRequest) -> None:
        """A push to the source branch is a new head (approvals reset when the project says so);
        a moved target is checked again."""
        if mr.state not in ("opened", "locked"):
            return
        head = project.bare.branch_sha(mr.source_branch)
        base = project.bare.branch_sha(mr.target_branch)
        if head is not None and head != mr.sha:
            mr.sha = head
            mr.heads.append(head)
            project.bare.update_ref(f"refs/merge-requests/{mr.iid}/head", head)
            if project.reset_approvals_on_push:
                mr.approvals.clear()
            self.touch(mr)
        if base is not None and base != mr.base_sha:
            mr.base_sha = base
            self.touch(mr)

    def read_status(self, project: Project, mr: MergeRequest) -> str:
        """What a GET shows: `checking` while it settles, then the computed status."""
        if mr.settled is None:
            mr.prepared = True
            if mr.reads_left > 0 or self.clock() < mr.settle_at:
                mr.reads_left = max(0, mr.reads_left - 1)
                return "checking"
            mr.settled = self.status(project, mr)
        return mr.settled

    def status(self, project: Project, mr: MergeRequest) -> str:
        if mr.state != "opened":
            return "not_open"
        if mr.draft:
            return "draft_status"
        if project.bare.branch_sha(mr.source_branch) is None:
            return "conflict"  # GitLab reports a missing source branch as unmergeable
        tree, _ = project.bare.merge_tree(mr.base_sha, mr.sha)
        if tree is None:
            return "conflict"
        if project.merge_method != "merge" and not project.bare.is_ancestor(mr.base_sha, mr.sha):
            return "need_rebase"
        if self.approvals_left(project, mr) > 0:
            return "not_approved"
        if project.only_allow_merge_if_pipeline_succeeds:
            pipeline = self.head_pipeline(project, mr)
            if pipeline is not None and pipeline.status in RUNNING:
                return "ci_still_running"
            if pipeline is None or pipeline.status not in ("success", "skipped"):
                return "ci_must_pass"
        return "mergeable"

    def approvals_left(self, project: Project, mr: MergeRequest) -> int:
        counted = {
            a.user for a in mr.approvals if a.user != mr.author or project.merge_requests_author_approval
        }
        return max(0, project.approvals_required - len(counted))

    def head_pipeline(self, project: Project, mr: MergeRequest) -> Pipeline | None:
        found = [p for p in project.pipelines if p.sha == mr.sha]
        return max(found, key=lambda p: p.id) if found else None
