"""The git service's errors: each is also one of the product's errors (see services/errors.py).

Texts here are shown to users, so they are bounded and never carry a credential: clone.py
scrubs git's stderr before it becomes part of a message.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.errors import BackendUnavailable, UserError
from services.git.refusal import PushRefusal


class GitError(Exception):
    """Base of the git family; raised as itself for local failures that are bugs or disk trouble."""


class GitUnavailable(GitError, BackendUnavailable):
    """Clone, fetch or push failed: network, authentication, or the remote refused."""

    def __init__(self, repository: str, message: str) -> None:
        BackendUnavailable.__init__(self, f"Git repository {repository}", message)
        self.repository = repository


class PushRejected(GitUnavailable):
    """The remote refused the push for a reason git does not explain (a custom hook, a policy):
    `refusal` is what its text says (services/git/refusal.py); `branch` the branch pushed to."""

    def __init__(self, repository: str, message: str, *, branch: str, refusal: PushRefusal) -> None:
        super().__init__(repository, message)
        self.branch = branch
        self.refusal = refusal


class ProtectedBranch(PushRejected):
    """The branch is protected: changes must go through a pull request (GitHub) or a merge request
    (GitLab). `refusal.host` says which host said so, `refusal.reasons` its own lines."""


class NonFastForward(PushRejected):
    """The branch moved under the push (`fetch first`): refetch and re-apply, never a PR. The git
    service retries these itself; this is raised only when git reports one it could not retry."""


class GitConflict(GitError, UserError):
    """The change cannot be applied on the branch as it is now; nothing was pushed.

    `paths` are the repository paths in conflict, `commit` the (short) SHA that changed them when
    known.
    """

    def __init__(
        self,
        message: str,
        *,
        paths: Sequence[str] = (),
        commit: str | None = None,
        hint: str | None = None,
    ) -> None:
        UserError.__init__(self, message, hint=hint)
        self.paths = tuple(paths)
        self.commit = commit


class RevisionNotFound(GitError, UserError):
    """A well-formed revision that the repository does not have (or a short SHA that is ambiguous)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        UserError.__init__(self, message, hint=hint)
