"""The mergeability dance (§5.5, §6.4): re-read with backoff until the host has made up its mind.

Bounded and short by default (about a minute): meant for the moment right after create/update.
Longer waits (reviews, pipelines) belong to the promotion flow's own scheduled polling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from services.githost.model import ChangeRequest, Readiness


class _Readable(Protocol):
    def get(self, number: int) -> ChangeRequest: ...

    def readiness(self, cr: ChangeRequest) -> Readiness: ...


def settle(
    host: _Readable,
    number: int,
    *,
    timeout: float = 60.0,
    first: float = 1.0,
    cap: float = 8.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[ChangeRequest, Readiness]:
    """(change request, readiness) once readiness is not `wait`, or the last reading at `timeout`
    (still `wait`: the caller keeps the card "waiting" and polls later)."""
    deadline = clock() + timeout
    delay = first
    while True:
        cr = host.get(number)
        readiness = host.readiness(cr)
        left = deadline - clock()
        if readiness.kind != "wait" or left <= 0:
            return cr, readiness
        sleep(min(delay, left))
        delay = min(cap, delay * 2)
