"""Request bodies decoded the way argocd-server's Go `encoding/json` does, against the swagger extract.

Unknown fields are rejected on purpose (the real server ignores them) so a client typo fails loudly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sandbox.argocd_errors import INVALID_ARGUMENT, ApiError

SYNC_REQUEST = "applicationApplicationSyncRequest"
ROLLBACK_REQUEST = "applicationApplicationRollbackRequest"
PATCH_REQUEST = "applicationApplicationPatchRequest"

_CONTRACT_FILE = Path(__file__).with_name("argocd_contract.json")
_GO_PACKAGES = ("application", "v1alpha1")
# The Go struct embeds SyncStrategyApply, so `{"hook": {"force": true}}` is what the CLI sends even
# though protoc-gen-swagger documents the embedded field as `syncStrategyApply`.
_GO_INLINE = {"v1alpha1SyncStrategyHook": "v1alpha1SyncStrategyApply"}
_INT64_RANGE = range(-(2**63), 2**63)


def _go_kind(value: Any) -> str:
    """How Go's UnmarshalTypeError names a JSON value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "number"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _reject_constant(text: str) -> Any:
    raise ValueError(f"invalid character '{text[0]}' looking for beginning of value")


class BodySchema:
    """Validates request bodies against the definitions of `argocd_contract.json`."""

    def __init__(self, definitions: Mapping[str, Any]) -> None:
        self._definitions = definitions

    @classmethod
    def load(cls) -> BodySchema:
        contract = json.loads(_CONTRACT_FILE.read_text(encoding="utf-8"))
        return cls(contract["definitions"])

    def decode(self, definition: str, raw: bytes) -> dict[str, Any]:
        """The request as a dict, or ApiError(InvalidArgument) with Go's wording."""
        text = raw.decode("utf-8", errors="replace")
        if not text.strip():
            return {}  # grpc-gateway treats an empty body (io.EOF) as an empty message
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            if exc.pos >= len(text.rstrip()):
                raise ApiError(INVALID_ARGUMENT, "unexpected EOF") from None
            char = text[exc.pos]
            raise ApiError(
                INVALID_ARGUMENT, f"invalid character '{char}' looking for beginning of value"
            ) from None
        except ValueError as exc:
            raise ApiError(INVALID_ARGUMENT, str(exc)) from None
        if not isinstance(value, dict):
            go_type = self._go_name(definition)
            message = f"json: cannot unmarshal {_go_kind(value)} into Go value of type {go_type}"
            raise ApiError(INVALID_ARGUMENT, message)
        root = self._go_name(definition).split(".", 1)[1]
        self._check_object(definition, value, root, "")
        return value

    def _properties(self, definition: str) -> dict[str, Any]:
        props = dict(self._definitions[definition].get("properties", {}))
        inline = _GO_INLINE.get(definition)
        if inline:
            props.update(self._definitions[inline].get("properties", {}))
        return props

    def _check_object(self, definition: str, obj: Mapping[str, Any], root: str, path: str) -> None:
        props = self._properties(definition)
        for key, value in obj.items():
            spec = props.get(key)
            if spec is None:
                raise ApiError(INVALID_ARGUMENT, f'unknown field "{key}"')
            self._check(spec, value, root, f"{path}.{key}" if path else key)

    def _check(self, spec: Mapping[str, Any], value: Any, root: str, path: str) -> None:
        if value is None:
            return  # Go leaves the zero value for null
        kind = spec.get("type")
        ok: bool
        if spec.get("format") == "int64" or kind == "integer":
            # protoc-gen-swagger declares repeated int64 as strings; Go still wants numbers.
            ok = isinstance(value, int) and not isinstance(value, bool) and value in _INT64_RANGE
        elif "$ref" in spec:
            ok = isinstance(value, dict)
            if ok:
                self._check_object(spec["$ref"].rsplit("/", 1)[-1], value, root, path)
        elif kind == "string":
            ok = isinstance(value, str)
        elif kind == "boolean":
            ok = isinstance(value, bool)
        elif kind == "array":
            ok = isinstance(value, list)
            if ok:
                for item in value:
                    self._check(spec.get("items", {}), item, root, path)
        else:
            ok = True
        if not ok:
            message = (
                f"json: cannot unmarshal {_go_kind(value)} into Go struct field "
                f"{root}.{path} of type {self._go_type(spec)}"
            )
            raise ApiError(INVALID_ARGUMENT, message)

    def _go_type(self, spec: Mapping[str, Any]) -> str:
        if spec.get("format") == "int64":
            return "int64"
        if "$ref" in spec:
            return self._go_name(spec["$ref"].rsplit("/", 1)[-1])
        kind = spec.get("type")
        if kind == "array":
            items = spec.get("items", {})
            return "[]" + ("*" if "$ref" in items else "") + self._go_type(items)
        return {"boolean": "bool", "integer": "int64"}.get(str(kind), str(kind))

    @staticmethod
    def _go_name(definition: str) -> str:
        """`applicationApplicationSyncRequest` -> `application.ApplicationSyncRequest` (Go error texts)."""
        for package in _GO_PACKAGES:
            if definition.startswith(package):
                return f"{package}.{definition[len(package) :]}"
        return definition
