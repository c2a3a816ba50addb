"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902), on JSON-shaped data, never mutating the input."""

from __future__ import annotations

import json
from typing import Any


class PatchError(ValueError):
    """A JSON patch operation that cannot be applied (the API server answers 422)."""


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return _copy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"add operation does not apply: doc is missing path: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit():
        raise PatchError(f"invalid array index: {token}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f"array index out of bounds: {index}")
    return index


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for token in parts[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, allow_end=False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return node


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    token = parts[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"doc is missing path: {path!r}")
        return parent[token]
    if isinstance(parent, list):
        return parent[_index(parent, token, allow_end=False)]
    raise PatchError(f"doc is missing path: {path!r}")


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    token = parts[-1]
    if isinstance(parent, dict) and token in parent:
        return parent.pop(token)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, allow_end=False))
    raise PatchError(f"remove operation does not apply: doc is missing path: {path!r}")


def _add(doc: Any, path: str, value: Any, *, replace: bool) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    token = parts[-1]
    if isinstance(parent, dict):
        # No missing-key check on replace: kube-apiserver's json-patch v4 `partialDoc.get` reports a missing
        # object key as present, so `replace` of an absent field works like `add` (docs/tekton-api.md §4).
        parent[token] = value
    elif isinstance(parent, list):
        index = _index(parent, token, allow_end=not replace)
        if replace:
            parent[index] = value
        else:
            parent.insert(index, value)
    else:
        raise PatchError(f"add operation does not apply: doc is missing path: {path!r}")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise TypeError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = _copy(target)
    for op in operations:
        if (
            not isinstance(op, dict)
            or not isinstance(op.get("op"), str)
            or not isinstance(op.get("path"), str)
        ):
            raise PatchError("Unexpected kind: operation without op or path")
        name, path = op["op"], op["path"]
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"missing value for {name} operation")
        if name == "add":
            doc = _add(doc, path, _copy(op["value"]), replace=False)
        elif name == "replace":
            doc = _add(doc, path, _copy(op["value"]), replace=True)
        elif name == "remove":
            _remove(doc, path)
        elif name in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f"missing from for {name} operation")
            value = _remove(doc, source) if name == "move" else _copy(_get(doc, source))
            doc = _add(doc, path, value, replace=False)
        elif name == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {name}")
    return doc
