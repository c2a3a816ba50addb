"""Write the audit row and the metrics for one handled request. Called after the ack."""

from __future__ import annotations

import logging
import time

from handlers.boundary import Result
from handlers.deps import Caller, Deps
from services.audit import AuditEvent
from services.errors import GitOpsBotError

log = logging.getLogger(__name__)


def record(
    deps: Deps,
    caller: Caller,
    *,
    action: str,
    command_text: str,
    target: str,
    result: Result,
    correlation_id: str,
    started: float,
) -> None:
    duration_ms = int((time.perf_counter() - started) * 1000)
    deps.metrics.observe_command(action, result.outcome)
    event = AuditEvent(
        user_id=caller.user_id,
        user_name=caller.user_name,
        channel=caller.channel_id,
        command=command_text,
        target=target,
        action=action,
        outcome=result.outcome,
        detail=result.detail,
        correlation_id=correlation_id,
        duration_ms=duration_ms,
    )
    try:
        deps.audit.append(event)
    except GitOpsBotError:
        # The reply already went out; losing the row must at least be loud in the logs.
        log.error("audit row could not be written", extra={"action": action, "outcome": result.outcome})
    log.info(
        "handled",
        extra={"action": action, "outcome": result.outcome, "target": target, "duration_ms": duration_ms},
    )
