"""Operations the watcher was following when the bot stopped.

At shutdown each is recorded as still running — an audit row (`unknown`, "still running in Argo CD")
and a note on its card — and stays in the in-flight table. At the next start it is followed again
from where Argo CD or Flux has got to, and its card and audit row are finished as if nothing had
happened; one whose card cannot be drawn again is reported like any other cut-off request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers import messages as msg
from handlers.blocks import Block, Reply, section
from handlers.boundary import Result
from handlers.caller import Caller
from handlers.conversation import Conversation
from handlers.deps import Deps
from handlers.follow import RendererFactory, follow
from handlers.recording import Accepted, run_tracked
from services.audit.trail import AuditEvent
from services.backend import AppRef
from services.errors import GitOpsBotError
from services.inflight import Inflight
from services.watcher import Reservation

log = logging.getLogger(__name__)

# Follows a request's operation again from its spec, for kinds whose status is not an AppStatus.
Follower = Callable[[Deps, Conversation, Mapping[str, Any], Reservation], Reply]


def resume(
    deps: Deps,
    client: WebClient,
    request: Inflight,
    renderers: Mapping[str, RendererFactory],
    followers: Mapping[str, Follower] | None = None,
) -> bool:
    """Follow `request`'s operation again; False when it cannot be (the caller reports it).
    `followers` pick up kinds that are not an app's operation (a Tekton run), by spec kind."""
    spec = request.watch
    if spec is None or deps.ops is None:
        return False
    try:
        follow_again = _how(deps, spec, renderers, followers or {})
        if follow_again is None:
            return False
        reservation = deps.ops.watcher.reserve()
    except (GitOpsBotError, KeyError, TypeError, ValueError):
        log.warning("cannot follow a request again", extra={"action": request.action}, exc_info=True)
        return False
    accepted = _accepted(request)
    channel = request.message_channel or request.channel
    conversation = Conversation(
        _no_response_url, client, channel=channel, user=request.user_id,
        on_shown=lambda ch, ts, reply: accepted.shown(deps, ch, ts, reply),
        later=deps.ops.watcher.call_later,
    )  # fmt: skip
    if request.message_ts:
        conversation.adopt(request.message_ts, channel=channel)

    def again() -> Reply:
        try:
            return follow_again(conversation, reservation)
        except BaseException:
            reservation.release()
            raise

    run_tracked(deps, accepted, conversation, again, deliver=lambda result: _deliver(conversation, result))
    log.info("following an operation again after a restart", extra={"action": request.action})
    return True


def _how(
    deps: Deps,
    spec: Mapping[str, Any],
    renderers: Mapping[str, RendererFactory],
    followers: Mapping[str, Follower],
) -> Callable[[Conversation, Reservation], Reply] | None:
    """How to follow this spec's operation again; None for a kind nobody knows."""
    kind = str(spec.get("kind"))
    follower = followers.get(kind)
    if follower is not None:
        return lambda conversation, slot: follower(deps, conversation, spec, slot)
    factory = renderers.get(kind)
    if factory is None:
        return None
    ref = AppRef(**spec["ref"])
    render = factory(deps, spec)
    return lambda conversation, slot: follow(deps, conversation, ref, slot, render)


def still_running(deps: Deps, client: WebClient, request: Inflight) -> None:
    """At shutdown: the audit trail and the card say the operation goes on; the row stays."""
    what = _system(request)
    event = AuditEvent(
        user_id=request.user_id, user_name=request.user_name, channel=request.channel,
        command=request.command, target=request.target, action=request.action, outcome="unknown",
        detail=f"still running in {what} when gitops-bot stopped; followed again at the next start",
        correlation_id=request.correlation_id, request_id=request.started_id,
        duration_ms=max(0, int((datetime.now(UTC) - request.accepted_at).total_seconds() * 1000)),
    )  # fmt: skip
    try:
        deps.audit.append(event)
    except GitOpsBotError:
        log.error("audit row could not be written", extra={"action": request.action})
    if request.message_channel and request.message_ts:
        text = msg.FOLLOW_STILL_RUNNING.format(what=what)
        blocks: list[Block] = [*_kept(request.message), section(text)]
        try:
            client.chat_update(
                channel=request.message_channel, ts=request.message_ts, text=text, blocks=blocks
            )
        except SlackApiError as exc:
            log.warning(
                "could not note the running operation", extra={"error": str(exc.response.get("error"))}
            )


def _system(request: Inflight) -> str:
    if (request.watch or {}).get("what"):  # a spec naming its system itself (a Tekton run)
        return str((request.watch or {})["what"])
    ref = (request.watch or {}).get("ref") or {}
    backend = "Argo CD" if ref.get("backend") == "argocd" else "Flux"
    return f"{backend} {ref.get('instance') or ''}".strip()


def _kept(message: Mapping[str, Any] | None) -> list[Block]:
    blocks = message.get("blocks") if message else None
    if not isinstance(blocks, list):
        return []
    return [b for b in blocks if isinstance(b, dict) and b.get("type") not in ("actions", "input")][:48]


def _accepted(request: Inflight) -> Accepted:
    waited = (datetime.now(UTC) - request.accepted_at).total_seconds()
    caller = Caller(request.user_id, request.user_name, request.channel, "")
    return Accepted(
        caller, request.action, request.command, request.target, request.correlation_id,
        started=time.perf_counter() - max(0.0, waited), started_id=request.started_id,
    )  # fmt: skip


def _deliver(conversation: Conversation, result: Result) -> None:
    conversation.finish(result.reply)


def _no_response_url(**_kwargs: Any) -> None:
    """A resumed request has no response_url: its public card is edited instead."""
