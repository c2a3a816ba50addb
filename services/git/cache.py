"""`RepoCache`: one cached clone per configured repository, and every git operation the bot does.

Clones live under `root/<name>`: cloned once, then fetched before each operation so reads see
the remote as it is now. One lock per repository serialises everything done to its clone;
different repositories proceed in parallel. Every revision and path from outside is validated
(safety.py) before a git command is built, and paths always follow "--".
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType

from pydantic import SecretStr

from services.errors import UserError
from services.git import writes
from services.git.errors import GitUnavailable, RevisionNotFound
from services.git.model import LOG_FORMAT, Commit, PushResult, parse_log
from services.git.runner import Runner
from services.git.safety import HEX, commit_message, parse_revision, repo_path
from services.git.urls import same_repository
from services.metrics import Metrics
from services.settings import CommitIdentity, GitRepository
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
        self._runners = {
            r.name: Runner(
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
            git = self._sync(name)
            shas = (self._resolve(git, from_rev, *a), self._resolve(git, to_rev, *b))
            return git.git("diff", "--no-color", "--no-ext-diff", "--no-textconv", *shas, "--", *paths).out

    def log(
        self, name: str, *, path: str | None = None, ref: str | None = None, limit: int = 20
    ) -> list[Commit]:
        """Commits newest first, touching `path` if given, from `ref` (default origin/<branch>)."""
        paths = [repo_path(path)] if path is not None else []
        parsed = parse_revision(ref) if ref is not None else None
        count = max(1, min(limit, MAX_LOG))
        with self.lock(name):
            git = self._sync(name)
            start = git.origin_ref if ref is None or parsed is None else self._resolve(git, ref, *parsed)
            out = git.git("log", "-z", LOG_FORMAT, f"--max-count={count}", start, "--", *paths).out
            return parse_log(out)

    def edit_and_push(
        self,
        name: str,
        edit: Callable[[Path], Sequence[str]],
        *,
        author: CommitIdentity,
        message: str,
        trailers: Mapping[str, str] = _NO_TRAILERS,
        max_attempts: int = 3,
    ) -> PushResult:
        """Apply `edit` to a fresh checkout of the branch, commit and push; re-apply on a race.

        `edit(worktree)` changes files and returns the repo-relative paths it changed; only those
        are committed (UserError "nothing to change" if they end up identical). The commit's
        author is `author`, its committer the repository's `commit_identity` (the bot); the
        message is `message`, a blank line and `Key: value` trailer lines. When the push is
        refused because the branch moved: if the new commits touched none of our paths, the edit
        is re-run on the new tip (up to `max_attempts` in all), else GitConflict names the paths
        and the commit. On any failure the clone is reset to origin/<branch>; nothing is pushed.
        """
        text = commit_message(message, trailers)
        with self.lock(name):
            git = self._sync(name)
            return writes.edit_and_push(git, edit, author=author, message=text, max_attempts=max_attempts)

    def revert(
        self,
        name: str,
        sha: str,
        *,
        author: CommitIdentity,
        message: str,
        trailers: Mapping[str, str] = _NO_TRAILERS,
    ) -> PushResult:
        """Push a commit undoing `sha` (a commit on the branch; for a merge, against its first
        parent). GitConflict if later commits changed the same lines."""
        parsed = parse_revision(sha)
        text = commit_message(message, trailers)
        with self.lock(name):
            git = self._sync(name)
            full = self._resolve(git, sha, *parsed)
            edit = writes.revert_edit(git, full)
            return writes.edit_and_push(git, edit, author=author, message=text, max_attempts=3)

    def restore(
        self,
        name: str,
        path: str,
        to_rev: str,
        *,
        author: CommitIdentity,
        message: str,
        trailers: Mapping[str, str] = _NO_TRAILERS,
    ) -> PushResult:
        """Push a commit making `path` (file or directory) what it was at `to_rev`."""
        checked = repo_path(path)
        parsed = parse_revision(to_rev)
        text = commit_message(message, trailers)
        with self.lock(name):
            git = self._sync(name)
            full = self._resolve(git, to_rev, *parsed)
            edit = writes.restore_edit(git, checked, full)
            return writes.edit_and_push(git, edit, author=author, message=text, max_attempts=3)

    # -- internals; the caller holds the lock ------------------------------------------------

    def _unknown(self, name: str) -> UserError:
        known = ", ".join(f"`{n}`" for n in sorted(self._repos)) or "none"
        return UserError(f"No repository {display_value(name)} is configured.", hint=f"Configured: {known}.")

    def _sync(self, name: str) -> Runner:
        """Clone or fetch, so the remote-tracking refs are current."""
        git = self._runners.get(name)
        if git is None:
            raise self._unknown(name)
        if self._is_clone(git):
            git.fetch()
        else:
            self._clone(git)
        if git.git("rev-parse", "--verify", "--quiet", git.origin_ref, check=False).code != 0:
            raise GitUnavailable(name, f"branch `{git.repo.branch}` does not exist on the remote")
        return git

    def _is_clone(self, git: Runner) -> bool:
        if not (git.path / ".git").is_dir():
            return False
        top = git.git("rev-parse", "--show-toplevel", check=False)
        url = git.git("config", "--get", "remote.origin.url", check=False)
        return (
            top.code == 0 and Path(top.out.strip()) == git.path.resolve() and url.out.strip() == git.repo.url
        )

    def _clone(self, git: Runner) -> None:
        """Clone into a temporary directory, then move it into place: never a half clone."""
        self._root.mkdir(parents=True, exist_ok=True)
        name = git.name
        for stale in [git.path, *self._root.glob(f".{name}.clone-*")]:  # broken, moved, or a crash's
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.clone-", dir=self._root))
        try:
            git.network(
                "clone", "clone", "--quiet", f"--branch={git.repo.branch}", "--origin=origin",
                "--", git.repo.url, str(tmp), cwd=self._root,
            )  # fmt: skip
            tmp.rename(git.path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _resolve(self, git: Runner, rev: str, candidate: str, is_sha: bool) -> str:
        tries = [candidate.lower()] if is_sha or HEX.fullmatch(candidate) else []
        if not is_sha:
            short = candidate.removeprefix("refs/heads/")
            tries += [f"refs/remotes/origin/{short}", f"refs/tags/{candidate}", f"refs/remotes/{candidate}"]
            if candidate.startswith(("refs/remotes/", "refs/tags/")):
                tries.append(candidate)
        for i, attempt in enumerate(tries):
            found = git.git(
                "rev-parse", "--verify", "--quiet", "--end-of-options", f"{attempt}^{{commit}}", check=False
            )
            if found.code != 0:
                continue
            sha = found.out.strip()
            # A SHA must be on the remote (a branch or tag), not a leftover of a refused push.
            if i > 0 or self._published(git, sha):
                return sha
        raise RevisionNotFound(
            f"Unknown revision {display_value(rev)} in repository `{git.name}`"
            + (" (or the short SHA is ambiguous)." if HEX.fullmatch(candidate) and not is_sha else "."),
            hint="Use a commit SHA that the app's `history` shows, a branch or a tag.",
        )

    @staticmethod
    def _published(git: Runner, sha: str) -> bool:
        refs = git.git(
            "for-each-ref", "--count=1", f"--contains={sha}", "refs/remotes/origin", "refs/tags", check=False
        )
        return refs.code == 0 and bool(refs.out.strip())
