"""List filters: label selectors (apimachinery `labels.Parse`), field selectors (`fields.ParseSelector`)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from sandbox.argocd_selector import SelectorError, parse_selector
from sandbox.k8s_status import bad_request

Predicate = Callable[[Mapping[str, Any]], bool]

# Custom resources support only these two (the API server's default field set).
DEFAULT_FIELDS = ("metadata.name", "metadata.namespace")
EVENT_FIELDS = (
    *DEFAULT_FIELDS,
    "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
    "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
    "reason", "reportingComponent", "source", "type",
)  # fmt: skip


def field_value(obj: Mapping[str, Any], field: str) -> str:
    if field == "source":
        return str(obj.get("source", {}).get("component", ""))
    node: Any = obj
    for part in field.split("."):
        node = node.get(part, "") if isinstance(node, Mapping) else ""
    return "" if node is None else str(node)


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    return value.replace("\\,", ",").replace("\\=", "=").replace("\\\\", "\\")


def label_predicate(text: str) -> Predicate:
    try:
        matches = parse_selector(text)
    except SelectorError as exc:
        raise bad_request(str(exc)) from exc
    return lambda obj: matches(obj.get("metadata", {}).get("labels") or {})


def field_predicate(text: str, supported: Collection[str]) -> Predicate:
    """Raises ApiError(400) for syntax errors and for fields the resource does not index."""
    terms: list[tuple[str, str, str]] = []
    for raw in _split_unescaped(text, ","):
        term = raw.strip()
        if not term:
            continue
        for operator in ("!=", "==", "="):
            field, found, value = term.partition(operator)
            if found:
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        field = field.strip()
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        terms.append((field, operator, _unescape(value.strip())))

    def matches(obj: Mapping[str, Any]) -> bool:
        for field, operator, value in terms:
            equal = field_value(obj, field) == value
            if equal != (operator != "!="):
                return False
        return True

    return matches


def list_filter(query: Mapping[str, list[str]], supported: Collection[str]) -> Predicate:
    label_text = (query.get("labelSelector") or [""])[0]
    field_text = (query.get("fieldSelector") or [""])[0]
    checks: list[Predicate] = []
    if label_text.strip():
        checks.append(label_predicate(label_text))
    if field_text.strip():
        checks.append(field_predicate(field_text, supported))
    return lambda obj: all(check(obj) for check in checks)
