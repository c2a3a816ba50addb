"""The fake Kubernetes API server's HTTP surface: bearer auth, routing, discovery, GET, LIST and WATCH.

Writes are in `k8s_write` (PATCH). Only GET (one, list, and `?watch=true` on a list path: streamed by
`k8s_watch`) and PATCH exist on resources, as the bot needs no more: other verbs answer 405
MethodNotAllowed. Leases (leader election, served with `leases=True`) also take POST and PUT: see
`k8s_leases`. Types a fake lists in `Cluster.creatable` (Tekton's) take POST (`k8s_create`);
`Cluster.subresources` serves extra GET subresources such as pods/log.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from sandbox import k8s_create, k8s_leases, k8s_watch, k8s_write
from sandbox import k8s_status as status
from sandbox.argocd_http import Reply, Request
from sandbox.k8s_cluster import EVENT, Cluster
from sandbox.k8s_registry import ResourceType
from sandbox.k8s_select import DEFAULT_FIELDS, EVENT_FIELDS, list_filter
from sandbox.k8s_status import ApiError

KUBE_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.2-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-06-17T00:00:00Z",
    "goVersion": "go1.24.4",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_CORE = re.compile(
    r"/api/v1(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?"
)
_GROUPED = re.compile(
    r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?"
)


@dataclass(frozen=True)
class Target:
    rtype: ResourceType
    version: str
    namespace: str | None  # None: all namespaces (a cluster-wide list)
    name: str | None
    subresource: str | None


def json_reply(payload: Any, code: int = 200) -> Reply:
    return Reply(code, json.dumps(payload).encode())


class KubeApi:
    def __init__(self, cluster: Cluster, *, leases: bool = False) -> None:
        self._cluster = cluster
        if leases:  # opt-in, so a fake that serves only Flux keeps its discovery documents as they were
            k8s_leases.register(cluster.registry)

    def __call__(self, request: Request) -> Reply:
        try:
            return self._handle(request)
        except ApiError as exc:
            return exc.reply()
        except Exception as exc:  # a fake must answer, never hang the client
            return status.internal(f"fake crashed: {type(exc).__name__}: {exc}").reply()

    def _handle(self, request: Request) -> Reply:
        if request.headers.get("authorization", "") != f"Bearer {self._cluster.token}":
            raise status.unauthorized()
        path = request.path.rstrip("/") or "/"
        discovery = self._discovery(path)
        if discovery is not None:
            if request.method != "GET":
                raise status.method_not_allowed()
            return json_reply(discovery)
        target = self._target(path)
        if (
            target.rtype is k8s_leases.LEASE
            and target.subresource is None
            and request.method in k8s_leases.WRITE_METHODS
        ):
            return k8s_leases.write(self._cluster, request, target.version, target.namespace, target.name)
        if target.name is None:
            creatable = target.rtype.plural in self._cluster.creatable and target.namespace is not None
            if request.method == "POST" and creatable:
                return k8s_create.create(
                    self._cluster, request, target.rtype, target.version, target.namespace or ""
                )
            if request.method != "GET":
                raise status.method_not_allowed()
            return self._list(request, target)
        if target.subresource not in (None, "status"):
            handler = self._cluster.subresources.get((target.rtype.plural, target.subresource))
            if handler is None:
                raise status.no_route()
            if request.method != "GET":
                raise status.method_not_allowed()
            return handler(request, target.namespace or "", target.name)
        if request.method == "GET":
            return self._get(target)
        if request.method == "PATCH" and target.subresource is None:
            return k8s_write.patch(
                self._cluster, request, target.rtype, target.version, target.namespace or "", target.name
            )
        raise status.method_not_allowed()

    # -- discovery -------------------------------------------------------------------------------------

    def _discovery(self, path: str) -> dict[str, Any] | None:
        registry = self._cluster.registry
        if path == "/version":
            return dict(KUBE_VERSION)
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/api/v1":
            return registry.resource_list("", "v1")
        if path == "/apis":
            return registry.api_group_list()
        parts = path.split("/")
        if len(parts) == 3 and parts[1] == "apis":
            if parts[2] not in registry.groups():
                raise status.no_route()
            return {"kind": "APIGroup", "apiVersion": "v1", **registry.api_group(parts[2])}
        if len(parts) == 4 and parts[1] == "apis":
            if parts[3] not in registry.group_versions(parts[2]):
                raise status.no_route()
            return registry.resource_list(parts[2], parts[3])
        return None

    def _target(self, path: str) -> Target:
        match = _CORE.fullmatch(path)
        group, version = "", "v1"
        if match is None:
            match = _GROUPED.fullmatch(path)
            if match is None:
                raise status.no_route()
            group, version = match.group("group"), match.group("version")
        rtype = self._cluster.registry.find(group, version, match.group("plural"))
        if rtype is None or (match.group("name") is not None and match.group("ns") is None):
            raise status.no_route()  # unknown or unserved resource, or a namespaced one without namespace
        return Target(rtype, version, match.group("ns"), match.group("name"), match.group("sub"))

    # -- reads -----------------------------------------------------------------------------------------

    def _authorize(self, verb: str, target: Target, name: str = "") -> None:
        rtype = target.rtype
        if not self._cluster.allowed(verb, rtype.plural, target.namespace):
            raise status.forbidden(rtype.group, rtype.plural, verb, namespace=target.namespace, name=name)

    def _get(self, target: Target) -> Reply:
        name = target.name or ""
        self._authorize("get", target, name)
        cluster = self._cluster
        with cluster.store.lock:
            entry = cluster.store.get(target.rtype.plural, target.namespace or "", name)
            if entry is None:
                raise status.not_found(target.rtype.group, target.rtype.plural, name)
            return Reply(200, cluster.encoded(entry, target.version))

    def _list(self, request: Request, target: Target) -> Reply:
        rtype = target.rtype
        watching = request.first("watch").lower() in ("true", "1")
        self._authorize("watch" if watching else "list", target)
        match = list_filter(request.query, EVENT_FIELDS if rtype is EVENT else DEFAULT_FIELDS)
        if watching:
            return k8s_watch.serve(self._cluster, request, rtype, target.version, target.namespace, match)
        limit = _int_param(request.first("limit", "0"), "limit")
        start = _continue_key(request.first("continue"))
        cluster = self._cluster
        with cluster.store.lock:
            resource_version = cluster.store.resource_version
            items: list[bytes] = []
            next_key: tuple[str, str] | None = None
            remaining = 0
            for entry in cluster.store.select(rtype.plural, target.namespace):
                _, namespace, name = entry.key
                if start is not None and (namespace, name) <= start:
                    continue
                if not match(entry.obj):
                    continue
                if limit and len(items) >= limit:
                    remaining += 1
                    continue
                items.append(cluster.encoded(entry, target.version))
                next_key = (namespace, name)
        metadata: dict[str, Any] = {"resourceVersion": str(resource_version)}
        if remaining:
            token = {"v": "meta.k8s.io/v1", "rv": resource_version, "start": list(next_key or ("", ""))}
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode()
            metadata["remainingItemCount"] = remaining
        head = json.dumps({"apiVersion": rtype.api_version(target.version), "kind": rtype.list_kind})[:-1]
        body = b"".join(
            [
                head.encode(),
                f', "metadata": {json.dumps(metadata)}, "items": ['.encode(),
                b",".join(items),
                b"]}",
            ]
        )
        return Reply(200, body)


def _int_param(text: str, name: str) -> int:
    try:
        value = int(text or "0")
    except ValueError as exc:
        raise status.bad_request(f'invalid value for {name}: "{text}"') from exc
    return max(value, 0)


def _continue_key(token: str) -> tuple[str, str] | None:
    if not token:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        namespace, name = decoded["start"]
        return str(namespace), str(name)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise status.bad_request(f"continue key is not valid: {exc}") from exc
