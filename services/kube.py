"""What every client of a Kubernetes API server (Flux, Tekton) does the same way: load the
kubeconfig or in-cluster config, retry only refused connections, keep the token out of error
texts, and read a `kind: Status` answer. Kernel: it knows no feature.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Protocol

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from services.errors import BackendUnavailable, bound
from services.metrics import Metrics

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
Json = dict[str, Any]


class KubeCluster(Protocol):
    """A cluster entry of the config (`flux[]`, `tekton[]`): a kubeconfig + context, or in-cluster."""

    @property
    def name(self) -> str: ...
    @property
    def kubeconfig(self) -> Path | None: ...
    @property
    def context(self) -> str | None: ...
    @property
    def in_cluster(self) -> bool: ...


def connect_retries(count: int) -> urllib3.Retry:
    # Only a refused or failed connection is retried (the request never arrived); a slow answer
    # is not, so a hung API server costs one read timeout, not several.
    return urllib3.Retry(
        total=count, connect=count, read=0, status=0, other=0, redirect=0, backoff_factor=0.1
    )


def load_api_client(cluster: KubeCluster, retries: int) -> Any:
    """A `kubernetes.client.ApiClient` for the cluster; raises ConfigException, OSError,
    ValueError or TypeError when its config cannot be loaded."""
    configuration = k8s.Configuration()
    configuration.retries = connect_retries(retries)
    if cluster.in_cluster:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return k8s.ApiClient(configuration)
    return k8s_config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig),
        context=cluster.context,
        persist_config=False,  # never write refreshed credentials back into the user's file
        client_configuration=configuration,
    )


def scrub_credentials(text: str, api: Any) -> str:
    """`text` without the API client's bearer token (an exception may quote a header)."""
    keys = getattr(getattr(api, "configuration", None), "api_key", None) or {}
    for value in keys.values():
        if not isinstance(value, str):
            continue
        for secret in (value, value.removeprefix("Bearer ").strip()):
            if len(secret) >= 8:
                text = text.replace(secret, "[token]")
    return text


def parse_status(body: str | None) -> tuple[str, str]:
    """(message, reason) of a `kind: Status` body; ("", "") when it is not one."""
    try:
        data = json.loads(body or "")
    except ValueError:
        return "", ""
    if not isinstance(data, dict) or data.get("kind") != "Status":
        return "", ""
    message, reason = data.get("message"), data.get("reason")
    return (message if isinstance(message, str) else "", reason if isinstance(reason, str) else "")


def retry_after(value: str | None) -> float | None:
    """A `Retry-After` header in seconds; None when absent or not a number."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class KubeApiClient:
    """What a client of one cluster's API server holds: the ApiClient (built on first use), the
    metrics, timeouts and retries, and the texts its failures give. Thread-safe: urllib3 pools
    are, and what subclasses cache goes under `_lock`."""

    def __init__(
        self,
        cluster: KubeCluster,
        *,
        api_client: Any = None,
        metrics: Metrics | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        connect_retries: int = 2,
    ) -> None:
        """`api_client` (a `kubernetes.client.ApiClient`) is for tests; by default it is built on
        first use from the cluster's kubeconfig + context, or the in-cluster config."""
        self.cluster = cluster
        self.name = cluster.name
        self._api = api_client
        self._metrics = metrics
        self._timeout = timeout
        self._retries = connect_retries
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def close(self) -> None:
        with self._lock:
            api, self._api = self._api, None
        if api is not None:
            api.close()

    def _unavailable(self, text: str) -> Exception:
        """The system's own "cannot be reached" error for `text` (subclasses name their system)."""
        return BackendUnavailable(self.name, text)

    def _client(self) -> Any:
        with self._lock:
            if self._api is None:
                try:
                    self._api = load_api_client(self.cluster, self._retries)
                except (ConfigException, OSError, ValueError, TypeError) as exc:
                    source = "in-cluster config" if self.cluster.in_cluster else "kubeconfig"
                    text = f"cannot load the {source}: {type(exc).__name__}: {self._scrub(str(exc))}"
                    raise self._unavailable(text) from exc
            return self._api

    def _scrub(self, text: str) -> str:
        return scrub_credentials(text, self._api)

    def _transport_text(self, exc: urllib3.exceptions.HTTPError) -> str:
        cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
        # NewConnectionError subclasses ConnectTimeoutError in urllib3 2, so it is checked first.
        if isinstance(cause, urllib3.exceptions.NewConnectionError):
            what = "cannot be reached"
        elif isinstance(cause, urllib3.exceptions.ConnectTimeoutError):
            what = "did not accept a connection in time"
        elif isinstance(cause, urllib3.exceptions.TimeoutError):
            what = "did not answer in time"
        else:
            what = "failed to answer"
        detail = bound(self._scrub(str(cause)), 160)
        return f"the Kubernetes API {what} ({type(cause).__name__}: {detail})"

    @staticmethod
    def _json(response: Any) -> Json:
        data = json.loads(response.data or b"{}")
        if not isinstance(data, dict):
            raise ValueError("the API answered with JSON that is not an object")
        return data

    def _opts(self) -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": self._timeout}
