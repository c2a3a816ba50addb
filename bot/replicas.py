"""Replicas sharing one database say they are alive; the leader closes what a silent one left.

Each replica writes its heartbeat every HEARTBEAT_SECONDS (`replicas` table). A request another
replica accepted is closed as cut off (or, for an operation it followed, followed again) only once
that replica has been silent for REPLICA_SILENCE: a replica that is merely busy keeps its requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from services.inflight import Inflight, InflightRequests

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 10.0
REPLICA_SILENCE = timedelta(seconds=60)


def heartbeat(
    inflight: InflightRequests, silence: timedelta | None, close: Callable[[list[Inflight]], object]
) -> None:
    """Say this replica is alive; with `silence` (shared database, this replica leads) close the
    requests of replicas silent that long. Never raises: the next tick tries again."""
    try:
        inflight.alive()
        if silence is None:
            return
        left = inflight.left_behind(silent_for=silence)
        if left:
            log.warning("closing requests of a replica that stopped", extra={"requests": len(left)})
            close(left)
    except Exception:  # a scheduler job must not die
        log.exception("replica heartbeat failed")
