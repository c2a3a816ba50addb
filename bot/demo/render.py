"""Block Kit and mrkdwn as terminal text: what the demo console prints for each Slack message.

Pure functions over the message JSON. Headers are bold upper case, section fields two columns,
context lines dimmed, code blocks indented, dividers a line, and clickable buttons numbered
choices (`[1] Approve  [2] Reject`) that the console maps back to the button it clicks.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

Numberer = Callable[[Mapping[str, Any]], int]

DIVIDER_WIDTH = 48
MAX_LEFT_COLUMN = 40
_FENCE = re.compile(r"```(.*?)```", re.DOTALL)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_ANGLE = re.compile(r"<([^<>\n]+)>")
_HOLE = re.compile("\x00(\\d+)\x00")  # a placeholder for a span already rendered
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SHORTCODE = re.compile(r":([a-z0-9_+-]+):")
# Emphasis as Slack reads it: markers at word boundaries, no space just inside them.
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
_SPECIAL = MappingProxyType({"here": "@here", "channel": "@channel", "everyone": "@everyone"})
# The emoji the bot's messages use (handlers/messages.py, views_*); others stay as :shortcodes:.
EMOJI = MappingProxyType(
    {
        "arrow_forward": "▶️", "arrows_counterclockwise": "🔄", "bar_chart": "📊", "boom": "💥",
        "calendar": "📆", "double_vertical_bar": "⏸️", "rocket": "🚀",
        "electric_plug": "🔌", "grey_question": "❔", "hourglass": "⌛", "hourglass_flowing_sand": "⏳",
        "inbox_tray": "📥",
        "large_blue_circle": "🔵", "large_green_circle": "🟢", "large_orange_diamond": "🔶",
        "large_yellow_circle": "🟡", "lock": "🔒", "mag": "🔍", "no_entry": "⛔", "no_entry_sign": "🚫",
        "octagonal_sign": "🛑", "red_circle": "🔴", "repeat": "🔁", "rewind": "⏪", "rotating_light": "🚨",
        "sparkles": "✨", "traffic_light": "🚥", "turtle": "🐢", "unlock": "🔓", "warning": "⚠️",
        "white_check_mark": "✅", "white_circle": "⚪", "x": "❌",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Style:
    """ANSI styling when `color`, else plain text (markers dropped, code spans keep their backticks)."""

    color: bool = False

    def _wrap(self, text: str, on: str, off: str) -> str:
        return f"\x1b[{on}m{text}\x1b[{off}m" if self.color and text else text

    def bold(self, text: str) -> str:
        return self._wrap(text, "1", "22")

    def dim(self, text: str) -> str:
        return self._wrap(text, "2", "22")

    def italic(self, text: str) -> str:
        return self._wrap(text, "3", "23")

    def strike(self, text: str) -> str:
        return self._wrap(text, "9", "29")

    def code(self, text: str) -> str:
        return self._wrap(text, "36", "39") if self.color else f"`{text}`"

    def button(self, text: str, kind: str | None) -> str:
        colour = {"primary": "32", "danger": "31"}.get(kind or "", "1")
        return self._wrap(text, colour, "39" if kind in ("primary", "danger") else "22")


PLAIN = Style(color=False)


def visible_len(text: str) -> int:
    return len(_ANSI.sub("", text))


def unescape(text: str) -> str:
    """Slack's three entities; `&amp;` last so `&amp;lt;` stays the literal text `&lt;`."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def emoji(text: str) -> str:
    return _SHORTCODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


def _angle(inner: str, names: Mapping[str, str]) -> str:
    """`<@U1>` → @alice, `<#C1|deploys>` → #deploys, `<!here>` → @here, `<url|label>` → label (url)."""
    target, _, label = inner.partition("|")
    label = unescape(label)
    if target.startswith("@"):
        return "@" + (label.lstrip("@") or names.get(target[1:], target[1:]))
    if target.startswith("#"):
        return "#" + (label.lstrip("#") or names.get(target[1:], target[1:]))
    if target.startswith("!subteam^"):
        return label or "@" + target[len("!subteam^") :]
    if target.startswith("!"):
        return _SPECIAL.get(target[1:], label or target[1:])
    url = unescape(target)
    return f"{label} ({url})" if label and label != url else url


def inline(text: str, names: Mapping[str, str], style: Style) -> str:
    """One stretch of mrkdwn without code fences, as styled text (may contain newlines)."""
    holes: list[str] = []

    def hole(rendered: str) -> str:
        holes.append(rendered)
        return f"\x00{len(holes) - 1}\x00"

    text = _CODE_SPAN.sub(lambda m: hole(style.code(unescape(m.group(1)))), text)
    text = _ANGLE.sub(lambda m: hole(_angle(m.group(1), names)), text)
    text = _BOLD.sub(lambda m: style.bold(m.group(1)), text)
    text = _ITALIC.sub(lambda m: style.italic(m.group(1)), text)
    text = _STRIKE.sub(lambda m: style.strike(m.group(1)), text)
    text = emoji(unescape(text))
    return _HOLE.sub(lambda m: holes[int(m.group(1))], text)


