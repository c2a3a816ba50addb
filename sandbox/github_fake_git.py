"""The bare repository behind a fake Git host (GitHub here, GitLab in gitlab_fake.py): refs, the
merge a host does server side (merge commit, squash, rebase), conflicts, diff stats.

Everything runs `git` against the bare repository itself, so what the fake reports (head SHAs, the
merge commit, a conflict) is what a clone of it sees. Server-side ref updates run no receive hooks:
a host's merge bypasses the branch protection of git_protect.py, as on the real hosts. Merges and
conflict checks use `git merge-tree --write-tree` (git >= 2.38: no work tree needed); a rebase
replays commits in a temporary worktree with `git cherry-pick`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ZERO = "0" * 40


class GitFailed(RuntimeError):
    """A git command failed; the message is its stderr."""


@dataclass(frozen=True)
class Person:
    name: str
    email: str


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Person
    author_date: str  # ISO 8601 with offset, as git prints it (%aI)
    committer: Person
    committer_date: str
    message: str


@dataclass(frozen=True)
class Stats:
    commits: int
    additions: int
    deletions: int
    changed_files: int


class BareRepo:
    """A bare repository on disk, driven with git commands (isolated from the user's config)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C", GIT_TERMINAL_PROMPT="0")
        return {**env, **(extra or {})}

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        ok: Sequence[int] = (0,),
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        where = ["-C", str(cwd)] if cwd is not None else ["--git-dir", str(self.path)]
        done = subprocess.run(
            ["git", *where, *args],
            env=self._env(env),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode not in ok:
            raise GitFailed(done.stderr.strip() or f"git {args[0]} exited with {done.returncode}")
        return done

    @classmethod
    def init(cls, path: Path, branch: str = "main") -> BareRepo:
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        repo.run("init", "-q", "--bare", f"--initial-branch={branch}")
        return repo

    # -- refs ------------------------------------------------------------------------------------------

    def sha(self, rev: str) -> str | None:
        """The commit `rev` names, or None."""
        done = self.run(
            "rev-parse", "--verify", "-q", "--end-of-options", f"{rev}^{{commit}}", ok=(0, 1, 128)
        )
        return done.stdout.strip() or None if done.returncode == 0 else None

    def branch_sha(self, branch: str) -> str | None:
        return self.sha(f"refs/heads/{branch}")

    def refs(self, prefix: str = "refs/heads/") -> dict[str, str]:
        """Full ref name -> SHA under `prefix`."""
        out = self.run("for-each-ref", "--format=%(refname) %(objectname)", prefix).stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if line)

    def update_ref(self, ref: str, new: str, old: str | None = None) -> bool:
        """Move `ref` to `new` if it still points at `old` (ZERO: must not exist; None: any)."""
        args = ["update-ref", ref, new] + ([old] if old is not None else [])
        return self.run(*args, ok=(0, 1, 128)).returncode == 0

    def delete_ref(self, ref: str, old: str | None = None) -> bool:
        args = ["update-ref", "-d", ref] + ([old] if old is not None else [])
        return self.run(*args, ok=(0, 1, 128)).returncode == 0

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.run("merge-base", "--is-ancestor", ancestor, descendant, ok=(0, 1)).returncode == 0

    # -- reading ----------------------------------------------------------------------------------------

    def commit(self, sha: str) -> CommitInfo:
        fmt = "%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
        fields = self.run("show", "-s", f"--format={fmt}", sha).stdout.split("\0")
        return CommitInfo(
            sha=fields[0],
            tree=fields[1],
            parents=tuple(fields[2].split()),
            author=Person(fields[3], fields[4]),
            author_date=fields[5],
            committer=Person(fields[6], fields[7]),
            committer_date=fields[8],
            message=fields[9].rstrip("\n"),
        )

    def commits_between(self, base: str, head: str) -> list[str]:
        """SHAs on `head` and not on `base`, oldest first."""
        return self.run("rev-list", "--reverse", f"{base}..{head}").stdout.split()

    def stats(self, base: str, head: str) -> Stats:
        """What a host shows on a PR: commits ahead, lines added and removed, files changed."""
        commits = len(self.commits_between(base, head))
        out = self.run("diff", "--numstat", f"{base}...{head}").stdout
        added = removed = files = 0
        for line in out.splitlines():
            plus, minus, _ = line.split("\t", 2)
            files += 1
            added += int(plus) if plus.isdigit() else 0
            removed += int(minus) if minus.isdigit() else 0
        return Stats(commits, added, removed, files)

    def changed_paths(self, base: str, head: str) -> list[str]:
        return self.run("diff", "--name-only", f"{base}...{head}").stdout.split()

    def read(self, rev: str, path: str) -> bytes | None:
        done = subprocess.run(
            ["git", "--git-dir", str(self.path), "cat-file", "blob", f"{rev}:{path}"],
            env=self._env(),
            capture_output=True,
            check=False,
        )
        return done.stdout if done.returncode == 0 else None

    def blob_sha(self, rev: str, path: str) -> str | None:
        done = self.run("rev-parse", "--verify", "-q", f"{rev}:{path}", ok=(0, 1, 128))
        return done.stdout.strip() or None if done.returncode == 0 else None

    # -- writing the way a host does ---------------------------------------------------------------------

    def merge_tree(self, ours: str, theirs: str) -> tuple[str | None, list[str]]:
        """The tree merging `theirs` into `ours`, or None and the conflicting paths."""
        done = self.run("merge-tree", "--write-tree", "--name-only", "--no-messages", ours, theirs, ok=(0, 1))
        lines = done.stdout.splitlines()
        if done.returncode == 0:
            return lines[0], []
        return None, sorted({p for p in lines[1:] if p})

    def commit_tree(
        self, tree: str, parents: Sequence[str], message: str, author: Person, committer: Person
    ) -> str:
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
        }
        args = ["commit-tree", tree, "-m", message]
        for parent in parents:
            args += ["-p", parent]
        return self.run(*args, env=env).stdout.strip()

    def merge_commit(
        self, base: str, head: str, message: str, author: Person, committer: Person
    ) -> str | None:
        """A merge commit of `head` into `base` (parents: base, head), or None on a conflict."""
        tree, _ = self.merge_tree(base, head)
        return None if tree is None else self.commit_tree(tree, [base, head], message, author, committer)

    def squash_commit(
        self, base: str, head: str, message: str, author: Person, committer: Person
    ) -> str | None:
        """One commit on `base` with the merged tree, or None on a conflict."""
        tree, _ = self.merge_tree(base, head)
        return None if tree is None else self.commit_tree(tree, [base], message, author, committer)

    def rebase(self, base: str, head: str, committer: Person) -> str | None:
        """`head`'s commits since the merge base replayed on `base` (authors kept), or None on a conflict."""
        picks = self.run("rev-list", "--reverse", "--no-merges", f"{base}..{head}").stdout.split()
        if not picks:
            return base
        work = Path(tempfile.mkdtemp(prefix="fake-host-rebase-"))
        env = {"GIT_COMMITTER_NAME": committer.name, "GIT_COMMITTER_EMAIL": committer.email}
        try:
            self.run("worktree", "add", "-q", "--detach", str(work / "tree"), base)
            picked = self.run("cherry-pick", "--allow-empty", *picks, env=env, cwd=work / "tree", ok=(0, 1))
            if picked.returncode != 0:
                return None
            return self.run("rev-parse", "HEAD", cwd=work / "tree").stdout.strip()
        finally:
            self.run("worktree", "remove", "--force", str(work / "tree"), ok=(0, 128))
            shutil.rmtree(work, ignore_errors=True)
            self.run("worktree", "prune", ok=(0, 128))

    def write_file(
        self, parent: str, path: str, content: bytes, message: str, author: Person, committer: Person
    ) -> str:
        """A commit on `parent` with `path` set to `content` (the contents API: one file, one commit)."""
        blob = (
            subprocess.run(
                ["git", "--git-dir", str(self.path), "hash-object", "-w", "--stdin"],
                input=content,
                env=self._env(),
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .strip()
        )
        with tempfile.TemporaryDirectory(prefix="fake-host-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.run("read-tree", parent, env=env)
            self.run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self.run("write-tree", env=env).stdout.strip()
        return self.commit_tree(tree, [parent], message, author, committer)
