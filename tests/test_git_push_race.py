"""Two replicas pushing the same branch at the same moment: the remote takes one update and refuses
the other with "cannot lock ref …: is at X but expected Y". The loser fetches and pushes again, as
after a non-fast-forward, so both changes land (real git, a real bare repository)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from services.git import RepoCache
from services.git.refusal import classify_push_refusal
from services.settings.model import GitRepository
from tests.git_support import DANA, make_remote, sh

LOCK_LOST = (
    "! refs/heads/main [remote rejected] (failed to update ref)\n"
    "error: cannot lock ref 'refs/heads/main': is at 3f1c2a9b4d5e6f708192a3b4c5d6e7f801234567 "
    "but expected 9a8b7c6d5e4f30211f2e3d4c5b6a798877665544\n"
)


def test_a_lost_ref_lock_is_classified_as_the_branch_having_moved() -> None:
    assert classify_push_refusal(LOCK_LOST).kind == "non_fast_forward"


def edit(path: str, text: str) -> Callable[[Path], list[str]]:
    def change(worktree: Path) -> list[str]:
        (worktree / path).write_text(text)
        return [path]

    return change


def test_two_replicas_pushing_at_once_both_land(tmp_path: Path) -> None:
    remote, _ = make_remote(tmp_path)
    # Hold every push in the hook: both read the same old tip, the second then finds it moved.
    hook = remote.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\ncat >/dev/null\nsleep 0.6\n")
    hook.chmod(0o755)
    repo = GitRepository(name="deploy", url=str(remote.bare))
    replicas = [RepoCache(tmp_path / f"cache-{n}", [repo], {}) for n in (1, 2)]
    for cache in replicas:
        cache.ensure("deploy")  # warm clones, as replicas that served requests before
    start = threading.Barrier(2)
    done: list[str] = []

    def promote(cache: RepoCache, path: str, tag: str) -> None:
        start.wait()
        done.append(cache.edit_and_push("deploy", edit(path, f"image: x:{tag}\n"), author=DANA,
                                        message=f"{path}: {tag}").sha)  # fmt: skip

    threads = [
        threading.Thread(target=promote, args=(replicas[0], "apps/web/deploy.yaml", "2")),
        threading.Thread(target=promote, args=(replicas[1], "apps/api/deploy.yaml", "2")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(done) == 2
    log = sh(remote.bare, "log", "--format=%s", "-3", "main")
    assert sorted(log.splitlines()[:2]) == ["apps/api/deploy.yaml: 2", "apps/web/deploy.yaml: 2"]
