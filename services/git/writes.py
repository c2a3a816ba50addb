"""Commit-and-push with the race handled, and the edits behind revert and restore.

The caller holds the repository's lock and has just fetched. Every attempt starts from a clean
checkout of origin/<branch>; whatever happens, the clone is put back there at the end, so a
failed or refused change leaves nothing behind (locally or on the remote).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from services.errors import UserError
from services.git.errors import GitConflict, GitError, GitUnavailable
from services.git.model import LOG_FORMAT, Commit, PushResult, parse_log
from services.git.runner import Runner
from services.git.safety import repo_paths
from services.settings import CommitIdentity

Edit = Callable[[Path], Sequence[str]]
_RACE_MARKERS = ("(fetch first)", "(non-fast-forward)")


def reset_to(git: Runner, sha: str) -> None:
    """Check the branch out at `sha`, discarding every local change, untracked file and
    in-progress revert."""
    git.git("checkout", "-q", "-f", "-B", git.repo.branch, sha)
    git.git("reset", "-q", "--hard", sha)  # also clears REVERT_HEAD and friends
    git.git("clean", "-q", "-ffdx")


def _nul_list(text: str) -> list[str]:
    return [p for p in text.split("\0") if p]


def _stage(git: Runner, paths: list[str]) -> tuple[str, ...]:
    """Stage exactly `paths` (additions, edits, deletions); return the files that differ from HEAD."""
    # `git add -A -- p` fails for a path that is neither in the index nor on disk (already
    # removed with `git rm`); those have nothing left to stage.
    present = [
        p
        for p in paths
        if (git.path / p).exists() or (git.path / p).is_symlink() or git.git("ls-files", "--", p).out
    ]
    if present:
        git.git("add", "-A", "--", *present)
    return tuple(_nul_list(git.git("diff", "--cached", "--name-only", "-z", "HEAD").out))


def _commit(git: Runner, author: CommitIdentity, message: str) -> str:
    bot = git.repo.commit_identity
    # Author: who asked for the change; committer: the bot, which made and pushed it.
    env = {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": bot.name,
        "GIT_COMMITTER_EMAIL": bot.email,
    }
    # --cleanup=whitespace keeps lines starting with "#" (e.g. "#123"), which "strip" would drop.
    git.git(
        "commit", "-q", "--no-verify", "--no-gpg-sign", "--cleanup=whitespace", "-F", "-",
        stdin=message, env=env,
    )  # fmt: skip
    return git.rev_parse("HEAD")


def _push(git: Runner) -> bool:
    """True when pushed, False when the remote moved (non-fast-forward); GitUnavailable otherwise."""
    branch = git.repo.branch
    result = git.network(
        "push", "push", "--porcelain", "--no-verify", "origin", f"HEAD:refs/heads/{branch}", check=False
    )
    if result.code == 0:
        return True
    rejected = [line for line in result.out.splitlines() if line.startswith("!")]
    if rejected and all(any(m in line for m in _RACE_MARKERS) for line in rejected):
        return False
    raise GitUnavailable(git.name, f"push to {branch} refused: {git.summary(result.out + result.err)}")


def _conflict(git: Runner, base: str, head: str, paths: list[str]) -> GitConflict | None:
    touched = _nul_list(git.git("diff", "--name-only", "-z", base, head, "--", *paths).out)
    if not touched:
        return None
    found = parse_log(git.git("log", "-z", LOG_FORMAT, "-n", "1", f"{base}..{head}", "--", *touched).out)
    by: Commit | None = found[0] if found else None
    shown = ", ".join(f"`{p}`" for p in touched[:5]) + (" …" if len(touched) > 5 else "")
    who = f" in {by.short} ({by.subject}) by {by.author_name}" if by else ""
    return GitConflict(
        f"{shown} changed on `{git.repo.branch}`{who} while this change was being made; nothing was pushed.",
        paths=touched,
        commit=by.short if by else None,
        hint="Look at the new commit, then run the command again if it still makes sense.",
    )


def edit_and_push(
    git: Runner, edit: Edit, *, author: CommitIdentity, message: str, max_attempts: int
) -> PushResult:
    """See RepoCache.edit_and_push. `message` already carries its trailers."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    try:
        for attempt in range(1, max_attempts + 1):
            base = git.rev_parse(git.origin_ref)
            reset_to(git, base)
            paths = repo_paths(edit(git.path))
            changed = _stage(git, paths) if paths else ()
            if not changed:
                raise UserError("nothing to change", hint=f"`{git.repo.branch}` already has this content.")
            sha = _commit(git, author, message)
            if _push(git):
                return PushResult(sha=sha, branch=git.repo.branch, attempts=attempt, changed_paths=changed)
            git.fetch()
            conflict = _conflict(git, base, git.rev_parse(git.origin_ref), paths)
            if conflict is not None:
                raise conflict
        raise GitConflict(
            f"`{git.repo.branch}` kept moving: {max_attempts} attempts were overtaken by other pushes; "
            "nothing was pushed.",
            hint="Try again in a moment.",
        )
    finally:
        # Best effort: a failure here must not hide the original error; the next call resets too.
        with suppress(GitError):
            reset_to(git, git.rev_parse(git.origin_ref))


def revert_edit(git: Runner, sha: str) -> Edit:
    """An edit that reverts `sha` (a full SHA on the branch) on top of the current checkout."""

    def edit(_: Path) -> Sequence[str]:
        short = sha[:8]
        if git.git("merge-base", "--is-ancestor", sha, "HEAD", check=False).code != 0:
            raise UserError(f"Commit {short} is not on `{git.repo.branch}`; only its commits can be undone.")
        parents = git.git("rev-list", "--parents", "-n", "1", sha).out.split()[1:]
        mainline = ["-m", "1"] if len(parents) > 1 else []  # a merge: undo what it brought in
        result = git.git("revert", "--no-commit", "--no-edit", *mainline, sha, check=False)
        if result.code != 0:
            unmerged = _nul_list(git.git("diff", "--name-only", "-z", "--diff-filter=U").out)
            if not unmerged:
                raise GitError(f"git revert failed: {git.summary(result.err + result.out)}")
            raise GitConflict(
                f"Commit {short} cannot be reverted cleanly: later commits changed the same lines in "
                + ", ".join(f"`{p}`" for p in unmerged[:5])
                + ". Nothing was pushed.",
                paths=unmerged,
                commit=short,
                hint="Revert the later commits first, or fix the files by hand.",
            )
        changed = _nul_list(git.git("diff", "--cached", "--name-only", "-z", "HEAD").out)
        if not changed:
            raise UserError(f"Reverting {short} changes nothing on `{git.repo.branch}` (already reverted?).")
        return changed

    return edit


def restore_edit(git: Runner, path: str, sha: str) -> Edit:
    """An edit that makes `path` (file or directory) what it was at `sha`, deleting it if it did
    not exist then."""

    def edit(_: Path) -> Sequence[str]:
        existed = bool(git.git("ls-tree", "--name-only", sha, "--", path).out.strip())
        exists = bool(git.git("ls-files", "--", path).out.strip())
        if not existed and not exists:
            raise UserError(f"`{path}` exists neither at {sha[:8]} nor on `{git.repo.branch}`.")
        git.git("rm", "-r", "-q", "--ignore-unmatch", "--", path)
        if existed:
            git.git("checkout", sha, "--", path)
        return [path]

    return edit
