"""PATCH on a custom resource, as the API server does it for a CRD with a structural schema.

Order: decode the patch, apply it, check ObjectMeta, drop status (status subresource), prune unknown
fields, apply defaults, validate (422 `Invalid` with causes), then write: generation +1 when anything but
metadata/status changed, resourceVersion +1 on any change, the field manager in metadata.managedFields.
A patch that changes nothing writes nothing (same resourceVersion), as on a real server.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox import k8s_meta
from sandbox import k8s_status as status
from sandbox.argocd_http import Reply, Request
from sandbox.k8s_cluster import Cluster
from sandbox.k8s_patch import PatchError, json_patch, merge_patch
from sandbox.k8s_registry import ResourceType
from sandbox.k8s_status import ApiError

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
_VALIDATION_MODES = ("Ignore", "Warn", "Strict")


def _go_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "bool", int: "number", float: "number"}.get(
        type(value), "object"
    )


def _apply(content_type: str, current: dict[str, Any], body: Any) -> tuple[Any, dict[str, Any]]:
    """The patched document and the field tree the patch touched (for managedFields)."""
    if content_type == MERGE_PATCH:
        if not isinstance(body, dict):
            detail = (
                f"json: cannot unmarshal {_go_kind(body)} into Go value of type map[string]interface {{}}"
            )
            raise status.bad_request(f"error decoding patch: {detail}")
        return merge_patch(current, body), k8s_meta.fields_v1(body)
    try:
        patched = json_patch(current, body)
    except TypeError as exc:
        raise status.bad_request(str(exc)) from exc
    except PatchError as exc:
        raise ApiError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
        ) from exc
    touched: dict[str, Any] = {}
    for op in body:
        if op.get("op") in ("add", "replace", "copy", "move"):
            parts = [p for p in str(op["path"]).split("/")[1:] if p]
            tree: dict[str, Any] = {}
            for part in reversed(parts):
                tree = {f"f:{part.replace('~1', '/').replace('~0', '~')}": tree}
            touched = k8s_meta.merge_fields(touched, tree)
    return patched, touched


def _options(request: Request) -> tuple[str, bool, str]:
    mode = request.first("fieldValidation", "Warn") or "Warn"
    if mode not in _VALIDATION_MODES:
        raise status.bad_request(f"fieldValidation must be one of Ignore, Warn, Strict, not {mode!r}")
    dry_run = request.query.get("dryRun", [])
    if any(value != "All" for value in dry_run):
        raise status.bad_request(f'Invalid dry run value: "{dry_run[0]}"')
    manager = request.first("fieldManager")
    if not manager:  # the API server's default: the User-Agent's program name
        manager = request.headers.get("user-agent", "unknown").split("/")[0] or "unknown"
    if len(manager) > 128:
        raise ApiError(422, "Invalid", "fieldManager: Too long: may not be more than 128 bytes")
    return mode, bool(dry_run), manager


def patch(
    cluster: Cluster, request: Request, rtype: ResourceType, version: str, namespace: str, name: str
) -> Reply:
    if not cluster.allowed("patch", rtype.plural, namespace):
        raise status.forbidden(rtype.group, rtype.plural, "patch", namespace=namespace, name=name)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (MERGE_PATCH, JSON_PATCH):
        raise status.unsupported_media_type()
    mode, dry_run, manager = _options(request)
    try:
        body = json.loads(request.body.decode("utf-8"))
    except ValueError as exc:
        raise status.bad_request(f"error decoding patch: {exc}") from exc
    api_version = rtype.api_version(version)
    store = cluster.store
    with store.lock:
        entry = store.get(rtype.plural, namespace, name)
        if entry is None:
            raise status.not_found(rtype.group, rtype.plural, name)
        current = {"apiVersion": api_version, "kind": rtype.kind, **entry.obj}
        patched, touched = _apply(content_type, current, body)
        if not isinstance(patched, dict):
            raise status.bad_request(
                f"error decoding patch: json: cannot unmarshal {_go_kind(patched)} into Go value"
            )
        new, unknown = _checked(cluster, rtype, version, entry.obj, patched, name, namespace)
        admit = cluster.admission.get(rtype.plural)
        if admit is not None:  # a validating/mutating webhook (Tekton's), after schema validation
            new = admit(rtype, version, entry.obj, new)
        if unknown and mode == "Strict":
            detail = "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown)
            raise k8s_meta.decode_error(rtype, version, detail)
        headers: dict[str, str] = {}
        if unknown and mode == "Warn":
            headers["Warning"] = ", ".join('299 - "unknown field \\"' + u + '\\""' for u in unknown)
        if _same(new, entry.obj):
            return Reply(200, cluster.encoded(entry, version), headers=headers)
        spec_changed = {k: v for k, v in new.items() if k not in ("metadata", "status")} != {
            k: v for k, v in entry.obj.items() if k not in ("metadata", "status")
        }
        new["metadata"] = k8s_meta.record_manager(new["metadata"], manager, api_version, touched, store.now())
        if dry_run:
            shown = {"apiVersion": api_version, "kind": rtype.kind, **new}
            return Reply(200, json.dumps(shown).encode(), headers=headers)
        store.commit(entry, new, spec_changed=spec_changed)
        return Reply(200, cluster.encoded(entry, version), headers=headers)


def _checked(
    cluster: Cluster,
    rtype: ResourceType,
    version: str,
    old: dict[str, Any],
    patched: dict[str, Any],
    name: str,
    namespace: str,
) -> tuple[dict[str, Any], list[str]]:
    """The object to store (no apiVersion/kind) and the pruned unknown fields; raises 400/409/422."""
    if patched.get("kind") != rtype.kind:
        raise status.bad_request(f"the kind in the body ({patched.get('kind')}) does not match {rtype.kind}")
    if patched.get("apiVersion") != rtype.api_version(version):
        expected = rtype.api_version(version)
        raise status.bad_request(
            f"the API version in the data ({patched.get('apiVersion')}) does not match the expected API "
            f"version ({expected})"
        )
    meta = patched.get("metadata")
    k8s_meta.check_decoding(rtype, version, meta)
    assert isinstance(meta, dict)
    if meta.get("name") != name:
        raise status.bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
        )
    if meta.get("namespace", namespace) != namespace:
        raise status.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    old_meta = old["metadata"]
    if str(meta.get("resourceVersion", old_meta["resourceVersion"])) != old_meta["resourceVersion"]:
        raise status.conflict(rtype.group, rtype.plural, name)
    meta, unknown = k8s_meta.pruned(meta)
    meta = k8s_meta.restore_system_fields(meta, old_meta)
    meta["resourceVersion"] = old_meta["resourceVersion"]
    body = {k: v for k, v in patched.items() if k not in ("apiVersion", "kind", "metadata", "status")}
    schema = cluster.registry.schema(rtype.plural)
    causes = k8s_meta.validate(meta)
    if schema is not None:
        checked = schema.check(body, sections=("spec",))
        # Validation ratcheting (on by default since Kubernetes 1.30): an invalid value the update
        # leaves unchanged does not fail it.
        fresh = [c for c in checked.causes if _value_at(checked.value, c.field) != _value_at(old, c.field)]
        body, causes, unknown = checked.value, [*causes, *fresh], [*unknown, *checked.unknown]
    if causes:
        raise status.invalid(rtype.group, rtype.kind, name, causes)
    result: dict[str, Any] = {"metadata": meta, **body}
    if "status" in old:  # the status subresource: writes through the main resource ignore status
        result["status"] = old["status"]
    return result, unknown


def _same(new: dict[str, Any], old: dict[str, Any]) -> bool:
    return new == old


_ABSENT = object()


def _value_at(obj: Any, path: str) -> Any:
    """The value at a field path such as `spec.ref.branch`, `spec.dependsOn[0].name`, `spec.values[k]`."""
    node = obj
    for part in re.findall(r"[^.\[\]]+|\[[^\]]*\]", path):
        key: Any = part[1:-1] if part.startswith("[") else part
        if isinstance(node, list):
            if not str(key).isdigit() or int(key) >= len(node):
                return _ABSENT
            node = node[int(key)]
        elif isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return _ABSENT
    return node
