"""The mutating endpoints: sync, rollback, terminate and patch (docs/argocd-api.md §4.4, §4.5, §4.8)."""

from __future__ import annotations

import copy
import json
from typing import Any

from sandbox.argocd_errors import (
    FAILED_PRECONDITION,
    INVALID_ARGUMENT,
    UNKNOWN,
    ApiError,
    app_not_found,
    busy,
    permission_denied,
)
from sandbox.argocd_http import Reply
from sandbox.argocd_schema import PATCH_REQUEST, ROLLBACK_REQUEST, SYNC_REQUEST, BodySchema
from sandbox.argocd_state import CONTROL_PLANE_NAMESPACE, USERNAME, AppRecord, Store, auto_sync_enabled
from sandbox.k8s_patch import PatchError, json_patch, merge_patch


def json_reply(data: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(data, separators=(",", ":")).encode())


def lookup(store: Store, name: str, *, project: str = "", app_namespace: str = "") -> AppRecord:
    """`getAppEnforceRBAC`: missing or forbidden is 403 without a project and 404 with one."""
    record = store.records.get(name)
    namespace = app_namespace or CONTROL_PLANE_NAMESPACE
    visible = record is not None and not record.forbidden and record.app["metadata"]["namespace"] == namespace
    if project:
        if record is None or not visible or record.spec.get("project") != project:
            raise app_not_found(name)
    elif record is None or not visible:
        raise permission_denied()
    return record


def _set_operation(store: Store, record: AppRecord, operation: dict[str, Any]) -> Reply:
    """`argo.SetAppOperation`: refuse when one is pending, else store it and clear operationState."""
    if record.app.get("operation") is not None:
        raise busy()
    record.app["operation"] = operation
    record.status.pop("operationState", None)
    store.touch(record, wake_controller=True)
    return Reply(200, record.encoded())


def sync(store: Store, schema: BodySchema, body: bytes, name: str) -> Reply:
    req = schema.decode(SYNC_REQUEST, body)
    with store.lock:
        record = lookup(
            store, name, project=req.get("project") or "", app_namespace=req.get("appNamespace") or ""
        )
        target = record.target_revision
        revision = str(req.get("revision") or "")
        dry_run = bool(req.get("dryRun"))
        if revision and revision != target and auto_sync_enabled(record.spec) and not dry_run:
            raise ApiError(
                FAILED_PRECONDITION, f"Cannot sync to {revision}: auto-sync currently set to {target}"
            )
        commit = record.repo.resolve(revision or target)
        if commit is None:
            message = (
                f"rpc error: code = Unknown desc = unable to resolve '{revision or target}' to a commit SHA"
            )
            raise ApiError(FAILED_PRECONDITION, message)
        policy = record.spec.get("syncPolicy") or {}
        operation_sync: dict[str, Any] = {"revision": commit.sha}
        if req.get("prune"):
            operation_sync["prune"] = True
        if dry_run:
            operation_sync["dryRun"] = True
        if req.get("resources"):
            operation_sync["resources"] = copy.deepcopy(req["resources"])
        if req.get("strategy"):
            operation_sync["syncStrategy"] = copy.deepcopy(req["strategy"])
        options = (req.get("syncOptions") or {}).get("items") or policy.get("syncOptions")
        if options:
            operation_sync["syncOptions"] = list(options)
        operation: dict[str, Any] = {"sync": operation_sync, "initiatedBy": {"username": USERNAME}}
        retry = req.get("retryStrategy") or policy.get("retry")
        if retry:
            operation["retry"] = copy.deepcopy(retry)
        if req.get("infos"):
            operation["info"] = copy.deepcopy(req["infos"])
        return _set_operation(store, record, operation)


