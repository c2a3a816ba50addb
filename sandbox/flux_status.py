"""Status building blocks of the Flux controllers: kstatus conditions, Go durations, digests."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def condition(
    type_: str, status: str, reason: str, message: str, generation: int, now: str
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now,
    }


def merge_conditions(
    old: Iterable[Mapping[str, Any]], updates: Iterable[dict[str, Any]], *, remove: Collection[str] = ()
) -> list[dict[str, Any]]:
    """Set conditions by type like `conditions.Set`: lastTransitionTime only moves when status changes."""
    result = [dict(c) for c in old if c.get("type") not in remove]
    for update in updates:
        for index, existing in enumerate(result):
            if existing.get("type") == update["type"]:
                if existing.get("status") == update["status"]:
                    update = {**update, "lastTransitionTime": existing.get("lastTransitionTime")}
                result[index] = update
                break
        else:
            result.append(update)
    order = {"Reconciling": 0, "Stalled": 1, "Ready": 2}
    return sorted(result, key=lambda c: order.get(str(c.get("type")), 3))


def find_condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for item in status.get("conditions") or []:
        if item.get("type") == type_:
            found: Mapping[str, Any] = item
            return found
    return None


def is_ready(obj: Mapping[str, Any]) -> bool:
    ready = find_condition(obj.get("status") or {}, "Ready")
    return ready is not None and ready.get("status") == "True"


def parse_duration(text: str) -> float:
    """A Flux `spec.interval` (`1m30s`, `10m`, `500ms`) in seconds; 0.0 when it does not parse."""
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def go_duration(seconds: float) -> str:
    """Go's `time.Duration.String()`: `201.5ms`, `1.2s`, `10m0s`, `1h0m0s`."""
    if seconds < 1:
        return f"{round(seconds * 1000, 3):g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{round(secs, 3):g}s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
