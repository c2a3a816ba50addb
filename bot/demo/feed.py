"""The demo's terminal: an output sink with a plain transcript, and a feed printing Slack as it changes.

`Feed` polls the fake Slack in a background thread and prints every new message and every edit
(ephemeral and channel alike), numbering clickable buttons once per button so a number stays valid
while its message is edited. `Output` keeps an ANSI-free copy of what was printed, which the
script runner's `expect:` lines search.
"""

from __future__ import annotations

import logging
import re
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from bot.demo.render import Style, changed_lines, render_message, text_lines
from sandbox.slack_api import FakeSlack
from sandbox.slack_models import Message

log = logging.getLogger(__name__)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
POLL_SECONDS = 0.1
COMPACT_EDITS_OVER = 12  # lines: an edit of a longer message shows only what changed
TITLE_CHARS = 60
ACK_GRACE_SECONDS = 0.5  # a command's "working…" ack replaced or deleted this fast is not worth printing
FILE_PREVIEW_LINES = 12
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def squash(text: str) -> str:
    """Whitespace-insensitive form, so an expectation does not depend on column padding."""
    return " ".join(text.split())


class Output:
    """Writes to the terminal under one lock; remembers the plain text for `expect:`."""

    def __init__(self, stream: TextIO, style: Style) -> None:
        self.stream = stream
        self.style = style
        self._changed = threading.Condition()
        self._plain: list[str] = []
        self._size = 0
        self.prompt: str | None = None  # set while the console waits at an interactive prompt
        self.line_buffer: Callable[[], str] = lambda: ""  # what the user typed so far at that prompt

    def emit(self, lines: Sequence[str], *, record: bool = True) -> None:
        """Print lines; `record=False` for console chrome (echoed commands) that expectations skip."""
        text = "\n".join(lines)
        with self._changed:
            prompt = self.prompt
            if prompt is not None:  # a message arrived while the user types: redraw the prompt below it
                self.stream.write("\r\x1b[2K")
            self.stream.write(text + "\n")
            if prompt is not None:
                self.stream.write(prompt + self.line_buffer())
            self.stream.flush()
            if record:
                plain = _ANSI.sub("", text) + "\n"
                self._plain.append(plain)
                self._size += len(plain)
                self._changed.notify_all()

    def mark(self) -> int:
        with self._changed:
            return len(self._plain)

    def since(self, mark: int) -> str:
        with self._changed:
            return "".join(self._plain[mark:])

    def wait_for(self, needle: str, mark: int, timeout: float) -> bool:
        """Wait until `needle` was printed since `mark` (whitespace-insensitive)."""
        wanted = squash(needle)
        deadline = time.monotonic() + timeout
        with self._changed:
            while wanted not in squash("".join(self._plain[mark:])):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def wait_change(self, mark: int, timeout: float) -> bool:
        """Wait until anything was printed since `mark`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._plain) <= mark:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True


@dataclass(frozen=True)
class ButtonRef:
    number: int
    channel: str
    ts: str
    action_id: str
    label: str
    confirm: tuple[str, str] | None  # title and text of Slack's confirm dialog


class Feed:
    def __init__(
        self, slack: FakeSlack, output: Output, names: Mapping[str, str], channels: Sequence[str]
    ) -> None:
        self.slack = slack
        self.output = output
        self.names = names
        self.channels = tuple(channels)
        self._lock = threading.RLock()
        self._versions: dict[tuple[str, str], int] = {}
        self._shown: dict[tuple[str, str], list[str]] = {}  # the body last printed, to compact edits
        self._held: dict[tuple[str, str], tuple[int, float]] = {}  # version not to print before a time
        self._numbers: dict[tuple[str, str, str, str], int] = {}
        self._buttons: dict[int, ButtonRef] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Feed:
        self._thread = threading.Thread(target=self._loop, name="demo-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.poll()  # whatever arrived since the last pass

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.poll()
            except Exception:  # one bad message must not silence the console for good
                log.exception("the demo console could not print a Slack message")

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Print nothing meanwhile (the console sorts out what a command's ack really showed)."""
        with self._lock:
            yield

    def forget(self, message: Message) -> None:
        """Never print this version of `message` (its later edits still print)."""
        with self._lock:
            self._versions[(message.channel, message.ts)] = len(message.history)

    def hold(self, message: Message, seconds: float = ACK_GRACE_SECONDS) -> None:
        """Print this version of `message` only if it is still there, unchanged, after `seconds`."""
        with self._lock:
            self._held[(message.channel, message.ts)] = (len(message.history), time.monotonic() + seconds)

    def button(self, number: int) -> ButtonRef | None:
        with self._lock:
            return self._buttons.get(number)

    def poll(self) -> int:
        """Print what is new or edited since the last pass; returns how many messages were printed."""
        with self._lock:
            found: list[Message] = []
            for channel in self.channels:
                found += self.slack.messages(channel)
            found += self.slack.ephemeral()
            found.sort(key=lambda m: tuple(int(part) for part in m.ts.split(".")))
            printed = 0
            now = time.monotonic()
            present = {(m.channel, m.ts) for m in found}
            self._held = {k: v for k, v in self._held.items() if k in present and v[1] > now}
            for message in found:
                key = (message.channel, message.ts)
                version = len(message.history)
                before = self._versions.get(key)
                if before == version or self._held.get(key, (None, 0.0))[0] == version:
                    continue
                self._versions[key] = version
                self.output.emit(self._render(message, edited=before is not None))
                printed += 1
            return printed

    def _render(self, message: Message, *, edited: bool) -> list[str]:
        style = self.output.style
        reply = bool(message.thread_ts) and message.thread_ts != message.ts
        where = f"#{self.names.get(message.channel, message.channel)}"
        meta = [self.names.get(message.user, message.user)]
        if message.ephemeral:
            meta.append(f"only @{self.names.get(message.visible_to or '', message.visible_to)} sees this")
        if reply:
            meta.append(f"in the thread of “{self._title(message.channel, message.thread_ts or '')}”")
        if edited:
            meta.append("(edited)")
        indent = "    " if reply else "  "
        head = ("↳ " if reply else "") + style.bold(where) + " " + style.dim(" · ".join(meta))

        def number(button: Mapping[str, Any]) -> int:
            return self._number(message, button)

        body = render_message(message.text, message.blocks, names=self.names, style=style, number=number)
        before = self._shown.get((message.channel, message.ts))
        self._shown[(message.channel, message.ts)] = body
        if edited and before and len(body) > COMPACT_EDITS_OVER:
            body = changed_lines(before, body, elided=style.dim("…"))
        lines = ["", (indent[:-2] if reply else "") + head]
        lines += [indent + line if line else "" for line in body]
        lines += [indent + line for line in self._files(message)]
        return lines

    def _title(self, channel: str, ts: str) -> str:
        """The first line of a thread's parent message, as printed, to say which thread a reply is in."""
        shown = self._shown.get((channel, ts))
        title = _ANSI.sub("", shown[0]).strip() if shown else ts
        return title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"

    def _number(self, message: Message, button: Mapping[str, Any]) -> int:
        action_id = str(button.get("action_id", ""))
        key = (message.channel, message.ts, action_id, str(button.get("value", "")))
        number = self._numbers.get(key)
        if number is None:
            number = self._numbers[key] = len(self._numbers) + 1
        confirm = button.get("confirm")
        dialog = None
        if isinstance(confirm, Mapping):
            title = " ".join(text_lines(confirm.get("title"), self.names, self.output.style))
            body = " ".join(text_lines(confirm.get("text"), self.names, self.output.style))
            dialog = (title, body)
        label = " ".join(text_lines(button.get("text"), self.names, self.output.style))
        self._buttons[number] = ButtonRef(number, message.channel, message.ts, action_id, label, dialog)
        return number

    def _files(self, message: Message) -> list[str]:
        if not message.files:
            return []
        lines: list[str] = []
        uploads = {f.id: f for f in self.slack.files()}
        for file_id in message.files:
            upload = uploads.get(file_id)
            if upload is None:
                continue
            if upload.content.startswith(PNG_SIGNATURE):  # a chart: a terminal cannot show it, say what it is
                width, height = struct.unpack(">II", upload.content[16:24])
                size = f"{width}×{height} PNG, {len(upload.content) // 1024} KB"
                lines.append(f"🖼 {upload.name} ({size}): {upload.title} — open it in Slack to see the chart")
                continue
            content = upload.text.splitlines()
            lines.append(f"📎 {upload.name} ({len(content)} lines): {upload.title}")
            lines += ["    " + self.output.style.dim(line) for line in content[:FILE_PREVIEW_LINES]]
            if len(content) > FILE_PREVIEW_LINES:
                lines.append(self.output.style.dim(f"    … {len(content) - FILE_PREVIEW_LINES} more lines"))
        return lines
