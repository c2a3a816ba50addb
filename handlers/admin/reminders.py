"""Scheduled: deploy locks whose TTL ran out are released and announced where they were set, and
audited (`lock.expired`, by the bot) so the trail and the notifiers know."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.admin.views import lock_expired
from handlers.deps import Deps
from services.access.locks import Lock
from services.audit.trail import AuditEvent
from services.errors import GitOpsBotError
from services.extensions.events import BOT_USER

log = logging.getLogger(__name__)


def expire_locks(deps: Deps, client: WebClient) -> int:
    """Release expired locks and say so where each was set; returns how many expired."""
    if deps.locks is None:
        return 0
    expired = deps.locks.expire_due(now=deps.clock())
    if expired:
        _audit(deps, expired)
    for lock in expired:
        reply = lock_expired(lock)
        channel = lock.channel or deps.settings.drift_channel
        if not channel:
            continue
        try:
            client.chat_postMessage(channel=channel, text=reply.text, blocks=list(reply.blocks))
        except SlackApiError:
            log.warning("lock expiry could not be announced", extra={"lock": lock.id})
    return len(expired)


def _audit(deps: Deps, expired: list[Lock]) -> None:
    rows = [
        AuditEvent(
            user_id=BOT_USER, user_name=BOT_USER, channel=lock.channel or "", command="lock expiry",
            target=_target(deps, lock), action="lock.expired", outcome="ok",
            detail=f"lock {lock.id} on {lock.scope} expired (set by {lock.created_by}: {lock.reason})",
        )
        for lock in expired
    ]  # fmt: skip
    try:
        deps.audit.append_many(rows)
    except GitOpsBotError:
        log.error("lock expiry audit rows not written", extra={"rows": len(rows)})


def _target(deps: Deps, lock: Lock) -> str:
    """The audit target the `lock` command used: `app/env` for an app's lock, else the env."""
    if lock.app is None:
        return lock.env
    return (
        deps.ops.resolver.typed_target(lock.app, lock.env)
        if deps.ops is not None
        else f"{lock.app}/{lock.env}"
    )
