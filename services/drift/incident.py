"""The records of the drift incident lifecycle, and their SQLite row form (table `incidents`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from services.drift.rules import FindingKind
from services.drift.scan import Finding

ChangeKind = Literal["new", "update", "resolved", "reopened"]
IncidentStatus = Literal["open", "resolved"]


@dataclass(frozen=True)
class Incident:
    id: int
    key: str  # Finding.key
    backend: str  # "argocd:main": its incidents resolve only in scans where it answered
    app: str  # AppRef.display
    kind: FindingKind
    title: str
    detail: str
    resources: tuple[str, ...]
    since: datetime | None
    channel: str | None
    message_ts: str | None  # None: nothing posted (yet) for this incident
    thread_ts: str | None
    first_seen: datetime
    last_seen: datetime
    count: int  # scans that saw it, over every episode of this incident
    status: IncidentStatus
    resolved_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    snoozed_until: datetime | None
    snoozed_by: str | None
    flap_count: int  # times it came back within the flap window after resolving

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    def snoozed(self, at: datetime) -> bool:
        return self.snoozed_until is not None and self.snoozed_until > at

    def open_for(self, at: datetime) -> timedelta:
        """How long it has been (or was) open: "resolved after 37m" uses this."""
        return (self.resolved_at or at) - self.first_seen


@dataclass(frozen=True)
class Change:
    """What the caller should do with an incident's Slack message after a scan.

    - new: nothing posted yet: post it, then call `set_message`. Emitted again on later scans
      while no message is recorded, so a post lost to a crash or a Slack outage is retried.
    - update: edit the one message in place.
    - resolved: edit it to "resolved after …" (`Incident.open_for`).
    - reopened: the same incident came back within the flap window; edit and reply in its thread.

    quiet: post nothing new and notify no one (the incident is snoozed, or a resolved incident
    was never posted). The incident's state is up to date either way; a silent edit is harmless.
    finding: this scan's finding (its `ref` and `labels` pick a channel); None for "resolved".
    """

    kind: ChangeKind
    incident: Incident
    quiet: bool = False
    finding: Finding | None = None


def utc(value: datetime) -> datetime:
    # Stored timestamps are compared as text and as datetimes across calls; one zone keeps both right.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    # Fixed width, so SQL can compare the stored text in time order (resolved_at >= ?).
    return utc(value).isoformat(timespec="microseconds") if value is not None else None


def parse(value: str | None) -> datetime | None:
    return utc(datetime.fromisoformat(value)) if value else None


def finding_fields(finding: Finding) -> dict[str, Any]:
    """The columns a finding refreshes on every scan that sees it."""
    return {
        "title": finding.title,
        "detail": finding.detail,
        "resources": json.dumps(list(finding.resources)),
        "since": iso(finding.since),
    }


def new_row(finding: Finding, now: datetime) -> dict[str, Any]:
    return {
        **finding_fields(finding),
        "key": finding.key,
        "backend": finding.backend,
        "app": finding.ref.display,
        "kind": finding.kind,
        "first_seen": iso(now),
        "last_seen": iso(now),
        "count": 1,
        "status": "open",
        "flap_count": 0,
    }


def visible_change(incident: Incident, finding: Finding) -> bool:
    """Whether a reader of the message would see a difference (last-seen time and count aside)."""
    return (incident.title, incident.detail, incident.resources) != (
        finding.title,
        finding.detail,
        finding.resources,
    )


def incident_of(row: dict[str, Any]) -> Incident:
    # NOT NULL columns: parse never returns None for them.
    first_seen = parse(row["first_seen"]) or datetime.min.replace(tzinfo=UTC)
    last_seen = parse(row["last_seen"]) or first_seen
    resources = json.loads(row["resources"])
    return Incident(
        id=int(row["id"]),
        key=row["key"],
        backend=row["backend"],
        app=row["app"],
        kind=cast(FindingKind, row["kind"]),
        title=row["title"],
        detail=row["detail"],
        resources=tuple(str(r) for r in resources) if isinstance(resources, list) else (),
        since=parse(row["since"]),
        channel=row["channel"],
        message_ts=row["message_ts"],
        thread_ts=row["thread_ts"],
        first_seen=first_seen,
        last_seen=last_seen,
        count=int(row["count"]),
        status=cast(IncidentStatus, row["status"]),
        resolved_at=parse(row["resolved_at"]),
        acknowledged_by=row["acknowledged_by"],
        acknowledged_at=parse(row["acknowledged_at"]),
        snoozed_until=parse(row["snoozed_until"]),
        snoozed_by=row["snoozed_by"],
        flap_count=int(row["flap_count"]),
    )
