"""`coordination.k8s.io/v1` Leases on the fake API server: create (POST), replace (PUT), merge/JSON PATCH.

GET and LIST go through `k8s_api` like every other type. The rules are the real API server's for a
built-in type: a PUT without `metadata.resourceVersion` is an unconditional update, one with a stale
resourceVersion is 409 Conflict; POST of an existing name is 409 AlreadyExists; `acquireTime` and
`renewTime` are MicroTimes, which Go parses with exactly six fraction digits (a timestamp without
them is 400), and are served back as `...000000Z`; Leases have no `generation` and no status.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from sandbox import k8s_meta
from sandbox import k8s_status as status
from sandbox.argocd_http import Reply, Request
from sandbox.k8s_cluster import Cluster
from sandbox.k8s_patch import PatchError, json_patch, merge_patch
from sandbox.k8s_registry import Registry, ResourceType
from sandbox.k8s_status import ApiError, Cause

LEASE = ResourceType(group="coordination.k8s.io", kind="Lease", plural="leases", singular="lease")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# The Python client's default for PATCH. LeaseSpec has no list with a merge key, so for a Lease it is a
# JSON merge patch (metadata lists such as ownerReferences are merged as plain values here).
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"
_MICRO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# LeaseSpec's fields and their Go types (k8s.io/api/coordination/v1).
_SPEC_TYPES = {
    "holderIdentity": "string",
    "leaseDurationSeconds": "int32",
    "acquireTime": "MicroTime",
    "renewTime": "MicroTime",
    "leaseTransitions": "int32",
    "strategy": "string",
    "preferredHolder": "string",
}


def register(registry: Registry) -> None:
    registry.register(LEASE, ["v1"], None)  # no schema: a built-in type, and no status subresource


def write(cluster: Cluster, request: Request, version: str, namespace: str | None, name: str | None) -> Reply:
    """POST on the namespaced collection, PUT or PATCH on one Lease."""
    if namespace is None or (request.method == "POST") != (name is None):
        raise status.method_not_allowed()
    mode, dry_run, manager = _options(request)
    if request.method == "POST":
        return _create(cluster, _body(request), version, namespace, mode, dry_run, manager)
    assert name is not None
    verb = "update" if request.method == "PUT" else "patch"
    if not cluster.allowed(verb, LEASE.plural, namespace):
        raise status.forbidden(LEASE.group, LEASE.plural, verb, namespace=namespace, name=name)
    with cluster.store.lock:
        entry = cluster.store.get(LEASE.plural, namespace, name)
        if entry is None:
            raise status.not_found(LEASE.group, LEASE.plural, name)
        doc = _body(request) if request.method == "PUT" else _patched(request, cluster.served(entry, version))
        old = entry.obj
        meta, spec, unknown = _checked(doc, version, name, namespace, mode)
        rv = meta.pop("resourceVersion", None)
        if rv is not None and str(rv) != old["metadata"]["resourceVersion"]:
            raise status.conflict(LEASE.group, LEASE.plural, name)
        meta = k8s_meta.restore_system_fields(meta, old["metadata"])
        meta["namespace"] = namespace
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        new = {"metadata": meta, "spec": spec}
        headers = _warnings(unknown, mode)
        if new == old:  # nothing changed: no write, same resourceVersion
            return Reply(200, cluster.encoded(entry, version), headers=headers)
        new["metadata"] = _managed(cluster, new["metadata"], manager, version, spec)
        if dry_run:
            return Reply(200, _encode(version, new), headers=headers)
        cluster.store.commit(entry, new, spec_changed=False, notify=False)
        return Reply(200, cluster.encoded(entry, version), headers=headers)


def _create(
    cluster: Cluster,
    doc: Any,
    version: str,
    namespace: str,
    mode: str,
    dry_run: bool,
    manager: str,
) -> Reply:
    name = doc.get("metadata", {}).get("name") if isinstance(doc, dict) else None
    if not cluster.allowed("create", LEASE.plural, namespace):
        raise status.forbidden(LEASE.group, LEASE.plural, "create", namespace=namespace)
    meta, spec, unknown = _checked(doc, version, name, namespace, mode)
    if meta.get("resourceVersion"):
        raise status.internal("resourceVersion should not be set on objects to be created")
    meta = {k: v for k, v in meta.items() if k not in (*k8s_meta.SYSTEM_FIELDS, "resourceVersion")}
    meta["namespace"] = namespace
    store = cluster.store
    with store.lock:
        if store.get(LEASE.plural, namespace, meta["name"]) is not None:
            message = f'{LEASE.resource} "{meta["name"]}" already exists'
            details = {"name": meta["name"], "group": LEASE.group, "kind": LEASE.plural}
            raise ApiError(409, "AlreadyExists", message, details)
        obj = {"metadata": _managed(cluster, meta, manager, version, spec), "spec": spec}
        if dry_run:
            return Reply(201, _encode(version, obj), headers=_warnings(unknown, mode))
        entry = store.create(LEASE, obj, notify=False, generation=False)
        return Reply(201, cluster.encoded(entry, version), headers=_warnings(unknown, mode))


# -- decoding and validation ---------------------------------------------------------------------------


def _options(request: Request) -> tuple[str, bool, str]:
    mode = request.first("fieldValidation", "Warn") or "Warn"
    if mode not in ("Ignore", "Warn", "Strict"):
        raise status.bad_request(f"fieldValidation must be one of Ignore, Warn, Strict, not {mode!r}")
    dry_run = request.query.get("dryRun", [])
    if any(value != "All" for value in dry_run):
        raise status.bad_request(f'Invalid dry run value: "{dry_run[0]}"')
    manager = request.first("fieldManager")
    if not manager:  # the API server's default: the User-Agent's program name
        manager = request.headers.get("user-agent", "unknown").split("/")[0] or "unknown"
    return mode, bool(dry_run), manager


def _body(request: Request) -> Any:
    try:
        return json.loads(request.body.decode("utf-8"))
    except ValueError as exc:
        raise k8s_meta.decode_error(
            LEASE, "v1", f"couldn't get version/kind; json parse error: {exc}"
        ) from exc


def _patched(request: Request, current: dict[str, Any]) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_MERGE_PATCH):
        message = (
            "the body of the request was in an unknown format - accepted media types include: "
            f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_MERGE_PATCH}"
        )
        raise ApiError(415, "UnsupportedMediaType", message, {})
    try:
        body = json.loads(request.body.decode("utf-8"))
    except ValueError as exc:
        raise status.bad_request(f"error decoding patch: {exc}") from exc
    if content_type != JSON_PATCH:
        if not isinstance(body, dict):
            raise status.bad_request("error decoding patch: json: cannot unmarshal into Go value of type map")
        return merge_patch(current, body)
    try:
        return json_patch(current, body)
    except TypeError as exc:
        raise status.bad_request(str(exc)) from exc
    except PatchError as exc:
        raise ApiError(
            422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
        ) from exc


def _checked(
    doc: Any, version: str, url_name: str | None, namespace: str, mode: str
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(metadata, spec, unknown field paths) of a Lease body; raises 400 / 422 as the server does."""
    if not isinstance(doc, dict):
        raise k8s_meta.decode_error(LEASE, version, "json: cannot unmarshal into Go value of type v1.Lease")
    api_version = LEASE.api_version(version)
    # A missing apiVersion/kind is filled from the URL; a different one is refused.
    if doc.get("kind", LEASE.kind) != LEASE.kind or doc.get("apiVersion", api_version) != api_version:
        raise status.bad_request(
            f"the API version in the data ({doc.get('apiVersion')}) does not match the expected API "
            f"version ({api_version})"
        )
    meta = doc.get("metadata", {})
    k8s_meta.check_decoding(LEASE, version, meta)
    meta, unknown = k8s_meta.pruned(meta)
    unknown += [k for k in doc if k not in ("apiVersion", "kind", "metadata", "spec")]
    name = meta.get("name")
    if url_name is not None and name != url_name:
        raise status.bad_request(
            f"the name of the object ({name}) does not match the name on the URL ({url_name})"
        )
    if meta.get("namespace", namespace) != namespace:
        raise status.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    spec, spec_unknown, causes = _spec(doc.get("spec"), version)
    unknown += spec_unknown
    if not name:
        required = "Required value: name or generateName is required"
        causes.insert(0, Cause("FieldValueRequired", required, "metadata.name"))
    elif len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        message = (
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        )
        causes.insert(0, Cause("FieldValueInvalid", message, "metadata.name"))
    causes = [*k8s_meta.validate(meta), *causes]
    if causes:
        raise status.invalid(LEASE.group, LEASE.kind, str(name or ""), causes)
    if unknown and mode == "Strict":
        detail = "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown)
        raise k8s_meta.decode_error(LEASE, version, detail)
    return meta, spec, unknown


