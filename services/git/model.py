"""Values the git service returns, and the `git log` format that produces `Commit`s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

SUBJECT_LIMIT = 200

# One field per \x1f, the message (which may hold anything but NUL) last; `-z` ends each record
# with NUL. %at (author date as a Unix timestamp) avoids parsing time zones.
LOG_FORMAT = "--format=%H%x1f%an%x1f%ae%x1f%at%x1f%B"


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


def parse_log(output: str) -> list[Commit]:
    """Parse `git log -z` output written with `LOG_FORMAT`."""
    commits = []
    for record in output.split("\0"):
        if not record.strip():
            continue
        sha, name, email, stamp, message = record.lstrip("\n").split("\x1f", 4)
        message = message.rstrip()
        commits.append(
            Commit(
                sha=sha,
                short=sha[:8],
                author_name=name,
                author_email=email,
                date=datetime.fromtimestamp(int(stamp), UTC),
                message=message,
                subject=subject_of(message),
            )
        )
    return commits
