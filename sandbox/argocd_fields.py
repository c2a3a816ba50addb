"""The `fields` query parameter: List's fixed whitelist and the generic path filter of other endpoints."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

_SKIP = object()  # Go's untyped nil: the whitelist entry is left out entirely


def _opstate(app: Mapping[str, Any], key: str, default: Any = None) -> Any:
    state = app.get("status", {}).get("operationState")
    return _SKIP if state is None else state.get(key, default)


def _meta(key: str, default: Any = None) -> Callable[[Mapping[str, Any]], Any]:
    return lambda app: app.get("metadata", {}).get(key, default)


def _spec(key: str, default: Any = None) -> Callable[[Mapping[str, Any]], Any]:
    return lambda app: app.get("spec", {}).get(key, default)


def _status(key: str, default: Any = None) -> Callable[[Mapping[str, Any]], Any]:
    return lambda app: app.get("status", {}).get(key, default)


def _resources(app: Mapping[str, Any]) -> Any:
    return app.get("status", {}).get("resources") or _SKIP


def _operation_sync(app: Mapping[str, Any]) -> Any:
    operation = app.get("operation")
    return _SKIP if operation is None else operation.get("sync")


# argocd-server's `appFields` (docs/argocd-api.md §4.1). Go typed nils (pointers, maps, slices) marshal
# as null while value types (strings, structs) always appear, hence the defaults.
LIST_FIELDS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "metadata.name": _meta("name", ""),
    "metadata.namespace": _meta("namespace", ""),
    "metadata.annotations": _meta("annotations"),
    "metadata.labels": _meta("labels"),
    "metadata.creationTimestamp": _meta("creationTimestamp"),
    "metadata.deletionTimestamp": _meta("deletionTimestamp"),
    "spec": lambda app: app.get("spec", {}),
    "spec.destination": _spec("destination", {}),
    "spec.project": _spec("project", ""),
    "spec.source": _spec("source"),
    "spec.sources": _spec("sources"),
    "spec.sourceHydrator": _spec("sourceHydrator"),
    "spec.syncPolicy": _spec("syncPolicy"),
    "status.sourceHydrator": _status("sourceHydrator", {}),
    "status.summary": _status("summary", {}),
    "status.sync.status": lambda app: app.get("status", {}).get("sync", {}).get("status", ""),
    "status.sync.revision": lambda app: app.get("status", {}).get("sync", {}).get("revision", ""),
    "status.health": _status("health", {}),
    "status.operationState.startedAt": lambda app: _opstate(app, "startedAt"),
    "status.operationState.finishedAt": lambda app: _opstate(app, "finishedAt"),
    "status.operationState.phase": lambda app: _opstate(app, "phase", ""),
    # Upstream quirk: this key carries the operation's syncResult, not the echoed request.
    "status.operationState.operation.sync": lambda app: _opstate(app, "syncResult"),
    "status.resources": _resources,
    "operation.sync": _operation_sync,
}


def parse_fields(raw: str) -> tuple[frozenset[str], bool] | None:
    """(paths, exclude) from `fields=a,b` or `fields=-a,b`; None when the parameter is absent/empty."""
    if not raw:
        return None
    exclude = raw.startswith("-")
    return frozenset((raw[1:] if exclude else raw).split(",")), exclude


def list_projector(fields: frozenset[str], exclude: bool) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Projects one Application onto the whitelisted `items.` paths; everything else is dropped."""
    chosen = [path for path in LIST_FIELDS if (f"items.{path}" in fields) != exclude]
    # A child of a chosen parent adds nothing (same JSON) and must not write into the shared parent.
    chosen = [p for p in chosen if not any(p.startswith(f"{q}.") for q in chosen)]
    getters = [(path.split("."), LIST_FIELDS[path]) for path in chosen]

    def project(app: Mapping[str, Any]) -> dict[str, Any]:
        converted: dict[str, Any] = {}
        for parts, getter in getters:
            value = getter(app)
            if value is _SKIP:
                continue
            node = converted
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        return converted

    return project


def _tree(paths: frozenset[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return tree


def _keep(value: Any, tree: Mapping[str, Any]) -> Any:
    if not tree:
        return value
    if isinstance(value, list):
        return [_keep(item, tree) for item in value]
    if isinstance(value, dict):
        return {key: _keep(value[key], sub) for key, sub in tree.items() if key in value}
    return None


def _drop(value: Any, tree: Mapping[str, Any]) -> None:
    if isinstance(value, list):
        for item in value:
            _drop(item, tree)
    elif isinstance(value, dict):
        for key, sub in tree.items():
            if not sub:
                value.pop(key, None)
            elif key in value:
                _drop(value[key], sub)


def filter_paths(document: Mapping[str, Any], fields: frozenset[str], exclude: bool) -> Any:
    """Any dotted path relative to the root (lists are traversed), as argoproj/pkg's forwarder does."""
    tree = _tree(fields)
    if not exclude:
        return _keep(document, tree)
    trimmed = copy.deepcopy(dict(document))
    _drop(trimmed, tree)
    return trimmed
