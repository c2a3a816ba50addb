"""Git for the bot: cached clones of the deploy repositories, diff/log, and commits pushed with
races handled (a Flux rollback or a promotion is a commit). See cache.RepoCache."""

from __future__ import annotations

from services.git.cache import RepoCache
from services.git.errors import GitConflict, GitError, GitUnavailable, RevisionNotFound
from services.git.model import Commit, PushResult
from services.git.urls import same_repository, url_key

__all__ = [
    "Commit",
    "GitConflict",
    "GitError",
    "GitUnavailable",
    "PushResult",
    "RepoCache",
    "RevisionNotFound",
    "same_repository",
    "url_key",
]
