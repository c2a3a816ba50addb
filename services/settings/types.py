"""Constrained scalar types for the settings schema, each with a short human error message.

Every check raises `PydanticCustomError` so the message reaches the user as written, instead
of pydantic's generic wording ("String should match pattern '^[a-z0-9]...'").
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, PlainSerializer
from pydantic_core import PydanticCustomError

SLUG_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ENV_VAR_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
K8S_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
CHANNEL_ID_RE = re.compile(r"^[CG][A-Z0-9]{2,}$")
USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
GROUP_ID_RE = re.compile(r"^S[A-Z0-9]{2,}$")
COMMAND_RE = re.compile(r"^/[a-z0-9][a-z0-9_-]{0,30}$")
_SCP_LIKE_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:.+$")  # git@host:org/repo.git
_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def shown(value: object) -> str:
    """A value quoted for an error message, cut short so one bad key cannot flood the report."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(kind: str, message: str) -> PydanticCustomError:
    # No context dict: the message is used verbatim, so braces in user values are harmless.
    return PydanticCustomError(kind, message)


def _has_control_or_space(text: str) -> bool:
    return any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _matching(pattern: re.Pattern[str], kind: str, what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise _fail(kind, f"{shown(value)} is not {what}")
        return value

    return AfterValidator(check)


Slug = Annotated[
    str,
    _matching(
        SLUG_RE, "slug", "a valid name (lowercase letters, digits and '-', at most 63, e.g. 'prod-eu')"
    ),
]
EnvVarName = Annotated[
    str, _matching(ENV_VAR_RE, "env_var", "an environment variable name (e.g. ARGOCD_TOKEN)")
]
K8sName = Annotated[
    str, _matching(K8S_NAME_RE, "k8s_name", "a Kubernetes object name (lowercase, digits, '-' and '.')")
]
ChannelId = Annotated[str, _matching(CHANNEL_ID_RE, "channel_id", "a Slack channel id (like C0123ABCD)")]
SlackUserId = Annotated[str, _matching(USER_ID_RE, "user_id", "a Slack user id (like U0123ABCD)")]
SlackGroupId = Annotated[str, _matching(GROUP_ID_RE, "group_id", "a Slack user-group id (like S0123ABCD)")]
Email = Annotated[
    str, _matching(re.compile(r"^[^\s<>@]+@[^\s<>@]+$"), "email", "an email address (like bot@example.com)")
]
SlashCommand = Annotated[
    str, _matching(COMMAND_RE, "command", "a slash command (lowercase, starting with '/', e.g. /gitops)")
]


def _no_bool(kind: str) -> BeforeValidator:
    # Pydantic's lax mode reads `true` as 1; a boolean where a number belongs is a mistake.
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise _fail(kind, f"expected a number, got {str(value).lower()}")
        return value

    return BeforeValidator(check)


WholeNumber = Annotated[int, _no_bool("int_type")]
Number = Annotated[float, _no_bool("float_type")]


def _check_host(value: str) -> str:
    if not value or _has_control_or_space(value):
        raise _fail("host", f"{shown(value)} is not a host name or address")
    return value


Host = Annotated[str, AfterValidator(_check_host)]


def _check_http_url(value: str) -> str:
    problem = f"not a URL: {shown(value)} (expected http:// or https://)"
    if _has_control_or_space(value):
        raise _fail("url", problem)
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError on a non-numeric or out-of-range port
    except ValueError:
        raise _fail("url", problem) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail("url", problem)
    if parts.password is not None:
        raise _fail("url_credentials", "credentials in the URL; give secrets through environment variables")
    # Clients join API paths onto this; one canonical form avoids "//api".
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]


