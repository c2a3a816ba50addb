"""Token-level YAML edits for `services/promotion/yaml_edit.py`: ruamel finds, plain string slicing writes.

ruamel.yaml's composer gives every node its start and end character index in the text; an edit
replaces exactly that span (or inserts/removes whole lines), so nothing else in the file can move.
A round-trip dump would re-indent, re-wrap or re-quote parts of some files; this never does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

from services.errors import UserError

Path = tuple[str | int, ...]  # document index, then mapping keys and list indexes
Edit = tuple[int, int, str]  # replace text[start:end] with the string

_STR = "tag:yaml.org,2002:str"
_RESOLVERS = (VersionedResolver(version=(1, 1)), VersionedResolver(version=(1, 2)))
# Deliberately narrow: anything else written into a plain slot is double-quoted instead.
_SAFE_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./@+=~:-]*(?<!:)")


def compose(text: str, label: str) -> list[Node]:
    """Every document's root node; UserError naming the line for a syntax error."""
    try:
        return list(YAML(typ="rt").compose_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise UserError(f"{label}: YAML syntax error{where}: {exc.problem or exc.context}") from None
    except YAMLError as exc:
        raise UserError(f"{label}: YAML syntax error: {exc}") from None


def pair(node: Node | None, key: str) -> tuple[Node, Node] | None:
    if isinstance(node, MappingNode):
        return next(((k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == key), None)
    return None


def child(node: Node | None, key: str) -> Node | None:
    found = pair(node, key)
    return None if found is None else found[1]


def scalar(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def follow(node: Node, parts: tuple[str, ...], path: Path) -> tuple[Path, Node, Node | None] | None:
    """The node at `parts` below `node` (integers index lists), its path and its key node."""
    key: Node | None = None
    for part in parts:
        if isinstance(node, SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node, key, path = node.value[int(part)], None, (*path, int(part))
        elif (found := pair(node, part)) is not None:
            (key, node), path = found, (*path, part)
        else:
            return None
    return path, node, key


def replace_scalar(text: str, node: Node, new: str, key: Node | None, label: str) -> Edit:
    """Rewrite one single-line scalar token in place, keeping its quoting style."""
    start, end = node.start_mark.index, node.end_mark.index
    style: Any = getattr(node, "style", None)
    token = text[start:end]
    if start == end and key is not None:  # `key:` with no value: its mark points past the line
        colon = text.index(":", key.end_mark.index) + 1
        return colon, colon, " " + render(new, None, None)
    if (
        node.anchor is not None  # aliases of it would change too
        or node.start_mark.line != node.end_mark.line
        or (token != node.value if style is None else token[:1] + token[-1:] != style * 2)  # a !!tag
    ):
        where = f"line {node.start_mark.line + 1}"
        raise UserError(f"{label}: {where}: can't rewrite `{token}` in place (anchor, tag or multi-line)")
    return start, end, render(new, style, node.value if style is None else None)


def render(value: str, style: Any, old_plain: str | None) -> str:
    """`value` as a token of `style` (None = plain, or quotes); plain only when YAML reads it back
    as the same string — or, replacing `old_plain`, as the same type (`1.4` → `1.5` stays a float)."""
    if style == "'" and all(" " <= c != "\x7f" for c in value):
        return "'" + value.replace("'", "''") + "'"
    if style is None and _SAFE_PLAIN.fullmatch(value):
        tags = _plain_tags(value)
        if tags == {_STR} or (old_plain is not None and tags == _plain_tags(old_plain)):
            return value
    return json.dumps(value)  # JSON's escaped strings are valid YAML double-quoted scalars


def _plain_tags(value: str) -> set[str]:
    # YAML 1.1 too: Helm's parser reads `on`, `y` and `0755` the 1.1 way.
    return {str(r.resolve(ScalarNode, value, (True, False))) for r in _RESOLVERS}


def remove_line(text: str, key: Node, value: Node, label: str) -> Edit:
    """Drop the whole `key: value` line(s); the key must start its line."""
    start = text.rfind("\n", 0, key.start_mark.index) + 1
    if text[start : key.start_mark.index].strip():
        raise UserError(f"{label}: line {key.start_mark.line + 1}: remove `{key.value}` by hand")
    return start, line_after(text, value), ""


def insert_lines(text: str, at: int, lines: list[str], nl: str) -> Edit:
    if at == len(text) and text and not text.endswith("\n"):  # keep the file's missing final newline
        return at, at, nl + nl.join(lines)
    return at, at, "".join(line + nl for line in lines)


def line_after(text: str, node: Node) -> int:
    """Where the line holding the end of `node` (its last leaf) ends, newline included."""
    while isinstance(node, MappingNode | SequenceNode) and node.value:
        node = node.value[-1][1] if isinstance(node, MappingNode) else node.value[-1]
    end = int(node.end_mark.index)
    if end > 0 and text[end - 1] == "\n":  # block scalars end at the start of the next line
        return end
    newline = text.find("\n", end)
    return len(text) if newline < 0 else newline + 1


def splice(text: str, edits: list[Edit]) -> str:
    out, pos = [], 0
    for start, end, new in sorted(edits, key=lambda e: e[:2]):  # stable: equal positions keep order
        if start < pos:
            raise ValueError("overlapping edits")
        out += [text[pos:start], new]
        pos = end
    return "".join([*out, text[pos:]])


def changed_path(before: list[Node], after: list[Node], allowed: list[Path]) -> Path | None:
    """The first path whose value or shape differs between two parses, outside `allowed` subtrees."""
    old, new = _flatten(before), _flatten(after)
    for path in [*old, *(p for p in new if p not in old)]:
        if old.get(path) != new.get(path) and not any(path[: len(a)] == a for a in allowed):
            return path
    return None


def _flatten(docs: list[Node]) -> dict[Path, tuple[str, str]]:
    flat: dict[Path, tuple[str, str]] = {}

    def walk(node: Node, path: Path, inside: frozenset[int]) -> None:
        if id(node) in inside:  # a recursive alias
            flat[path] = ("alias", "")
        elif isinstance(node, MappingNode):
            flat[path] = ("map", "")
            for n, (k, v) in enumerate(node.value):
                walk(v, (*path, k.value if isinstance(k, ScalarNode) else f"#{n}"), inside | {id(node)})
        elif isinstance(node, SequenceNode):
            flat[path] = ("seq", "")
            for n, v in enumerate(node.value):
                walk(v, (*path, n), inside | {id(node)})
        else:
            flat[path] = (str(node.tag), str(node.value))

    for i, doc in enumerate(docs):
        walk(doc, (i,), frozenset())
    return flat
