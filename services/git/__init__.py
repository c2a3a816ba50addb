"""Git for the bot: cached clones of the deploy repositories, diff/log, and commits pushed with
races handled (a Flux rollback or a promotion is a commit). See cache.RepoCache.

Built on GitPython: clone.py keeps one `git.Repo` per repository (clone_from, Remote.fetch/push
and their PushInfo flags), cache.py and writes.py read refs, commits and trees through it, and
runner.py starts every git process GitPython asks for (scrubbed environment from env.py,
credentials for network commands only, deadlines that kill the process group). GitPython's
exceptions are mapped into errors.py's family and never leave this package. A push the remote refuses
is typed by refusal.py: ProtectedBranch (GH006 / GH013 / GitLab's protected-branch text: go the
pull-request route), NonFastForward, or PushRejected (any other refusal), all GitUnavailable."""

from __future__ import annotations

from services.git.cache import RepoCache
from services.git.errors import (
    GitConflict,
    GitError,
    GitUnavailable,
    NonFastForward,
    ProtectedBranch,
    PushRejected,
    RevisionNotFound,
)
from services.git.model import Commit, PushResult
from services.git.refusal import PushRefusal, classify_push_refusal
from services.git.urls import same_repository, url_key

__all__ = [
    "Commit",
    "GitConflict",
    "GitError",
    "GitUnavailable",
    "NonFastForward",
    "ProtectedBranch",
    "PushRefusal",
    "PushRejected",
    "PushResult",
    "RepoCache",
    "RevisionNotFound",
    "classify_push_refusal",
    "same_repository",
    "url_key",
]
