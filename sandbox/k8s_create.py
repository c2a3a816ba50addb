"""POST (create) of a custom resource, for the plurals a fake registers in `Cluster.creatable` (Tekton's).

The API server's order: decode (400), apiVersion/kind and ObjectMeta checks, the name from
`metadata.generateName` (the prefix cut to 58 characters plus 5 characters of apimachinery's `rand.String`
alphabet), status dropped (status subresource), prune / default / validate against the request version's
schema (422 `Invalid`), conversion to the stored version, admission webhooks (their denial is 400), then
the write: 201 with the object as the request version shows it, 409 `AlreadyExists` for a taken name.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from sandbox import k8s_meta
from sandbox import k8s_status as status
from sandbox.argocd_http import Reply, Request
from sandbox.k8s_cluster import Cluster
from sandbox.k8s_registry import ResourceType
from sandbox.k8s_status import ApiError, Cause

NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand: no vowels, no 0/1/3
_MAX_PREFIX = 63 - 5  # maxGeneratedNameLength in names.SimpleNameGenerator
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_random = random.SystemRandom()


def generate_name(prefix: str) -> str:
    return prefix[:_MAX_PREFIX] + "".join(_random.choice(NAME_ALPHABET) for _ in range(5))


def create(cluster: Cluster, request: Request, rtype: ResourceType, version: str, namespace: str) -> Reply:
    if not cluster.allowed("create", rtype.plural, namespace):
        raise status.forbidden(rtype.group, rtype.plural, "create", namespace=namespace)
    mode = request.first("fieldValidation", "Warn") or "Warn"
    if mode not in ("Ignore", "Warn", "Strict"):
        raise status.bad_request(f"fieldValidation must be one of Ignore, Warn, Strict, not {mode!r}")
    dry_run = request.query.get("dryRun", [])
    if any(value != "All" for value in dry_run):
        raise status.bad_request(f'Invalid dry run value: "{dry_run[0]}"')
    manager = request.first("fieldManager") or request.headers.get("user-agent", "unknown").split("/")[0]
    try:
        doc = json.loads(request.body.decode("utf-8"))
    except ValueError as exc:
        raise k8s_meta.decode_error(rtype, version, f"json parse error: {exc}") from exc
    if not isinstance(doc, dict):
        raise k8s_meta.decode_error(rtype, version, "json: cannot unmarshal into Go value of type map")
    if "kind" not in doc:
        raise status.bad_request(f"Object 'Kind' is missing in '{request.body.decode('utf-8')[:200]}'")
    api_version = rtype.api_version(version)
    if doc.get("kind") != rtype.kind or doc.get("apiVersion") != api_version:
        raise status.bad_request(
            f"the API version in the data ({doc.get('apiVersion')}) does not match the expected API "
            f"version ({api_version})"
        )
    meta, unknown = _metadata(rtype, version, doc.get("metadata", {}), namespace)
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata", "status")}
    causes = k8s_meta.validate(meta)
    schema = cluster.registry.schema(rtype.plural, version)
    if schema is not None:
        checked = schema.check(body, sections=("spec",))
        body, causes, unknown = checked.value, [*causes, *checked.causes], [*unknown, *checked.unknown]
    if causes:
        raise status.invalid(rtype.group, rtype.kind, str(meta.get("name", "")), causes)
    if unknown and mode == "Strict":
        detail = "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown)
        raise k8s_meta.decode_error(rtype, version, detail)
    headers: dict[str, str] = {}
    if unknown and mode == "Warn":
        headers["Warning"] = ", ".join('299 - "unknown field \\"' + u + '\\""' for u in unknown)
    obj: dict[str, Any] = {"metadata": meta, **body}
    decode = cluster.decoders.get(rtype.group)
    if decode is not None:
        obj = decode(rtype, obj, version)
    store = cluster.store
    with store.lock:
        admit = cluster.admission.get(rtype.plural)
        if admit is not None:
            obj = admit(rtype, version, None, obj)
        tree = k8s_meta.fields_v1({k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "status")})
        obj["metadata"] = k8s_meta.record_manager(obj["metadata"], manager, api_version, tree, store.now())
        name = obj["metadata"]["name"]
        if store.get(rtype.plural, namespace, name) is not None:
            details = {"name": name, "group": rtype.group, "kind": rtype.plural}
            raise ApiError(409, "AlreadyExists", f'{rtype.resource} "{name}" already exists', details)
        if dry_run:
            shown = {"apiVersion": api_version, "kind": rtype.kind, **obj}
            return Reply(201, json.dumps(shown).encode(), headers=headers)
        entry = store.create(rtype, obj)
        return Reply(201, cluster.encoded(entry, version), headers=headers)


def _metadata(
    rtype: ResourceType, version: str, raw: Any, namespace: str
) -> tuple[dict[str, Any], list[str]]:
    k8s_meta.check_decoding(rtype, version, raw)
    meta, unknown = k8s_meta.pruned(raw)
    if meta.get("namespace", namespace) != namespace:
        raise status.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if meta.get("resourceVersion"):
        raise status.internal("resourceVersion should not be set on objects to be created")
    meta = {k: v for k, v in meta.items() if k not in (*k8s_meta.SYSTEM_FIELDS, "resourceVersion")}
    meta["namespace"] = namespace
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = generate_name(str(meta["generateName"]))
    name = meta.get("name")
    if not name:
        cause = Cause(
            "FieldValueRequired", "Required value: name or generateName is required", "metadata.name"
        )
        raise status.invalid(rtype.group, rtype.kind, "", [cause])
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        message = (
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        )
        raise status.invalid(
            rtype.group, rtype.kind, name, [Cause("FieldValueInvalid", message, "metadata.name")]
        )
    return meta, unknown
