"""Scheduled reminders: holds the bot opened (auto-sync off after a rollback) until released."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.deps import Deps
from handlers.rollback.views import hold_reminder

log = logging.getLogger(__name__)


def remind_holds(deps: Deps, client: WebClient) -> int:
    """Post one reminder per due hold; returns how many were posted."""
    if deps.ops is None:
        return 0
    holds = deps.ops.holds
    posted = 0
    for hold in holds.due_for_reminder(every=deps.settings.operations.hold_reminder, now=deps.clock()):
        reply = hold_reminder(hold)
        channel = hold.channel or deps.settings.drift_channel
        if not channel:
            continue
        try:
            client.chat_postMessage(channel=channel, text=reply.text, blocks=list(reply.blocks))
        except SlackApiError:
            log.warning("hold reminder could not be posted", extra={"hold": hold.id})
            continue
        holds.mark_reminded(hold.id, now=deps.clock())
        posted += 1
    return posted
