"""The `soak` validator: a promotion's source must have run the version, Synced and Healthy, a while."""

from __future__ import annotations

from datetime import timedelta

from services.extensions.builtin.verdicts import duration, forceable, plain, subject, utc_clock, utc_now
from services.extensions.model import Finding, PlannedChange
from services.settings.extensions import Soak


def soak_findings(spec: Soak, change: PlannedChange) -> list[Finding]:
    if change.action != "promote":
        return []
    source = plain(change.source_env or "the source environment")
    needed = f"it must run there for {duration(spec.minutes * 60)} before it goes to {subject(change)}"
    status = change.source
    if status is None:
        problem = (
            f"the status of {source} is unknown, so how long the version has run there cannot be checked"
        )
    elif not status.healthy:
        problem = f"{source} is not Synced and Healthy ({status.sync}, {status.health}); {needed}"
    elif change.source_since is None:
        problem = f"how long {source} has run this version is unknown; {needed}"
    else:
        now = utc_now(change)
        ran = (now - change.source_since).total_seconds()
        if ran >= spec.minutes * 60:
            return []
        ready = utc_clock(change.source_since + timedelta(minutes=spec.minutes), now)
        problem = f"{source} has run this version for {duration(max(ran, 0))}; {needed} (ready at {ready})"
    return [forceable(spec.kind, "soak", problem, change)]
