"""The git-host error family: githost-api.md §10, each class also one of the product's errors.

Every failure of a GitHub or GitLab call leaves `services.githost` as a `HostError`. The kernel
base says what the user can do (`UserError` shown as written, `PermissionDenied`, or
`BackendUnavailable` with `retry_after`); the subclass says what the promotion flow should do.
Texts are bounded and scrubbed of the tokens before they get here (transport.py does it).
"""

from __future__ import annotations

from typing import Literal

from services.errors import BackendUnavailable, GitOpsBotError, PermissionDenied, UserError, bound
from services.githost.model import HOST_LABEL, HostKind

TWO_IDENTITIES_HINT = (
    "The host does not let an author approve its own change request: give the bot a second "
    "identity for approvals (`approve_token_env`, a user with write access), or turn off the "
    "host-side review requirement and let the Slack approval stand alone."
)


class HostError(GitOpsBotError):
    """Base: a GitHub or GitLab call failed. `status` is the HTTP status when there was one."""

    host: HostKind
    repo: str
    operation: str
    status: int | None

    def _where(self, host: HostKind, repo: str, operation: str, status: int | None) -> None:
        self.host = host
        self.repo = repo
        self.operation = operation
        self.status = status

    @property
    def label(self) -> str:
        return f"{HOST_LABEL[self.host]} {self.repo}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.operation!r}, status={self.status}, {str(self)!r})"


