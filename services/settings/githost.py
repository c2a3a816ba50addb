"""How a repository takes the bot's changes: pushed to its branch, or through a pull request (GitHub)
or merge request (GitLab) when the branch is protected. The keys of `repositories[]` besides the Git
ones; docs/configuration.md has the table, /work/shared/docs/githost-api.md the hosts' rules.

Each check runs where its key is, so a problem names that key (`repositories[0].api_url:
required with host: gitlab …`): fields are validated in declaration order, and a key that depends
on an earlier one reads it from `info.data` (absent there when that one was itself wrong).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from services.settings.base import Section
from services.settings.types import EnvVarName, HttpUrl, shown

Mode = Literal["push", "pull_request", "auto"]
HostKind = Literal["github", "gitlab"]
MergeMethod = Literal["merge", "squash", "rebase"]
MERGE_METHODS: dict[str, tuple[str, ...]] = {
    "github": ("merge", "squash", "rebase"),
    "gitlab": ("merge", "squash"),
}
API_ROOTS = {
    "github": "https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server",
    "gitlab": "https://HOST/api/v4, e.g. https://gitlab.com/api/v4",
}
_GITHUB_PROJECT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_GITLAB_PATH = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.][A-Za-z0-9_.-]*)+$")
_GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")


def _fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _as_text(value: Any) -> Any:
    """YAML reads `123456` as a number; a GitLab project or user id is written either way."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list | tuple):
        return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
    return value


def _pull_requests(info: ValidationInfo) -> bool:
    return bool(info.data.get("mode", "push") != "push")


class GitHostKeys(Section):
    """`repositories[]` keys for promotions through a pull/merge request (all unused with mode: push)."""

    mode: Mode = "push"
    host: HostKind | None = Field(default=None, validate_default=True)
    api_url: HttpUrl | None = Field(default=None, validate_default=True)
    project: Annotated[str | None, BeforeValidator(_as_text)] = Field(default=None, validate_default=True)
    token_env: EnvVarName | None = Field(default=None, validate_default=True)
    approve_token_env: EnvVarName | None = None  # a second identity that approves (GitHub: never the author)
    merge_method: MergeMethod = Field(default="merge", validate_default=True)
    labels: tuple[str, ...] = ()
    reviewers: Annotated[tuple[str, ...], BeforeValidator(_as_text)] = ()
    delete_branch: bool = True  # delete the promotion branch once merged or closed

    @property
    def uses_pull_requests(self) -> bool:
        return self.mode != "push"

    @field_validator("host")
    @classmethod
    def _host_needed(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and _pull_requests(info):
            mode = info.data.get("mode")
            raise _fail("githost_required", f"required with mode: {mode} (github or gitlab)")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        host = info.data.get("host")
        if host is None:
            return value
        if value is None:
            # Never derived from the Git URL: an Enterprise or self-managed root is a guess.
            raise _fail("githost_required", f"required with host: {host} ({API_ROOTS[host]})")
        parts = urlsplit(value)
        if host == "github" and parts.hostname == "github.com":
            raise _fail("githost_api_url", "github.com serves the website; the API is https://api.github.com")
        if host == "gitlab" and not parts.path.endswith("/api/v4"):
            raise _fail("githost_api_url", f"{shown(value)} is not a GitLab API root: it ends in /api/v4")
        return value

    @field_validator("project")
    @classmethod
    def _project(cls, value: str | None, info: ValidationInfo) -> str | None:
        host = info.data.get("host")
        if host is None:
            return value
        if value is None:
            example = "owner/repo" if host == "github" else "group/project or the numeric project id"
            raise _fail("githost_required", f"required with host: {host} ({example})")
        if host == "github" and not _GITHUB_PROJECT.fullmatch(value):
            raise _fail("githost_project", f"{shown(value)} is not a GitHub repository (owner/repo)")
        if host == "gitlab" and not (value.isdigit() or _GITLAB_PATH.fullmatch(value)):
            message = f"{shown(value)} is not a GitLab project (its path, like group/sub/project, or its id)"
            raise _fail("githost_project", message)
        return value

    @field_validator("token_env")
    @classmethod
    def _token_needed(cls, value: str | None, info: ValidationInfo) -> str | None:
        host = info.data.get("host")
        if value is None and host is not None:
            raise _fail("githost_required", f"required with host: {host} (the token that opens and merges)")
        return value

    @field_validator("approve_token_env")
    @classmethod
    def _second_identity(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value == info.data.get("token_env") and info.data.get("host") == "github":
            raise _fail(
                "githost_same_identity",
                "names the same token as token_env; GitHub refuses an approval from the pull request's "
                'author ("Can not approve your own pull request"): give a second identity\'s token',
            )
        return value

    @field_validator("merge_method")
    @classmethod
    def _merge_method(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("host") == "gitlab" and value not in MERGE_METHODS["gitlab"]:
            raise _fail(
                "githost_merge_method",
                f"{shown(value)}: GitLab's merge API only supports 'merge' (default) and 'squash'",
            )
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        for label in value:
            if not label.strip() or len(label) > 50:
                raise _fail("githost_label", f"{shown(label)} is not a label (1 to 50 characters)")
            if "," in label and info.data.get("host") == "gitlab":
                raise _fail(
                    "githost_label", f"{shown(label)}: GitLab takes labels comma-separated; no commas"
                )
        return value

    @field_validator("reviewers")
    @classmethod
    def _reviewers(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        host = info.data.get("host")
        for reviewer in value:
            if host == "gitlab" and not reviewer.isdigit():
                raise _fail(
                    "githost_reviewer", f"{shown(reviewer)}: GitLab takes reviewer ids (numbers), not names"
                )
            if host == "github" and not _GITHUB_LOGIN.fullmatch(reviewer):
                raise _fail("githost_reviewer", f"{shown(reviewer)} is not a GitHub user name")
        return value


def host_warnings(index: int, repo: GitHostKeys) -> list[tuple[str, str]]:
    """(key path, message) for settings that load but are probably not what was meant."""
    base = f"repositories[{index}]"
    found: list[tuple[str, str]] = []
    if not repo.uses_pull_requests and repo.host is not None:
        found.append((f"{base}.host", "is set but mode is push: no pull request is ever opened"))
    if repo.host == "github" and repo.api_url is not None:
        parts = urlsplit(repo.api_url)
        if parts.hostname != "api.github.com" and not parts.path.endswith("/api/v3"):
            found.append((f"{base}.api_url", "GitHub Enterprise Server's REST API is at https://HOST/api/v3"))
    if (
        repo.host == "gitlab"
        and repo.approve_token_env is not None
        and repo.approve_token_env == repo.token_env
    ):
        message = (
            "names the same token as token_env: GitLab accepts it only where authors may approve their own MR"
        )
        found.append((f"{base}.approve_token_env", message))
    return found
