"""`RepoCache`: one cached clone per configured repository, and every git operation the bot does.

Clones live under `root/<name>` (clone.py: a GitPython `Repo` each, kept open): cloned once, then
fetched before each operation so reads see the remote as it is now. One lock per repository
serialises everything done to its clone; different repositories proceed in parallel. Every
revision and path from outside is validated (safety.py) before GitPython sees it; revisions are
resolved by GitPython's ref and object lookup, history comes from `Repo.iter_commits`, and paths
always follow "--".
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType

from git.exc import BadName, BadObject, GitCommandError
from git.objects import Commit as GitCommit
from git.objects import TagObject
from pydantic import SecretStr

from services.errors import UserError
from services.git import writes
from services.git.clone import Clone
from services.git.errors import GitUnavailable, RevisionNotFound
from services.git.model import Commit, PushResult, commit_of
from services.git.safety import HEX, commit_message, parse_revision, repo_path
from services.git.urls import same_repository
from services.metrics import Metrics
from services.settings.model import CommitIdentity, GitRepository
from services.validation import display_value

_NO_TRAILERS: Mapping[str, str] = MappingProxyType({})
MAX_LOG = 1000


class RepoCache:
    """Cached working copies of the configured repositories; thread-safe."""

    def __init__(
        self,
        root: Path,
        repositories: Sequence[GitRepository],
        credentials: Mapping[str, SecretStr],
        *,
        metrics: Metrics | None = None,
        network_timeout: float = 120.0,
        lock_timeout: float = 300.0,
    ) -> None:
        self._root = root
        self._repos = {r.name: r for r in repositories}
        self._clones = {
            r.name: Clone(
                r, root / r.name, credentials.get(r.name), metrics=metrics, network_timeout=network_timeout
            )
            for r in repositories
        }
        # Re-entrant, so a caller may hold lock(name) around several calls (resolve, then revert)
        # and see one consistent clone; other threads wait.
        self._locks = {name: threading.RLock() for name in self._repos}
        self._lock_timeout = lock_timeout

    def repository_for_url(self, url: str) -> GitRepository | None:
        """The configured repository a Flux `spec.url` points at, however either is spelled."""
        return next((r for r in self._repos.values() if same_repository(r.url, url)), None)

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the lock of repository `name` (every operation takes it; re-entrant per thread)."""
        lock = self._locks.get(name)
        if lock is None:
            raise self._unknown(name)
        if not lock.acquire(timeout=self._lock_timeout):
            raise GitUnavailable(name, "busy with another change for too long; try again in a moment")
        try:
            yield
        finally:
            lock.release()

    def ensure(self, name: str) -> Path:
        """The clone of `name`, cloned on first use and fetched on every later one."""
        with self.lock(name):
            return self._sync(name).path

    def resolve(self, name: str, rev: str) -> str:
        """The full SHA of `rev`: a SHA or prefix, a branch or tag, or a Flux revision
        (`main@sha1:<sha>`, `sha1:<sha>`, `main/<sha>`). RevisionNotFound if unknown."""
        parsed = parse_revision(rev)
        with self.lock(name):
            return self._resolve(self._sync(name), rev, *parsed)

    def diff(self, name: str, from_rev: str, to_rev: str, path: str | None = None) -> str:
        """Unified diff between two revisions, limited to `path` when given ("" when equal)."""
        paths = [repo_path(path)] if path is not None else []
        a, b = parse_revision(from_rev), parse_revision(to_rev)
        with self.lock(name):
            clone = self._sync(name)
            shas = (self._resolve(clone, from_rev, *a), self._resolve(clone, to_rev, *b))
            with clone.mapped():
                out = clone.repo.git.diff(
                    "--no-color", "--no-ext-diff", "--no-textconv", *shas, "--", *paths,
                    stdout_as_string=False, strip_newline_in_stdout=False,
                )  # fmt: skip
            return bytes(out).decode("utf-8", "replace")

    def log(
        self, name: str, *, path: str | None = None, ref: str | None = None, limit: int = 20
    ) -> list[Commit]:
        """Commits newest first, touching `path` if given, from `ref` (default origin/<branch>)."""
        paths = [repo_path(path)] if path is not None else []
        parsed = parse_revision(ref) if ref is not None else None
        count = max(1, min(limit, MAX_LOG))
        with self.lock(name):
            clone = self._sync(name)
            start = clone.origin_ref if ref is None or parsed is None else self._resolve(clone, ref, *parsed)
            with clone.mapped():
                return [commit_of(c) for c in clone.repo.iter_commits(start, paths=paths, max_count=count)]

    def edit_and_push(
        self,
        name: str,
        edit: Callable[[Path], Sequence[str]],
        *,
        author: CommitIdentity,
        message: str,
        trailers: Mapping[str, str] = _NO_TRAILERS,
        max_attempts: int = 3,
        to_branch: str | None = None,
    ) -> PushResult:
        """Apply `edit` to a fresh checkout of the branch, commit and push; re-apply on a race.

        `edit(worktree)` changes files and returns the repo-relative paths it changed; only those
        are committed (UserError "nothing to change" if they end up identical). The commit's
        author is `author`, its committer the repository's `commit_identity` (the bot); the
        message is `message`, a blank line and `Key: value` trailer lines. When the push is
        refused because the branch moved: if the new commits touched none of our paths, the edit
        is re-run on the new tip (up to `max_attempts` in all), else GitConflict names the paths
        and the commit. On any failure the clone is reset to origin/<branch>; nothing is pushed.

        `to_branch`: the commit is still made on the branch's head, but pushed to
        `refs/heads/<to_branch>` (a pull request's head, overwritten on a retry); the branch
        itself is not touched.
        """
        text = commit_message(message, trailers)
        if to_branch is not None:
            to_branch = branch_name(to_branch)
        with self.lock(name):
            clone = self._sync(name)
            return writes.edit_and_push(
                clone, edit, author=author, message=text, max_attempts=max_attempts, to_branch=to_branch
            )

    def revert(
        self,
        name: str,
        sha: str,
        *,
        author: CommitIdentity,
        message: str,
        trailers: Mapping[str, str] = _NO_TRAILERS,
        to_branch: str | None = None,
    ) -> PushResult:
        """Push a commit undoing `sha` (a commit on the branch; for a merge, against its first
        parent). GitConflict if later commits changed the same lines. `to_branch`: as in
        `edit_and_push` (a pull request's head; the branch itself is not touched)."""
        parsed = parse_revision(sha)
        text = commit_message(message, trailers)
        target = branch_name(to_branch) if to_branch is not None else None
        with self.lock(name):
            clone = self._sync(name)
            full = self._resolve(clone, sha, *parsed)
            edit = writes.revert_edit(clone, full)
            return writes.edit_and_push(
                clone, edit, author=author, message=text, max_attempts=3, to_branch=target
            )

    def restore(
        self,
        name: str,
        path: str,
        to_rev: str,
        *,
        author: CommitIdentity,
        message: str,
        trailers: Mapping[str, str] = _NO_TRAILERS,
        to_branch: str | None = None,
    ) -> PushResult:
        """Push a commit making `path` (file or directory) what it was at `to_rev` (`to_branch`: as
        in `edit_and_push`)."""
        checked = repo_path(path)
        parsed = parse_revision(to_rev)
        text = commit_message(message, trailers)
        target = branch_name(to_branch) if to_branch is not None else None
        with self.lock(name):
            clone = self._sync(name)
            full = self._resolve(clone, to_rev, *parsed)
            edit = writes.restore_edit(clone, checked, full)
            return writes.edit_and_push(
                clone, edit, author=author, message=text, max_attempts=3, to_branch=target
            )

    def close(self) -> None:
        """End the git processes kept for the clones (GitPython's persistent `cat-file`), e.g. at
        shutdown; a clone busy for more than a few seconds is left to exit with the process. The
        cache stays usable: the next operation reopens the clone."""
        for name, clone in self._clones.items():
            lock = self._locks[name]
            if lock.acquire(timeout=5):
                try:
                    clone.close()
                finally:
                    lock.release()

    # -- internals; the caller holds the lock ------------------------------------------------

    def _unknown(self, name: str) -> UserError:
        known = ", ".join(f"`{n}`" for n in sorted(self._repos)) or "none"
        return UserError(f"No repository {display_value(name)} is configured.", hint=f"Configured: {known}.")

    def _sync(self, name: str) -> Clone:
        """Clone or fetch, so the remote-tracking refs are current."""
        clone = self._clones.get(name)
        if clone is None:
            raise self._unknown(name)
        clone.sync()
        return clone

    def _resolve(self, clone: Clone, rev: str, candidate: str, is_sha: bool) -> str:
        tries = [candidate.lower()] if is_sha or HEX.fullmatch(candidate) else []
        if not is_sha:
            short = candidate.removeprefix("refs/heads/")
            tries += [f"refs/remotes/origin/{short}", f"refs/tags/{candidate}", f"refs/remotes/{candidate}"]
            if candidate.startswith(("refs/remotes/", "refs/tags/")):
                tries.append(candidate)
        with clone.mapped():
            for i, attempt in enumerate(tries):
                sha = _commit_sha(clone, attempt)
                # A SHA must be on the remote (a branch or tag), not a leftover of a refused push.
                if sha is not None and (i > 0 or _published(clone, sha)):
                    return sha
        raise RevisionNotFound(
            f"Unknown revision {display_value(rev)} in repository `{clone.name}`"
            + (" (or the short SHA is ambiguous)." if HEX.fullmatch(candidate) and not is_sha else "."),
            hint="Use a commit SHA that the app's `history` shows, a branch or a tag.",
        )


_BRANCH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}")


def branch_name(name: str) -> str:
    """`name` if git takes it as a branch of ours (a conservative subset of check-ref-format)."""
    bad = ("..", "//", "/.", ".lock", "@{")
    if not _BRANCH.fullmatch(name) or any(b in name for b in bad) or name.endswith(("/", ".")):
        raise UserError(f"{display_value(name)} is not a branch name the bot pushes to.")
    return name


def _commit_sha(clone: Clone, name: str) -> str | None:
    """The commit `name` (a SHA or prefix, or a ref name, validated) names, tags peeled; None if
    none. GitPython resolves it like `git rev-parse`: refs and objects read in-process."""
    try:
        found = clone.repo.rev_parse(name)
    except (BadName, BadObject, ValueError):
        return None
    while isinstance(found, TagObject):
        found = found.object
    return found.hexsha if isinstance(found, GitCommit) else None


def _published(clone: Clone, sha: str) -> bool:
    """Whether a remote branch or a tag contains `sha` (no model for --contains in GitPython)."""
    try:
        return bool(
            clone.repo.git.for_each_ref("--count=1", f"--contains={sha}", "refs/remotes/origin", "refs/tags")
        )
    except GitCommandError:
        return False
