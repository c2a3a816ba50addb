"""Reading files at a commit of a cached clone, and the unified diff a promotion shows.

`RepoCache` has no "read a file at a revision"; this adds it on top of the clone `ensure` keeps
fresh, through GitPython: the clone opened as the git service's `SafeRepo` (its environment, its
deadlines), refs read from the ref files, tree entries and blobs over GitPython's one persistent
`cat-file --batch` process, paths validated first, and revisions that are always full SHAs we
resolved ourselves or our own ref names, so nothing a user typed reaches git.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from git import Repo
from git.compat import safe_decode
from git.exc import CommandError, ODBError
from git.exc import GitError as GitPythonError
from git.objects.fun import tree_entries_from_data
from git.refs import SymbolicReference

from services.errors import UserError
from services.git import GitError, GitUnavailable, RepoCache
from services.git.env import base_env
from services.git.runner import CommandTimedOut, Policy, SafeRepo, stderr_of, subcommand
from services.git.safety import FULL_SHA, repo_path
from services.settings.model import GitRepository

_TIMEOUT = 60.0
_NO_NEWLINE = "\\ No newline at end of file\n"
_REGULAR_MODES = (0o100644, 0o100755)


@dataclass(frozen=True)
class Snapshot:
    """Files of one repository as of one commit (None for a file that does not exist there)."""

    repository: str
    sha: str
    files: Mapping[str, str | None]


@contextmanager
def _opened(clone: Path) -> Iterator[Repo]:
    """The clone as a git.Repo; GitPython's errors as GitError (bounded, first line only)."""
    policy = Policy(env={**base_env(), "GIT_CEILING_DIRECTORIES": str(clone.parent)}, local_timeout=_TIMEOUT)
    try:
        with SafeRepo(clone, policy=policy) as repo:
            yield repo
    except CommandTimedOut as exc:
        raise GitError(f"git {subcommand(exc.command)} timed out in {clone.name}") from None
    except CommandError as exc:
        message = stderr_of(exc).strip().splitlines()[-1:] or ["no message"]
        what = subcommand(exc.command)
        raise GitError(f"git {what} failed in the clone of {clone.name}: {message[0][:300]}") from None
    except (GitPythonError, ODBError) as exc:
        raise GitError(f"cannot read the clone of {clone.name}: {type(exc).__name__}") from None


def head(clone: Path, ref: str) -> str:
    """The commit SHA `ref` (one of our own ref names, or HEAD) points at in `clone`, read by
    GitPython from the ref files (no process)."""
    with _opened(clone) as repo:
        try:
            sha = SymbolicReference.dereference_recursive(repo, ref)
        except ValueError:
            sha = ""
    if not FULL_SHA.fullmatch(sha):
        raise GitError(f"cannot resolve {ref} in the clone of {clone.name}")
    return sha


def read_files(clone: Path, sha: str, paths: Sequence[str]) -> dict[str, str | None]:
    """The UTF-8 text of each of `paths` at commit `sha` (None for a file that does not exist
    there). One git process whatever the number of paths: GitPython's persistent `cat-file
    --batch`, which finds each file's directory itself (`<sha>:<dir>`), so only that directory's
    entries are parsed here, never a wide tree like `apps/` on the way."""
    if not FULL_SHA.fullmatch(sha):
        raise ValueError("read_files takes a full SHA")
    checked = list(dict.fromkeys(repo_path(p) for p in paths))
    texts: dict[str, str | None] = {}
    with _opened(clone) as repo:
        if _object(repo, sha)[0] != "commit":
            raise GitError(f"commit {sha[:8]} is not in the clone of {clone.name}")
        directories: dict[str, dict[str, tuple[bytes, int]]] = {}
        for name in checked:
            parent, _, base = name.rpartition("/")
            if parent not in directories:
                kind, data = _object(repo, f"{sha}:{parent}")
                entries = tree_entries_from_data(data) if kind == "tree" else []
                directories[parent] = {entry: (binsha, mode) for binsha, mode, entry in entries}
            found = directories[parent].get(base)
            if found is None:
                texts[name] = None
                continue
            binsha, mode = found
            if mode not in _REGULAR_MODES:  # a directory, a symlink, a submodule
                raise UserError(f"`{name}` is not a regular file in the repository; it cannot be promoted.")
            try:
                texts[name] = repo.odb.stream(binsha).read().decode("utf-8")
            except UnicodeDecodeError:
                raise UserError(f"`{name}` is not UTF-8 text; it cannot be promoted.") from None
    return texts


def _object(repo: Repo, name: str) -> tuple[str, bytes]:
    """(type, content) of the object `name` (a SHA or `<sha>:<path>`); ("missing", b"") if none."""
    try:
        _, kind, _, stream = repo.git.stream_object_data(name)
    except ValueError:  # GitPython's word for "git cat-file says: missing", or for a dead cat-file
        batch = repo.git.cat_file_all
        if batch is None or batch.proc is None or batch.proc.poll() is not None:
            raise GitError("git cat-file stopped while reading the clone") from None
        return "missing", b""
    # Annotated as str, the type comes as cat-file wrote it: bytes.
    return safe_decode(kind), stream.read()


def snapshot(repos: RepoCache, repository: GitRepository, paths: Sequence[str]) -> Snapshot:
    """Fetch the cached clone of `repository` and read `paths` at the head of its branch.

    The repository's lock is held throughout, so the files come from the commit just fetched.
    """
    with repos.lock(repository.name):
        clone = repos.ensure(repository.name)
        try:
            sha = head(clone, f"refs/remotes/origin/{repository.branch}")
            return Snapshot(repository.name, sha, read_files(clone, sha, paths))
        except GitError as exc:
            # The clone was usable a moment ago (ensure succeeded); treat a failure as transient.
            raise GitUnavailable(repository.name, str(exc)) from exc


def unified_diff(path: str, before: str, after: str) -> str:
    """A git-style unified diff of one file (`a/` and `b/` prefixes), "" when identical."""
    if before == after:
        return ""
    lines = difflib.unified_diff(_lines(before), _lines(after), fromfile=f"a/{path}", tofile=f"b/{path}", n=3)
    out = [f"diff --git a/{path} b/{path}\n"]
    for line in lines:
        # difflib leaves the last line of a file without a newline as is; git marks it instead.
        out.append(line if line.endswith("\n") else line + "\n" + _NO_NEWLINE)
    return "".join(out)


def _lines(text: str) -> list[str]:
    # Split on "\n" only: splitlines() would also split on "\r", "\x0b", "\x1c"… and the diff
    # would no longer be the file's lines.
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


def digest(diff: str) -> str:
    return hashlib.sha256(diff.encode("utf-8")).hexdigest()
