"""What git runs with and what comes back: the scrubbed environment, credentials for network
commands, and git's complaints bounded and scrubbed for users.

Credentials never go on a command line (visible in `ps`) or into .git/config:
- a token (`credentials_env`) becomes `http.extraHeader: Authorization: Basic
  base64("x-access-token:<token>")`, passed as GIT_CONFIG_COUNT/KEY_0/VALUE_0 in the environment
  of clone/fetch/push only (runner.ScrubbedGit applies it to those commands alone). A value of
  the form `user:password` is used as is (Bitbucket app passwords, GitLab deploy tokens); GitHub
  and GitLab accept any user name with a token.
- an SSH key (`ssh_key_path`) becomes GIT_SSH_COMMAND="ssh -i <key> -o IdentitiesOnly=yes
  -o StrictHostKeyChecking=accept-new -o BatchMode=yes".
"""

from __future__ import annotations

import base64
import os
import re
import shlex
from collections.abc import Mapping

from pydantic import SecretStr

from services.redaction import Redactor
from services.settings.model import GitRepository

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
        LC_ALL="C",  # stable English messages, which GitPython and we parse (push rejections)
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


def summary(text: str, scrub: Redactor) -> str:
    """git's complaint in one bounded, scrubbed line (the fatal/error lines when there are any)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    loud = [line for line in lines if line.startswith(("fatal:", "error:", "remote:", "!"))]
    flat = re.sub(r"\s+", " ", " ".join(loud or lines)).strip() or "no message from git"
    flat = re.sub(r"(?i)(authorization:\s*\w+\s+)\S+", r"\1[REDACTED]", scrub(flat))
    return flat if len(flat) <= MAX_TEXT else flat[: MAX_TEXT - 1] + "…"
