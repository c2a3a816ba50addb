"""Reading files at a commit of a cached clone, and the unified diff a promotion shows.

`RepoCache` has no "read a file at a revision"; this adds it on top of the clone `ensure` keeps
fresh, with the same hygiene as the git service: argument lists, the git service's environment
(no inherited GIT_DIR & co., literal pathspecs), paths validated and after "--", and revisions
that are always full SHAs we resolved ourselves, so nothing a user typed can become an option.
"""

from __future__ import annotations

import difflib
import hashlib
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.errors import UserError
from services.git import GitError, GitUnavailable, RepoCache
from services.git.runner import base_env
from services.git.safety import FULL_SHA, repo_path
from services.settings import GitRepository

_TIMEOUT = 60.0
_NO_NEWLINE = "\\ No newline at end of file\n"
_REGULAR_MODES = ("100644", "100755")


@dataclass(frozen=True)
class Snapshot:
    """Files of one repository as of one commit (None for a file that does not exist there)."""

    repository: str
    sha: str
    files: Mapping[str, str | None]


def _git(clone: Path, *argv: str, stdin: bytes | None = None) -> bytes:
    env = {**base_env(), "GIT_CEILING_DIRECTORIES": str(clone.parent)}
    try:
        done = subprocess.run(
            ["git", *argv],
            cwd=clone,
            env=env,
            input=stdin,
            capture_output=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {argv[0]} timed out in {clone.name}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise GitError(f"git {argv[0]} failed in the clone of {clone.name}: {message[0][:300]}")
    return done.stdout


def head(clone: Path, ref: str) -> str:
    """The commit SHA `ref` (one of our own ref names) points at in `clone`."""
    sha = _git(clone, "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}").decode().strip()
    if not FULL_SHA.fullmatch(sha):
        raise GitError(f"cannot resolve {ref} in the clone of {clone.name}")
    return sha


def read_files(clone: Path, sha: str, paths: Sequence[str]) -> dict[str, str | None]:
    """The UTF-8 text of each of `paths` at commit `sha` (None for a file that does not exist
    there). Two git processes whatever the number of paths: one listing, one batch read."""
    if not FULL_SHA.fullmatch(sha):
        raise ValueError("read_files takes a full SHA")
    checked = list(dict.fromkeys(repo_path(p) for p in paths))
    listing = _git(clone, "ls-tree", "-z", "--full-tree", sha, "--", *checked).decode("utf-8", "replace")
    oids: dict[str, str] = {}
    for entry in filter(None, listing.split("\0")):
        meta, _, name = entry.partition("\t")
        mode, kind, oid = meta.split(" ")
        if kind != "blob" or mode not in _REGULAR_MODES:
            raise UserError(f"`{name}` is not a regular file in the repository; it cannot be promoted.")
        oids[name] = oid
    blobs = _cat_blobs(clone, list(oids.values())) if oids else {}
    texts: dict[str, str | None] = {}
    for name in checked:
        data = blobs.get(oids[name]) if name in oids else None
        try:
            texts[name] = None if data is None else data.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"`{name}` is not UTF-8 text; it cannot be promoted.") from None
    return texts


def _cat_blobs(clone: Path, oids: Sequence[str]) -> dict[str, bytes]:
    """`git cat-file --batch` output parsed: "<oid> blob <size>\\n<content>\\n" per object."""
    out = _git(clone, "cat-file", "--batch", stdin="".join(f"{o}\n" for o in oids).encode())
    blobs: dict[str, bytes] = {}
    at = 0
    for _ in oids:
        line_end = out.index(b"\n", at)
        oid, kind, size = out[at:line_end].decode("ascii").split(" ")
        if kind != "blob":
            raise GitError(f"object {oid} is a {kind}, not a blob")
        start = line_end + 1
        blobs[oid] = out[start : start + int(size)]
        at = start + int(size) + 1
    return blobs


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