def rollback(store: Store, schema: BodySchema, body: bytes, name: str) -> Reply:
    req = schema.decode(ROLLBACK_REQUEST, body)
    with store.lock:
        record = lookup(
            store, name, project=req.get("project") or "", app_namespace=req.get("appNamespace") or ""
        )
        if auto_sync_enabled(record.spec):
            raise ApiError(FAILED_PRECONDITION, "rollback cannot be initiated when auto-sync is enabled")
        wanted = int(req.get("id") or 0)
        entry = next((e for e in record.status.get("history", []) if e.get("id") == wanted), None)
        if entry is None:
            namespace = record.app["metadata"]["namespace"]
            message = f"application {namespace}/{name} does not have deployment with id {wanted}"
            raise ApiError(INVALID_ARGUMENT, message)
        operation_sync: dict[str, Any] = {"revision": entry["revision"], "syncStrategy": {"apply": {}}}
        if req.get("prune"):
            operation_sync["prune"] = True
        if req.get("dryRun"):
            operation_sync["dryRun"] = True
        if entry.get("source"):
            operation_sync["source"] = copy.deepcopy(entry["source"])
        options = (record.spec.get("syncPolicy") or {}).get("syncOptions")
        if options:
            operation_sync["syncOptions"] = list(options)
        return _set_operation(store, record, {"sync": operation_sync, "initiatedBy": {"username": USERNAME}})


def terminate(store: Store, name: str, *, project: str, app_namespace: str) -> Reply:
    with store.lock:
        record = lookup(store, name, project=project, app_namespace=app_namespace)
        state = record.status.get("operationState")
        if record.app.get("operation") is None or state is None:
            raise ApiError(INVALID_ARGUMENT, "Unable to terminate operation. No operation is in progress")
        state["phase"] = "Terminating"
        store.touch(record, wake_controller=True)
        return json_reply({})


def patch(store: Store, schema: BodySchema, body: bytes, name: str) -> Reply:
    req = schema.decode(PATCH_REQUEST, body)
    kind, text = str(req.get("patchType") or ""), str(req.get("patch") or "")
    with store.lock:
        record = lookup(
            store, name, project=req.get("project") or "", app_namespace=req.get("appNamespace") or ""
        )
        if kind in ("json", ""):
            try:
                patched = json_patch(record.app, json.loads(text))
            except json.JSONDecodeError as exc:
                raise ApiError(UNKNOWN, f"error decoding json patch: {exc.msg}") from None
            except PatchError as exc:
                raise ApiError(UNKNOWN, f"error applying patch: {exc}") from None
        elif kind == "merge":
            try:
                patched = merge_patch(record.app, json.loads(text))
            except json.JSONDecodeError:
                raise ApiError(UNKNOWN, "error calculating merge patch: Invalid JSON Patch") from None
        else:
            raise ApiError(INVALID_ARGUMENT, f"Patch type '{kind}' is not supported")
        _update_app(store, record, patched)
        return Reply(200, record.encoded())


def _update_app(store: Store, record: AppRecord, patched: Any) -> None:
    """`validateAndUpdateApp`: only spec, labels and annotations of the patched object are kept."""
    spec = patched.get("spec") if isinstance(patched, dict) else None
    metadata = patched.get("metadata") if isinstance(patched, dict) else None
    if not isinstance(spec, dict) or not isinstance(metadata, dict):
        raise ApiError(UNKNOWN, "error unmarshaling patched app: json: cannot unmarshal into Go value")
    for key, expected in (("source", dict), ("destination", dict), ("syncPolicy", dict), ("project", str)):
        if key in spec and spec[key] is not None and not isinstance(spec[key], expected):
            raise ApiError(UNKNOWN, f"error unmarshaling patched app: json: cannot unmarshal into spec.{key}")
    automated = (spec.get("syncPolicy") or {}).get("automated")
    if automated is not None and not isinstance(automated, dict):
        raise ApiError(UNKNOWN, "error unmarshaling patched app: json: cannot unmarshal into automated")
    if not spec.get("project"):
        raise ApiError(INVALID_ARGUMENT, f"application spec for {record.name} is invalid: missing project")
    app = record.app
    if spec != app["spec"]:
        app["metadata"]["generation"] = int(app["metadata"].get("generation", 1)) + 1
    app["spec"] = spec
    for key in ("labels", "annotations"):
        if metadata.get(key):
            app["metadata"][key] = metadata[key]
        else:
            app["metadata"].pop(key, None)
    store.recompute(record)
    record.reconcile_due = True  # e.g. auto-sync switched back on while behind git
    store.touch(record, wake_controller=True)
