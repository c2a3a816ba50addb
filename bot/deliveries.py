"""Each Slack request runs once, in both modes.

A captured HTTP request sent again (a replay) repeats its signature; Slack itself delivers again
what it thinks went unacknowledged: a Socket Mode envelope comes back with the same `envelope_id`
and a `retry_attempt`, an HTTP request with `X-Slack-Retry-Num` and a new timestamp and signature
around the same body. All of it is remembered in one database table (services/access/replay.py), checked
in one transaction per request, since it sits on the ack path:

- `OnceSocketModeHandler` refuses an envelope id seen before: it still acknowledges the envelope,
  so Slack stops redelivering, but dispatches nothing;
- `DuplicateFilter`, a Bolt middleware after the signature check, answers a replayed signature
  with 401 (like a forgery), and refuses a payload whose `trigger_id` (commands, clicks) or
  `event_id` (events) was seen before, and, in HTTP mode, a retried request (`X-Slack-Retry-Num`)
  without ids whose raw body was seen before.

A dropped redelivery is logged (never the payload: it carries response_url capabilities) and written
to the audit trail as action `replay`, outcome `denied`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from services.access.replay import ReplayGuard
from services.audit.trail import AuditEvent, AuditStore
from services.correlation import new_correlation_id
from services.errors import GitOpsBotError

log = logging.getLogger(__name__)

RETRY_HEADER = "x-slack-retry-num"  # Bolt's socket adapter copies retry_attempt into it as well


class DeliveryGuard:
    """Remembers delivery ids and records the duplicates it refuses."""

    def __init__(self, replay: ReplayGuard, audit: AuditStore) -> None:
        self._replay = replay
        self._audit = audit

    def first(
        self, keys: list[str], *, signature: str | None = None, timestamp: float | None = None
    ) -> tuple[bool, list[str]]:
        """Remember `keys`; return (a replayed signature, the keys seen before). A database that
        cannot answer lets the delivery through: the command then meets the same database."""
        if not keys and signature is None:
            return False, []
        try:
            return self._replay.check(signature, timestamp, keys)
        except GitOpsBotError:
            log.error("cannot check Slack deliveries for duplicates", extra={"keys": len(keys)})
            return False, []

    def dropped(self, payload: Mapping[str, Any], *, by: str, retry: str | None) -> None:
        """Log and audit one refused duplicate, `by` naming what gave it away."""
        cid = new_correlation_id()
        facts = _facts(payload)
        log.warning(
            "duplicate Slack delivery dropped",
            extra={"duplicate_by": by, "retry_num": retry, "user_id": facts["user_id"] or None},
        )
        detail = f"duplicate Slack delivery dropped (same {by}" + (f", retry {retry})" if retry else ")")
        event = AuditEvent(
            user_id=facts["user_id"] or "unknown",
            user_name=facts["user_name"],
            channel=facts["channel"],
            command=facts["command"],
            action="replay",
            outcome="denied",
            detail=detail,
            correlation_id=cid,
        )
        try:
            self._audit.append(event)
        except GitOpsBotError:
            log.error("audit row could not be written", extra={"action": "replay"})


class DuplicateFilter(Middleware):
    """Global Bolt middleware: registered after Bolt's own, so only signed requests are remembered."""

    def __init__(self, guard: DeliveryGuard) -> None:
        self._guard = guard

    def process(
        self,
        *,
        req: BoltRequest,
        resp: BoltResponse,
        next: Callable[[], BoltResponse],  # Bolt passes it by this name
    ) -> BoltResponse | None:
        body: Mapping[str, Any] = req.body or {}
        retry = _first(req.headers.get(RETRY_HEADER))
        keys = [f"{name}:{str(body[name])[:200]}" for name in ("trigger_id", "event_id") if body.get(name)]
        http = req.mode == "http"
        # A body with an id is known by it (a retry repeats it); only one without needs its hash.
        raw = req.raw_body if http and not keys else ""
        body_key = f"body:{hashlib.sha256(raw.encode()).hexdigest()}" if raw else None
        signature = _first(req.headers.get("x-slack-signature")) if http else None
        timestamp = _first(req.headers.get("x-slack-request-timestamp")) if http else None
        replayed, seen = self._guard.first(
            keys + ([body_key] if body_key else []), signature=signature, timestamp=_number(timestamp)
        )
        if replayed:  # the same signed request again: answered like a forgery, nothing runs
            log.warning("replayed Slack request refused")
            return BoltResponse(status=401, body='{"error": "invalid request"}')
        # Every id-less body is remembered, but only a declared retry is refused for it alone.
        by = [k.split(":", 1)[0] for k in seen if k != body_key or retry is not None]
        if not by:
            return next()
        self._guard.dropped(body, by=by[0], retry=retry)
        return BoltResponse(status=200, body="")  # Slack stops retrying; nothing runs


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


class OnceSocketModeHandler(SocketModeHandler):
    """Bolt's Socket Mode handler, refusing an envelope it has already dispatched."""

    def __init__(self, app: App, app_token: str, *, web_client: WebClient, guard: DeliveryGuard) -> None:
        super().__init__(app, app_token, web_client=web_client)
        self._guard = guard

    def handle(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        if not self._guard.first([f"envelope_id:{req.envelope_id}"])[1]:
            # Bolt's handler only needs send_socket_mode_response and logger, which every client has.
            super().handle(client, req)  # type: ignore[arg-type]
            return
        # Acknowledged, so Slack stops redelivering; not dispatched, so nothing runs twice.
        client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        retry = None if req.retry_attempt is None else str(req.retry_attempt)
        self._guard.dropped(req.payload or {}, by="envelope_id", retry=retry)


def _first(values: Any) -> str | None:
    if isinstance(values, str):
        return values
    return str(values[0]) if values else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _facts(payload: Mapping[str, Any]) -> dict[str, str]:
    """Who sent it and what they typed or clicked: slash command fields, a click's user and
    action, or an event's user. Never the response_url, never the whole payload."""
    user, event, channel = (_mapping(payload.get(name)) for name in ("user", "event", "channel"))
    actions = payload.get("actions")
    action = _mapping(actions[0]) if isinstance(actions, list) and actions else {}
    command = payload.get("text") if "command" in payload else action.get("action_id")
    return {
        "user_id": str(payload.get("user_id") or user.get("id") or event.get("user") or "")[:40],
        "user_name": str(payload.get("user_name") or user.get("username") or "")[:80],
        "channel": str(payload.get("channel_id") or channel.get("id") or event.get("channel") or "")[:40],
        "command": str(command or "")[:500],
    }
