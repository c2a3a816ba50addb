"""Real git repositories for the git service tests: a bare "remote" and a competitor's clone."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from services.git import RepoCache
from services.metrics import Metrics
from services.settings.model import CommitIdentity, GitRepository

# Helper commands ignore the developer's own git configuration, so tests are deterministic.
_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_COMMITTER_NAME": "Competitor",
    "GIT_COMMITTER_EMAIL": "competitor@example.com",
}
ALICE = ("Alice", "alice@example.com")
DANA = CommitIdentity(name="Dana Deployer", email="dana@example.com")


def sh(cwd: Path, *args: str, author: tuple[str, str] = ALICE) -> str:
    env = {**_ENV, "GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1]}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout


@dataclass
class Remote:
    bare: Path
    work: Path  # someone else's clone, for competing pushes

    def commit(self, files: dict[str, str | None], message: str, author: tuple[str, str] = ALICE) -> str:
        """Commit `files` (None deletes) on top of the remote's main and push; returns the SHA."""
        sh(self.work, "fetch", "-q", "origin")
        sh(self.work, "reset", "-q", "--hard", "origin/main")
        for name, content in files.items():
            target = self.work / name
            if content is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
        sh(self.work, "add", "-A")
        sh(self.work, "commit", "-q", "-m", message, author=author)
        sh(self.work, "push", "-q", "origin", "HEAD:main")
        return self.head()

    def head(self, ref: str = "main") -> str:
        return sh(self.bare, "rev-parse", ref).strip()

    def show(self, path: str, ref: str = "main") -> str:
        return sh(self.bare, "show", f"{ref}:{path}")

    def exists(self, path: str, ref: str = "main") -> bool:
        return bool(sh(self.bare, "ls-tree", "--name-only", ref, "--", path).strip())

    def field(self, fmt: str, ref: str = "main") -> str:
        return sh(self.bare, "log", "-1", f"--format={fmt}", ref).rstrip("\n")

    def subjects(self, ref: str = "main") -> list[str]:
        return sh(self.bare, "log", "--format=%s", ref).splitlines()


def make_remote(tmp_path: Path) -> tuple[Remote, dict[str, str]]:
    """A bare repository with three commits and a tag; returns it and the SHAs by name."""
    bare = tmp_path / "origin.git"
    bare.mkdir(parents=True)
    sh(bare, "init", "-q", "--bare", "--initial-branch=main")
    work = tmp_path / "competitor"
    sh(tmp_path, "clone", "-q", str(bare), str(work))
    sh(work, "checkout", "-q", "-b", "main")
    for name, content in {
        "apps/web/deploy.yaml": "image: web:1\n",
        "apps/api/deploy.yaml": "image: api:1\n",
    }.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(content)
    sh(work, "add", "-A")
    sh(work, "commit", "-q", "-m", "Initial layout")
    sh(work, "push", "-q", "origin", "main")
    sh(work, "branch", "-q", "--set-upstream-to=origin/main")
    remote = Remote(bare, work)
    shas = {"c1": remote.head()}
    sh(work, "tag", "v1.0")
    sh(work, "push", "-q", "origin", "v1.0")
    shas["c2"] = remote.commit(
        {"apps/web/deploy.yaml": "image: web:2\n"}, "web: 2", author=("Bob", "bob@x.io")
    )
    shas["c3"] = remote.commit({"apps/api/deploy.yaml": "image: api:2\n"}, "api: 2\n\nbody text")
    return remote, shas


def make_cache(tmp_path: Path, remote: Remote, metrics: Metrics | None = None) -> RepoCache:
    repo = GitRepository(name="deploy", url=str(remote.bare))
    return RepoCache(tmp_path / "cache", [repo], {}, metrics=metrics)


def clone_state(cache: RepoCache) -> tuple[str, str, str]:
    """(git status --porcelain, HEAD, origin/main) of the cached clone."""
    path = cache.ensure("deploy")
    status = sh(path, "status", "--porcelain", "--untracked-files=all")
    return status, sh(path, "rev-parse", "HEAD").strip(), sh(path, "rev-parse", "origin/main").strip()


def count(metrics: Metrics, operation: str, repo: str = "deploy") -> float:
    value = metrics.registry.get_sample_value(
        "gitops_bot_backend_request_seconds_count", {"backend": f"git:{repo}", "operation": operation}
    )
    return value or 0.0
