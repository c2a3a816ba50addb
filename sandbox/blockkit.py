"""Block Kit limit validator used by the fake Slack (limits from docs/slack.md section (d)).

Real Slack rejects an over-long or malformed block with `invalid_blocks`; a fake that
accepted anything would let broken messages reach production. Every error names the
JSON path, e.g. `blocks[3].text.text: 3012 chars > 3000`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

MAX_BLOCKS = 50
MAX_TOTAL_TEXT = 12_000  # undocumented total (bolt-js #2509): Slack says msg_blocks_too_long
MAX_MESSAGE_TEXT = 40_000
MAX_ID = 255

_BLOCK_KEYS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "section": frozenset({"type", "block_id", "text", "fields", "accessory", "expand"}),
        "header": frozenset({"type", "block_id", "text"}),
        "divider": frozenset({"type", "block_id"}),
        "context": frozenset({"type", "block_id", "elements"}),
        "actions": frozenset({"type", "block_id", "elements"}),
        "image": frozenset({"type", "block_id", "image_url", "slack_file", "alt_text", "title"}),
        "rich_text": frozenset({"type", "block_id", "elements"}),
        "markdown": frozenset({"type", "block_id", "text"}),
        "input": frozenset({"type", "block_id", "label", "element", "dispatch_action", "hint", "optional"}),
    }
)
_TEXT_KEYS = frozenset({"type", "text", "emoji", "verbatim"})
_BUTTON_KEYS = frozenset(
    {"type", "action_id", "text", "value", "url", "style", "confirm", "accessibility_label"}
)
_CONFIRM_KEYS = frozenset({"title", "text", "confirm", "deny", "style"})
_IMAGE_ELEMENT_KEYS = frozenset({"type", "image_url", "slack_file", "alt_text"})
_STYLES = frozenset({"primary", "danger"})
# Interactive elements other than buttons: checked for action_id and options only.
_OTHER_ELEMENTS = frozenset(
    {
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
        "overflow",
        "datepicker",
        "timepicker",
        "datetimepicker",
        "checkboxes",
        "radio_buttons",
        "plain_text_input",
        "email_text_input",
        "url_text_input",
        "number_input",
    }
)


@dataclass
class _Walk:
    """Accumulates errors and id uniqueness while walking one message's blocks."""

    errors: list[str] = field(default_factory=list)
    block_ids: set[str] = field(default_factory=set)
    action_ids: set[str] = field(default_factory=set)

    def add(self, path: str, problem: str) -> None:
        self.errors.append(f"{path}: {problem}")

    def too_long(self, path: str, value: str, limit: int) -> None:
        if len(value) > limit:
            self.add(path, f"{len(value)} chars > {limit}")


def validate_blocks(blocks: object) -> list[str]:
    """All Block Kit violations in `blocks` (empty list = valid), including the total-length rule."""
    errors = _structural_errors(blocks)
    if not errors and isinstance(blocks, list):
        total = total_text_length(blocks)
        if total > MAX_TOTAL_TEXT:
            errors.append(f"blocks: msg_blocks_too_long: total text {total} chars > {MAX_TOTAL_TEXT}")
    return errors


def total_text_length(blocks: object) -> int:
    """Sum of every string under a `text` key anywhere in the blocks (what the total limit counts)."""
    if isinstance(blocks, Mapping):
        own = blocks.get("text")
        total = len(own) if isinstance(own, str) else 0
        return total + sum(total_text_length(v) for v in blocks.values())
    if isinstance(blocks, list):
        return sum(total_text_length(item) for item in blocks)
    return 0


