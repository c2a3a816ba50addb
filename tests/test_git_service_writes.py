"""RepoCache writes on real repositories: edit_and_push, its race handling, revert and restore."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from services.errors import UserError
from services.git import GitConflict, GitUnavailable, PushResult, RepoCache
from services.metrics import Metrics
from services.settings.model import GitRepository
from tests.git_support import DANA, Remote, clone_state, count, make_cache, make_remote, sh

WEB = "apps/web/deploy.yaml"
API = "apps/api/deploy.yaml"
TRAILERS = {"Requested-By": "U0123ABC (dana)", "Correlation-Id": "c-42"}


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Remote, dict[str, str], RepoCache, Metrics]:
    remote, shas = make_remote(tmp_path)
    metrics = Metrics()
    return remote, shas, make_cache(tmp_path, remote, metrics), metrics


def write(path: str, content: str) -> Callable[[Path], list[str]]:
    def edit(worktree: Path) -> list[str]:
        (worktree / path).parent.mkdir(parents=True, exist_ok=True)
        (worktree / path).write_text(content)
        return [path]

    return edit


def assert_clean(cache: RepoCache, remote: Remote) -> None:
    status, head, origin = clone_state(cache)
    assert status == ""
    assert head == origin == remote.head()


# -- edit_and_push --------------------------------------------------------------------------------


def test_edit_and_push_happy_path(setup: tuple[Remote, dict[str, str], RepoCache, Metrics]) -> None:
    remote, shas, cache, metrics = setup
    result = cache.edit_and_push(
        "deploy", write(WEB, "image: web:3\n"), author=DANA, message="Promote web to 3", trailers=TRAILERS
    )
    assert result == PushResult(sha=remote.head(), branch="main", attempts=1, changed_paths=(WEB,))
    assert remote.show(WEB) == "image: web:3\n"
    assert remote.field("%P") == shas["c3"]
    assert remote.field("%an <%ae>") == "Dana Deployer <dana@example.com>"
    assert remote.field("%cn <%ce>") == "gitops-bot <gitops-bot@localhost>"  # the repository's identity
    assert remote.field("%B") == "Promote web to 3\n\nRequested-By: U0123ABC (dana)\nCorrelation-Id: c-42"
    parsed = sh(remote.bare, "log", "-1", "--format=%(trailers:key=Correlation-Id,valueonly)")
    assert parsed.strip() == "c-42"
    assert count(metrics, "push") == 1
    assert_clean(cache, remote)


def test_nothing_to_change(setup: tuple[Remote, dict[str, str], RepoCache, Metrics]) -> None:
    remote, _, cache, _ = setup
    head = remote.head()
    with pytest.raises(UserError, match="nothing to change"):
        cache.edit_and_push("deploy", lambda _: [], author=DANA, message="m")
    with pytest.raises(UserError, match="nothing to change"):
        cache.edit_and_push("deploy", write(WEB, "image: web:2\n"), author=DANA, message="m")
    assert remote.head() == head
    assert_clean(cache, remote)


def test_only_the_returned_paths_are_committed(
    setup: tuple[Remote, dict[str, str], RepoCache, Metrics],
) -> None:
    remote, _, cache, _ = setup

    def edit(worktree: Path) -> list[str]:
        (worktree / WEB).write_text("image: web:5\n")
        (worktree / API).write_text("image: api:sneaky\n")
        (worktree / "new" / "file.yaml").parent.mkdir()
        (worktree / "new" / "file.yaml").write_text("a: 1\n")
        (worktree / "apps" / "api" / "deploy.yaml").unlink()  # not listed either
        return ["new/", WEB, WEB]

    result = cache.edit_and_push("deploy", edit, author=DANA, message="m")
    assert result.changed_paths == (WEB, "new/file.yaml")
    assert remote.show(API) == "image: api:2\n"
    assert_clean(cache, remote)


def test_deletions_are_pushed(setup: tuple[Remote, dict[str, str], RepoCache, Metrics]) -> None:
    remote, _, cache, _ = setup

    def edit(worktree: Path) -> list[str]:
        (worktree / API).unlink()
        return [API]

    assert cache.edit_and_push("deploy", edit, author=DANA, message="drop api").changed_paths == (API,)
    assert not remote.exists(API)


def test_a_failing_edit_leaves_nothing_behind(
    setup: tuple[Remote, dict[str, str], RepoCache, Metrics],
) -> None:
    remote, _, cache, _ = setup
    head = remote.head()

    def edit(worktree: Path) -> list[str]:
        (worktree / WEB).write_text("half done\n")
        (worktree / "stray.txt").write_text("x")
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        cache.edit_and_push("deploy", edit, author=DANA, message="m")
    assert remote.head() == head
    assert_clean(cache, remote)


# -- races ----------------------------------------------------------------------------------------


def test_competing_push_to_an_unrelated_path_is_retried(
    setup: tuple[Remote, dict[str, str], RepoCache, Metrics],
) -> None:
    remote, shas, cache, metrics = setup
    calls: list[str] = []

    def edit(worktree: Path) -> list[str]:
        calls.append(sh(worktree, "rev-parse", "HEAD").strip())
        if len(calls) == 1:  # someone else pushes after we fetched, before we push
            remote.commit({API: "image: api:3\n"}, "api: 3 (competitor)", author=("Eve", "eve@x.io"))
        (worktree / WEB).write_text("image: web:3\n")
        return [WEB]

    result = cache.edit_and_push("deploy", edit, author=DANA, message="web: 3", trailers=TRAILERS)
    assert result.attempts == 2
    assert calls[0] == shas["c3"]
    assert calls[1] != calls[0]  # the edit re-ran on the competitor's commit
    assert remote.subjects()[:2] == ["web: 3", "api: 3 (competitor)"]
    assert (remote.show(WEB), remote.show(API)) == ("image: web:3\n", "image: api:3\n")
    assert result.sha == remote.head()
    assert count(metrics, "push") == 2
    assert_clean(cache, remote)


def test_competing_push_to_the_same_path_is_a_conflict(
    setup: tuple[Remote, dict[str, str], RepoCache, Metrics],
) -> None:
    remote, _, cache, _ = setup
    competitor: list[str] = []

    def edit(worktree: Path) -> list[str]:
        competitor.append(
            remote.commit({WEB: "image: web:hotfix\n"}, "web: hotfix", author=("Eve", "eve@x.io"))
        )
        (worktree / WEB).write_text("image: web:3\n")
        return [WEB]

    with pytest.raises(GitConflict) as info:
        cache.edit_and_push("deploy", edit, author=DANA, message="web: 3")
    conflict = info.value
    assert conflict.paths == (WEB,)
    assert conflict.commit == competitor[0][:8]
    assert WEB in conflict.message
    assert competitor[0][:8] in conflict.message
    assert "Eve" in conflict.message
    assert "nothing was pushed" in conflict.message
    assert len(competitor) == 1  # not retried
    assert remote.head() == competitor[0]
    assert remote.show(WEB) == "image: web:hotfix\n"
    assert_clean(cache, remote)


def test_gives_up_when_the_branch_keeps_moving(
    setup: tuple[Remote, dict[str, str], RepoCache, Metrics],
) -> None:
    remote, _, cache, _ = setup
    n = [0]

    def edit(worktree: Path) -> list[str]:
        n[0] += 1
        remote.commit({f"other/{n[0]}.yaml": "x\n"}, f"other {n[0]}")
        (worktree / WEB).write_text("image: web:3\n")
        return [WEB]

    with pytest.raises(GitConflict, match="kept moving"):
        cache.edit_and_push("deploy", edit, author=DANA, message="web: 3", max_attempts=2)
    assert n[0] == 2
    assert "web: 3" not in remote.subjects()
    assert_clean(cache, remote)


def test_concurrent_pushes_are_serialised_and_both_land(
    setup: tuple[Remote, dict[str, str], RepoCache, Metrics],
) -> None:
    remote, _, cache, _ = setup
    active, overlap, results, errors = [0], [False], [], []
    guard = threading.Lock()

    def editor(path: str) -> Callable[[Path], list[str]]:
        def edit(worktree: Path) -> list[str]:
            with guard:
                active[0] += 1
                overlap[0] |= active[0] > 1
            time.sleep(0.05)  # widen the window a missing lock would expose
            (worktree / path).write_text(f"{path}\n")
            with guard:
                active[0] -= 1
            return [path]

        return edit

    def run(path: str) -> None:
        try:
            results.append(cache.edit_and_push("deploy", editor(path), author=DANA, message=f"set {path}"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in ("apps/web/a.yaml", "apps/web/b.yaml")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert errors == []
    assert not overlap[0]
    assert sorted(r.attempts for r in results) == [1, 1]  # the lock, not the retry, kept them apart
    assert sorted(remote.subjects()[:2]) == ["set apps/web/a.yaml", "set apps/web/b.yaml"]
    assert remote.exists("apps/web/a.yaml")
    assert remote.exists("apps/web/b.yaml")


def test_repositories_are_locked_separately(tmp_path: Path) -> None:
    first, _ = make_remote(tmp_path / "one")
    second, _ = make_remote(tmp_path / "two")
    repos = [GitRepository(name="one", url=str(first.bare)), GitRepository(name="two", url=str(second.bare))]
    cache = RepoCache(tmp_path / "cache", repos, {}, lock_timeout=2)
    done = threading.Event()

    def other() -> None:
        cache.ensure("two")
        done.set()

    with cache.lock("one"):
        worker = threading.Thread(target=other)
        worker.start()
        assert done.wait(10)  # "two" proceeds while "one" is held
        worker.join()


# -- revert and restore ---------------------------------------------------------------------------


def test_revert_undoes_a_commit(setup: tuple[Remote, dict[str, str], RepoCache, Metrics]) -> None:
    remote, shas, cache, _ = setup
    result = cache.revert("deploy", shas["c2"][:10], author=DANA, message="Roll back web", trailers=TRAILERS)
    assert result.changed_paths == (WEB,)
    assert result.attempts == 1
    assert remote.show(WEB) == "image: web:1\n"  # the tree undoes c2...
    assert remote.show(API) == "image: api:2\n"  # ...and only c2
    assert remote.field("%an <%ae>") == "Dana Deployer <dana@example.com>"
    assert remote.field("%B") == "Roll back web\n\nRequested-By: U0123ABC (dana)\nCorrelation-Id: c-42"
    assert remote.field("%P") == shas["c3"]
    with pytest.raises(UserError, match="already reverted"):
        cache.revert("deploy", shas["c2"], author=DANA, message="again")
    assert_clean(cache, remote)


def test_revert_with_a_flux_revision_and_a_race(
    setup: tuple[Remote, dict[str, str], RepoCache, Metrics],
) -> None:
    remote, shas, cache, _ = setup
    cache.ensure("deploy")
    remote.commit({"other.yaml": "x\n"}, "unrelated")  # the cache has not fetched this yet
    result = cache.revert("deploy", f"main@sha1:{shas['c3']}", author=DANA, message="undo api")
    assert remote.show(API) == "image: api:1\n"
    assert remote.subjects()[:2] == ["undo api", "unrelated"]
    assert result.attempts == 1  # the fetch before the edit saw it


def test_revert_conflicting_with_later_commits(
    setup: tuple[Remote, dict[str, str], RepoCache, Metrics],
) -> None:
    remote, shas, cache, _ = setup
    remote.commit({WEB: "image: web:4\n"}, "web: 4")
    head = remote.head()
    with pytest.raises(GitConflict, match="cannot be reverted cleanly") as info:
        cache.revert("deploy", shas["c2"], author=DANA, message="m")
    assert info.value.paths == (WEB,)
    assert remote.head() == head
    assert_clean(cache, remote)


def test_revert_refuses_commits_not_on_the_branch(
    setup: tuple[Remote, dict[str, str], RepoCache, Metrics],
) -> None:
    remote, _, cache, _ = setup
    sh(remote.work, "checkout", "-q", "-b", "feature")
    (remote.work / WEB).write_text("image: web:feature\n")
    sh(remote.work, "commit", "-q", "-am", "feature work")
    sh(remote.work, "push", "-q", "origin", "feature")
    with pytest.raises(UserError, match="is not on `main`"):
        cache.revert("deploy", "feature", author=DANA, message="m")
    assert_clean(cache, remote)


def test_restore_a_directory_to_an_older_commit(
    setup: tuple[Remote, dict[str, str], RepoCache, Metrics],
) -> None:
    remote, shas, cache, _ = setup
    remote.commit({"apps/web/extra.yaml": "added later\n", WEB: "image: web:7\n"}, "web: 7 + extra")
    result = cache.restore(
        "deploy", "apps/web", "v1.0", author=DANA, message="web back to v1.0", trailers=TRAILERS
    )
    assert result.changed_paths == (WEB, "apps/web/extra.yaml")
    assert remote.show(WEB) == "image: web:1\n"
    assert not remote.exists("apps/web/extra.yaml")
    assert remote.show(API) == "image: api:2\n"
    assert cache.diff("deploy", shas["c1"], "main", path="apps/web") == ""
    assert "Correlation-Id: c-42" in remote.field("%B")
    assert_clean(cache, remote)


def test_restore_a_file_and_a_path_that_did_not_exist(
    setup: tuple[Remote, dict[str, str], RepoCache, Metrics],
) -> None:
    remote, shas, cache, _ = setup
    cache.restore("deploy", API, shas["c1"], author=DANA, message="api back")
    assert remote.show(API) == "image: api:1\n"
    remote.commit({"apps/new/deploy.yaml": "new\n"}, "add new app")
    cache.restore("deploy", "apps/new", shas["c1"], author=DANA, message="remove new")
    assert not remote.exists("apps/new")
    with pytest.raises(UserError, match="exists neither"):
        cache.restore("deploy", "apps/ghost", shas["c1"], author=DANA, message="m")
    with pytest.raises(UserError, match="nothing to change"):
        cache.restore("deploy", API, shas["c1"], author=DANA, message="again")
    assert_clean(cache, remote)


def test_a_push_the_remote_refuses_is_unavailable(
    setup: tuple[Remote, dict[str, str], RepoCache, Metrics],
) -> None:
    remote, _, cache, _ = setup
    hook = remote.bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    head = remote.head()
    with pytest.raises(GitUnavailable, match="push to main refused") as info:
        cache.edit_and_push("deploy", write(WEB, "image: web:3\n"), author=DANA, message="m")
    assert "pre-receive hook declined" in info.value.message
    assert "main is protected" in info.value.message
    assert remote.head() == head
    hook.unlink()
    assert_clean(cache, remote)


def test_the_lock_is_reentrant_for_its_holder_and_blocks_others(
    setup: tuple[Remote, dict[str, str], RepoCache, Metrics],
) -> None:
    remote, shas, _, _ = setup
    cache = RepoCache(
        remote.bare.parent / "cache2",
        [GitRepository(name="deploy", url=str(remote.bare))],
        {},
        lock_timeout=0.2,
    )
    outcome: list[BaseException | str] = []

    def other() -> None:
        try:
            outcome.append(cache.resolve("deploy", "main"))
        except BaseException as exc:
            outcome.append(exc)

    with cache.lock("deploy"):
        assert cache.resolve("deploy", "main") == shas["c3"]  # same thread: no deadlock
        worker = threading.Thread(target=other)
        worker.start()
        worker.join(timeout=10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], GitUnavailable)
    assert "busy" in str(outcome[0])
