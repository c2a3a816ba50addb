"""Shared write discipline for git hosts: one write at a time per repository, and a pause after a
rate limit (githost-api.md §3 bot rule: "serialise writes per repository, and never retry a
mutating call in a tight loop"; after a secondary limit "pause all writes to that host").

One `WriteGate` per process is meant to be shared by every client (the bot's token and the
approving token of the same repository must queue behind the same lock); each client makes its
own when none is given.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

LimitKind = Literal["primary", "secondary", "gitlab"]

SECONDARY_FLOOR = 60.0  # GitHub: "wait at least one minute" without retry-after
SECONDARY_CAP = 900.0  # …doubling on each further hit, up to 15 minutes


@dataclass
class _Pause:
    until: float = 0.0
    writes_only: bool = True
    kind: LimitKind = "secondary"
    strikes: int = 0  # secondary limits in a row, for the exponential floor


class WriteGate:
    """Per-repository write locks and per-host pauses, keyed by strings the clients choose
    (`<api_url>` for a host, `<api_url>#<repo>` for a repository)."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.time
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._pauses: dict[str, _Pause] = {}

    def lock(self, repo_key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(repo_key, threading.Lock())

    def paused_for(self, host_key: str, *, write: bool) -> tuple[float, LimitKind]:
        """Seconds left before a call may go to the host (0 when it may go now), and why."""
        with self._guard:
            pause = self._pauses.get(host_key)
            if pause is None or (pause.writes_only and not write):
                return 0.0, "secondary"
            return max(0.0, pause.until - self._clock()), pause.kind

    def pause(self, host_key: str, seconds: float, *, writes_only: bool, kind: LimitKind) -> None:
        with self._guard:
            pause = self._pauses.setdefault(host_key, _Pause())
            until = self._clock() + max(0.0, seconds)
            if until >= pause.until:
                pause.until = until
                pause.writes_only = writes_only
                pause.kind = kind
            else:
                # A longer pause is already running; only widen it to reads when asked.
                pause.writes_only = pause.writes_only and writes_only

    def secondary_wait(self, host_key: str) -> float:
        """The next back-off after a secondary limit without retry-after: 60 s, 120 s, … 900 s."""
        with self._guard:
            pause = self._pauses.setdefault(host_key, _Pause())
            pause.strikes += 1
            return min(SECONDARY_CAP, SECONDARY_FLOOR * 2.0 ** (pause.strikes - 1))

    def succeeded(self, host_key: str) -> None:
        """A write went through: the next secondary limit starts from the floor again."""
        with self._guard:
            pause = self._pauses.get(host_key)
            if pause is not None:
                pause.strikes = 0
