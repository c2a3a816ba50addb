"""ObjectMeta on writes: decoding errors (400), label/annotation checks (422), system fields, managers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sandbox.k8s_registry import ResourceType
from sandbox.k8s_status import ApiError, Cause, bad_request

OBJECT_META_FIELDS = frozenset(
    {
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
        "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
        "ownerReferences", "finalizers", "managedFields",
    }
)  # fmt: skip
# The server owns these: whatever a patch says, the stored values stay.
SYSTEM_FIELDS = ("uid", "creationTimestamp", "generation", "selfLink", "deletionTimestamp", "managedFields")
_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_VALUE_HELP = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_KEY_HELP = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_ANNOTATIONS_LIMIT = 262144


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "string"


def decode_error(rtype: ResourceType, version: str, detail: str) -> ApiError:
    return bad_request(f'{rtype.kind} in version "{version}" cannot be handled as a {rtype.kind}: {detail}')


def check_decoding(rtype: ResourceType, version: str, meta: Any) -> None:
    """What Go's json decoding into ObjectMeta refuses: 400 BadRequest."""
    if not isinstance(meta, dict):
        raise decode_error(
            rtype, version, f"json: cannot unmarshal {_go_type(meta)} into Go struct field .metadata"
        )
    for name in ("labels", "annotations"):
        value = meta.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            detail = (
                f"json: cannot unmarshal {_go_type(value)} into Go struct field ObjectMeta.metadata.{name}"
            )
            raise decode_error(rtype, version, f"{detail} of type map[string]string")
        for item in value.values():
            if not isinstance(item, str):
                detail = (
                    f"json: cannot unmarshal {_go_type(item)} into Go struct field ObjectMeta.metadata.{name}"
                )
                raise decode_error(rtype, version, f"{detail} of type string")
    finalizers = meta.get("finalizers")
    if finalizers is not None and not (
        isinstance(finalizers, list) and all(isinstance(f, str) for f in finalizers)
    ):
        raise decode_error(
            rtype, version, "json: cannot unmarshal into Go struct field ObjectMeta.metadata.finalizers"
        )


def _key_causes(key: str, field: str) -> list[Cause]:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _PREFIX.fullmatch(prefix)):
        return [
            Cause(
                "FieldValueInvalid",
                f'Invalid value: "{key}": prefix part must be a lowercase RFC 1123 subdomain',
                field,
            )
        ]
    if len(name) > 63 or not _NAME.fullmatch(name):
        return [Cause("FieldValueInvalid", f'Invalid value: "{key}": {_KEY_HELP}', field)]
    return []


def validate(meta: Mapping[str, Any]) -> list[Cause]:
    """Label keys and values, annotation keys and total size: 422 causes."""
    causes: list[Cause] = []
    for key, value in (meta.get("labels") or {}).items():
        causes += _key_causes(key, "metadata.labels")
        if len(value) > 63 or (value and not _NAME.fullmatch(value)):
            causes.append(
                Cause(
                    "FieldValueInvalid", f'Invalid value: "{value}": {_LABEL_VALUE_HELP}', "metadata.labels"
                )
            )
    annotations = meta.get("annotations") or {}
    for key in annotations:
        causes += _key_causes(key, "metadata.annotations")
    size = sum(len(k) + len(v) for k, v in annotations.items())
    if size > _ANNOTATIONS_LIMIT:
        message = f"Too long: may not be more than {_ANNOTATIONS_LIMIT} bytes"
        causes.append(Cause("FieldValueTooLong", message, "metadata.annotations"))
    return causes


def pruned(meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """ObjectMeta without unknown keys (and without empty label/annotation maps), plus the unknown paths."""
    kept = {k: v for k, v in meta.items() if k in OBJECT_META_FIELDS}
    for name in ("labels", "annotations"):
        if name in kept and not kept[name]:
            del kept[name]
    unknown = [f"metadata.{k}" for k in meta if k not in OBJECT_META_FIELDS]
    return kept, unknown


def restore_system_fields(new: dict[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(new)
    for name in SYSTEM_FIELDS:
        if name in old:
            result[name] = old[name]
        else:
            result.pop(name, None)
    return result


def fields_v1(patch: Any, *, top: bool = True) -> dict[str, Any]:
    """The fields a merge patch sets, in managedFields' FieldsV1 shape (`f:<name>` trees)."""
    if not isinstance(patch, dict):
        return {}
    tree: dict[str, Any] = {}
    for key, value in patch.items():
        if value is None:
            continue
        child = fields_v1(value, top=False)
        # "." marks a nested map the manager owns as such; metadata and spec themselves never get one.
        tree[f"f:{key}"] = ({} if top else {".": {}}) | child if child else {}
    return tree


def merge_fields(into: dict[str, Any], tree: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(into)
    for key, value in tree.items():
        result[key] = merge_fields(result.get(key, {}), value) if value else result.get(key, {})
    return result


def record_manager(
    meta: dict[str, Any], manager: str, api_version: str, tree: Mapping[str, Any], now: str
) -> dict[str, Any]:
    """`metadata.managedFields` with this Update merged into the manager's entry (or a new entry)."""
    entries = [dict(e) for e in meta.get("managedFields", [])]
    for entry in entries:
        if (
            entry.get("manager") == manager
            and entry.get("operation") == "Update"
            and "subresource" not in entry
        ):
            entry["fieldsV1"] = merge_fields(entry.get("fieldsV1", {}), tree)
            entry.update(apiVersion=api_version, time=now)
            break
    else:
        entries.append(
            {
                "manager": manager,
                "operation": "Update",
                "apiVersion": api_version,
                "time": now,
                "fieldsType": "FieldsV1",
                "fieldsV1": tree,
            }
        )
    return {**meta, "managedFields": entries}
