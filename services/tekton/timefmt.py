"""Times and durations as Tekton and tkn write them (docs/tekton-api.md §6, §8.8).

- `age`: tkn's STARTED column, `durafmt.ParseShort(now − start)` + ` ago`: only the largest
  unit (`8 minutes ago`, `1 hour ago`). Times are second precision, so anything under a second
  reads `0 seconds ago`; a start in the future (clock skew) too.
- `go_duration`: Go's `time.Duration.String()` for whole seconds (`5m0s`, `1h2m3s`, `15s`).
- `parse_go_duration`: `1h0m0s`, `30m`, `1.5h`, `300ms`, `0` → seconds. Timeouts are compared
  as numbers, never as strings.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

# durafmt's units, largest first (a year is 365 days, a week 7).
_UNITS: tuple[tuple[str, int], ...] = (
    ("year", 365 * 86400),
    ("week", 7 * 86400),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
    ("second", 1),
)
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_TERM = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp from the API (`2026-08-20T10:00:00Z`) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def short(seconds: float) -> str:
    """durafmt.ParseShort: the largest non-zero unit, `0 seconds` for nothing."""
    whole = int(max(0.0, seconds))
    for unit, size in _UNITS:
        count = whole // size
        if count:
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return "0 seconds"


def age(start: datetime | None, now: datetime) -> str:
    if start is None:
        return "---"
    return short((now - start).total_seconds()) + " ago"


def go_duration(seconds: float) -> str:
    whole = int(max(0.0, seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string; ValueError when it is not one."""
    value = text.strip()
    if value == "0":
        return 0.0
    sign = -1.0 if value.startswith("-") else 1.0
    body = value.lstrip("+-")
    if not body:
        raise ValueError(f"not a Go duration: {text!r}")
    total, pos = 0.0, 0
    for match in _GO_TERM.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(body):
        raise ValueError(f"not a Go duration: {text!r}")
    return sign * total


__all__ = ["age", "go_duration", "parse_go_duration", "parse_time", "short"]