def message_errors(payload: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """The Slack error code a message payload earns (None = acceptable) and human details."""
    text = payload.get("text")
    blocks = payload.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return "invalid_blocks_format", ["blocks: not valid JSON"]
    if blocks is not None:
        structural = _structural_errors(blocks)
        if structural:
            return "invalid_blocks", structural
        total = total_text_length(blocks)
        if total > MAX_TOTAL_TEXT:
            return "msg_blocks_too_long", [f"blocks: total text {total} chars > {MAX_TOTAL_TEXT}"]
    if text is not None and not isinstance(text, str):
        return "invalid_arguments", ["text: expected a string"]
    if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
        return "msg_too_long", [f"text: {len(text)} chars > {MAX_MESSAGE_TEXT}"]
    if not text and not blocks:
        return "no_text", ["text or blocks is required"]
    return None, []


def _structural_errors(blocks: object) -> list[str]:
    if not isinstance(blocks, list):
        return ["blocks: expected an array"]
    walk = _Walk()
    if len(blocks) > MAX_BLOCKS:
        walk.add("blocks", f"{len(blocks)} blocks > {MAX_BLOCKS}")
    for index, block in enumerate(blocks):
        _check_block(walk, f"blocks[{index}]", block)
    return walk.errors


def _check_block(walk: _Walk, path: str, block: object) -> None:
    if not isinstance(block, Mapping):
        walk.add(path, "expected an object")
        return
    kind = block.get("type")
    if not isinstance(kind, str) or kind not in _BLOCK_KEYS:
        walk.add(f"{path}.type", f"unknown block type {kind!r}")
        return
    _check_keys(walk, path, block, _BLOCK_KEYS[kind])
    block_id = block.get("block_id")
    if block_id is not None:
        _check_id(walk, f"{path}.block_id", block_id, walk.block_ids)
    if kind == "section":
        _check_section(walk, path, block)
    elif kind == "header":
        _check_text(walk, f"{path}.text", block.get("text"), 150, plain_only=True)
    elif kind == "context":
        _check_context(walk, path, block)
    elif kind == "actions":
        _check_actions(walk, path, block)
    elif kind == "image":
        _check_image(walk, path, block)
    elif kind == "markdown":
        _check_markdown(walk, path, block)
    elif kind == "rich_text":
        if not isinstance(block.get("elements"), list):
            walk.add(f"{path}.elements", "expected an array")
    elif kind == "input":
        _check_text(walk, f"{path}.label", block.get("label"), 2000, plain_only=True)
        _check_element(walk, f"{path}.element", block.get("element"))


def _check_section(walk: _Walk, path: str, block: Mapping[str, Any]) -> None:
    text, fields = block.get("text"), block.get("fields")
    if text is None and fields is None:
        walk.add(path, "section needs text or fields")
    if text is not None:
        _check_text(walk, f"{path}.text", text, 3000)
    if fields is not None:
        if not isinstance(fields, list) or not fields:
            walk.add(f"{path}.fields", "expected a non-empty array")
        else:
            if len(fields) > 10:
                walk.add(f"{path}.fields", f"{len(fields)} items > 10")
            for index, item in enumerate(fields):
                _check_text(walk, f"{path}.fields[{index}]", item, 2000)
    if block.get("accessory") is not None:
        _check_element(walk, f"{path}.accessory", block.get("accessory"))


def _check_context(walk: _Walk, path: str, block: Mapping[str, Any]) -> None:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        walk.add(f"{path}.elements", "expected a non-empty array")
        return
    if len(elements) > 10:
        walk.add(f"{path}.elements", f"{len(elements)} elements > 10")
    for index, element in enumerate(elements):
        where = f"{path}.elements[{index}]"
        if isinstance(element, Mapping) and element.get("type") == "image":
            _check_image_element(walk, where, element)
        else:
            _check_text(walk, where, element, 3000)


def _check_actions(walk: _Walk, path: str, block: Mapping[str, Any]) -> None:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        walk.add(f"{path}.elements", "expected a non-empty array")
        return
    if len(elements) > 25:
        walk.add(f"{path}.elements", f"{len(elements)} elements > 25")
    for index, element in enumerate(elements):
        _check_element(walk, f"{path}.elements[{index}]", element)


def _check_image(walk: _Walk, path: str, block: Mapping[str, Any]) -> None:
    _check_image_source(walk, path, block)
    if block.get("title") is not None:
        _check_text(walk, f"{path}.title", block.get("title"), 2000, plain_only=True)


def _check_image_element(walk: _Walk, path: str, element: Mapping[str, Any]) -> None:
    _check_keys(walk, path, element, _IMAGE_ELEMENT_KEYS)
    _check_image_source(walk, path, element)


def _check_image_source(walk: _Walk, path: str, element: Mapping[str, Any]) -> None:
    url, slack_file = element.get("image_url"), element.get("slack_file")
    if url is None and slack_file is None:
        walk.add(path, "image needs image_url or slack_file")
    if url is not None:
        _check_string(walk, f"{path}.image_url", url, 3000)
    _check_string(walk, f"{path}.alt_text", element.get("alt_text"), 2000)


def _check_markdown(walk: _Walk, path: str, block: Mapping[str, Any]) -> None:
    _check_string(walk, f"{path}.text", block.get("text"), 12_000)


def _check_element(walk: _Walk, path: str, element: object) -> None:
    if not isinstance(element, Mapping):
        walk.add(path, "expected an object")
        return
    kind = element.get("type")
    if kind == "button":
        _check_button(walk, path, element)
    elif kind == "image":
        _check_image_element(walk, path, element)
    elif kind in _OTHER_ELEMENTS:
        _check_action_id(walk, path, element)
        _check_options(walk, path, element)
        if element.get("confirm") is not None:
            _check_confirm(walk, f"{path}.confirm", element.get("confirm"))
    else:
        walk.add(f"{path}.type", f"unknown element type {kind!r}")


def _check_button(walk: _Walk, path: str, button: Mapping[str, Any]) -> None:
    _check_keys(walk, path, button, _BUTTON_KEYS)
    _check_action_id(walk, path, button)
    _check_text(walk, f"{path}.text", button.get("text"), 75, plain_only=True)
    if "value" in button:
        _check_string(walk, f"{path}.value", button["value"], 2000)
    if "url" in button:
        _check_string(walk, f"{path}.url", button["url"], 3000)
    style = button.get("style")
    if style is not None and style not in _STYLES:
        walk.add(f"{path}.style", f"{style!r} is not one of primary, danger")
    if button.get("confirm") is not None:
        _check_confirm(walk, f"{path}.confirm", button.get("confirm"))


def _check_confirm(walk: _Walk, path: str, confirm: object) -> None:
    if not isinstance(confirm, Mapping):
        walk.add(path, "expected an object")
        return
    _check_keys(walk, path, confirm, _CONFIRM_KEYS)
    for key, limit in (("title", 100), ("confirm", 30), ("deny", 30)):
        _check_text(walk, f"{path}.{key}", confirm.get(key), limit, plain_only=True)
    _check_text(walk, f"{path}.text", confirm.get("text"), 300)
    style = confirm.get("style")
    if style is not None and style not in _STYLES:
        walk.add(f"{path}.style", f"{style!r} is not one of primary, danger")


def _check_options(walk: _Walk, path: str, element: Mapping[str, Any]) -> None:
    options = element.get("options")
    if options is None:
        return
    if not isinstance(options, list):
        walk.add(f"{path}.options", "expected an array")
        return
    if len(options) > 100:
        walk.add(f"{path}.options", f"{len(options)} options > 100")
    for index, option in enumerate(options):
        where = f"{path}.options[{index}]"
        if not isinstance(option, Mapping):
            walk.add(where, "expected an object")
            continue
        _check_text(walk, f"{where}.text", option.get("text"), 75)
        _check_string(walk, f"{where}.value", option.get("value"), 150)


def _check_action_id(walk: _Walk, path: str, element: Mapping[str, Any]) -> None:
    action_id = element.get("action_id")
    if action_id is not None:
        _check_id(walk, f"{path}.action_id", action_id, walk.action_ids)


def _check_id(walk: _Walk, path: str, value: object, seen: set[str]) -> None:
    if not isinstance(value, str) or not value:
        walk.add(path, "expected a non-empty string")
        return
    walk.too_long(path, value, MAX_ID)
    if value in seen:
        walk.add(path, f"duplicate {value!r}")
    seen.add(value)


def _check_text(walk: _Walk, path: str, obj: object, limit: int, *, plain_only: bool = False) -> None:
    if not isinstance(obj, Mapping):
        walk.add(path, "expected a text object")
        return
    _check_keys(walk, path, obj, _TEXT_KEYS)
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        walk.add(f"{path}.type", f"{kind!r} is not one of {', '.join(allowed)}")
    _check_string(walk, f"{path}.text", obj.get("text"), limit)


def _check_string(walk: _Walk, path: str, value: object, limit: int) -> None:
    if not isinstance(value, str) or not value:
        walk.add(path, "expected a non-empty string")
        return
    walk.too_long(path, value, limit)


def _check_keys(walk: _Walk, path: str, obj: Mapping[str, Any], allowed: frozenset[str]) -> None:
    # Slack refuses unknown properties ("invalid additional property"), so the fake does too.
    for key in sorted(set(obj) - allowed):
        walk.add(f"{path}.{key}", "unknown property")
