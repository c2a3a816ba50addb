"""The git service on GitPython: its exceptions mapped and scrubbed, the environment each git
process gets, and deadlines that kill the whole process group. Real repositories and a real
(dumb-protocol) HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import functools
import http.server
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import git
import pytest
from pydantic import SecretStr

from services.git import GitError, GitUnavailable, RepoCache
from services.git import runner as git_runner
from services.promotion.snapshot import head, read_files
from services.settings.model import GitRepository
from tests.git_support import DANA, Remote, clone_state, make_remote, sh

TOKEN = "ghp_GitPythonSecret1234567890abcdefABCD"
BASIC = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
WEB = "apps/web/deploy.yaml"


def write(path: str, content: str) -> Any:
    def edit(worktree: Path) -> list[str]:
        (worktree / path).write_text(content)
        return [path]

    return edit


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return make_remote(tmp_path)[0]


@pytest.fixture
def processes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict[str, str], Any]]:
    """(argv, environment, Popen) of every git process the service starts."""
    seen: list[tuple[list[str], dict[str, str], Any]] = []
    real_run = git_runner.run

    def spy(argv: list[str], **kwargs: Any) -> Any:
        proc = real_run(argv, **kwargs)
        seen.append((argv, dict(kwargs["env"]), proc))
        return proc

    monkeypatch.setattr(git_runner, "run", spy)
    return seen


# -- GitPython's exceptions never leave the git service --------------------------------------------


def _assert_contained(exc: BaseException) -> None:
    assert not isinstance(exc, git.exc.GitError)
    assert exc.__cause__ is None
    assert exc.__suppress_context__ or exc.__context__ is None  # GitPython's text is never shown


def test_a_refused_push_is_mapped_and_its_text_scrubbed(tmp_path: Path, remote: Remote) -> None:
    hook = remote.bare / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho 'denied: {TOKEN} {BASIC}' >&2\nexit 1\n")
    hook.chmod(0o755)
    repos = [GitRepository(name="deploy", url=str(remote.bare))]
    cache = RepoCache(tmp_path / "cache", repos, {"deploy": SecretStr(TOKEN)})
    with pytest.raises(GitUnavailable, match="push to main refused") as info:
        cache.edit_and_push("deploy", write(WEB, "image: web:3\n"), author=DANA, message="m")
    shown = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert "pre-receive hook declined" in info.value.message
    assert "denied: [REDACTED] [REDACTED]" in info.value.message
    assert TOKEN not in shown
    assert BASIC not in shown
    _assert_contained(info.value)


def test_a_failing_local_command_is_a_git_error(tmp_path: Path, remote: Remote) -> None:
    cache = RepoCache(tmp_path / "cache", [GitRepository(name="deploy", url=str(remote.bare))], {})
    lock = cache.ensure("deploy") / ".git" / "index.lock"
    lock.write_text("")  # another git process "holds" the index
    with pytest.raises(GitError) as info:
        cache.edit_and_push("deploy", write(WEB, "image: web:3\n"), author=DANA, message="m")
    assert type(info.value) is GitError
    assert str(info.value).startswith("git checkout failed in the clone of deploy: fatal: Unable to create")
    assert len(str(info.value)) < 400
    _assert_contained(info.value)
    lock.unlink()
    cache.edit_and_push("deploy", write(WEB, "image: web:3\n"), author=DANA, message="m")
    assert remote.show(WEB) == "image: web:3\n"
    assert clone_state(cache)[0] == ""


def test_reading_a_commit_the_clone_lacks_is_a_git_error(tmp_path: Path, remote: Remote) -> None:
    cache = RepoCache(tmp_path / "cache", [GitRepository(name="deploy", url=str(remote.bare))], {})
    clone = cache.ensure("deploy")
    assert read_files(clone, head(clone, "HEAD"), [WEB]) == {WEB: "image: web:2\n"}
    with pytest.raises(GitError, match="not in the clone") as info:
        read_files(clone, "0" * 40, [WEB])
    _assert_contained(info.value)


def test_close_ends_the_kept_cat_file_processes(
    tmp_path: Path, remote: Remote, processes: list[tuple[list[str], dict[str, str], Any]]
) -> None:
    cache = RepoCache(tmp_path / "cache", [GitRepository(name="deploy", url=str(remote.bare))], {})
    assert len(cache.log("deploy")) == 3
    kept = [proc for argv, _, proc in processes if git_runner.subcommand(argv) == "cat-file"]
    assert kept
    assert all(proc.poll() is None for proc in kept)  # kept for the next read
    cache.close()
    assert all(proc.poll() is not None for proc in kept)
    assert len(cache.log("deploy")) == 3  # reopened


# -- the environment of each process ---------------------------------------------------------------


def test_inherited_redirections_and_credentials_stay_out_of_local_commands(
    tmp_path: Path, remote: Remote, processes: list[tuple[list[str], dict[str, str], Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    outer = tmp_path / "outer"
    outer.mkdir()
    sh(outer, "init", "-q")
    hooks = tmp_path / "hooks"  # a post-commit hook runs despite --no-verify
    hooks.mkdir()
    (hooks / "post-commit").write_text(f"#!/bin/sh\ntouch {tmp_path / 'hooked'}\n")
    (hooks / "post-commit").chmod(0o755)
    monkeypatch.setenv("GIT_DIR", str(outer / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(outer / "index"))
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.hooksPath")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", str(hooks))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'core.hookspath'='{hooks}'")
    key = tmp_path / "id_ed25519"
    key.write_text("not really a key")  # never used: the remote is a local path
    repo = GitRepository(name="deploy", url=str(remote.bare), ssh_key_path=key)
    cache = RepoCache(tmp_path / "cache", [repo], {})
    cache.ensure("deploy")
    cache.log("deploy", path="apps/web")
    cache.edit_and_push("deploy", write(WEB, "image: web:4\n"), author=DANA, message="m")

    assert remote.show(WEB) == "image: web:4\n"
    assert not (tmp_path / "hooked").exists()  # the injected configuration never reached git
    commands = {git_runner.subcommand(argv) for argv, _, _ in processes}
    assert {"clone", "fetch", "push", "cat-file", "rev-list", "commit"} <= commands
    for argv, env, _ in processes:
        network = git_runner.subcommand(argv) in {"clone", "fetch", "push"}
        assert ("-i " in env["GIT_SSH_COMMAND"]) == network, argv
        assert env.get("GIT_DIR") in (None, str(tmp_path / "cache" / "deploy" / ".git")), argv
        assert "GIT_INDEX_FILE" not in env
        assert "GIT_CONFIG_PARAMETERS" not in env
        assert env.get("GIT_CONFIG_VALUE_0") != str(hooks)
        assert env["GIT_TERMINAL_PROMPT"] == "0"
        assert env["GIT_LITERAL_PATHSPECS"] == "1"
    assert not (outer / "index").exists()


def test_gitpython_redirections_in_the_environment_are_refused(
    tmp_path: Path, remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = RepoCache(tmp_path / "one", [GitRepository(name="deploy", url=str(remote.bare))], {}).ensure(
        "deploy"
    )
    # GitPython itself (not only the git it runs) would follow this out of the clone.
    monkeypatch.setenv("GIT_WORK_TREE", str(tmp_path))
    cache = RepoCache(tmp_path / "two", [GitRepository(name="deploy", url=str(remote.bare))], {})
    with pytest.raises(GitError, match="GIT_WORK_TREE"):
        cache.ensure("deploy")
    assert list((tmp_path / "two").iterdir()) == []
    with pytest.raises(GitError, match="GIT_WORK_TREE"):
        read_files(clone, remote.head(), [WEB])


# -- deadlines over a real HTTP remote --------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Git's "dumb" HTTP protocol with a token; every request hangs while `hang` is set."""

    hang: threading.Event
    release: threading.Event

    def do_GET(self) -> None:
        if self.hang.is_set():
            # Until the test ends, then an error: a client that was not killed waits that long
            # and then fails with "503", not "timed out".
            self.release.wait(60)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.headers.get("Authorization") != f"Basic {BASIC}":
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def served(
    tmp_path: Path, remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, threading.Event]]:
    """`remote` at http://127.0.0.1:<port>/origin.git, and the switch that makes it hang."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    sh(remote.bare, "update-server-info")
    hang, release = threading.Event(), threading.Event()
    handler = functools.partial(
        type("Handler", (_Handler,), {"hang": hang, "release": release}), directory=str(tmp_path)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/origin.git", hang
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def _running() -> list[tuple[int, str]]:
    """(process group, command line) of every live process (zombies excepted)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            found.append((int(fields[2]), cmdline))
    return found


