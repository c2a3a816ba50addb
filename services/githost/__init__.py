"""Git hosts: GitHub pull requests and GitLab merge requests, behind one `GitHost` Protocol.

The promotion flow codes against `GitHost` and the records in `model`; `build_host` picks the
client. Errors are the `HostError` family in `errors` (each also a kernel error).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import SecretStr

from services.githost.errors import (
    ApprovalRefused,
    DuplicateChangeRequest,
    HeadMoved,
    HostError,
    HostNotFound,
    HostPermissionDenied,
    HostRateLimited,
    HostRejected,
    HostUnauthorized,
    HostUnavailable,
    HostUserError,
    NothingToPromote,
    NotMergeable,
    SelfApproval,
    WriteOutcomeUnknown,
)
from services.githost.github import GITHUB_API, GitHubClient
from services.githost.gitlab import GitLabClient
from services.githost.model import (
    Approvals,
    BranchProtection,
    ChangeRequest,
    Check,
    HostKind,
    MergeMethod,
    MergeResult,
    Readiness,
    overall,
)
from services.githost.settle import settle
from services.githost.throttle import WriteGate
from services.metrics import Metrics


class GitHost(Protocol):
    """What the promotion flow needs from a host; `number` is a PR number or an MR iid."""

    kind: HostKind
    project: str

    def protection(self, branch: str) -> BranchProtection: ...

    def find_open(self, head_branch: str, base_branch: str) -> ChangeRequest | None: ...

    def create(
        self,
        head_branch: str,
        base_branch: str,
        title: str,
        body: str,
        *,
        labels: Sequence[str] = (),
        reviewers: Sequence[str] = (),
    ) -> ChangeRequest: ...

    def get(self, number: int) -> ChangeRequest: ...

    def comment(self, number: int, body: str) -> str: ...

    def approvals(self, number: int) -> Approvals: ...

    def approve(self, number: int, head_sha: str, body: str = "") -> None: ...

    def checks(self, cr: ChangeRequest) -> tuple[Check, ...]: ...

    def readiness(self, cr: ChangeRequest) -> Readiness: ...

    def update_branch(self, cr: ChangeRequest) -> None: ...

    def merge(
        self,
        number: int,
        sha: str,
        *,
        method: MergeMethod = "merge",
        title: str | None = None,
        message: str | None = None,
        remove_branch: bool = False,
    ) -> MergeResult: ...

    def close(self, number: int) -> ChangeRequest: ...

    def delete_branch(self, name: str) -> bool: ...

    def shutdown(self) -> None: ...


def build_host(
    kind: Literal["github", "gitlab"],
    api_url: str | None,
    project: str,
    token: SecretStr,
    approve_token: SecretStr | None = None,
    *,
    timeout: float = 10.0,
    metrics: Metrics | None = None,
    gate: WriteGate | None = None,
) -> GitHost:
    """The client for one configured repository. Share one `gate` across all of them so writes
    to a repository queue behind one lock and a rate-limit pause covers the whole host.

    `api_url` is required for GitLab and GitHub Enterprise (`https://HOST/api/v3`); never guessed
    from the clone URL (§1). None means api.github.com for GitHub.
    """
    if kind == "github":
        return GitHubClient(
            api_url or GITHUB_API,
            project,
            token,
            approve_token=approve_token,
            timeout=timeout,
            metrics=metrics,
            gate=gate,
        )
    if kind == "gitlab":
        if not api_url:
            raise ValueError("a GitLab host needs its api_url (https://HOST/api/v4)")
        return GitLabClient(
            api_url, project, token, approve_token=approve_token, timeout=timeout, metrics=metrics, gate=gate
        )
    raise ValueError(f"unknown git host kind {kind!r}")


__all__ = [
    "ApprovalRefused",
    "Approvals",
    "BranchProtection",
    "ChangeRequest",
    "Check",
    "DuplicateChangeRequest",
    "GitHost",
    "GitHubClient",
    "GitLabClient",
    "HeadMoved",
    "HostError",
    "HostKind",
    "HostNotFound",
    "HostPermissionDenied",
    "HostRateLimited",
    "HostRejected",
    "HostUnauthorized",
    "HostUnavailable",
    "HostUserError",
    "MergeMethod",
    "MergeResult",
    "NotMergeable",
    "NothingToPromote",
    "Readiness",
    "SelfApproval",
    "WriteGate",
    "WriteOutcomeUnknown",
    "build_host",
    "overall",
    "settle",
]
