"""The fake cluster side: live objects with a real cluster's noise, diffs against git, and the tree."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from sandbox.argocd_git import Key, Manifest, clone, resource_key

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_HEALTH_KINDS = {"Deployment", "ReplicaSet", "Pod", "Service", "StatefulSet", "DaemonSet"}


def object_uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts)))


def apply_live(target: Manifest, previous: Manifest | None, resource_version: int, now: str) -> Manifest:
    """What the API server stores after `kubectl apply` of `target` (defaults, metadata, status)."""
    applied = json.dumps(target, separators=(",", ":"), sort_keys=True)
    live: Manifest = json.loads(applied)  # doubles as the deep copy
    metadata = live.setdefault("metadata", {})
    old_meta = previous.get("metadata", {}) if previous else {}
    group, kind, namespace, name = resource_key(target)
    generation = int(old_meta.get("generation", 0))
    if previous is None or previous.get("spec") != target.get("spec"):
        generation += 1
    metadata["annotations"] = {
        **metadata.get("annotations", {}),
        LAST_APPLIED: applied,
    }
    metadata["creationTimestamp"] = old_meta.get("creationTimestamp", now)
    metadata["generation"] = generation
    metadata["resourceVersion"] = str(resource_version)
    metadata["uid"] = old_meta.get("uid") or object_uid(group, kind, namespace, name)
    metadata["managedFields"] = [
        {
            "apiVersion": target.get("apiVersion", "v1"),
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:annotations": {}, "f:labels": {}}, "f:spec": {}},
            "manager": "argocd-controller",
            "operation": "Update",
            "time": now,
        }
    ]
    if kind == "Deployment":
        replicas = int(live.get("spec", {}).get("replicas", 1))
        live["status"] = {
            "availableReplicas": replicas,
            "observedGeneration": generation,
            "readyReplicas": replicas,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }
    elif kind == "Service":
        digest = hashlib.sha1(name.encode(), usedforsecurity=False).digest()
        live.setdefault("spec", {})["clusterIP"] = f"10.96.{digest[0]}.{digest[1]}"
        live["spec"]["type"] = live["spec"].get("type", "ClusterIP")
        live["status"] = {"loadBalancer": {}}
    return live


def covers(live: Any, target: Any) -> bool:
    """True when applying `target` onto `live` changes nothing (extra live fields are defaults/noise)."""
    if not isinstance(target, dict):
        return bool(live == target)
    if not isinstance(live, dict):
        return False
    for key, value in target.items():
        if key not in live:
            return False
        current = live[key]
        # Equal subtrees compare at C speed; only subtrees carrying noise need the walk.
        if (
            current is not value
            and current != value
            and not (isinstance(value, dict) and covers(current, value))
        ):
            return False
    return True


def merged(live: Any, target: Any) -> Any:
    """`target` merged onto `live`: maps merge, everything else (lists included) is replaced."""
    if isinstance(target, dict) and isinstance(live, dict):
        result = dict(live)
        for key, value in target.items():
            result[key] = merged(live.get(key), value)
        return result
    return clone(target)


def _encode(obj: Any) -> str:
    return "null" if obj is None else json.dumps(obj, separators=(",", ":"))


def managed_resources(desired: Mapping[Key, Manifest], live: Mapping[Key, Manifest]) -> list[dict[str, Any]]:
    """ResourceDiff items; `*State` values are JSON strings, `modified` only present when true."""
    items: list[dict[str, Any]] = []
    for key in sorted(set(desired) | set(live)):
        group, kind, namespace, name = key
        target, current = desired.get(key), live.get(key)
        predicted = merged(current, target) if target is not None and current is not None else target
        item: dict[str, Any] = {"kind": kind, "namespace": namespace, "name": name}
        if group:
            item["group"] = group
        if current is not None:
            item["resourceVersion"] = current["metadata"]["resourceVersion"]
        item["targetState"] = _encode(target)
        item["liveState"] = _encode(current)
        item["normalizedLiveState"] = _encode(current)
        item["predictedLiveState"] = _encode(predicted)
        if target is not None and (current is None or not covers(current, target)):
            item["modified"] = True
        items.append(item)
    return items


def resource_statuses(
    desired: Mapping[Key, Manifest], live: Mapping[Key, Manifest], health: str, message: str
) -> list[dict[str, Any]]:
    """`status.resources[]`: sync status per managed object, health for kinds that have a check."""
    rows: list[dict[str, Any]] = []
    for key in sorted(set(desired) | set(live)):
        group, kind, namespace, name = key
        target, current = desired.get(key), live.get(key)
        source = target if target is not None else current
        assert source is not None
        row: dict[str, Any] = {
            "kind": kind,
            "name": name,
            "namespace": namespace,
            "version": str(source.get("apiVersion", "v1")).rsplit("/", 1)[-1],
        }
        if group:
            row["group"] = group
        in_sync = target is not None and current is not None and covers(current, target)
        row["status"] = "Synced" if in_sync else "OutOfSync"
        if target is None:
            row["requiresPruning"] = True
        if kind in _HEALTH_KINDS:
            row["health"] = _object_health(kind, current, health, message)
        rows.append(row)
    return rows


def _object_health(kind: str, current: Manifest | None, health: str, message: str) -> dict[str, str]:
    if current is None:
        return {"status": "Missing"}
    if kind != "Deployment" or health == "Healthy":
        return {"status": "Healthy"}
    return {"status": health, "message": message} if message else {"status": health}


def images(live: Mapping[Key, Manifest]) -> list[str]:
    found: set[str] = set()
    for (_, kind, _, _), obj in live.items():
        if kind == "Deployment":
            for container in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                found.add(str(container.get("image", "")))
    return sorted(found)


def _ref(key: Key, version: str, uid: str) -> dict[str, Any]:
    group, kind, namespace, name = key
    ref: dict[str, Any] = {"kind": kind, "namespace": namespace, "name": name, "version": version, "uid": uid}
    if group:
        ref["group"] = group
    return ref


def resource_tree(
    desired: Mapping[Key, Manifest], live: Mapping[Key, Manifest], health: str, message: str
) -> dict[str, Any]:
    """ApplicationTree: managed objects plus each Deployment's ReplicaSet and Pods."""
    nodes: list[dict[str, Any]] = []
    for key in sorted(set(desired) | set(live)):
        current = live.get(key)
        source = current if current is not None else desired[key]
        version = str(source.get("apiVersion", "v1")).rsplit("/", 1)[-1]
        if current is None:  # not created yet: no uid, resourceVersion or createdAt
            node = _ref(key, version, "")
            del node["uid"]
            node["health"] = {"status": "Missing"}
            nodes.append(node)
            continue
        meta = current["metadata"]
        node = _ref(key, version, meta["uid"])
        node.update(resourceVersion=meta["resourceVersion"], createdAt=meta["creationTimestamp"])
        if key[1] in _HEALTH_KINDS:
            node["health"] = _object_health(key[1], current, health, message)
        nodes.append(node)
        if key[1] == "Deployment":
            nodes.extend(_pods(key, current, health, message))
    return {"nodes": nodes}


