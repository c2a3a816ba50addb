"""A small client for the Flux custom resources of one cluster, over the official `kubernetes` client.

Every `kubernetes` object stays in this module: callers get plain JSON dicts back, and every
failure (ApiException, urllib3 errors, kubeconfig problems) leaves as a `FluxError` subclass.
Responses are read raw (`_preload_content=False`) so custom objects and events alike arrive as
the API server's JSON, not as generated model classes. Lists of custom objects are split into each
item's bytes and decoded item by item (`objects`): no text copy of the body, no `managedFields`
kept, and a caller that reads `list_raw` lazily holds one object's tree at a time.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

import msgspec
import urllib3
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from services.flux.errors import FluxConflict, FluxError, FluxNotFound, FluxUnavailable, classify
from services.flux.kinds import FluxKind
from services.kube import DEFAULT_TIMEOUT, Json, KubeApiClient
from services.metrics import Metrics
from services.settings.model import FluxCluster

FIELD_MANAGER = "flux-client-side-apply"  # Flux's own docs use it; see docs/flux-api.md §1


class _ListMeta(msgspec.Struct):
    resource_version: str = msgspec.field(default="", name="resourceVersion")


class _ListBody(msgspec.Struct):
    """A list answer: each item left as its bytes until it is read, everything else skipped."""

    items: builtins.list[msgspec.Raw] | None = None
    metadata: _ListMeta | None = None


_LIST_DECODER = msgspec.json.Decoder(_ListBody)


def _body(response: Any) -> bytes:
    # A raw urllib3 response (`_preload_content=False`): its whole body, as bytes.
    data = response.data
    return data if isinstance(data, bytes) else b""


def split_list(data: bytes) -> tuple[builtins.list[msgspec.Raw], str]:
    """(items, resourceVersion) of a list body, each item still its bytes (a view of the body, no
    copy). Raises ValueError (msgspec's errors are ValueErrors) for a body that is not a JSON list
    object."""
    body = _LIST_DECODER.decode(data or b"{}")
    return body.items or [], body.metadata.resource_version if body.metadata is not None else ""


def objects(items: builtins.list[msgspec.Raw]) -> Iterator[Json]:
    """Each item as its object, decoded when its turn comes and dropped from `items` then.

    `json.loads` would first copy the whole body into a str and build every item at once; here
    one item is decoded at a time and loses `metadata.managedFields` (server-side apply
    bookkeeping, often the largest part of an object, read by nothing in the bot). Items that
    are not objects are skipped."""
    items.reverse()  # popped from the end: the body's order
    while items:
        item = msgspec.json.decode(items.pop())
        if isinstance(item, dict):
            meta = item.get("metadata")
            if isinstance(meta, dict):
                meta.pop("managedFields", None)
            yield item


def decode_list(data: bytes) -> tuple[builtins.list[Json], str]:
    """(items, resourceVersion) of a list body, read straight from its bytes (`objects`)."""
    items, resource_version = split_list(data)
    return builtins.list(objects(items)), resource_version


class FluxClient(KubeApiClient):
    """One cluster. Thread-safe: urllib3 pools are, and the discovery cache is locked."""

    def __init__(
        self,
        cluster: FluxCluster,
        *,
        api_client: Any = None,
        metrics: Metrics | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        connect_retries: int = 2,
    ) -> None:
        super().__init__(
            cluster, api_client=api_client, metrics=metrics, timeout=timeout, connect_retries=connect_retries
        )
        self._metric_name = f"flux:{cluster.name}"
        self._served: dict[str, tuple[str, ...]] | None = None
        self._preferred: dict[str, str] = {}
        self._chosen: dict[str, str] = {}  # kind -> version that answered, after a fallback

    # -- plumbing ----------------------------------------------------------------------------

    def _unavailable(self, text: str) -> FluxUnavailable:
        return FluxUnavailable(text, operation="connect")

    @contextmanager
    def _call(
        self, operation: str, *, verb: str, kind: str = "", name: str = "", namespace: str | None = None
    ) -> Iterator[None]:
        timer = self._metrics.backend_call(self._metric_name, operation) if self._metrics else nullcontext()
        with timer:
            try:
                yield
            except ApiException as exc:
                headers = exc.headers or {}
                raise classify(
                    int(exc.status or 0),
                    self._scrub(str(exc.body or "")),
                    operation=operation,
                    verb=verb,
                    kind=kind,
                    name=name,
                    namespace=namespace,
                    retry_after=headers.get("Retry-After") if hasattr(headers, "get") else None,
                ) from exc
            except urllib3.exceptions.HTTPError as exc:
                raise FluxUnavailable(
                    self._transport_text(exc), operation=operation, verb=verb, kind=kind, namespace=namespace
                ) from exc
            except (OSError, ValueError) as exc:  # ssl errors, a body that is not JSON
                text = f"{type(exc).__name__}: {self._scrub(str(exc))}"
                raise FluxUnavailable(text, operation=operation, verb=verb, kind=kind) from exc

    # -- discovery ---------------------------------------------------------------------------

    def served(self) -> Mapping[str, tuple[str, ...]]:
        """Served versions of every API group (GET /apis once per client)."""
        with self._lock:
            if self._served is not None:
                return self._served
        api = self._client()
        with self._call("discovery", verb="discover"):
            raw = self._json(k8s.ApisApi(api).get_api_versions(**self._opts()))
        served: dict[str, tuple[str, ...]] = {}
        preferred: dict[str, str] = {}
        for group in raw.get("groups") or []:
            if not isinstance(group, dict) or not isinstance(group.get("name"), str):
                continue
            versions = tuple(
                v["version"] for v in group.get("versions") or [] if isinstance(v, dict) and "version" in v
            )
            served[group["name"]] = versions
            pref = group.get("preferredVersion")
            if isinstance(pref, dict) and isinstance(pref.get("version"), str):
                preferred[group["name"]] = pref["version"]
        with self._lock:
            self._served, self._preferred = served, preferred
        return served

    def candidates(self, kind: FluxKind) -> list[str]:
        """Versions to try for `kind`, best first; empty when its group is not served at all."""
        served = self.served().get(kind.group, ())
        with self._lock:
            chosen = self._chosen.get(kind.kind)
            preferred = self._preferred.get(kind.group)
        known = [v for v in kind.versions if v in served]
        if not known and preferred:
            known = [preferred]  # a newer Flux than this bot knows: its preferred version
        if chosen in known:
            known.remove(chosen)
            known.insert(0, chosen)
        return known

    def version_of(self, kind: FluxKind) -> str | None:
        found = self.candidates(kind)
        return found[0] if found else None

    def _remember(self, kind: FluxKind, version: str) -> None:
        with self._lock:
            self._chosen[kind.kind] = version

    # -- custom objects ----------------------------------------------------------------------

    def list(
        self, kind: FluxKind, *, namespace: str | None = None, selector: str | None = None
    ) -> list[Json]:
        """Every object of `kind` in one request (cluster-wide unless `namespace`).

        Empty when the kind is not installed: a group not served, or 404 on every served version
        (an OCIRepository that only exists as v1beta2 in a source group serving v1).
        """
        return builtins.list(objects(self.list_raw(kind, namespace=namespace, selector=selector)))

    def list_raw(
        self, kind: FluxKind, *, namespace: str | None = None, selector: str | None = None
    ) -> builtins.list[msgspec.Raw]:
        """`list`'s request, made now; each object still its bytes, to be read with `objects` one
        at a time (a large list's objects never all exist as dicts at once)."""
        api = k8s.CustomObjectsApi(self._client())
        for version in self.candidates(kind):
            try:
                with self._call("list", verb="list", kind=kind.kind, namespace=namespace):
                    if namespace:
                        response = api.list_namespaced_custom_object(
                            kind.group,
                            version,
                            namespace,
                            kind.plural,
                            label_selector=selector,
                            **self._opts(),
                        )
                    else:
                        response = api.list_cluster_custom_object(
                            kind.group,
                            version,
                            kind.plural,
                            label_selector=selector,
                            **self._opts(),
                        )
                    items, _ = split_list(_body(response))
            except FluxNotFound:
                continue
            self._remember(kind, version)
            return items
        return []

    def list_with_version(self, kind: FluxKind) -> tuple[builtins.list[Json], str]:
        """Every object of `kind` cluster-wide and the list's resourceVersion (where a watch starts)."""
        version = self.version_of(kind) or (self.candidates(kind) or [""])[0]
        if not version:
            return [], ""
        api = k8s.CustomObjectsApi(self._client())
        with self._call("list", verb="list", kind=kind.kind):
            response = api.list_cluster_custom_object(kind.group, version, kind.plural, **self._opts())
            items, resource_version = decode_list(_body(response))
        self._remember(kind, version)
        return items, resource_version

    def watch(self, kind: FluxKind, resource_version: str, *, timeout: int) -> Iterator[tuple[str, Json]]:
        """(type, object) for each change of `kind` after `resource_version`, with bookmarks, until
        the server ends the watch (`timeout` seconds). A resourceVersion too old for the server's
        window raises FluxError with status 410: list again."""
        version = self.version_of(kind) or (self.candidates(kind) or [""])[0]
        api = k8s.CustomObjectsApi(self._client())
        watcher = k8s_watch.Watch()  # type: ignore[no-untyped-call]
        with self._call("watch", verb="watch", kind=kind.kind):
            stream = watcher.stream(  # type: ignore[no-untyped-call]
                api.list_cluster_custom_object, kind.group, version, kind.plural,
                resource_version=resource_version, allow_watch_bookmarks=True, timeout_seconds=timeout,
                _request_timeout=(self._timeout[0], timeout + 30),
            )  # fmt: skip
            try:
                for event in stream:
                    obj = event.get("raw_object") or event.get("object")
                    if isinstance(obj, dict):
                        yield str(event.get("type")), obj
            finally:
                watcher.stop()  # type: ignore[no-untyped-call]

    def get(self, kind: FluxKind, namespace: str, name: str) -> Json:
        version = self.version_of(kind)
        if version is None:
            raise FluxNotFound(
                f"the cluster does not serve {kind.group} (is Flux installed?)",
                operation="get",
                kind=kind.kind,
                name=name,
                namespace=namespace,
                verb="get",
            )
        api = k8s.CustomObjectsApi(self._client())
        with self._call("get", verb="get", kind=kind.kind, name=name, namespace=namespace):
            return self._json(
                api.get_namespaced_custom_object(
                    kind.group, version, namespace, kind.plural, name, **self._opts()
                )
            )

    def patch(self, kind: FluxKind, namespace: str, name: str, body: Mapping[str, Any]) -> Json:
        """A JSON merge patch (a dict body is sent as `application/merge-patch+json`), written
        under Flux's field manager; retried once on a 409 conflict, like the CLI."""
        version = self.version_of(kind)
        if version is None:
            raise FluxNotFound(
                f"the cluster does not serve {kind.group} (is Flux installed?)",
                operation="patch",
                kind=kind.kind,
                name=name,
                namespace=namespace,
                verb="patch",
            )
        api = k8s.CustomObjectsApi(self._client())
        for attempt in (1, 2):
            try:
                with self._call("patch", verb="patch", kind=kind.kind, name=name, namespace=namespace):
                    return self._json(
                        api.patch_namespaced_custom_object(
                            kind.group,
                            version,
                            namespace,
                            kind.plural,
                            name,
                            dict(body),
                            field_manager=FIELD_MANAGER,
                            **self._opts(),
                        )
                    )
            except FluxConflict:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def events(self, kind: str, namespace: str, name: str) -> builtins.list[Json]:
        """Core events whose involvedObject is this object (one namespaced list)."""
        api = k8s.CoreV1Api(self._client())
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        with self._call("events", verb="list", kind="events", namespace=namespace):
            response = api.list_namespaced_event(namespace, field_selector=selector, **self._opts())
            items = self._json(response).get("items") or []
        return [i for i in items if isinstance(i, dict)]


__all__ = [
    "DEFAULT_TIMEOUT",
    "FIELD_MANAGER",
    "FluxClient",
    "FluxError",
    "Json",
    "decode_list",
    "objects",
    "split_list",
]
