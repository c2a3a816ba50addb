"""The fake GitHub's world: users and their tokens, repositories over real bare repositories, branch
protection (classic or ruleset), pull requests, reviews, check runs and statuses, and how a pull
request's mergeability is computed (githost-api.md §5, §7, §9, §12).

Mergeability is worked out the way GitHub reports it: a pull request that was just opened, or whose
head or base just moved, answers `mergeable: null, mergeable_state: "unknown"` until it settles
(`Settle`: a number of reads and/or seconds), then `dirty` (a real conflict, `git merge-tree`),
`draft`, `behind` (strict required checks and base not in head), `blocked` (approvals or required
checks missing), `unstable` (a check that is not required fails) or `clean`.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sandbox.github_fake_git import BareRepo, Person

Permission = Literal["none", "read", "write", "admin"]
ProtectionKind = Literal["classic", "ruleset"]
MERGE_METHODS = ("merge", "squash", "rebase")
_PASSING = frozenset({"success", "neutral", "skipped"})
_FAILING = frozenset({"failure", "timed_out", "cancelled", "action_required", "startup_failure", "stale"})


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class User:
    login: str
    id: int
    token: str
    permission: Permission = "write"
    kind: Literal["User", "Bot"] = "User"
    email: str | None = None

    @property
    def person(self) -> Person:
        return Person(self.login, self.email or f"{self.id}+{self.login}@users.noreply.github.com")


@dataclass
class Rules:
    """What protects a branch. `kind` says where GitHub keeps it: `classic` (branch protection: the
    branch answers `protected: true`) or `ruleset` (only `rules/branches/{b}` shows it)."""

    kind: ProtectionKind = "classic"
    required_approving_review_count: int = 0
    required_checks: tuple[str, ...] = ()  # check-run names or status contexts
    strict: bool = False  # the PR must be up to date with its base (else `behind`)
    dismiss_stale_reviews_on_push: bool = False
    require_last_push_approval: bool = False
    allowed_merge_methods: tuple[str, ...] = MERGE_METHODS  # rulesets only
    ruleset_id: int = 1


@dataclass
class Review:
    id: int
    user: str
    body: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, PENDING, DISMISSED
    commit_id: str
    submitted_at: float | None


@dataclass
class CheckRun:
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: float
    completed_at: float | None


@dataclass
class Status:
    id: int
    context: str
    state: str  # error, failure, pending, success
    description: str | None
    target_url: str | None
    created_at: float
    updated_at: float


@dataclass
class Comment:
    id: int
    user: str
    body: str
    created_at: float


@dataclass
class Pull:
    number: int
    id: int
    title: str
    body: str | None
    author: str
    head_ref: str
    base_ref: str
    head_sha: str
    base_sha: str
    created_at: float
    draft: bool = False
    maintainer_can_modify: bool = False
    state: Literal["open", "closed"] = "open"
    updated_at: float = 0.0
    closed_at: float | None = None
    merged_at: float | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    labels: list[str] = field(default_factory=list)
    requested_reviewers: list[str] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    # mergeability: unknown until `reads_left` GETs have passed and the clock reached `settle_at`
    reads_left: int = 0
    settle_at: float = 0.0
    settled: tuple[bool | None, str] | None = None
    last_pusher: str | None = None

    @property
    def merged(self) -> bool:
        return self.merged_at is not None


@dataclass(frozen=True)
class Settle:
    """How long a pull request stays `mergeable: null` after a change: GETs that still answer
    null after the create response, and seconds."""

    reads: int = 0
    seconds: float = 0.0


@dataclass
class Label:
    id: int
    name: str
    color: str = "ededed"
    # "" not null: pull-request-simple types a label's description as a plain string.
    description: str | None = ""


@dataclass
class Repo:
    owner: str
    name: str
    id: int
    bare: BareRepo
    default_branch: str = "main"
    private: bool = True
    allow_merge_commit: bool = True
    allow_squash_merge: bool = True
    allow_rebase_merge: bool = True
    delete_branch_on_merge: bool = False
    protection: dict[str, Rules] = field(default_factory=dict)  # branch pattern -> rules
    permissions: dict[str, Permission] = field(default_factory=dict)  # login -> override
    pulls: dict[int, Pull] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)
    checks: dict[str, list[CheckRun]] = field(default_factory=dict)  # sha -> runs
    statuses: dict[str, dict[str, Status]] = field(default_factory=dict)  # sha -> context -> status
    created_at: float = 0.0

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def rules_for(self, branch: str) -> Rules | None:
        return next((r for p, r in self.protection.items() if fnmatch.fnmatchcase(branch, p)), None)

    def method_allowed(self, method: str, branch: str) -> bool:
        flags = {"merge": self.allow_merge_commit, "squash": self.allow_squash_merge}
        allowed = flags.get(method, self.allow_rebase_merge)
        rules = self.rules_for(branch)
        return allowed and (rules is None or rules.kind != "ruleset" or method in rules.allowed_merge_methods)


class World:
    """Everything the fake knows, behind one lock; `clock` gives epoch seconds."""

    def __init__(self, clock: Callable[[], float], settle: Settle) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.settle = settle
        self.users: dict[str, User] = {}  # by token
        self.repos: dict[str, Repo] = {}  # by "owner/name", lower case
        self._ids = 1000

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def user_by_login(self, login: str) -> User | None:
        return next((u for u in self.users.values() if u.login == login), None)

    def repo(self, owner: str, name: str) -> Repo | None:
        return self.repos.get(f"{owner}/{name}".lower())

    def permission(self, repo: Repo, user: User) -> Permission:
        return repo.permissions.get(user.login, user.permission)

    # -- pull requests: following the bare repository --------------------------------------------------

    def touch(self, pull: Pull) -> None:
        """Something changed: mergeability is unknown again until it settles."""
        now = self.clock()
        pull.updated_at = now
        pull.settled = None
        pull.reads_left = self.settle.reads
        pull.settle_at = now + self.settle.seconds

    def refresh(self, repo: Repo, pull: Pull) -> None:
        """Follow the branches: a push to head is a new head (stale approvals dismissed when the
        rules say so); a deleted head or base branch closes the PR; head reachable from base
        (merged outside the API) marks it merged, as GitHub does."""
        if pull.state != "open":
            return
        head, base = repo.bare.branch_sha(pull.head_ref), repo.bare.branch_sha(pull.base_ref)
        now = self.clock()
        if head is None or base is None:
            pull.state, pull.closed_at, pull.updated_at = "closed", now, now
            return
        if head != pull.head_sha:
            pull.head_sha = head
            repo.bare.update_ref(f"refs/pull/{pull.number}/head", head)
            rules = repo.rules_for(pull.base_ref)
            if rules is not None and rules.dismiss_stale_reviews_on_push:
                for review in pull.reviews:
                    if review.state == "APPROVED":
                        review.state = "DISMISSED"
            self.touch(pull)
        if base != pull.base_sha:
            pull.base_sha = base
            if repo.bare.is_ancestor(head, base):  # pushed into base by someone: merged
                pull.state, pull.closed_at, pull.merged_at, pull.updated_at = "closed", now, now, now
                pull.merge_commit_sha = head
                return
            self.touch(pull)

    def read_mergeability(self, repo: Repo, pull: Pull) -> tuple[bool | None, str]:
        """What a GET answers now: unknown while settling, then the computed state (cached per head/base)."""
        if pull.state != "open":
            return None, "unknown"  # closed or merged: GitHub stops computing
        if pull.settled is None:
            if pull.reads_left > 0 or self.clock() < pull.settle_at:
                pull.reads_left = max(0, pull.reads_left - 1)
                return None, "unknown"
            pull.settled = self.mergeability(repo, pull)
        return pull.settled

    def mergeability(self, repo: Repo, pull: Pull) -> tuple[bool | None, str]:
        """`(mergeable, mergeable_state)` from the repository as it is (also records the test merge)."""
        tree, conflicts = repo.bare.merge_tree(pull.base_sha, pull.head_sha)
        if tree is None or conflicts:
            pull.merge_commit_sha = None
            return False, "dirty"
        bot = Person("GitHub", "noreply@github.com")
        test_merge = repo.bare.commit_tree(
            tree, [pull.base_sha, pull.head_sha], f"Merge {pull.head_sha} into {pull.base_sha}", bot, bot
        )
        repo.bare.update_ref(f"refs/pull/{pull.number}/merge", test_merge)
        pull.merge_commit_sha = test_merge
        if pull.draft:
            return True, "draft"
        rules = repo.rules_for(pull.base_ref)
        if rules is not None:
            if rules.strict and not repo.bare.is_ancestor(pull.base_sha, pull.head_sha):
                return True, "behind"
            if self.approvals(pull) < rules.required_approving_review_count:
                return True, "blocked"
            if rules.require_last_push_approval and not self._last_push_approved(pull):
                return True, "blocked"
            if not all(self.check_passed(repo, pull.head_sha, c) for c in rules.required_checks):
                return True, "blocked"
        if any(self._failing(repo, pull.head_sha)):
            return True, "unstable"
        return True, "clean"

    def approvals(self, pull: Pull) -> int:
        """Reviewers (not the author) whose latest deciding review is an approval still standing."""
        latest: dict[str, str] = {}
        for review in pull.reviews:
            if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[review.user] = review.state
        return sum(1 for user, state in latest.items() if state == "APPROVED" and user != pull.author)

    def _last_push_approved(self, pull: Pull) -> bool:
        return any(
            r.state == "APPROVED" and r.commit_id == pull.head_sha and r.user != pull.last_pusher
            for r in pull.reviews
        )

    def check_passed(self, repo: Repo, sha: str, context: str) -> bool:
        runs = [r for r in repo.checks.get(sha, []) if r.name == context]
        if runs:
            run = max(runs, key=lambda r: r.id)
            return run.status == "completed" and run.conclusion in _PASSING
        status = repo.statuses.get(sha, {}).get(context)
        return status is not None and status.state == "success"

    def _failing(self, repo: Repo, sha: str) -> Iterator[str]:
        latest: dict[str, CheckRun] = {}
        for run in repo.checks.get(sha, []):
            if run.name not in latest or run.id > latest[run.name].id:
                latest[run.name] = run
        yield from (n for n, r in latest.items() if r.status == "completed" and r.conclusion in _FAILING)
        yield from (c for c, s in repo.statuses.get(sha, {}).items() if s.state in ("failure", "error"))

    def combined_state(self, repo: Repo, sha: str) -> str:
        """The combined status: failure if any is error/failure, pending if none or one pending."""
        states = [s.state for s in repo.statuses.get(sha, {}).values()]
        if any(s in ("error", "failure") for s in states):
            return "failure"
        if not states or any(s == "pending" for s in states):
            return "pending"
        return "success"
