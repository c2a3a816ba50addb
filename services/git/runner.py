"""Where the git service's git processes start: GitPython's command layer, with the environment
of env.py, credentials for network commands only, and a deadline on every process.

GitPython builds the command lines (`repo.git.<command>(…)`, `Repo.clone_from`, `Remote.fetch`,
`Remote.push`) and reads what git prints. `ScrubbedGit`, the `git.Git` of our `SafeRepo`s (through
GitPython's `Repo.GitCommandWrapperType` hook), only replaces how a process is started, in `run`,
because `Git.execute` cannot do what the bot needs there:
- an environment built from scratch: it copies `os.environ` and can add or override variables but
  never drop an inherited GIT_DIR, GIT_CONFIG_KEY_n, GIT_EXEC_PATH…;
- credentials for clone/fetch/push only: `update_environment` reaches every later command, even the
  persistent `cat-file --batch` processes that outlive a fetch;
- a deadline on every process that kills its whole process group: `clone_from` and `as_process`
  commands get none, and `kill_after_timeout` finds children with pgrep/ps, absent from slim images.
It also pins the executable to `git` (no GIT_PYTHON_GIT_EXECUTABLE) and never logs command output
(GIT_PYTHON_TRACE would log file contents).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import git
from git.compat import safe_decode
from git.db import GitCmdObjectDB
from git.exc import CommandError, GitCommandError, GitCommandNotFound, InvalidGitRepositoryError

from services.git.env import auth_env as auth_env  # re-exported: tests/test_git_service.py
from services.git.env import base_env as base_env
from services.git.errors import GitError

LOCAL_TIMEOUT = 120.0
NETWORK_COMMANDS = frozenset({"clone", "fetch", "push", "ls-remote"})
# The ones GitPython itself reads from os.environ when it opens a repository (git/repo/base.py).
_FOLLOWED_IN_PROCESS = ("GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY")


def _undecorated(text: str, stream: str) -> str:
    prefix = f"\n  {stream}: '"  # how GitPython's CommandError decorates git's output (git/exc.py)
    return text[len(prefix) : -1] if text.startswith(prefix) and text.endswith("'") else text


def stderr_of(exc: CommandError) -> str:
    """git's own stderr from a GitPython error, without the decoration GitPython adds to it."""
    return _undecorated(exc.stderr, "stderr")


def output_of(exc: CommandError) -> str:
    """git's stderr, then its stdout, from a GitPython error."""
    return stderr_of(exc) + "\n" + _undecorated(exc.stdout, "stdout")


def cause_of(exc: GitCommandNotFound) -> str:
    """Why git could not be started ("No such file or directory")."""
    cause = exc.status
    return (cause.strerror if isinstance(cause, OSError) else None) or str(cause)


def subcommand(command: Sequence[str]) -> str:
    """`fetch` for ["git", "fetch", "--prune", …]; our Git objects set no global options."""
    return next((a for a in command[1:] if not a.startswith("-")), "git")


class CommandTimedOut(GitCommandError):
    """A git process hit its deadline and its process group was killed."""

    def __init__(self, command: Sequence[str], timeout: float) -> None:
        super().__init__(list(command), f"timed out after {timeout:g}s")
        self.timeout = timeout


@dataclass(frozen=True)
class Policy:
    """How ScrubbedGit starts processes: the environment and the deadlines."""

    env: Mapping[str, str] = field(default_factory=base_env)  # every command
    network_env: Mapping[str, str] = field(default_factory=dict)  # clone/fetch/push only (credentials)
    local_timeout: float = LOCAL_TIMEOUT
    network_timeout: float = LOCAL_TIMEOUT


def run(
    argv: list[str], *, cwd: str | None, env: Mapping[str, str], stdin: int | IO[Any], stdout: int, text: bool
) -> subprocess.Popen[Any]:
    """Start `argv` (git and its arguments): the one place the git service starts a process.

    No shell; exactly `env`; a session of its own, so there is no controlling terminal for ssh to
    prompt on and one process group to kill (git spawns ssh / git-remote-https, which would
    otherwise outlive a timeout)."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        start_new_session=True,
        text=text,
        encoding="utf-8" if text else None,
        errors="replace" if text else None,
    )


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    # Only while the leader is unreaped: until then its pid (the group id) cannot be reused.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


class _Process(git.Git.AutoInterrupt):
    """GitPython's handle on an `as_process` command, plus a deadline that kills its group."""

    __slots__ = ("_expired", "_limit", "_watchdog")

    def __init__(self, proc: subprocess.Popen[Any], args: list[str], timeout: float | None) -> None:
        super().__init__(proc, args)
        self._expired = False
        self._limit = timeout or 0.0
        self._watchdog: threading.Timer | None = None
        if timeout is not None:
            self._watchdog = threading.Timer(timeout, self._expire, args=(proc,))
            self._watchdog.daemon = True
            self._watchdog.start()

    def _expire(self, proc: subprocess.Popen[Any]) -> None:
        if proc.poll() is None:
            self._expired = True
            _kill_group(proc)

    def _disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()

    def _terminate(self) -> None:
        self._disarm()
        super()._terminate()

    def wait(self, stderr: str | bytes | None = b"") -> int:
        try:
            return super().wait(stderr)
        except GitCommandError:
            # Our deadline, or GitPython's own kill_after_timeout (Remote.fetch/push; it sets
            # _timeout_error in the GitPython versions that have it).
            if self._expired or getattr(self, "_timeout_error", None):
                raise CommandTimedOut(self.args, self._limit) from None
            raise
        finally:
            self._disarm()