class HostUnavailable(HostError, BackendUnavailable):
    """5xx, a timeout, a refused connection or an answer that is not the host's JSON.

    The request was either a read or a write that certainly did not reach the host (the
    connection was never made): repeating it later is safe.
    """

    def __init__(
        self,
        host: HostKind,
        repo: str,
        message: str,
        *,
        operation: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self._where(host, repo, operation, status)
        BackendUnavailable.__init__(
            self, f"{HOST_LABEL[host]} {repo}", bound(message), retry_after=retry_after
        )


class WriteOutcomeUnknown(HostUnavailable):
    """A POST/PUT/PATCH/DELETE got a 5xx or no answer: it may or may not have been applied.

    Never repeat the write blindly: re-read first (list PRs by head, GET the PR, list reviews)
    and decide from what the host shows (githost-api.md §10, last row).
    """


class HostUnauthorized(HostError, BackendUnavailable):
    """401: the token is missing, malformed, expired or revoked. An admin has to act; no retry."""

    def __init__(self, host: HostKind, repo: str, *, operation: str = "") -> None:
        self._where(host, repo, operation, 401)
        BackendUnavailable.__init__(
            self,
            f"{HOST_LABEL[host]} {repo}",
            "the bot's token was rejected (401); ask an admin to rotate it",
        )


class HostRateLimited(HostError, BackendUnavailable):
    """Throttled. `kind`: GitHub `primary` (x-ratelimit-remaining 0) or `secondary` (abuse limit;
    pause every write to the host), or GitLab's `gitlab` 429. `retry_after` is always set."""

    def __init__(
        self,
        host: HostKind,
        repo: str,
        *,
        kind: Literal["primary", "secondary", "gitlab"],
        retry_after: float,
        operation: str = "",
        status: int | None = None,
    ) -> None:
        self._where(host, repo, operation, status)
        self.kind = kind
        what = {"primary": "API rate limit", "secondary": "secondary rate limit", "gitlab": "rate limit"}[
            kind
        ]
        BackendUnavailable.__init__(
            self,
            f"{HOST_LABEL[host]} {repo}",
            f"{what} reached; retry in {max(1, round(retry_after))} s",
            retry_after=retry_after,
        )


class HostPermissionDenied(HostError, PermissionDenied):
    """403 (not a rate limit), or 404 on the repository itself (GitHub hides private repos)."""

    def __init__(
        self, host: HostKind, repo: str, reason: str, *, operation: str = "", status: int | None = None
    ) -> None:
        self._where(host, repo, operation, status)
        PermissionDenied.__init__(self, reason)


def cannot_see(
    host: HostKind, repo: str, *, operation: str = "", status: int | None = None
) -> HostPermissionDenied:
    return HostPermissionDenied(
        host,
        repo,
        f"the bot's token cannot see or write `{repo}` on {HOST_LABEL[host]} (HTTP {status})",
        operation=operation,
        status=status,
    )


class HostUserError(HostError, UserError):
    """Base of the refusals the user (or an admin's config) must act on; shown as written."""

    def __init__(
        self,
        host: HostKind,
        repo: str,
        message: str,
        *,
        operation: str = "",
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        self._where(host, repo, operation, status)
        UserError.__init__(self, message, hint=hint)


class HostNotFound(HostUserError):
    """404 on something inside a repository we can see: a PR, a branch, a commit."""


class HostRejected(HostUserError):
    """Any other 4xx: the host understood and refused. `host_message` is its (bounded) text and
    `details` the `errors[]` entries GitHub adds to a 422."""

    def __init__(
        self,
        host: HostKind,
        repo: str,
        host_message: str,
        *,
        details: tuple[str, ...] = (),
        operation: str = "",
        status: int | None = None,
    ) -> None:
        self.host_message = bound(host_message)
        self.details = tuple(bound(d) for d in details)
        shown = "; ".join((self.host_message, *self.details)) if self.details else self.host_message
        super().__init__(
            host,
            repo,
            f"{HOST_LABEL[host]} {repo} refused {operation or 'the request'} (HTTP {status}): {bound(shown)}",
            operation=operation,
            status=status,
        )

    def mentions_text(self, needle: str) -> bool:
        needle = needle.lower()
        return any(needle in text.lower() for text in (self.host_message, *self.details))


class HeadMoved(HostUserError):
    """Merge 409 (both hosts), GitLab approve 409, GitHub update-branch 422: the head is no longer
    the SHA the humans approved. Don't merge: invalidate the approval and show the new diff."""


class NotMergeable(HostUserError):
    """The host would not merge now. `reason`:

    - `base_modified`: GitHub 405 "Base branch was modified" — transient: re-read, retry, same sha;
    - `method_not_allowed`: 405 "… not allowed …" — permanent config error (merge method);
    - `not_ready`: GitHub 405 "Pull Request is not mergeable", GitLab 405/406 — re-read and
      follow `Readiness`;
    - `failed`: GitLab 422 "Branch cannot be merged" — the merge was tried and failed.
    """

    def __init__(
        self,
        host: HostKind,
        repo: str,
        message: str,
        *,
        reason: Literal["base_modified", "method_not_allowed", "not_ready", "failed"],
        operation: str = "merge",
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(host, repo, message, operation=operation, status=status, hint=hint)
        self.reason = reason

    @property
    def transient(self) -> bool:
        return self.reason in ("base_modified", "not_ready")


class ApprovalRefused(HostUserError):
    """The host refused the bot's approval (GitLab 401/403 from the approval service, GitHub's
    "not permitted to approve"). Comes with the two-identities hint; don't retry."""


class SelfApproval(ApprovalRefused):
    """GitHub 422 "Can not approve your own pull request": the approving token is the author's."""


class DuplicateChangeRequest(HostUserError):
    """The host says one already exists (GitHub 422, GitLab 409) but listing found no open one
    to adopt (closed in between?). The clients adopt the open one themselves when they can."""


class NothingToPromote(HostUserError):
    """GitHub refuses a PR whose head has no commits beyond its base: already up to date."""


__all__ = [
    "TWO_IDENTITIES_HINT",
    "ApprovalRefused",
    "DuplicateChangeRequest",
    "HeadMoved",
    "HostError",
    "HostNotFound",
    "HostPermissionDenied",
    "HostRateLimited",
    "HostRejected",
    "HostUnauthorized",
    "HostUnavailable",
    "HostUserError",
    "NotMergeable",
    "NothingToPromote",
    "SelfApproval",
    "WriteOutcomeUnknown",
    "cannot_see",
]
