"""A typed HTTP client for the Argo CD REST API (docs/argocd-api.md is the contract).

One method per endpoint the bot uses; raw JSON comes back as the TypedDicts in `payloads`.
Every failure, httpx's included, leaves this module as an `ArgoCDError` subclass.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Literal, TypeVar, cast
from urllib.parse import quote

import httpx

from services.argocd.errors import classify
from services.argocd.payloads import (
    ApplicationListPayload,
    ApplicationPayload,
    ApplicationTreePayload,
    ManagedResourcesPayload,
    PatchRequestBody,
    RevisionMetadataPayload,
    RollbackRequestBody,
    SyncRequestBody,
    VersionPayload,
)
from services.argocd.transport import SLOW_READ_SECONDS, USER_AGENT, Params, Transport
from services.metrics import Metrics
from services.settings.model import ArgoCDInstance

# The whitelist the UI uses (docs §4.1): everything a list or status summary needs, nothing more.
# Only when asked (`sync --selector` reads sync waves): Argo CD returns all annotations or none,
# and kubectl's last-applied-configuration alone can be the size of the whole Application.
ANNOTATION_FIELD = "items.metadata.annotations"
DEFAULT_LIST_FIELDS: tuple[str, ...] = (
    "items.metadata.name",
    "items.metadata.namespace",
    "items.metadata.labels",
    "items.spec.project",
    "items.spec.destination",
    "items.spec.source",
    "items.spec.syncPolicy",
    "items.status.sync.status",
    "items.status.sync.revision",
    "items.status.health",
    "items.status.operationState.phase",
    "items.status.operationState.startedAt",
    "items.status.operationState.finishedAt",
    "items.status.summary",
)
# Added for drift scans only: this whitelisted key returns the last operation's syncResult (an
# upstream quirk), i.e. the revision that was applied — but with every resource, so it is heavy.
DEPLOYED_FIELDS: tuple[str, ...] = ("items.status.operationState.operation.sync",)
NAME_FIELDS: tuple[str, ...] = ("items.metadata.name", "items.metadata.namespace", "items.spec.project")

Refresh = Literal["normal", "hard"]
T = TypeVar("T")


def _scope(project: str | None, app_namespace: str | None) -> Params:
    params: Params = []
    if app_namespace:
        params.append(("appNamespace", app_namespace))
    if project:
        params.append(("project", project))
    return params


def _list_params(
    projects: Sequence[str],
    selector: str | None,
    fields: Sequence[str] | None,
    name: str | None,
    app_namespace: str | None,
) -> Params:
    params: Params = [("projects", p) for p in projects]
    if selector:
        params.append(("selector", selector))
    if name:
        params.append(("name", name))
    if app_namespace:
        params.append(("appNamespace", app_namespace))
    if fields is not None:
        params.append(("fields", ",".join(fields)))
    return params


def _seg(value: str) -> str:
    return quote(value, safe="")


class ArgoCDClient:
    """One Argo CD instance. Thread-safe as far as httpx.Client is; holds no per-call state."""

    def __init__(
        self,
        instance: ArgoCDInstance,
        token: str,
        *,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        metrics: Metrics | None = None,
        max_tries: int = 3,
        backoff: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        slow_read_seconds: float = SLOW_READ_SECONDS,
    ) -> None:
        """`http` or `transport` are for tests and special setups; by default the client builds
        its own `httpx.Client` with the instance's TLS settings and timeouts."""
        self.instance = instance
        self._t = Transport(
            instance,
            token,
            http=http,
            transport=transport,
            metrics=metrics,
            max_tries=max_tries,
            backoff=backoff,
            sleep=sleep,
            slow_read_seconds=slow_read_seconds,
        )
        self._call = self._t.call

    def close(self) -> None:
        self._t.close()

    def __enter__(self) -> ArgoCDClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ArgoCDClient({self.instance.name!r}, {self._t.base!r})"

    # -- endpoints ---------------------------------------------------------------------------

    def version(self) -> VersionPayload:
        return cast(VersionPayload, self._call("version", "GET", "/api/version"))

    def list_apps(
        self,
        *,
        projects: Sequence[str] = (),
        selector: str | None = None,
        fields: Sequence[str] | None = DEFAULT_LIST_FIELDS,
        name: str | None = None,
        app_namespace: str | None = None,
    ) -> ApplicationListPayload:
        """All visible apps in one response (the API has no paging). `fields=None`: untrimmed."""
        params = _list_params(projects, selector, fields, name, app_namespace)
        return cast(ApplicationListPayload, self._call("list", "GET", "/api/v1/applications", params))

    def list_apps_as(
        self,
        decode: Callable[[bytes], T],
        *,
        projects: Sequence[str] = (),
        selector: str | None = None,
        fields: Sequence[str] | None = DEFAULT_LIST_FIELDS,
    ) -> T:
        """The same request as `list_apps`, its body read by `decode` straight from the bytes
        (lean rows of a large list: see `rows.decode_rows`)."""
        params = _list_params(projects, selector, fields, None, None)
        return self._t.get("list", "/api/v1/applications", params, decode)

    @contextmanager
    def stream_apps(
        self, *, fields: Sequence[str] | None = None, resource_version: str | None = None, idle: float = 60.0
    ) -> Iterator[Iterator[dict[str, object]]]:
        """`GET /api/v1/stream/applications`: each event's `result` ({type, application}) as it
        comes; an `error` object in the stream raises. The stream ends only when the server or a
        proxy drops it (the caller reconnects)."""
        params: Params = []
        if resource_version:
            params.append(("resourceVersion", resource_version))
        if fields is not None:
            params.append(("fields", ",".join(fields)))
        with self._t.stream("stream", "/api/v1/stream/applications", params, idle=idle) as lines:
            yield _events(lines)

    def get_app(
        self,
        name: str,
        *,
        project: str | None = None,
        app_namespace: str | None = None,
        refresh: Refresh | None = None,
    ) -> ApplicationPayload:
        """One app, fresh from Kubernetes. With `refresh` it blocks until the controller reconciled."""
        params = _scope(project, app_namespace)
        if refresh is not None:
            params.append(("refresh", refresh))
        path = f"/api/v1/applications/{_seg(name)}"
        raw = self._call("refresh" if refresh else "get", "GET", path, params, slow=refresh is not None)
        return cast(ApplicationPayload, raw)

    def sync(self, name: str, body: SyncRequestBody) -> ApplicationPayload:
        """Queue a sync; the returned app carries `.operation`. Success only means "queued"."""
        path = f"/api/v1/applications/{_seg(name)}/sync"
        return cast(ApplicationPayload, self._call("sync", "POST", path, body={**body}))

    def rollback(
        self,
        name: str,
        id: int,
        *,
        prune: bool = False,
        project: str | None = None,
        app_namespace: str | None = None,
    ) -> ApplicationPayload:
        body: RollbackRequestBody = {"name": name, "id": int(id), "prune": prune}
        if app_namespace:
            body["appNamespace"] = app_namespace
        if project:
            body["project"] = project
        path = f"/api/v1/applications/{_seg(name)}/rollback"
        return cast(ApplicationPayload, self._call("rollback", "POST", path, body={**body}))

    def terminate(self, name: str, *, project: str | None = None, app_namespace: str | None = None) -> None:
        path = f"/api/v1/applications/{_seg(name)}/operation"
        self._call("terminate", "DELETE", path, _scope(project, app_namespace))

    def patch_app(
        self,
        name: str,
        merge_patch: Mapping[str, object],
        *,
        project: str | None = None,
        app_namespace: str | None = None,
    ) -> ApplicationPayload:
        body: PatchRequestBody = {"name": name, "patch": json.dumps(merge_patch), "patchType": "merge"}
        if app_namespace:
            body["appNamespace"] = app_namespace
        if project:
            body["project"] = project
        path = f"/api/v1/applications/{_seg(name)}"
        return cast(ApplicationPayload, self._call("patch", "PATCH", path, body={**body}))

    def managed_resources(
        self, name: str, *, project: str | None = None, app_namespace: str | None = None
    ) -> ManagedResourcesPayload:
        path = f"/api/v1/applications/{_seg(name)}/managed-resources"
        raw = self._call("managed_resources", "GET", path, _scope(project, app_namespace), slow=True)
        return cast(ManagedResourcesPayload, raw)

    def resource_tree(
        self, name: str, *, project: str | None = None, app_namespace: str | None = None
    ) -> ApplicationTreePayload:
        path = f"/api/v1/applications/{_seg(name)}/resource-tree"
        raw = self._call("resource_tree", "GET", path, _scope(project, app_namespace))
        return cast(ApplicationTreePayload, raw)

    def revision_metadata(
        self, name: str, revision: str, *, project: str | None = None, app_namespace: str | None = None
    ) -> RevisionMetadataPayload:
        path = f"/api/v1/applications/{_seg(name)}/revisions/{_seg(revision)}/metadata"
        raw = self._call("revision_metadata", "GET", path, _scope(project, app_namespace))
        return cast(RevisionMetadataPayload, raw)


__all__ = ["ANNOTATION_FIELD", "DEFAULT_LIST_FIELDS", "NAME_FIELDS", "USER_AGENT", "ArgoCDClient", "Refresh"]


def _events(lines: Iterator[str]) -> Iterator[dict[str, object]]:
    """Server-sent events (`data: {...}`, keep-alive `:` comments) or newline-delimited JSON."""
    for line in lines:
        text = line.strip()
        if not text or text.startswith(":"):
            continue
        if text.startswith("data:"):
            text = text[5:].strip()
        try:
            event = json.loads(text)
        except ValueError:
            continue  # a partial line from a proxy: the next event carries the state again
        if not isinstance(event, dict):
            continue
        error = event.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, dict) else error
            code = error.get("http_code") if isinstance(error, dict) else None
            raise classify(int(code) if isinstance(code, int) else 500, json.dumps({"message": message}),
                           operation="stream")  # fmt: skip
        result = event.get("result")
        if isinstance(result, dict):
            yield result
