"""A fake GitHub REST API (version 2022-11-28) on 127.0.0.1, backed by real bare repositories.

Typical use::

    with FakeGitHub() as github:
        github.add_repo("example/deploy", bare_path)            # an existing bare repository
        github.protect("example/deploy", "main", required_approving_review_count=1,
                       required_checks=("ci",))                   # pushes to main now refused (GH006)
        client = httpx.Client(base_url=github.api_url,
                              headers={"Authorization": f"Bearer {BOT_TOKEN}"})

A pull request's head is a branch pushed to the bare repository; merging it (the API, or `merge`
here as a human would) writes a real merge / squash / rebase commit there. Two users exist from the
start: `gitops-bot` (BOT_TOKEN, opens pull requests) and `reviewer` (REVIEWER_TOKEN, may approve
them: GitHub refuses an author's own approval). `set_check` / `set_status` post CI results on a
SHA; `requests()` shows what clients sent (and as whom); `fail_next`, `rate_limited`,
`secondary_limit`, `set_latency`, `go_down` inject trouble. The contract is
contracts/github/api.github.com.trimmed.json; tests/test_sandbox_github.py holds every answer of a
pull request's life to its schemas. Protected branches refuse pushes through sandbox/git_protect.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from sandbox import git_protect
from sandbox import github_fake_objects as objects
from sandbox.githost_fake import FakeHost
from sandbox.github_fake_api import API_VERSION, GitHubApi
from sandbox.github_fake_git import BareRepo
from sandbox.github_fake_http import RecordedRequest, Reply
from sandbox.github_fake_state import (
    MERGE_METHODS,
    CheckRun,
    Permission,
    ProtectionKind,
    Pull,
    Repo,
    Review,
    Rules,
    Settle,
    Status,
    User,
    World,
)

__all__ = ["API_VERSION", "BOT_TOKEN", "REVIEWER_TOKEN", "FakeGitHub", "RecordedRequest", "Settle"]

BOT_TOKEN = "ghp_" + "B0tT0ken" * 4 + "0000"
REVIEWER_TOKEN = "ghp_" + "Rev1ewer" * 4 + "0000"
_SETTLED = Settle()  # the next GET after a change settles
SECONDARY_LIMIT = (
    "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. "
    "Please retry your request again later."
)


class FakeGitHub(FakeHost):
    """GitHub's REST API for pull-request promotions, over bare repositories on disk."""

    def __init__(
        self,
        *,
        prefix: str = "",
        settle: Settle = _SETTLED,
        rate_limit: int = 5000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`prefix`: "" serves like api.github.com, "/api/v3" like GitHub Enterprise Server."""
        self._world = World(clock, settle)
        self._api = GitHubApi(self._world, prefix=prefix, root=lambda: self.base_url, rate_limit=rate_limit)
        super().__init__(self._api.handle, self._api.who, "fake-github")
        self.bot = self.add_user("gitops-bot", BOT_TOKEN, kind="Bot")
        self.reviewer = self.add_user("reviewer", REVIEWER_TOKEN)

    @property
    def api_url(self) -> str:
        """What a client's `api_url` setting names: the root, plus `/api/v3` with that prefix."""
        return self.base_url + self._api.prefix

    # -- users and repositories -------------------------------------------------------------------------

    def add_user(
        self, login: str, token: str | None = None, *, permission: Permission = "write", kind: str = "User"
    ) -> User:
        with self._world.lock:
            user = User(login, self._world.next_id(), token or f"ghp_{login}{'0' * 36}"[:40], permission)
            user.kind = "Bot" if kind == "Bot" else "User"
            self._world.users[user.token] = user
            return user

    def add_repo(self, full_name: str, bare: Path, *, default_branch: str = "main", **flags: Any) -> Repo:
        """Serve the bare repository at `bare` (created empty if missing) as `owner/name`. `flags`:
        `allow_merge_commit`, `allow_squash_merge`, `allow_rebase_merge`, `delete_branch_on_merge`,
        `private` (Repo fields)."""
        owner, name = full_name.split("/")
        repository = BareRepo(bare) if (bare / "HEAD").exists() else BareRepo.init(bare, default_branch)
        with self._world.lock:
            repo = Repo(
                owner, name, self._world.next_id(), repository, default_branch, created_at=self._world.clock()
            )
            for key, value in flags.items():
                if not hasattr(repo, key):
                    raise TypeError(f"unknown repository flag {key!r}")
                setattr(repo, key, value)
            self._world.repos[full_name.lower()] = repo
            return repo

    def set_permission(self, full_name: str, login: str, permission: Permission) -> None:
        with self._world.lock:
            self._repo(full_name).permissions[login] = permission

    def protect(
        self,
        full_name: str,
        branch: str = "main",
        *,
        kind: ProtectionKind = "classic",
        required_approving_review_count: int = 0,
        required_checks: Sequence[str] = (),
        strict: bool = False,
        dismiss_stale_reviews_on_push: bool = False,
        require_last_push_approval: bool = False,
        allowed_merge_methods: Sequence[str] = MERGE_METHODS,
        refuse_pushes: bool = True,
    ) -> Rules:
        """Protect `branch` (a pattern): the API reports it (classic: `protected: true`; ruleset:
        `rules/branches`), pull requests into it need what the rules say, and (with
        `refuse_pushes`) `git push` to it is refused with GH006 / GH013."""
        rules = Rules(
            kind, required_approving_review_count, tuple(required_checks), strict,
            dismiss_stale_reviews_on_push, require_last_push_approval, tuple(allowed_merge_methods),
        )  # fmt: skip
        with self._world.lock:
            repo = self._repo(full_name)
            repo.protection[branch] = rules
            for pull in repo.pulls.values():
                self._world.touch(pull)
        if refuse_pushes:
            style: git_protect.Style = "github" if kind == "classic" else "github-ruleset"
            git_protect.protect(
                repo.bare.path, branch, style=style, html_url=f"{self.base_url}/{repo.full_name}"
            )
        return rules

    def unprotect(self, full_name: str, branch: str = "main") -> None:
        with self._world.lock:
            repo = self._repo(full_name)
            repo.protection.pop(branch, None)
            for pull in repo.pulls.values():
                self._world.touch(pull)
        git_protect.unprotect(repo.bare.path, branch)

    # -- CI -----------------------------------------------------------------------------------------------

    def set_check(
        self,
        full_name: str,
        sha: str,
        name: str,
        status: str = "completed",
        conclusion: str | None = "success",
    ) -> None:
        """A check run `name` on `sha` (a new run: the latest one counts)."""
        with self._world.lock:
            now = self._world.clock()
            done = now if status == "completed" else None
            run = CheckRun(self._world.next_id(), name, sha, status, conclusion if done else None, now, done)
            repo = self._repo(full_name)
            repo.checks.setdefault(sha, []).append(run)
            self._touch_head(repo, sha)

    def set_status(
        self,
        full_name: str,
        sha: str,
        context: str,
        state: str,
        description: str | None = None,
        target_url: str | None = None,
    ) -> None:
        """A commit status (`error`, `failure`, `pending`, `success`) for `context` on `sha`."""
        with self._world.lock:
            now = self._world.clock()
            repo = self._repo(full_name)
            old = repo.statuses.setdefault(sha, {}).get(context)
            created = old.created_at if old is not None else now
            status = Status(self._world.next_id(), context, state, description, target_url, created, now)
            repo.statuses[sha][context] = status
            self._touch_head(repo, sha)

    def _touch_head(self, repo: Repo, sha: str) -> None:
        for pull in repo.pulls.values():
            if pull.head_sha == sha:
                self._world.touch(pull)

    # -- what people do in the web UI ----------------------------------------------------------------------

    def approve(self, full_name: str, number: int, by: str = "reviewer", state: str = "APPROVED") -> None:
        """A review submitted on the website (APPROVED, CHANGES_REQUESTED, COMMENTED)."""
        with self._world.lock:
            _, pull = self._pull(full_name, number)
            now = self._world.clock()
            pull.reviews.append(Review(self._world.next_id(), by, "", state, pull.head_sha, now))
            self._world.touch(pull)

    def close(self, full_name: str, number: int) -> None:
        """Closed without merging, by someone outside the bot."""
        with self._world.lock:
            _, pull = self._pull(full_name, number)
            now = self._world.clock()
            pull.state, pull.closed_at, pull.updated_at = "closed", now, now

    def pull(self, full_name: str, number: int) -> dict[str, Any]:
        """The pull request as GET would show it once settled (no read of the API is spent)."""
        with self._world.lock:
            repo, pull = self._pull(full_name, number)
            state = self._world.mergeability(repo, pull) if pull.state == "open" else (None, "unknown")
            return objects.pull_request(self._api.links(), self._world, repo, pull, state)

    def pulls(self, full_name: str) -> list[Pull]:
        with self._world.lock:
            return list(self._repo(full_name).pulls.values())

    def _repo(self, full_name: str) -> Repo:
        repo = self._world.repos.get(full_name.lower())
        if repo is None:
            raise KeyError(f"no repository {full_name!r}")
        return repo

    def _pull(self, full_name: str, number: int) -> tuple[Repo, Pull]:
        repo = self._repo(full_name)
        pull = repo.pulls.get(number)
        if pull is None:
            raise KeyError(f"no pull request #{number} in {full_name}")
        self._world.refresh(repo, pull)
        return repo, pull

    # -- injected trouble ---------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 502,
        *,
        path: str = "",
        method: str | None = None,
        times: int = 1,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next `times` requests under `path` (from the root) get this answer instead: `body`
        as JSON (a dict), as text (a str), or GitHub's basic error for `status`."""
        if isinstance(body, str):
            reply = Reply.text(status, body, headers)
        else:
            payload = body if body is not None else objects.error(_phrase(status), status)
            reply = Reply.json(status, payload, headers)
        self._faults.fail_next(reply, path=path, method=method, times=times)

    def secondary_limit(
        self, *, retry_after: int | None = 60, status: int = 403, path: str = "", method: str | None = None
    ) -> None:
        """The next matching request hits a secondary rate limit (403 or 429, `retry-after` if given)."""
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        doc = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
        self.fail_next(
            status,
            path=path,
            method=method,
            body=objects.error(SECONDARY_LIMIT, status, doc),
            headers=headers,
        )

    def rate_limited(self, login: str = "gitops-bot", *, reset_in: float = 60.0) -> None:
        """`login` has spent its primary budget: 403 with `x-ratelimit-remaining: 0` until the reset."""
        self._api.exhaust(login, reset_in)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"
