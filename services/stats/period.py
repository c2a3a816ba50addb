"""The period a report covers: `--since 30d` parsing, and the calendar days of a period in a zone."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

MAX_SINCE: Final = timedelta(days=365)
_UNITS: Final = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_SINCE = re.compile(r"([0-9]+)([hdw])")  # ASCII digits only: the \d class also matches other scripts
_ECHO = 20  # how much of a bad value the error message repeats (it is user text)


def parse_since(text: str) -> timedelta:
    """`"30d"`, `"2w"`, `"12h"` → a timedelta; at most 365 days, at least one hour.

    Raises ValueError with a message meant for the user (the value, what is accepted).
    """
    value = text.strip().lower()
    match = _SINCE.fullmatch(value)
    if match is None:
        shown = value[:_ECHO] + ("…" if len(value) > _ECHO else "")
        raise ValueError(
            f"--since takes a number and a unit: h (hours), d (days) or w (weeks), like 30d, 2w or 12h"
            f" (got {shown!r})"
        )
    digits, unit = match.group(1), match.group(2)
    # Bound before converting: a 5,000-digit number would trip int()'s own limit with another message.
    amount = int(digits) if len(digits) <= 6 else MAX_SINCE.days * 24 + 1
    if amount == 0:
        raise ValueError(f"--since must be more than zero (got {value!r})")
    period = amount * _UNITS[unit]
    if period > MAX_SINCE:
        shown = value[:_ECHO] + ("…" if len(value) > _ECHO else "")
        raise ValueError(f"--since can go back at most {MAX_SINCE.days}d (got {shown!r})")
    return period


def days_in(since: datetime, until: datetime, tz: ZoneInfo) -> list[date]:
    """The calendar days, in `tz`, that [since, until) touches, oldest first."""
    first = since.astimezone(tz).date()
    last = (until - timedelta(microseconds=1)).astimezone(tz).date()
    count = (last - first).days + 1
    return [first + timedelta(days=i) for i in range(max(count, 0))]
