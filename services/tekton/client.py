"""A client for Tekton's custom resources on one cluster, over the official `kubernetes` client.

Every `kubernetes` object stays in this module: callers get plain JSON dicts (or log text) back,
and every failure leaves as a product error from `services.tekton.errors`. Responses are read raw
(`_preload_content=False`) so objects arrive as the API server's JSON. The served version is
discovered once (GET /apis/tekton.dev): v1 when served, else v1beta1 (docs/tekton-api.md §1).

Request counts are deliberate: listing runs is ONE request per namespace (the benchmark counts
them), a run's TaskRuns are one list by the `tekton.dev/pipelineRun` label, a cancel is a GET
(to refuse a finished run, as tkn does) plus one merge patch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from services.kube import DEFAULT_TIMEOUT, Json, KubeApiClient, KubeCluster
from services.metrics import Metrics
from services.tekton.errors import TektonNotFound, TektonUnavailable, classify
from services.tekton.runs import GROUP, CancelMode, cancel_patch, ensure_cancellable

SUPPORTED_VERSIONS = ("v1", "v1beta1")  # best first


TektonCluster = KubeCluster  # what the client needs from config (the `tekton:` entries of settings)


class TektonClient(KubeApiClient):
    """One cluster. Thread-safe: urllib3 pools are, and the discovered version is locked."""

    def __init__(
        self,
        cluster: TektonCluster,
        *,
        api_client: Any = None,
        metrics: Metrics | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        connect_retries: int = 2,
    ) -> None:
        super().__init__(
            cluster, api_client=api_client, metrics=metrics, timeout=timeout, connect_retries=connect_retries
        )
        self._version: str | None = None

    # -- plumbing ----------------------------------------------------------------------------

    def _unavailable(self, text: str) -> TektonUnavailable:
        return TektonUnavailable(self.name, text)

    @contextmanager
    def _call(
        self, operation: str, *, verb: str, kind: str, name: str = "", namespace: str = ""
    ) -> Iterator[None]:
        timer = (
            self._metrics.backend_call(f"tekton:{self.name}", operation) if self._metrics else nullcontext()
        )
        with timer:
            try:
                yield
            except ApiException as exc:
                headers = exc.headers or {}
                raise classify(
                    int(exc.status or 0),
                    self._scrub(str(exc.body or "")),
                    cluster=self.name,
                    verb=verb,
                    kind=kind,
                    name=name,
                    namespace=namespace,
                    retry_after=headers.get("Retry-After") if hasattr(headers, "get") else None,
                ) from exc
            except urllib3.exceptions.HTTPError as exc:
                raise TektonUnavailable(self.name, self._transport_text(exc)) from exc
            except (OSError, ValueError) as exc:  # ssl errors, a body that is not JSON
                raise TektonUnavailable(self.name, f"{type(exc).__name__}: {self._scrub(str(exc))}") from exc

    # -- discovery ---------------------------------------------------------------------------

    def version(self) -> str:
        """The Tekton API version to use: v1 when served, else v1beta1 (one GET per client)."""
        with self._lock:
            if self._version is not None:
                return self._version
        api = self._client()
        with self._call("discovery", verb="discover", kind="tekton.dev"):
            method, url, headers, _, _ = api.param_serialize(
                "GET",
                f"/apis/{GROUP}",
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            response = api.call_api(method, url, header_params=headers, _request_timeout=self._timeout)
            response.read()
            if not 200 <= response.status < 300:
                raise ApiException(http_resp=response)
            group = self._json(response)
        served = [v.get("version") for v in group.get("versions") or [] if isinstance(v, dict)]
        chosen = next((v for v in SUPPORTED_VERSIONS if v in served), None)
        if chosen is None:
            raise TektonNotFound(
                f"Tekton cluster `{self.name}` serves {GROUP} without v1 or v1beta1 (served: {served}).",
                kind=GROUP,
            )
        with self._lock:
            self._version = chosen
        return chosen

    # -- custom objects ----------------------------------------------------------------------

    def _list(self, plural: str, namespace: str, selector: str | None) -> list[Json]:
        version = self.version()
        api = k8s.CustomObjectsApi(self._client())
        with self._call("list", verb="list", kind=plural, namespace=namespace):
            response = api.list_namespaced_custom_object(
                GROUP, version, namespace, plural, label_selector=selector, **self._opts()
            )
            items = self._json(response).get("items") or []
        # A list answer's items lack apiVersion/kind; add them so convert sees whole objects.
        kind = {"pipelineruns": "PipelineRun", "taskruns": "TaskRun"}.get(plural, "")
        return [{"apiVersion": f"{GROUP}/{version}", "kind": kind, **i} for i in items if isinstance(i, dict)]

    def _get(self, plural: str, namespace: str, name: str) -> Json:
        version = self.version()
        api = k8s.CustomObjectsApi(self._client())
        with self._call("get", verb="get", kind=plural, name=name, namespace=namespace):
            return self._json(
                api.get_namespaced_custom_object(GROUP, version, namespace, plural, name, **self._opts())
            )

    def list_pipelineruns(self, namespace: str, *, selector: str | None = None) -> list[Json]:
        """Every PipelineRun of one namespace matching `selector` (e.g. `tekton.dev/pipeline=web-ci`),
        in one request."""
        return self._list("pipelineruns", namespace, selector)

    def get_pipelinerun(self, namespace: str, name: str) -> Json:
        return self._get("pipelineruns", namespace, name)

    def list_taskruns(self, namespace: str, pipelinerun: str) -> list[Json]:
        """The child TaskRuns of one run (label `tekton.dev/pipelineRun=<name>`), one request."""
        return self._list("taskruns", namespace, f"tekton.dev/pipelineRun={pipelinerun}")

    def get_taskrun(self, namespace: str, name: str) -> Json:
        return self._get("taskruns", namespace, name)

    def get_pipeline(self, namespace: str, name: str) -> Json:
        return self._get("pipelines", namespace, name)

    def create_pipelinerun(self, namespace: str, body: Mapping[str, Any]) -> Json:
        """POST the body from `runs.pipelinerun_body`; returns the stored object (read its name)."""
        version = self.version()
        if body.get("apiVersion") != f"{GROUP}/{version}":
            raise ValueError(f"body is {body.get('apiVersion')!r} but the cluster serves {GROUP}/{version}")
        api = k8s.CustomObjectsApi(self._client())
        with self._call("create", verb="create", kind="pipelineruns", namespace=namespace):
            return self._json(
                api.create_namespaced_custom_object(
                    GROUP, version, namespace, "pipelineruns", dict(body), **self._opts()
                )
            )

    def cancel_pipelinerun(self, namespace: str, name: str, mode: CancelMode = "CancelledRunFinally") -> Json:
        """Refuse a finished run (UserError), else merge-patch `spec.status`; returns the patched run."""
        ensure_cancellable(self.get_pipelinerun(namespace, name))
        version = self.version()
        api = k8s.CustomObjectsApi(self._client())
        with self._call("cancel", verb="patch", kind="pipelineruns", name=name, namespace=namespace):
            return self._json(
                api.patch_namespaced_custom_object(
                    GROUP, version, namespace, "pipelineruns", name, cancel_patch(mode), **self._opts()
                )
            )

    def read_log(self, namespace: str, pod: str, container: str, *, tail_lines: int = 20) -> str:
        """The last `tail_lines` lines of one container's log (plain text). 404 when the pod is
        gone (a cancel or timeout deletes it), 400 when the container has not started."""
        api = k8s.CoreV1Api(self._client())
        with self._call("log", verb="get", kind="pods/log", name=pod, namespace=namespace):
            response: Any = api.read_namespaced_pod_log(
                pod, namespace, container=container, tail_lines=tail_lines, **self._opts()
            )
            data = response.data or b""
            return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)


__all__ = ["DEFAULT_TIMEOUT", "SUPPORTED_VERSIONS", "TektonClient", "TektonCluster"]