def _spec(value: Any, version: str) -> tuple[dict[str, Any], list[str], list[Cause]]:
    if value is None:
        return {}, [], []
    if not isinstance(value, dict):
        raise k8s_meta.decode_error(
            LEASE, version, "json: cannot unmarshal into Go struct field Lease.spec of type v1.LeaseSpec"
        )
    spec: dict[str, Any] = {}
    unknown: list[str] = []
    causes: list[Cause] = []
    for key, item in value.items():
        kind = _SPEC_TYPES.get(key)
        if kind is None:
            unknown.append(f"spec.{key}")
            continue
        if item is None:  # JSON null: the field stays unset
            continue
        field = f"LeaseSpec.spec.{key}"
        if kind == "string" and not isinstance(item, str):
            raise k8s_meta.decode_error(
                LEASE, version, f"json: cannot unmarshal into Go struct field {field} of type string"
            )
        if kind == "int32" and (isinstance(item, bool) or not isinstance(item, int) or abs(item) >= 2**31):
            raise k8s_meta.decode_error(
                LEASE, version, f"json: cannot unmarshal {item!r} into Go struct field {field} of type int32"
            )
        if kind == "MicroTime":
            item = _micro_time(item, version)
        spec[key] = item
    for key, least, words in (
        ("leaseDurationSeconds", 1, "greater than 0"),
        ("leaseTransitions", 0, "greater than or equal to 0"),
    ):
        if spec.get(key, least) < least:
            causes.append(
                Cause("FieldValueInvalid", f"Invalid value: {spec[key]}: must be {words}", f"spec.{key}")
            )
    return spec, unknown, causes


def _micro_time(value: Any, version: str) -> str:
    """Go's `time.Parse(RFC3339Micro, s)`, served back in UTC as the server formats a MicroTime."""
    if not isinstance(value, str) or not _MICRO.fullmatch(value):
        raise k8s_meta.decode_error(
            LEASE, version, f'parsing time "{value}" as "{RFC3339_MICRO}": cannot parse'
        )
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _warnings(unknown: list[str], mode: str) -> dict[str, str]:
    if not unknown or mode != "Warn":
        return {}
    return {"Warning": ", ".join('299 - "unknown field \\"' + u + '\\""' for u in unknown)}


def _managed(
    cluster: Cluster, meta: dict[str, Any], manager: str, version: str, spec: dict[str, Any]
) -> dict[str, Any]:
    # An Update owns the fields it set; approximated by the whole spec it wrote.
    tree = k8s_meta.fields_v1({"spec": spec}) if spec else {}
    return k8s_meta.record_manager(meta, manager, LEASE.api_version(version), tree, cluster.store.now())


def _encode(version: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"apiVersion": LEASE.api_version(version), "kind": LEASE.kind, **obj}).encode()
