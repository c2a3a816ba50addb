"""What the built-in validators share: scope matching, wording, the `--force` override."""

from __future__ import annotations

from datetime import UTC, datetime

from services.extensions.model import Finding, PlannedChange
from services.settings.extensions import Scope

FORCE_HINT = "an admin can pass `--force`"


def applies(scope: Scope, change: PlannedChange) -> bool:
    """Whether a validator configured with `scope` looks at `change` (empty lists: every one)."""
    if change.action not in scope.actions:
        return False
    if scope.environments and change.env not in scope.environments:
        return False
    return not scope.apps or change.app in scope.apps


def forceable(validator: str, label: str, problem: str, change: PlannedChange) -> Finding:
    """A finding an admin's `--force` turns from a block into a warning (and says so)."""
    if change.force:
        return Finding(validator, "warn", f"{label} overridden with --force: {problem}")
    return Finding(validator, "block", f"{problem}: {FORCE_HINT}")


def subject(change: PlannedChange) -> str:
    """What a message calls the target: its environment, else its app, else the backend's name."""
    return plain(change.env or change.app or change.ref.display)


def plain(text: str) -> str:
    """Text safe inside Slack mrkdwn: the three characters Slack wants escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def utc_now(change: PlannedChange) -> datetime:
    """`change.at`, aware (a naive time is taken as UTC)."""
    return change.at if change.at.tzinfo is not None else change.at.replace(tzinfo=UTC)


def utc_clock(at: datetime, now: datetime) -> str:
    """`14:32 UTC` on the day of `now`, else `Tue 14:32 UTC` (within a week) or `2025-03-31 14:32 UTC`."""
    at, now = at.astimezone(UTC), now.astimezone(UTC)
    if at.date() == now.date():
        return f"{at:%H:%M} UTC"
    if abs((at.date() - now.date()).days) < 7:
        return f"{at:%a %H:%M} UTC"
    return f"{at:%Y-%m-%d %H:%M} UTC"


def duration(seconds: float) -> str:
    """`less than a minute`, `12 minutes`, `1 hour 5 minutes`, `3 days 2 hours`."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "less than a minute"
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    shown = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in parts if n]
    return " ".join(shown[:2])