def _assert_killed(processes: list[tuple[list[str], dict[str, str], Any]], command: str, url: str) -> None:
    """The `command` processes and everything they started (git-remote-http) are gone."""
    pgids = {proc.pid for argv, _, proc in processes if git_runner.subcommand(argv) == command}
    assert pgids

    def left() -> list[str]:
        return [cmd for pgid, cmd in _running() if pgid in pgids or url in cmd]

    deadline = time.monotonic() + 5
    while left() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left() == []


def _returns(call: Callable[[], object]) -> object:
    """`call()`, which must come back long before the server lets go (it does not wait for a
    git-remote-http child that outlived its killed git): its result, or its exception."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(20)  # the deadline is 1 s; the hung server holds on for 60
    assert outcome, "still waiting for the hung remote"
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def test_a_hanging_clone_is_killed_at_the_deadline(
    tmp_path: Path,
    served: tuple[str, threading.Event],
    processes: list[tuple[list[str], dict[str, str], Any]],
) -> None:
    url, hang = served
    hang.set()
    cache = RepoCache(
        tmp_path / "cache",
        [GitRepository(name="deploy", url=url)],
        {"deploy": SecretStr(TOKEN)},
        network_timeout=1,
    )
    with pytest.raises(GitUnavailable, match=r"clone timed out after 1s"):
        _returns(lambda: cache.ensure("deploy"))
    _assert_killed(processes, "clone", url)
    assert not (tmp_path / "cache" / "deploy").exists()
    assert not list((tmp_path / "cache").glob(".deploy.clone-*"))


def test_a_hanging_fetch_is_killed_at_the_deadline(
    tmp_path: Path,
    remote: Remote,
    served: tuple[str, threading.Event],
    processes: list[tuple[list[str], dict[str, str], Any]],
) -> None:
    url, hang = served
    cache = RepoCache(
        tmp_path / "cache",
        [GitRepository(name="deploy", url=url)],
        {"deploy": SecretStr(TOKEN)},
        network_timeout=1,
    )
    cache.ensure("deploy")  # cloned over HTTP with the token
    hang.set()
    with pytest.raises(GitUnavailable, match=r"fetch timed out after 1s") as info:
        _returns(lambda: cache.log("deploy"))
    _assert_contained(info.value)
    _assert_killed(processes, "fetch", url)
    for argv, env, _ in processes:  # the token travelled in the environment of network commands only
        network = git_runner.subcommand(argv) in {"clone", "fetch", "push"}
        assert (env.get("GIT_CONFIG_VALUE_0") == f"Authorization: Basic {BASIC}") == network, argv
        assert not any(TOKEN in a or BASIC in a for a in argv)
    hang.clear()
    assert [c.subject for c in cache.log("deploy")][:1] == ["api: 2"]  # the next fetch works
