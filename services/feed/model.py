"""What the feed keeps of an app (a lean snapshot, not a full AppStatus) and the deploys it finds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.backend import AppRef

Result = Literal["succeeded", "failed"]
TERMINAL = frozenset({"Succeeded", "Failed", "Error"})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One app as the feed needs it, built straight from the trimmed payload of an event or a list.

    `op_id` names the latest deploy attempt for good (Argo CD: its operation's start and finish
    times and revision; Flux: the applied or attempted revision, a Helm release's version), so the
    same attempt seen again — a stream replaying its snapshot after a cut, a re-list — is never a
    new deploy."""

    key: str  # "argocd:<instance>/<app namespace>/<name>", "flux:<cluster>/<ns>/<name>.<kind>"
    ref: AppRef
    resource_version: str = ""
    revision: str | None = None  # what runs now
    op_id: str | None = None
    op_phase: str | None = None  # Succeeded / Failed / Error; anything else: still running
    op_revision: str | None = None  # what the attempt deployed, or tried to
    started_at: datetime | None = None
    finished_at: datetime | None = None
    initiated_by: str | None = None  # a user name (Argo CD's token subject), None when automated
    automated: bool = False
    message: str = ""  # the attempt's message (why it failed)
    images: tuple[str, ...] = ()
    chart: str | None = None  # "name@version" for a Helm release
    labels: tuple[tuple[str, str], ...] = ()
    settled: bool = True  # False while the backend has not re-read the app after the attempt
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Cursor:
    """The last deploy attempt the feed has accounted for, per app (stored: restarts resume here)."""

    key: str
    op_id: str | None
    revision: str | None
    images: tuple[str, ...] = ()
    chart: str | None = None


@dataclass(frozen=True, slots=True)
class Deploy:
    """One completed deploy (or failed attempt) of one app, found by the feed."""

    key: str
    ref: AppRef
    deploy_id: str  # the snapshot's op_id: unique per app
    result: Result
    old_revision: str | None
    new_revision: str | None
    old_images: tuple[str, ...]
    new_images: tuple[str, ...]
    old_chart: str | None
    new_chart: str | None
    started_at: datetime | None
    finished_at: datetime | None
    initiated_by: str | None
    automated: bool
    message: str
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return max(0.0, (self.finished_at - self.started_at).total_seconds())
        return None


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """The deployed commit, as Git tells it (decoration: None where the backend cannot say)."""

    author: str | None = None
    date: datetime | None = None  # the commit's date: where lead time for changes starts
    message: str | None = None
