"""Audit rows and metrics for handled requests; called after the ack.

A request answered at once gets one row (`record`). A request handed to the background pool is
noted as in flight when accepted (`accept`) — with a `started` audit row when it changes
something — and gets its result row when it ends (`finish`), which names the started row in
`request_id`. So a sync cut off by `kill -9` is still in the trail, and the next start can
report it (handlers/recovery.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from handlers.blocks import Reply
from handlers.boundary import Result, guarded
from handlers.caller import Caller
from handlers.conversation import Conversation
from handlers.deps import Deps
from services.audit.trail import AuditEvent, Outcome
from services.backend import AppRef
from services.errors import GitOpsBotError
from services.inflight import Inflight

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    """A request handed to the background pool: what its result row will repeat."""

    caller: Caller
    action: str
    command_text: str
    target: str
    correlation_id: str
    started: float  # time.perf_counter() on arrival
    started_id: int | None  # its `started` audit row, when it changes something
    # Messages already noted for the feed: `shown` comes with every edit, the link needs the first.
    _linked: set[tuple[str, str]] = field(default_factory=set, compare=False, repr=False)

    def watching(self, deps: Deps, spec: Mapping[str, Any]) -> None:
        """The request's operation is followed by the watcher: remember how, for a restart."""
        if deps.inflight is None:
            return
        try:
            deps.inflight.watching(self.correlation_id, spec)
        except GitOpsBotError:
            log.warning("could not note the followed operation", extra={"action": self.action})

    def shown(self, deps: Deps, channel: str, ts: str, reply: Reply) -> None:
        """Remember the public message showing this request (Conversation calls this)."""
        if deps.inflight is None:
            return
        try:
            deps.inflight.shown(
                self.correlation_id, channel=channel, ts=ts, message={"text": reply.text,
                                                                      "blocks": list(reply.blocks)}
            )  # fmt: skip
        except GitOpsBotError:
            log.warning("could not note the request's message", extra={"action": self.action})
        if deps.feed is not None and (channel, ts) not in self._linked:
            self._linked.add((channel, ts))
            try:  # a deploy this request started links to this message in the feed
                deps.feed.shown(self.correlation_id, channel=channel, ts=ts)
            except GitOpsBotError:
                log.warning(
                    "could not note the request's message for the feed", extra={"action": self.action}
                )


def target_of(deps: Deps, ref: AppRef) -> str:
    """The app's one audit target (`app/env` for a configured app), for every entry point."""
    return deps.ops.resolver.audit_target(ref) if deps.ops is not None else ref.display


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
    """One row for a request answered at once."""
    _append(deps, _event(caller, action, command_text, target, result.outcome, result.detail,
                         correlation_id, started), action)  # fmt: skip
    _count(deps, action, result.outcome, target, started)


def accept(
    deps: Deps,
    caller: Caller,
    *,
    action: str,
    command_text: str,
    target: str,
    correlation_id: str,
    started: float,
    changes: bool,
    response_url: str | None = None,
) -> Accepted:
    """Note a request going to the background: a `started` row if it changes something, and an
    in-flight entry (with the response_url, to correct its message after a restart)."""
    started_id = None
    if changes:
        event = _event(caller, action, command_text, target, "started", "", correlation_id, started)
        written = _append(deps, event, action)
        started_id = written.id if written is not None else None
    if deps.inflight is not None:
        try:
            deps.inflight.add(
                Inflight(
                    correlation_id=correlation_id, started_id=started_id, owner=deps.inflight.owner,
                    user_id=caller.user_id, user_name=caller.user_name, channel=caller.channel_id,
                    action=action, command=command_text, target=target, accepted_at=datetime.now(UTC),
                    response_url=response_url,
                )
            )  # fmt: skip
        except GitOpsBotError:
            log.error("could not note the request as in flight", extra={"action": action})
    return Accepted(caller, action, command_text, target, correlation_id, started, started_id)


def finish(deps: Deps, request: Accepted, result: Result, *, target: str | None = None) -> None:
    """The result row of an accepted request (naming its started row), and it leaves the in-flight
    list in the same transaction."""
    where = target or request.target
    event = _event(
        request.caller, request.action, request.command_text, where, result.outcome, result.detail,
        request.correlation_id, request.started, request_id=request.started_id,
    )  # fmt: skip
    if deps.inflight is None:
        _append(deps, event, request.action)
    else:
        try:
            deps.inflight.settle(request.correlation_id, lambda: deps.audit.append(event))
        except GitOpsBotError:
            log.error("audit row could not be written", extra={"action": request.action})
    _count(deps, request.action, result.outcome, where, request.started)


def run_tracked(
    deps: Deps,
    request: Accepted,
    conversation: Conversation,
    work: Callable[[], Reply],
    *,
    deliver: Callable[[Result], None],
    target: Callable[[], str | None] = lambda: None,
) -> None:
    """Run an accepted request's work; record and deliver its result — now, or when the watcher
    completes an operation the work handed to it (a `deferred` reply, see handlers/follow.py)."""

    def completion(make: Callable[[], Reply], outcome: str | None) -> None:
        result = guarded(make, correlation_id=request.correlation_id)
        if outcome in ("unknown",) and result.outcome == "ok":
            result = Result(result.reply, "unknown", result.detail)
        finish(deps, request, result, target=target())  # before the reply: shown means recorded
        deliver(result)

    conversation.completion = completion
    conversation.on_watch = lambda spec: request.watching(deps, spec)
    result = guarded(work, correlation_id=request.correlation_id)
    if result.reply.deferred:
        return
    finish(deps, request, result, target=target())
    deliver(result)


def _event(
    caller: Caller,
    action: str,
    command_text: str,
    target: str,
    outcome: Outcome,
    detail: str,
    correlation_id: str,
    started: float,
    *,
    request_id: int | None = None,
) -> AuditEvent:
    return AuditEvent(
        user_id=caller.user_id,
        user_name=caller.user_name,
        channel=caller.channel_id,
        command=command_text,
        target=target,
        action=action,
        outcome=outcome,
        detail=detail,
        correlation_id=correlation_id,
        duration_ms=int((time.perf_counter() - started) * 1000),
        request_id=request_id,
    )


def _append(deps: Deps, event: AuditEvent, action: str) -> AuditEvent | None:
    try:
        return deps.audit.append(event)
    except GitOpsBotError:
        # The reply already went out; losing the row must at least be loud in the logs.
        log.error("audit row could not be written", extra={"action": action, "outcome": event.outcome})
        return None


def _count(deps: Deps, action: str, outcome: str, target: str, started: float) -> None:
    if outcome == "started":
        return
    deps.metrics.observe_command(action, outcome)
    extra: dict[str, Any] = {"action": action, "outcome": outcome, "target": target,
                             "duration_ms": int((time.perf_counter() - started) * 1000)}  # fmt: skip
    log.info("handled", extra=extra)
