"""The `change_window` validator: weekly windows in a time zone, like Argo CD's sync windows.

A week is laid out as minutes since Monday 00:00 wall-clock time in the validator's time zone;
each window becomes intervals on it (one over midnight runs into the next day, Sunday's into
Monday). Closed = inside a `deny` window, or outside every `allow` window when there are some.
Wall-clock time is what people mean by "Friday 16:00", so DST needs nothing more than converting
"now" with zoneinfo; "until" is the end of the closed stretch, joined across adjacent windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from services.extensions.builtin.verdicts import forceable, subject, utc_now
from services.extensions.model import Finding, PlannedChange
from services.settings.extensions import ChangeWindow, Window

DAY = 1440
WEEK = 7 * DAY
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Interval = tuple[int, int]  # [start, end) in minutes of the week


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if merged and start <= merged[-1][1]:  # overlapping or adjacent: one stretch
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def intervals(windows: Sequence[Window]) -> list[Interval]:
    """The windows as merged intervals of the week."""
    found: list[Interval] = []
    for window in windows:
        start, end = _minutes(window.start), _minutes(window.end)
        for day in window.days:
            base = DAYS.index(day) * DAY
            stop = base + end if start < end else base + DAY + end  # from > to: over midnight
            if stop > WEEK:  # Sunday night into Monday morning
                found += [(base + start, WEEK), (0, stop - WEEK)]
            else:
                found.append((base + start, stop))
    return _merge(found)


def _complement(spans: Sequence[Interval]) -> list[Interval]:
    gaps, at = [], 0
    for start, end in spans:
        gaps.append((at, start))
        at = end
    gaps.append((at, WEEK))
    return _merge(gaps)


def closed(spec: ChangeWindow) -> list[Interval]:
    """When changes are blocked: the deny windows, plus outside the allow windows if any."""
    outside = _complement(intervals(spec.allow)) if spec.allow else []
    return _merge([*intervals(spec.deny), *outside])


def reopens(spans: Sequence[Interval], minute: float) -> float | None:
    """The minute of the week (possibly past WEEK: next week) when the closed stretch holding
    `minute` ends; `minute` itself when it is open; None when the week is closed throughout."""
    if spans == [(0, WEEK)]:
        return None
    for start, end in spans:
        if start <= minute < end:
            if end == WEEK and spans[0][0] == 0:  # runs on into next Monday's stretch
                return WEEK + spans[0][1]
            return float(end)
    return minute


def weekday_clock(minute: float) -> str:
    """A minute of the week as `Mon 08:00`."""
    at = int(minute) % WEEK
    return f"{DAYS[at // DAY].title()} {at % DAY // 60:02d}:{at % 60:02d}"


def change_window_findings(spec: ChangeWindow, change: PlannedChange) -> list[Finding]:
    local = utc_now(change).astimezone(ZoneInfo(spec.timezone))
    minute = local.weekday() * DAY + local.hour * 60 + local.minute + local.second / 60
    spans = closed(spec)
    until = reopens(spans, minute)
    if until == minute:
        return []
    denied = any(start <= minute < end for start, end in intervals(spec.deny))
    what = "in a change freeze" if denied else "outside its change windows"
    if until is None:
        problem = f"{subject(change)} is {what}, and no window of the week opens ({spec.timezone})"
    else:
        problem = f"{subject(change)} is {what} until {weekday_clock(until)} ({spec.timezone})"
    return [forceable(spec.kind, "change window", problem, change)]