def mrkdwn_lines(text: str, names: Mapping[str, str], style: Style) -> list[str]:
    """mrkdwn as lines; a ``` block becomes its lines indented by four spaces, markup left alone."""
    lines: list[str] = []
    pos = 0
    for match in _FENCE.finditer(text):
        before = text[pos : match.start()].strip("\n")
        if before:
            lines += inline(before, names, style).split("\n")
        body = unescape(match.group(1).strip("\n"))
        lines += ["    " + style.dim(line) if line else "" for line in body.split("\n")]
        pos = match.end()
    rest = text[pos:].strip("\n") if pos else text
    if rest or not lines:
        lines += inline(rest, names, style).split("\n")
    return lines


def text_lines(obj: Any, names: Mapping[str, str], style: Style) -> list[str]:
    """A Block Kit text object (mrkdwn or plain_text) as lines."""
    if not isinstance(obj, Mapping):
        return []
    text = str(obj.get("text") or "")
    if obj.get("type") == "mrkdwn":
        return mrkdwn_lines(text, names, style)
    return emoji(text).split("\n")


def columns(cells: Sequence[list[str]]) -> list[str]:
    """Section fields as Slack lays them out: two per row, the left column padded to one width."""
    # Only left cells with a neighbour set the width: a lone last field may be as long as it likes.
    lefts = cells[0 : len(cells) - 1 : 2]
    width = min(max((visible_len(line) for cell in lefts for line in cell), default=0), MAX_LEFT_COLUMN)
    rows: list[str] = []
    for index in range(0, len(cells), 2):
        left = cells[index]
        right = cells[index + 1] if index + 1 < len(cells) else []
        for row in range(max(len(left), len(right))):
            a = left[row] if row < len(left) else ""
            b = right[row] if row < len(right) else ""
            rows.append((a + " " * max(0, width - visible_len(a)) + "   " + b).rstrip() if b else a)
    return rows


def _button(element: Mapping[str, Any], style: Style, number: Numberer) -> str:
    label = " ".join(text_lines(element.get("text"), {}, style)) or str(element.get("action_id", ""))
    if element.get("url"):
        return f"[{label} ↗ {element['url']}]"
    return style.button(f"[{number(element)}] {label}", element.get("style"))


def _elements(block: Mapping[str, Any], style: Style, number: Numberer) -> str:
    shown = []
    for element in block.get("elements") or []:
        if isinstance(element, Mapping) and element.get("type") == "button":
            shown.append(_button(element, style, number))
        elif isinstance(element, Mapping):
            shown.append(f"({element.get('type', 'element')})")
    return "  ".join(shown)


def _flatten_rich(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        if isinstance(node.get("text"), str):
            yield node["text"]
        for child in node.get("elements") or []:
            yield from _flatten_rich(child)


def block_lines(
    block: Mapping[str, Any], names: Mapping[str, str], style: Style, number: Numberer
) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        return [style.bold(line.upper()) for line in text_lines(block.get("text"), names, style)]
    if kind == "divider":
        return [style.dim("─" * DIVIDER_WIDTH)]
    if kind == "context":
        parts = []
        for element in block.get("elements") or []:
            if isinstance(element, Mapping) and element.get("type") == "image":
                parts.append(f"[{element.get('alt_text', 'image')}]")
            else:
                parts.append("\n".join(text_lines(element, names, style)))
        return [style.dim(line) for line in "  ".join(parts).split("\n")]
    if kind == "section":
        lines = text_lines(block.get("text"), names, style)
        fields = block.get("fields") or []
        if fields:
            lines += columns([text_lines(f, names, style) for f in fields])
        accessory = block.get("accessory")
        if isinstance(accessory, Mapping) and accessory.get("type") == "button":
            lines.append(_button(accessory, style, number))
        return lines
    if kind == "actions":
        return [_elements(block, style, number)]
    if kind == "input":
        label = " ".join(text_lines(block.get("label"), names, style)) or "input"
        optional = " (optional)" if block.get("optional") else ""
        return [f"✎ {label}{optional}: type /reason TEXT before you click a button"]
    if kind == "image":
        return [f"[image: {block.get('alt_text', '')}]"]
    if kind == "markdown":
        return str(block.get("text") or "").split("\n")
    if kind == "rich_text":
        return "".join(_flatten_rich(block)).split("\n")
    return [f"({kind} block)"]


def counter(start: int = 1) -> Numberer:
    """Number clickable buttons 1, 2, … in the order they are rendered (one message on its own)."""
    seen: list[int] = []

    def number(_button: Mapping[str, Any]) -> int:
        seen.append(start + len(seen))
        return seen[-1]

    return number


def render_message(
    text: str,
    blocks: Sequence[Mapping[str, Any]],
    *,
    names: Mapping[str, str],
    style: Style = PLAIN,
    number: Numberer | None = None,
) -> list[str]:
    """A message's body as lines: its blocks, or its `text` when it has none."""
    numberer = number or counter()
    if not blocks:
        return mrkdwn_lines(text, names, style)
    lines: list[str] = []
    for block in blocks:
        lines += block_lines(block, names, style, numberer)
    return lines


def changed_lines(old: Sequence[str], new: Sequence[str], *, elided: str = "…") -> list[str]:
    """An edited message, short: its first line (the title), then only lines that are new or changed,
    with `elided` standing for each run of unchanged ones. Removed lines are not shown."""
    shown: list[str] = []
    matcher = difflib.SequenceMatcher(a=list(old), b=list(new), autojunk=False)
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "insert"):
            shown += new[j1:j2]
        elif tag == "equal":
            if j1 == 0:
                shown.append(new[0])
                j1 = 1
            if j2 > j1 and (not shown or shown[-1] != elided):
                shown.append(elided)
    return shown
