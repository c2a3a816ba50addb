"""Values the git service returns; `Commit` is made from GitPython's `git.Commit` (`commit_of`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import git

SUBJECT_LIMIT = 200


@dataclass(frozen=True)
class Commit:
    sha: str
    short: str
    author_name: str
    author_email: str
    date: datetime  # author date, aware, UTC
    message: str
    subject: str  # first line of the message, at most SUBJECT_LIMIT characters


@dataclass(frozen=True)
class PushResult:
    sha: str  # the commit now at the tip of `branch` on the remote
    branch: str
    attempts: int  # 1 unless the remote moved under us and the edit was re-applied
    changed_paths: tuple[str, ...]  # files in the pushed commit, as git reports them


def subject_of(message: str) -> str:
    first = message.strip().split("\n", 1)[0].strip() if message.strip() else ""
    return first if len(first) <= SUBJECT_LIMIT else first[: SUBJECT_LIMIT - 1] + "…"


def _text(value: str | bytes | None) -> str:
    # GitPython decodes with the commit's encoding and "replace"; it keeps bytes only when the
    # encoding itself is unknown.
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def commit_of(commit: git.Commit) -> Commit:
    """Our `Commit` for a GitPython commit (the raw author, as `git log --format=%an` shows it)."""
    message = _text(commit.message).rstrip()
    return Commit(
        sha=commit.hexsha,
        short=commit.hexsha[:8],
        author_name=_text(commit.author.name),
        author_email=_text(commit.author.email),
        date=datetime.fromtimestamp(commit.authored_date, UTC),
        message=message,
        subject=subject_of(message),
    )
