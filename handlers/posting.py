"""Posting the bot's own alerts (scheduled jobs, no user request behind them) to a channel, paced.

Slack allows about one message a second per channel; a scan with many alerts waits between posts
to one channel instead of being throttled. A 429 is already retried after its Retry-After by the
WebClient (bot/wiring's retry handlers); any other refusal is logged — never the token — and the
caller learns of it from a None.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.blocks import Reply

log = logging.getLogger(__name__)


@dataclass
class PacedPoster:
    client: WebClient
    pace: float = 1.0  # seconds between posts to one channel
    sleep: Callable[[float], None] = time.sleep
    what: str = "alert"  # names the job in the log line of a refused post
    _last_post: dict[str, float] = field(default_factory=dict)

    def _wait(self, channel: str) -> None:
        last = self._last_post.get(channel)
        if last is not None:
            wait = self.pace - (time.monotonic() - last)
            if wait > 0:
                self.sleep(wait)
        self._last_post[channel] = time.monotonic()

    def post(self, channel: str, reply: Reply, *, thread_ts: str | None = None) -> str | None:
        """The new message's ts, or None when Slack refused it."""
        self._wait(channel)
        try:
            result = self.client.chat_postMessage(
                channel=channel, text=reply.text, thread_ts=thread_ts, blocks=list(reply.blocks) or None
            )
        except SlackApiError as exc:
            log.warning(
                f"{self.what} post failed",
                extra={"channel": channel, "error": str(exc.response.get("error"))},
            )
            return None
        return str(result["ts"])
