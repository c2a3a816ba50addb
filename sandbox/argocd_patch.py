"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902), as evanphx/json-patch applies them."""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """The patch does not decode or does not apply."""


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit():
        raise PatchError(f"invalid array index: {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f"array index out of bounds: {index}")
    return index


def _parent(doc: Any, pointer: str) -> tuple[Any, str]:
    tokens = _tokens(pointer)
    if not tokens:
        raise PatchError("cannot operate on the document root")
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, allow_end=False)]
        else:
            raise PatchError(f"missing path: {pointer}")
    return node, tokens[-1]


def _get(doc: Any, pointer: str) -> Any:
    node = doc
    for token in _tokens(pointer):
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, allow_end=False)]
        else:
            raise PatchError(f"missing path: {pointer}")
    return node


def _remove(doc: Any, pointer: str) -> Any:
    parent, token = _parent(doc, pointer)
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"missing path: {pointer}")
        return parent.pop(token)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, allow_end=False))
    raise PatchError(f"missing path: {pointer}")


def _add(doc: Any, pointer: str, value: Any, *, replace: bool = False) -> None:
    parent, token = _parent(doc, pointer)
    if isinstance(parent, dict):
        if replace and token not in parent:
            raise PatchError(f"missing path: {pointer}")
        parent[token] = value
    elif isinstance(parent, list):
        index = _index(parent, token, allow_end=not replace)
        if replace:
            parent[index] = value
        else:
            parent.insert(index, value)
    else:
        raise PatchError(f"missing path: {pointer}")


def json_patch(document: Any, operations: Any) -> Any:
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(document)
    for op in operations:
        kind, path = op.get("op"), str(op.get("path", ""))
        if kind == "add":
            _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _add(doc, path, copy.deepcopy(op.get("value")), replace=True)
        elif kind == "move":
            _add(doc, path, _remove(doc, str(op.get("from", ""))))
        elif kind == "copy":
            _add(doc, path, copy.deepcopy(_get(doc, str(op.get("from", "")))))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"unexpected kind of operation: {kind!r}")
    return doc
