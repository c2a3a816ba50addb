"""Scheduled: deploy locks whose TTL ran out are released and announced where they were set."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.admin.views import lock_expired
from handlers.deps import Deps

log = logging.getLogger(__name__)


def expire_locks(deps: Deps, client: WebClient) -> int:
    """Release expired locks and say so where each was set; returns how many expired."""
    if deps.locks is None:
        return 0
    expired = deps.locks.expire_due(now=deps.clock())
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
