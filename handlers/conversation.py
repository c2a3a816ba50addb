"""Where a command's answers go: one message, updated in place until the work is done.

Read-only answers replace the caller's ephemeral "working…" through the response_url.
Actions the team should see (sync, rollback) post one channel message and edit it with
`chat.update` as the operation moves; if the bot cannot post there (not a member), the
ephemeral message is updated instead, within the response_url's five uses.

For a button click the response_url points at the message the button sits on. That message is
never deleted, and a public one (a drift alert, an approval card) is never replaced through the
response_url either: answers go to the clicker ephemerally, into its thread, or edit the card
with `chat.update` after `adopt`. Only an ephemeral card (a confirm prompt) may be replaced.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.blocks import Reply

log = logging.getLogger(__name__)

_RESPOND_BUDGET = 4  # a response_url takes 5 posts; keep one for the final answer


@dataclass(frozen=True)
class ClickedMessage:
    """The message whose button was clicked: its ts, and whether only the clicker sees it."""

    ts: str
    ephemeral: bool


class Conversation:
    def __init__(
        self,
        respond: Callable[..., object] | Respond,
        client: WebClient,
        *,
        channel: str,
        user: str,
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        clicked: ClickedMessage | None = None,
        on_shown: Callable[[str, str, Reply], None] | None = None,
        later: Callable[[float, Callable[[], None]], None] | None = None,
    ) -> None:
        self._respond = respond
        self._clicked = clicked
        # Runs a held-back update when due: the watcher's scheduler, so a hundred followed
        # operations do not start a hundred timer threads (a Timer where none is given).
        self._later = later or _timer
        self._on_shown = on_shown  # told what the public message shows (to fix it after a restart)
        # Set by the pipeline for a request whose operation the watcher follows (handlers/follow):
        # `completion(make_reply, outcome)` records and delivers the end; `on_watch(spec)` remembers
        # how to pick the operation up again after a restart.
        self.completion: Callable[[Callable[[], Reply], str | None], None] | None = None
        self.on_watch: Callable[[dict[str, Any]], None] | None = None
        self.client = client
        self.channel = channel
        self.user = user
        self._min_interval = min_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._ts: str | None = None
        self._public = False
        self._respond_uses = 0
        self._last_update = 0.0
        self._held: Reply | None = None
        self._finished = False

    @property
    def message_ts(self) -> str | None:
        """The ts of the channel message, once posted (threads and audit point at it)."""
        return self._ts

    def adopt(self, ts: str, *, channel: str | None = None) -> None:
        """Continue on an existing channel message (the card whose button was clicked)."""
        with self._lock:
            self._ts = ts
            self.channel = channel or self.channel
            self._public = True

    def announce(self, reply: Reply, *, thread_ts: str | None = None, pointer: Reply | None = None) -> None:
        """Start a public, updatable message in the channel, or in the thread of `thread_ts`
        (falls back to the ephemeral reply). After a click on an ephemeral card, `pointer`
        replaces that card (e.g. "follow it in the channel")."""
        with self._lock:
            try:
                result = self.client.chat_postMessage(
                    channel=self.channel, text=reply.text, blocks=list(reply.blocks), thread_ts=thread_ts
                )
                self._ts = str(result["ts"])
                self._public = True
                self._shown(reply)  # first: a crash from here on still finds the message
                if self._clicked is None:
                    self._respond_quietly(delete_original=True)  # the command's "working…" note
                elif self._clicked.ephemeral and pointer is not None:
                    self._respond_quietly(replace_original=True, **pointer.as_kwargs())
            except SlackApiError as exc:
                log.info(
                    "cannot post in the channel; updating the ephemeral reply", extra={"error": _code(exc)}
                )
                self._respond_quietly(replace_original=True, **reply.as_kwargs())
            self._last_update = self._clock()

    def update(self, reply: Reply) -> None:
        """A progress update, at most one per `min_interval`; the latest held back is sent when due."""
        with self._lock:
            wait = self._min_interval - (self._clock() - self._last_update)
            if wait <= 0:
                self._send(reply, final=False)
                return
            first = self._held is None
            self._held = reply
            if first:
                self._later(wait, self._flush)

    def finish(self, reply: Reply) -> None:
        with self._lock:
            self._held = None
            self._finished = True
            public = self._public
        if not public and reply.response_type == "in_channel":
            # An ephemeral answer cannot be made public: post the result in the channel instead.
            self.announce(reply)
            return
        with self._lock:
            self._send(reply, final=True)

    def _flush(self) -> None:
        with self._lock:
            held, self._held = self._held, None
            if held is not None and not self._finished:
                self._send(held, final=False)

    def upload(self, *, content: str, filename: str, title: str, comment: str) -> str | None:
        """Share a long text as a file in the channel (thread of our message when there is one)."""
        try:
            result = self.client.files_upload_v2(
                channel=self.channel,
                content=content,
                filename=filename,
                title=title,
                initial_comment=comment,
                thread_ts=self._ts,
                snippet_type="diff",
            )
        except SlackApiError as exc:
            log.warning("file upload failed", extra={"error": _code(exc)})
            return None
        file = result.get("file") or {}
        return str(file.get("permalink") or file.get("id") or "")

    def _send(self, reply: Reply, *, final: bool) -> None:
        self._last_update = self._clock()
        if self._public and self._ts is not None:
            try:
                self.client.chat_update(
                    channel=self.channel, ts=self._ts, text=reply.text, blocks=list(reply.blocks)
                )
                self._shown(reply)
                return
            except SlackApiError as exc:
                log.warning("chat.update failed", extra={"error": _code(exc)})
                if not final:
                    return
        if not final and self._respond_uses >= _RESPOND_BUDGET - 1:
            return
        self._respond_quietly(replace_original=reply.replace_original, **reply.as_kwargs())

    def _shown(self, reply: Reply) -> None:
        if self._on_shown is not None and self._ts is not None:
            self._on_shown(self.channel, self._ts, reply)

    def _respond_quietly(self, **kwargs: Any) -> None:
        if self._respond_uses >= _RESPOND_BUDGET + 1:
            return
        if self._clicked is not None and not self._clicked.ephemeral:
            # The response_url of a click on a public message would replace or delete that message.
            kwargs.pop("delete_original", None)
            if "text" not in kwargs:
                return
            kwargs["replace_original"] = False
        self._respond_uses += 1
        try:
            self._respond(**kwargs)
        except Exception:  # an expired response_url must not take the operation down
            log.warning("could not deliver the reply to Slack", exc_info=True)


def _timer(delay: float, fn: Callable[[], None]) -> None:
    timer = threading.Timer(delay, fn)
    timer.daemon = True
    timer.start()


def _code(exc: SlackApiError) -> str:
    response = getattr(exc, "response", None)
    try:
        return str(response["error"]) if response is not None else "unknown"
    except (KeyError, TypeError):
        return "unknown"
