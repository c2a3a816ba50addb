"""The fake workspace's state, guarded by one lock shared by all request threads."""

from __future__ import annotations

import copy
import dataclasses
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.slack_models import Channel, Message, RecordedCall, SlackUser, UploadedFile, Usergroup

RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_TTL_SECONDS = 30 * 60


@dataclass
class Grant:
    """A minted response_url. Mutable, but only touched under SlackState.lock."""

    id: str
    channel: str
    user: str
    message_ts: str | None  # set for a click: the message that holds the button
    created_at: float
    uses: int = 0
    last_posted_ts: str | None = None  # for a slash command: the last reply made through it


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after: int


@dataclass
class PendingFile:
    id: str
    name: str
    length: int
    content: bytes | None = None


class SlackError(Exception):
    """Raised by method handlers; becomes `{"ok": false, "error": code, ...extra}`."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


class SlackState:
    def __init__(self, *, bot_user_id: str, team_id: str, clock: Callable[[], float]) -> None:
        self.bot_user_id = bot_user_id
        self.team_id = team_id
        self.clock = clock
        self.lock = threading.Condition(threading.RLock())
        self.version = 0
        self.calls: list[RecordedCall] = []
        self.warnings: list[str] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.pending_files: dict[str, PendingFile] = {}
        self.files: dict[str, UploadedFile] = {}
        self.users: dict[str, SlackUser] = {}
        self.usergroups: dict[str, Usergroup] = {}
        self.channels: dict[str, Channel] = {}
        self.grants: dict[str, Grant] = {}
        self.faults: dict[str, list[Fault]] = {}
        self._last_ts = (0, 0)
        self._serial = 0

    # -- bookkeeping -------------------------------------------------------------------------

    def changed(self) -> None:
        """Call with the lock held after any mutation; wakes wait_for()."""
        self.version += 1
        self.lock.notify_all()

    def record(self, call: RecordedCall) -> None:
        with self.lock:
            self.calls.append(call)
            self.changed()

    def warn(self, text: str) -> None:
        with self.lock:
            self.warnings.append(text)

    def next_ts(self) -> str:
        """Unique, increasing "seconds.micros" timestamps, like Slack's message ts."""
        with self.lock:
            now = self.clock()
            candidate = (int(now), round((now % 1) * 1_000_000) % 1_000_000)
            last_sec, last_micro = self._last_ts
            if candidate <= self._last_ts:
                candidate = (last_sec + 1, 0) if last_micro >= 999_999 else (last_sec, last_micro + 1)
            self._last_ts = candidate
            return f"{candidate[0]}.{candidate[1]:06d}"

    def new_id(self, prefix: str) -> str:
        with self.lock:
            self._serial += 1
            return f"{prefix}0{self._serial:06d}{secrets.token_hex(3).upper()}"

    def take_fault(self, method: str) -> Fault | None:
        with self.lock:
            queue = self.faults.get(method)
            if not queue:
                return None
            return queue.pop(0)

    # -- channels and messages ---------------------------------------------------------------

    def channel(self, channel_id: str) -> Channel | None:
        """Known channels, plus any C/G/D id (they exist by default, and the bot is a member)."""
        with self.lock:
            if channel_id.startswith("#"):
                return next((c for c in self.channels.values() if c.name == channel_id[1:]), None)
            known = self.channels.get(channel_id)
            if known is not None:
                return known
        if channel_id[:1] in {"C", "G", "D"} and channel_id[1:].isalnum():
            name = "directmessage" if channel_id[0] == "D" else channel_id.lower()
            return Channel(id=channel_id, name=name, is_private=channel_id[0] != "C")
        return None

    def post(
        self,
        channel: str,
        payload: dict[str, Any],
        *,
        ephemeral: bool,
        visible_to: str | None = None,
        files: tuple[str, ...] = (),
    ) -> Message:
        blocks = payload.get("blocks") or []
        thread_ts = payload.get("thread_ts")
        message = Message(
            channel=channel,
            ts=self.next_ts(),
            text=str(payload.get("text") or ""),
            blocks=copy.deepcopy(list(blocks)),
            thread_ts=str(thread_ts) if thread_ts else None,
            user=self.bot_user_id,
            ephemeral=ephemeral,
            visible_to=visible_to,
            files=files,
        )
        with self.lock:
            self.messages[(channel, message.ts)] = message
            self.changed()
        return message

    def replace(self, old: Message, payload: dict[str, Any], *, keep_blocks: bool = False) -> Message:
        blocks = old.blocks if keep_blocks and "blocks" not in payload else payload.get("blocks") or []
        previous = dataclasses.replace(old, history=())
        new = dataclasses.replace(
            old,
            text=str(payload.get("text") or ""),
            blocks=copy.deepcopy(list(blocks)),
            edited=True,
            history=(*old.history, previous),
        )
        with self.lock:
            self.messages[(old.channel, old.ts)] = new
            self.changed()
        return new

    def delete(self, message: Message) -> None:
        with self.lock:
            self.messages.pop((message.channel, message.ts), None)
            self.changed()

    def find(self, channel: str, ts: str) -> Message | None:
        with self.lock:
            return self.messages.get((channel, ts))

    def snapshot(self, predicate: Callable[[Message], bool]) -> list[Message]:
        with self.lock:
            found = [m for m in self.messages.values() if predicate(m)]
        found.sort(key=lambda m: tuple(int(part) for part in m.ts.split(".")))
        return copy.deepcopy(found)
