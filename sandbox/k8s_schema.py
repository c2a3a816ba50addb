"""Structural-schema handling of a custom resource write, in the API server's order: prune, default, validate.

Unknown fields are pruned (and reported, for the `Warning: unknown field` header), `default`s fill absent
properties, then types, enums, patterns, lengths, bounds, `required` and the CEL rules are checked with
kube-openapi's wording. `metadata` is ObjectMeta, not schema-driven: see `k8s_meta`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.k8s_cel import Rule, compile_rule
from sandbox.k8s_status import Cause

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


@dataclass
class Checked:
    value: dict[str, Any]
    causes: list[Cause] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # pruned field paths, e.g. "spec.foo"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _render(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def _type_ok(want: str, value: Any) -> bool:
    got = json_type(value)
    return got == want or (want == "number" and got == "integer")


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _date_time_ok(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return "T" in text.upper()


class StructuralSchema:
    """One CRD version's openAPIV3Schema; compiled patterns and rules are cached per instance."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._schema = schema
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._rules: dict[str, Rule | None] = {}

    def check(self, obj: Mapping[str, Any], *, sections: Collection[str] = ("spec",)) -> Checked:
        """A pruned, defaulted copy of `obj` and what was wrong with it; only `sections` are walked.

        Other root properties (apiVersion, kind, metadata, status) are copied untouched, unknown root
        keys are pruned.
        """
        result = Checked(value={})
        root_props: Mapping[str, Any] = self._schema.get("properties", {})
        for key, value in obj.items():
            if key not in root_props:
                result.unknown.append(key)
            elif key in sections:
                walked = self._walk(root_props[key], value, key, result)
                if walked is not _DROP:
                    result.value[key] = walked
            else:
                result.value[key] = _copy(value)
        for key in sections:
            sub = root_props.get(key, {})
            if key not in result.value and "default" in sub:
                result.value[key] = self._walk(sub, _copy(sub["default"]), key, result)
        for key in self._schema.get("required", []):
            if key in sections and key not in result.value:
                result.causes.append(Cause("FieldValueRequired", "Required value", key))
        return result

    def _walk(self, schema: Mapping[str, Any], value: Any, path: str, out: Checked) -> Any:
        if value is None:
            if schema.get("nullable"):
                return None
            return _DROP  # the API server prunes nulls of non-nullable fields before defaulting
        if schema.get("x-kubernetes-int-or-string"):
            if not isinstance(value, (int, str)) or isinstance(value, bool):
                got = json_type(value)
                message = f'Invalid value: "{got}": {path} in body must be of type int-or-string: "{got}"'
                out.causes.append(Cause("FieldValueTypeInvalid", message, path))
            return value
        want = schema.get("type")
        if want is None:
            return _copy(value)  # x-kubernetes-preserve-unknown-fields with no type: anything
        if not _type_ok(want, value):
            got = json_type(value)
            message = f'Invalid value: "{got}": {path} in body must be of type {want}: "{got}"'
            out.causes.append(Cause("FieldValueTypeInvalid", message, path))
            return value
        if want == "object":
            walked: Any = self._object(schema, value, path, out)
        elif want == "array":
            walked = self._array(schema, value, path, out)
        else:
            walked = value
            self._scalar(schema, value, path, out)
        if "enum" in schema and walked not in schema["enum"]:
            supported = ", ".join(_render(v) for v in schema["enum"])
            message = f"Unsupported value: {_render(walked)}: supported values: {supported}"
            out.causes.append(Cause("FieldValueNotSupported", message, path))
        for validation in schema.get("x-kubernetes-validations", []):
            rule = self._rule(validation["rule"])
            if rule is not None and not rule(walked):
                message = (
                    f'Invalid value: "{json_type(walked)}": {validation.get("message", validation["rule"])}'
                )
                out.causes.append(Cause("FieldValueInvalid", message, path))
        return walked

    def _object(self, schema: Mapping[str, Any], value: dict[str, Any], path: str, out: Checked) -> Any:
        props: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        keep_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        result: dict[str, Any] = {}
        for key, item in value.items():
            child = f"{path}.{key}"
            if key in props:
                walked = self._walk(props[key], item, child, out)
            elif isinstance(extra, Mapping):
                walked = self._walk(extra, item, f"{path}[{key}]", out)
            elif keep_unknown or (extra is True and not props):
                walked = _copy(item)
            else:
                out.unknown.append(child)
                continue
            if walked is not _DROP:
                result[key] = walked
        for key, sub in props.items():
            if key not in result and "default" in sub:
                result[key] = self._walk(sub, _copy(sub["default"]), f"{path}.{key}", out)
        for key in schema.get("required", []):
            if key not in result:
                out.causes.append(Cause("FieldValueRequired", "Required value", f"{path}.{key}"))
        if "maxProperties" in schema and len(result) > schema["maxProperties"]:
            message = f"Too many: {len(result)}: must have at most {schema['maxProperties']} items"
            out.causes.append(Cause("FieldValueTooMany", message, path))
        return result

    def _array(self, schema: Mapping[str, Any], value: list[Any], path: str, out: Checked) -> Any:
        items = schema.get("items", {})
        result: list[Any] = []
        for index, item in enumerate(value):
            child = f"{path}[{index}]"
            if item is None and not items.get("nullable"):
                want = items.get("type", "object")
                message = f'Invalid value: "null": {child} in body must be of type {want}: "null"'
                out.causes.append(Cause("FieldValueTypeInvalid", message, child))
                continue
            result.append(self._walk(items, item, child, out))
        if "maxItems" in schema and len(result) > schema["maxItems"]:
            message = f"Too many: {len(result)}: must have at most {schema['maxItems']} items"
            out.causes.append(Cause("FieldValueTooMany", message, path))
        if "minItems" in schema and len(result) < schema["minItems"]:
            minimum = schema["minItems"]
            message = f"Invalid value: {len(result)}: {path} in body should have at least {minimum} items"
            out.causes.append(Cause("FieldValueInvalid", message, path))
        return result

    def _scalar(self, schema: Mapping[str, Any], value: Any, path: str, out: Checked) -> None:
        shown = _render(value)
        if isinstance(value, str):
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                message = f"Too long: may not be more than {schema['maxLength']} bytes"
                out.causes.append(Cause("FieldValueTooLong", message, path))
            if "minLength" in schema and len(value) < schema["minLength"]:
                minimum = schema["minLength"]
                message = f"Invalid value: {shown}: {path} in body should be at least {minimum} chars long"
                out.causes.append(Cause("FieldValueInvalid", message, path))
            pattern = schema.get("pattern")
            if pattern is not None and not self._pattern(pattern).search(value):
                message = f"Invalid value: {shown}: {path} in body should match '{pattern}'"
                out.causes.append(Cause("FieldValueInvalid", message, path))
            if schema.get("format") == "date-time" and not _date_time_ok(value):
                message = f"Invalid value: {shown}: {path} in body must be of type date-time: {shown}"
                out.causes.append(Cause("FieldValueInvalid", message, path))
            return
        if isinstance(value, (int, float)):
            bounds = _INT_RANGES.get(str(schema.get("format")))
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                message = f"Invalid value: {shown}: {path} in body must be of type {schema['format']}"
                out.causes.append(Cause("FieldValueInvalid", message, path))
            if "minimum" in schema and value < schema["minimum"]:
                bound = schema["minimum"]
                message = f"Invalid value: {shown}: {path} in body should be greater than or equal to {bound}"
                out.causes.append(Cause("FieldValueInvalid", message, path))
            if "maximum" in schema and value > schema["maximum"]:
                bound = schema["maximum"]
                message = f"Invalid value: {shown}: {path} in body should be less than or equal to {bound}"
                out.causes.append(Cause("FieldValueInvalid", message, path))

    def _pattern(self, pattern: str) -> re.Pattern[str]:
        compiled = self._patterns.get(pattern)
        if compiled is None:
            compiled = self._patterns[pattern] = re.compile(pattern)
        return compiled

    def _rule(self, text: str) -> Rule | None:
        if text not in self._rules:
            self._rules[text] = compile_rule(text)
        return self._rules[text]


class _Drop:
    """Marks a value the walk removes (a null of a non-nullable field)."""


_DROP: Any = _Drop()
