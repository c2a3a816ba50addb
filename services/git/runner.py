"""Running git for one cached clone: a clean environment, credentials for network commands only,
timeouts that kill the whole process group, and error text that is bounded and scrubbed.

Credentials never go on a command line (visible in `ps`) or into .git/config:
- a token (`credentials_env`) becomes `http.extraHeader: Authorization: Basic
  base64("x-access-token:<token>")`, passed as GIT_CONFIG_COUNT/KEY_0/VALUE_0 in the environment
  of clone/fetch/push only. A value of the form `user:password` is used as is (Bitbucket app
  passwords, GitLab deploy tokens); GitHub and GitLab accept any user name with a token.
- an SSH key (`ssh_key_path`) becomes GIT_SSH_COMMAND="ssh -i <key> -o IdentitiesOnly=yes
  -o StrictHostKeyChecking=accept-new -o BatchMode=yes".
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from services.git.errors import GitError, GitUnavailable
from services.metrics import Metrics
from services.redaction import Redactor
from services.settings import GitRepository

MAX_TEXT = 300
# Inherited variables that would point git at another repository or inject configuration.
_DROPPED = frozenset(
    {
        "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX", "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT", "GIT_CONFIG", "GIT_EXEC_PATH", "GIT_CEILING_DIRECTORIES",
    }
)  # fmt: skip
_SSH_OPTIONS = "-o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o BatchMode=yes"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def base_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every git command: inherited, minus redirections, plus safe defaults."""
    source = os.environ if environ is None else environ
    env = {
        k: v
        for k, v in source.items()
        if k not in _DROPPED and not k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))
    }
    env.update(
        GIT_TERMINAL_PROMPT="0",  # fail instead of waiting for a password nobody will type
        GIT_LITERAL_PATHSPECS="1",  # a path is a path: no globs, no ":(magic)"
        LC_ALL="C",  # stable English messages, which we parse (push rejections)
        LANGUAGE="C",
    )
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")  # never prompt for a passphrase
    return env


def _basic_credentials(token: SecretStr) -> str:
    value = token.get_secret_value()
    return value if ":" in value else f"x-access-token:{value}"


def auth_env(repo: GitRepository, token: SecretStr | None) -> dict[str, str]:
    """Extra environment for clone/fetch/push of `repo` (see the module docstring)."""
    env: dict[str, str] = {}
    if token is not None and token.get_secret_value() and repo.url.startswith(("https://", "http://")):
        encoded = base64.b64encode(_basic_credentials(token).encode()).decode("ascii")
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {encoded}",
        )
    if repo.ssh_key_path is not None:
        env["GIT_SSH_COMMAND"] = f"ssh -i {shlex.quote(str(repo.ssh_key_path))} {_SSH_OPTIONS}"
    return env


def secret_forms(token: SecretStr | None) -> tuple[str, ...]:
    """Every form in which the token could show up in git's output, for scrubbing."""
    if token is None or not token.get_secret_value():
        return ()
    basic = _basic_credentials(token)
    return (token.get_secret_value(), basic, base64.b64encode(basic.encode()).decode("ascii"))


def run(
    argv: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float, stdin: str | None = None
) -> Result:
    """Run `git <argv>`; raises subprocess.TimeoutExpired after killing the process group."""
    # A session of its own: no controlling terminal for ssh to prompt on, and one group to kill
    # (git spawns ssh / git-remote-https, which would otherwise outlive a timeout).
    with subprocess.Popen(
        ["git", *argv],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(None if stdin is None else stdin.encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return Result(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


class Runner:
    """git commands for one repository's clone directory."""

    def __init__(
        self,
        repo: GitRepository,
        path: Path,
        token: SecretStr | None,
        *,
        metrics: Metrics | None,
        network_timeout: float,
        local_timeout: float = 120.0,
    ) -> None:
        self.repo = repo
        self.path = path
        self._metrics = metrics
        self._network_timeout = network_timeout
        self._local_timeout = local_timeout
        # Never let git walk up from a broken clone into a repository above the cache root
        # (the bot's own checkout, say) and reset or clean that instead.
        self._env = {**base_env(), "GIT_CEILING_DIRECTORIES": str(path.parent)}
        self._network_env = {**self._env, **auth_env(repo, token)}
        self._scrub = Redactor(secret_forms(token))

    @property
    def name(self) -> str:
        return self.repo.name

    @property
    def origin_ref(self) -> str:
        """The remote-tracking ref of the configured branch, as of the last fetch."""
        return f"refs/remotes/origin/{self.repo.branch}"

    def rev_parse(self, ref: str) -> str:
        """The commit SHA `ref` names; GitError if none (callers validate user input first)."""
        return self.git("rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}").out.strip()

    def fetch(self) -> None:
        # --force: tags moved on the remote are moved here too (git refuses by default).
        self.network("fetch", "fetch", "--prune", "--tags", "--force", "origin")

    def summary(self, text: str) -> str:
        """git's complaint in one bounded, scrubbed line (the fatal/error lines when there are any)."""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        loud = [line for line in lines if line.startswith(("fatal:", "error:", "remote:", "!"))]
        flat = re.sub(r"\s+", " ", " ".join(loud or lines)).strip() or "no message from git"
        flat = re.sub(r"(?i)(authorization:\s*\w+\s+)\S+", r"\1[REDACTED]", self._scrub(flat))
        return flat if len(flat) <= MAX_TEXT else flat[: MAX_TEXT - 1] + "…"

    def git(
        self, *argv: str, stdin: str | None = None, check: bool = True, env: Mapping[str, str] | None = None
    ) -> Result:
        """A local command in the clone; GitError when it fails and `check` is set."""
        try:
            result = run(
                list(argv),
                cwd=self.path,
                env={**self._env, **(env or {})},
                timeout=self._local_timeout,
                stdin=stdin,
            )
        except subprocess.TimeoutExpired:
            raise GitError(f"git {argv[0]} timed out in the clone of {self.name}") from None
        except OSError as exc:
            raise GitError(f"cannot run git: {exc.strerror}") from None
        if check and result.code != 0:
            raise GitError(f"git {argv[0]} failed in the clone of {self.name}: {self.summary(result.err)}")
        return result

    @contextmanager
    def _timed(self, operation: str) -> Iterator[None]:
        timer = self._metrics.backend_call(f"git:{self.name}", operation) if self._metrics else nullcontext()
        with timer:
            yield

    def network(self, operation: str, *argv: str, cwd: Path | None = None, check: bool = True) -> Result:
        """clone/fetch/push with credentials and the network timeout; GitUnavailable on failure."""
        with self._timed(operation):
            try:
                result = run(
                    list(argv), cwd=cwd or self.path, env=self._network_env, timeout=self._network_timeout
                )
            except subprocess.TimeoutExpired:
                raise GitUnavailable(
                    self.name, f"{operation} timed out after {self._network_timeout:g}s"
                ) from None
            except OSError as exc:
                raise GitUnavailable(self.name, f"cannot run git: {exc.strerror}") from None
            if check and result.code != 0:
                raise GitUnavailable(self.name, f"{operation} failed: {self.summary(result.err)}")
        return result
