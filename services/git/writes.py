"""Commit-and-push with the race handled, and the edits behind revert and restore.

The caller holds the repository's lock and has just fetched. Every attempt starts from a clean
checkout of origin/<branch>; whatever happens, the clone is put back there at the end, so a
failed or refused change leaves nothing behind (locally or on the remote). Working-tree and
index commands run as `repo.git.<command>(…)` with constant options and paths after "--";
commits, parents and ancestry come from GitPython's objects; the push from `Clone.push`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from git import Repo
from git.exc import GitCommandError

from services.errors import UserError
from services.git.clone import Clone
from services.git.errors import GitConflict, GitError
from services.git.model import PushResult, commit_of
from services.git.runner import output_of
from services.git.safety import repo_paths
from services.settings.model import CommitIdentity

Edit = Callable[[Path], Sequence[str]]


def _names(output: str) -> list[str]:
    """The paths of a `--name-only -z` listing."""
    return [p for p in output.split("\0") if p]


def _staged(repo: Repo) -> list[str]:
    """The files whose index version differs from HEAD."""
    return _names(repo.git.diff("--cached", "--name-only", "-z", "HEAD"))


def reset_to(clone: Clone, sha: str) -> None:
    """Check the branch out at `sha`, discarding every local change, untracked file and
    in-progress revert."""
    with clone.mapped():
        git = clone.repo.git
        git.checkout("-q", "-f", "-B", clone.config.branch, sha)
        git.reset("-q", "--hard", sha)  # also clears REVERT_HEAD and friends
        git.clean("-q", "-ffdx")


def _stage(clone: Clone, paths: list[str]) -> tuple[str, ...]:
    """Stage exactly `paths` (additions, edits, deletions); return the files that differ from HEAD."""
    repo = clone.repo
    # `git add -A -- p` fails for a path that is neither in the index nor on disk (already
    # removed with `git rm`); those have nothing left to stage.
    present = [
        p
        for p in paths
        if (clone.path / p).exists() or (clone.path / p).is_symlink() or repo.git.ls_files("--", p)
    ]
    if present:
        repo.git.add("-A", "--", *present)
    return tuple(_staged(repo))


def _commit(clone: Clone, author: CommitIdentity, message: str) -> str:
    bot = clone.config.commit_identity
    # Author: who asked for the change; committer: the bot, which made and pushed it.
    env = {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": bot.name,
        "GIT_COMMITTER_EMAIL": bot.email,
    }
    # The message goes in on stdin (-F -). --cleanup=whitespace keeps lines starting with "#"
    # (e.g. "#123"), which "strip" would drop.
    with tempfile.TemporaryFile() as stdin:
        stdin.write(message.encode("utf-8"))
        stdin.seek(0)
        clone.repo.git.commit(
            "-q", "--no-verify", "--no-gpg-sign", "--cleanup=whitespace", "-F", "-", istream=stdin, env=env
        )
    return clone.rev_parse("HEAD")


def _conflict(clone: Clone, base: str, head: str, paths: list[str]) -> GitConflict | None:
    repo = clone.repo
    touched = _names(repo.git.diff("--name-only", "-z", base, head, "--", *paths))
    if not touched:
        return None
    found = next(repo.iter_commits(f"{base}..{head}", paths=touched, max_count=1), None)
    by = commit_of(found) if found is not None else None
    shown = ", ".join(f"`{p}`" for p in touched[:5]) + (" …" if len(touched) > 5 else "")
    who = f" in {by.short} ({by.subject}) by {by.author_name}" if by else ""
    return GitConflict(
        f"{shown} changed on `{clone.config.branch}`{who} while this change was being made; "
        "nothing was pushed.",
        paths=touched,
        commit=by.short if by else None,
        hint="Look at the new commit, then run the command again if it still makes sense.",
    )


def edit_and_push(
    clone: Clone,
    edit: Edit,
    *,
    author: CommitIdentity,
    message: str,
    max_attempts: int,
    to_branch: str | None = None,
) -> PushResult:
    """See RepoCache.edit_and_push. `message` already carries its trailers."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    branch = clone.config.branch
    if to_branch is not None:
        try:
            return _edit_and_propose(clone, edit, author=author, message=message, to_branch=to_branch)
        finally:
            with suppress(GitError):
                reset_to(clone, clone.rev_parse(clone.origin_ref))
    try:
        for attempt in range(1, max_attempts + 1):
            base = clone.rev_parse(clone.origin_ref)
            reset_to(clone, base)
            paths = repo_paths(edit(clone.path))
            with clone.mapped():
                changed = _stage(clone, paths) if paths else ()
                if not changed:
                    raise UserError("nothing to change", hint=f"`{branch}` already has this content.")
                sha = _commit(clone, author, message)
            if clone.push():
                return PushResult(sha=sha, branch=branch, attempts=attempt, changed_paths=changed)
            clone.fetch()
            with clone.mapped():
                conflict = _conflict(clone, base, clone.rev_parse(clone.origin_ref), paths)
            if conflict is not None:
                raise conflict
        raise GitConflict(
            f"`{branch}` kept moving: {max_attempts} attempts were overtaken by other pushes; "
            "nothing was pushed.",
            hint="Try again in a moment.",
        )
    finally:
        # Best effort: a failure here must not hide the original error; the next call resets too.
        with suppress(GitError):
            reset_to(clone, clone.rev_parse(clone.origin_ref))