def _pods(key: Key, deployment: Manifest, health: str, message: str) -> list[dict[str, Any]]:
    _, _, namespace, name = key
    meta = deployment["metadata"]
    template = deployment.get("spec", {}).get("template", {})
    pod_hash = hashlib.sha1(json.dumps(template, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
    rs_key: Key = ("apps", "ReplicaSet", namespace, f"{name}-{pod_hash[:10]}")
    rs_uid = object_uid(*rs_key)
    replica_set = _ref(rs_key, "v1", rs_uid)
    replica_set.update(
        parentRefs=[_ref(key, "v1", meta["uid"])],
        info=[{"name": "Revision", "value": f"Rev:{meta['generation']}"}],
        health={"status": "Healthy"},
        resourceVersion=meta["resourceVersion"],
        createdAt=meta["creationTimestamp"],
    )
    pod_images = [str(c.get("image", "")) for c in template.get("spec", {}).get("containers", [])]
    pod_health = {"status": "Healthy"} if health in ("Healthy", "Progressing") else {"status": health}
    if message and "status" in pod_health and health not in ("Healthy", "Progressing"):
        pod_health["message"] = message
    reason = "Running" if pod_health["status"] == "Healthy" else "CrashLoopBackOff"
    ready = len(pod_images) if reason == "Running" else 0
    nodes = [replica_set]
    for index in range(int(deployment.get("spec", {}).get("replicas", 1))):
        suffix = hashlib.sha1(f"{rs_key[3]}/{index}".encode(), usedforsecurity=False).hexdigest()[:5]
        pod_key: Key = ("", "Pod", namespace, f"{rs_key[3]}-{suffix}")
        pod = _ref(pod_key, "v1", object_uid(*pod_key))
        pod.update(
            parentRefs=[_ref(rs_key, "v1", rs_uid)],
            info=[
                {"name": "Status Reason", "value": reason},
                {"name": "Node", "value": "sandbox-node-1"},
                {"name": "Containers", "value": f"{ready}/{len(pod_images)}"},
            ],
            images=pod_images,
            health=dict(pod_health),
            resourceVersion=meta["resourceVersion"],
            createdAt=meta["creationTimestamp"],
        )
        nodes.append(pod)
    return nodes