class ScrubbedGit(git.Git):
    """`git.Git` whose processes start in `run`, with `policy`'s environment and deadlines.

    GitPython's own environment overrides (`update_environment`, `clone_from(env=…)`) apply on top
    of `policy.env`; `policy.network_env` only to clone/fetch/push.
    """

    GIT_PYTHON_GIT_EXECUTABLE = "git"

    def __init__(self, working_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(working_dir)
        self.policy = Policy()

    def execute(
        self,
        command: str | Sequence[Any],
        istream: int | IO[Any] | None = None,
        with_extended_output: bool = False,
        with_exceptions: bool = True,
        as_process: bool = False,
        output_stream: IO[bytes] | None = None,
        stdout_as_string: bool = True,
        kill_after_timeout: float | None = None,
        with_stdout: bool = True,
        universal_newlines: bool = False,
        shell: bool | None = None,
        env: Mapping[str, str] | None = None,
        max_chunk_size: int = io.DEFAULT_BUFFER_SIZE,
        strip_newline_in_stdout: bool = True,
        **subprocess_kwargs: Any,
    ) -> Any:
        """`Git.execute` for the options GitPython's API uses, without a shell or os.environ."""
        if isinstance(command, str) or shell or output_stream is not None or subprocess_kwargs:
            raise ValueError("ScrubbedGit runs argument lists only: no shell, output_stream or Popen options")
        argv = [os.fspath(a) for a in command]
        network = subcommand(argv) in NETWORK_COMMANDS
        policy = self.policy
        child_env = {
            **policy.env,
            **self._environment,
            **(policy.network_env if network else {}),
            **(env or {}),
        }
        timeout = kill_after_timeout or (policy.network_timeout if network else policy.local_timeout)
        try:
            proc = run(
                argv,
                cwd=os.fspath(self._working_dir) if self._working_dir else None,
                env=child_env,
                stdin=subprocess.DEVNULL if istream is None else istream,
                stdout=subprocess.PIPE if with_stdout else subprocess.DEVNULL,
                text=universal_newlines,
            )
        except OSError as exc:  # no git, or not executable
            raise GitCommandNotFound(argv, exc) from None
        if as_process:
            # GitPython's persistent `cat-file --batch` only ever waits for us; it lives with its Repo.
            persistent = istream is subprocess.PIPE and subcommand(argv) == "cat-file"
            return _Process(proc, argv, None if persistent else timeout)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.communicate()
            raise CommandTimedOut(argv, timeout) from None
        newline = "\n" if universal_newlines else b"\n"
        if out and strip_newline_in_stdout and out.endswith(newline):
            out = out[:-1]
        if err and err.endswith(newline):
            err = err[:-1]
        if with_exceptions and proc.returncode != 0:
            raise GitCommandError(argv, proc.returncode, err, out)
        if isinstance(out, bytes) and stdout_as_string:
            out = safe_decode(out)
        return (proc.returncode, out, safe_decode(err)) if with_extended_output else out


class SafeRepo(git.Repo):
    """A `git.Repo` that runs git through ScrubbedGit and is exactly the clone at `path`.

    Raises InvalidGitRepositoryError when `path` is not a repository of its own (a `.git` file
    pointing elsewhere, say), and GitError when the bot's environment would redirect GitPython.
    """

    GitCommandWrapperType = ScrubbedGit

    def __init__(
        self,
        path: str | os.PathLike[str],
        odbt: type[GitCmdObjectDB] = GitCmdObjectDB,
        search_parent_directories: bool = False,
        expand_vars: bool = False,
        *,
        policy: Policy | None = None,
    ) -> None:
        redirected = [name for name in _FOLLOWED_IN_PROCESS if name in os.environ]
        if redirected:
            raise GitError(f"{', '.join(redirected)} set in the bot's environment would redirect git")
        # Never search parent directories, never expand $VARIABLES in the path.
        super().__init__(path, odbt=odbt, search_parent_directories=False, expand_vars=False)
        top = Path(path).resolve()
        own = (self.working_tree_dir, self.git_dir, self.common_dir)
        if [Path(p).resolve() if p else None for p in own] != [top, top / ".git", top / ".git"]:
            self.close()
            raise InvalidGitRepositoryError(os.fspath(path))
        if policy is not None:
            self.scrubbed.policy = policy

    @property
    def scrubbed(self) -> ScrubbedGit:
        assert isinstance(self.git, ScrubbedGit)
        return self.git