def _check_git_url(value: str) -> str:
    problem = (
        f"not a Git URL: {shown(value)} "
        "(expected https://, http://, ssh://, git@host:path, file:// or an absolute path)"
    )
    # A leading "-" would be read by git as an option (argument injection).
    if not value or value.startswith("-") or _has_control_or_space(value):
        raise _fail("git_url", problem)
    if value.startswith(("https://", "http://", "ssh://")):
        try:
            parts = urlsplit(value)
            _ = parts.port
        except ValueError:
            raise _fail("git_url", problem) from None
        if not parts.hostname:
            raise _fail("git_url", problem)
        if parts.password is not None:
            raise _fail("url_credentials", "credentials in the URL; use credentials_env instead")
        return value
    if value.startswith("file://"):
        if len(value) <= len("file://"):
            raise _fail("git_url", problem)
        return value
    if value.startswith("/") or _SCP_LIKE_RE.match(value):
        return value
    raise _fail("git_url", problem)


GitUrl = Annotated[str, AfterValidator(_check_git_url)]


def _check_git_ref(value: str) -> str:
    """The rules of `git check-ref-format`, plus no leading '-'."""
    bad = (
        not value
        or value.startswith(("-", "/"))
        or value.endswith(("/", ".", ".lock"))
        or value == "@"
        or any(part in value for part in ("..", "//", "@{", "\\"))
        or any(ch in value for ch in " ~^:?*[")
        or _has_control_or_space(value)
        or any(seg.startswith(".") or seg.endswith(".lock") for seg in value.split("/"))
    )
    if bad:
        raise _fail("git_ref", f"{shown(value)} is not a valid Git branch name")
    return value


GitRef = Annotated[str, AfterValidator(_check_git_ref)]


def _check_repo_path(value: str) -> str:
    what = f"{shown(value)} is not a safe repository path"
    if not value or _has_control_or_space(value) or "\\" in value:
        raise _fail("repo_path", f"{what} (empty, or has spaces, control characters or '\\')")
    if value.startswith("/"):
        raise _fail("repo_path", f"{what} (must be relative to the repository root, no leading '/')")
    if value.startswith("-"):
        raise _fail("repo_path", f"{what} (must not start with '-')")
    if ".." in value.split("/"):
        raise _fail("repo_path", f"{what} (must not contain a '..' segment)")
    return value


RepoPath = Annotated[str, AfterValidator(_check_repo_path)]


def _non_empty_path(value: Any) -> Any:
    # Path("") means ".", which is never what an empty key meant.
    if isinstance(value, str) and not value.strip():
        raise _fail("path", "must not be empty")
    return value


def _expand_user(value: Path) -> Path:
    return value.expanduser()


def _must_exist(value: Path) -> Path:
    if not value.is_file():
        raise _fail("file_missing", f"file not found: {value}")
    return value


ConfigPath = Annotated[Path, BeforeValidator(_non_empty_path), AfterValidator(_expand_user)]
ExistingFile = Annotated[
    Path, BeforeValidator(_non_empty_path), AfterValidator(_expand_user), AfterValidator(_must_exist)
]


def parse_duration(value: object) -> timedelta:
    """`90s`, `2m`, `1h30m`, `1d`, or a whole number of seconds (int or digit string)."""
    if isinstance(value, timedelta):
        return value
    problem = f"not a duration: {shown(value)} (use e.g. 90s, 2m, 1h30m, 1d, or a number of seconds)"
    if isinstance(value, bool):
        raise _fail("duration", problem)
    if isinstance(value, int):
        if value < 0:
            raise _fail("duration", problem)
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise _fail("duration", problem)
    text = value.strip()
    if text.isascii() and text.isdigit():
        return timedelta(seconds=int(text))
    match = _DURATION_RE.fullmatch(text)
    if not text or match is None:
        raise _fail("duration", problem)
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of `parse_duration`: 5400 s → '1h30m', 0 → '0s'."""
    total = int(value.total_seconds())
    if total <= 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def at_least(minimum: timedelta) -> AfterValidator:
    def check(value: timedelta) -> timedelta:
        if value < minimum:
            raise _fail("duration_min", f"must be at least {format_duration(minimum)}")
        return value

    return AfterValidator(check)


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise _fail("duration_min", "must be longer than 0s")
    return value


# In JSON, durations are written the way the file writes them ("1h30m"), so a dump reloads.
_AS_TEXT = PlainSerializer(format_duration, return_type=str, when_used="json")
Duration = Annotated[timedelta, BeforeValidator(parse_duration), _AS_TEXT]
PositiveDuration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive), _AS_TEXT]