def _edit_and_propose(
    clone: Clone, edit: Edit, *, author: CommitIdentity, message: str, to_branch: str
) -> PushResult:
    """The edit committed on the base branch's head and pushed (overwriting) to `to_branch`; the
    base branch is not touched, so nothing can race with it here."""
    base = clone.rev_parse(clone.origin_ref)
    reset_to(clone, base)
    paths = repo_paths(edit(clone.path))
    with clone.mapped():
        changed = _stage(clone, paths) if paths else ()
        if not changed:
            raise UserError("nothing to change", hint=f"`{clone.config.branch}` already has this content.")
        sha = _commit(clone, author, message)
    if not clone.push(to_branch):  # a forced push is never a race; git said no all the same
        raise GitError(f"push to {to_branch} was refused as non-fast-forward despite forcing")
    return PushResult(sha=sha, branch=to_branch, attempts=1, changed_paths=changed)


def revert_edit(clone: Clone, sha: str) -> Edit:
    """An edit that reverts `sha` (a full SHA on the branch) on top of the current checkout."""

    def edit(_: Path) -> Sequence[str]:
        short, branch = sha[:8], clone.config.branch
        with clone.mapped():
            repo = clone.repo
            commit = repo.commit(sha)
            if not repo.is_ancestor(commit, repo.head.commit):
                raise UserError(f"Commit {short} is not on `{branch}`; only its commits can be undone.")
            mainline = ["-m", "1"] if len(commit.parents) > 1 else []  # a merge: undo what it brought in
            try:
                repo.git.revert("--no-commit", "--no-edit", *mainline, sha)
            except GitCommandError as exc:
                unmerged = _names(repo.git.diff("--name-only", "-z", "--diff-filter=U"))
                if not unmerged:
                    raise GitError(f"git revert failed: {clone.summary(output_of(exc))}") from None
                raise GitConflict(
                    f"Commit {short} cannot be reverted cleanly: later commits changed the same lines in "
                    + ", ".join(f"`{p}`" for p in unmerged[:5])
                    + ". Nothing was pushed.",
                    paths=unmerged,
                    commit=short,
                    hint="Revert the later commits first, or fix the files by hand.",
                ) from None
            changed = _staged(repo)
        if not changed:
            raise UserError(f"Reverting {short} changes nothing on `{branch}` (already reverted?).")
        return changed

    return edit


def _in_tree(repo: Repo, sha: str, path: str) -> bool:
    """Whether commit `sha` has `path` (a file or a directory)."""
    try:
        repo.commit(sha).tree.join(path)
    except KeyError:
        return False
    return True


def restore_edit(clone: Clone, path: str, sha: str) -> Edit:
    """An edit that makes `path` (file or directory) what it was at `sha`, deleting it if it did
    not exist then."""

    def edit(_: Path) -> Sequence[str]:
        with clone.mapped():
            repo = clone.repo
            existed = _in_tree(repo, sha, path)
            exists = bool(repo.git.ls_files("--", path))
            if not existed and not exists:
                raise UserError(f"`{path}` exists neither at {sha[:8]} nor on `{clone.config.branch}`.")
            repo.git.rm("-r", "-q", "--ignore-unmatch", "--", path)
            if existed:
                repo.git.checkout(sha, "--", path)
        return [path]

    return edit
