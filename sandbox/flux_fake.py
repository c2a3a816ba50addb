"""A fake Kubernetes API server with fake Flux controllers on 127.0.0.1, for the official `kubernetes` client.

Typical use: `with FakeKubernetes() as kube:` then `kube.write_kubeconfig(tmp / "kubeconfig")`, add a
GitRepository over a real bare repository (see `sandbox.flux_git.make_deploy_repo`), Kustomizations and
HelmReleases, and point the client at the kubeconfig. `fail_next_reconcile` / `stall` / `forbid` /
`fetch_sources` change the world behind the API; `requests()` shows what the client sent;
`set_latency` / `go_down` / `come_up` simulate a bad network.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from sandbox.argocd_faults import Faults, RecordedRequest
from sandbox.argocd_http import RebindableServer
from sandbox.flux_controller import Controller
from sandbox.flux_faults import default_message, kind_of
from sandbox.flux_fixtures import FluxObjects
from sandbox.flux_kinds import PLURALS, build_registry, convert
from sandbox.flux_state import Failure, World, generation_of
from sandbox.k8s_api import KubeApi
from sandbox.k8s_cluster import Cluster
from sandbox.k8s_status import status_reply
from sandbox.k8s_store import Store

__all__ = ["DEFAULT_TOKEN", "FakeKubernetes", "RecordedRequest"]

DEFAULT_TOKEN = "sandbox-k8s-token"
_REASONS = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}  # fmt: skip


class FakeKubernetes:
    """The Kubernetes API for Flux's kinds (discovery, GET, LIST, PATCH, Events) and the controllers."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        tick: float = 0.05,
        reconcile_seconds: float = 0.2,
        served: Mapping[str, Sequence[str]] | None = None,
        leases: bool = False,
    ) -> None:
        """`leases=True` also serves coordination.k8s.io/v1 Leases (leader election, `k8s_leases`)."""
        self._store = Store()
        self._cluster = Cluster(build_registry(served), self._store, token=token, convert=convert)
        self._world = World(self._cluster, reconcile_seconds=reconcile_seconds)
        self._controller = Controller(self._world, tick=tick)
        self._objects = FluxObjects(self._world, self._controller)
        self._faults = Faults(KubeApi(self._cluster, leases=leases))
        self._server = RebindableServer(self._faults)

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> FakeKubernetes:
        self._server.up()
        self._controller.start()
        return self

    def stop(self) -> None:
        self._cluster.cut_watches()  # a watch without bookmarks would only notice at its next write
        self._controller.stop()
        self._server.down()

    def __enter__(self) -> FakeKubernetes:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def token(self) -> str:
        return self._cluster.token

    @property
    def cluster(self) -> Cluster:
        """The API server's state, for fakes of other controllers on this server (`sandbox.tekton_fake`)."""
        return self._cluster

    def write_kubeconfig(
        self, path: Path, *, context: str = "sandbox", namespace: str = "flux-system"
    ) -> Path:
        """A kubeconfig for this server (token auth, plain HTTP) that `new_client_from_config` loads."""
        q = json.dumps  # JSON strings are valid YAML double-quoted scalars
        text = "\n".join(
            [
                "apiVersion: v1",
                "kind: Config",
                "clusters:",
                f"- name: {q(context)}",
                "  cluster:",
                f"    server: {q(self.base_url)}",
                "users:",
                f"- name: {q(context + '-user')}",
                "  user:",
                f"    token: {q(self._cluster.token)}",
                "contexts:",
                f"- name: {q(context)}",
                "  context:",
                f"    cluster: {q(context)}",
                f"    user: {q(context + '-user')}",
                f"    namespace: {q(namespace)}",
                f"current-context: {q(context)}",
                "preferences: {}",
                "",
            ]
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    # -- Flux objects -------------------------------------------------------------------------------------

    def add_git_repository(
        self,
        name: str,
        *,
        namespace: str = "flux-system",
        url: str,
        branch: str = "main",
        interval: str = "1m",
    ) -> None:
        self._objects.git_repository(name, namespace, str(url), branch, interval)

    def add_helm_repository(
        self,
        name: str,
        *,
        namespace: str = "flux-system",
        url: str = "https://charts.example.com",
        type: str | None = None,
    ) -> None:
        self._objects.helm_repository(name, namespace, url, type)

    def add_oci_repository(
        self,
        name: str,
        *,
        namespace: str = "flux-system",
        url: str = "oci://ghcr.io/example/manifests",
        tag: str = "latest",
    ) -> None:
        self._objects.oci_repository(name, namespace, url, tag)

    def add_kustomization(
        self,
        name: str,
        *,
        namespace: str = "flux-system",
        path: str,
        source: str,
        source_namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
        suspend: bool = False,
        interval: str = "10m",
        source_kind: str = "GitRepository",
        target_namespace: str | None = None,
    ) -> None:
        self._objects.kustomization(
            name, namespace, path=path, source=source, source_kind=source_kind,
            source_namespace=source_namespace, labels=labels, suspend=suspend, interval=interval,
            target_namespace=target_namespace,
        )  # fmt: skip

    def add_helm_release(
        self,
        name: str,
        *,
        namespace: str = "flux-system",
        chart: str = "podinfo",
        version: str = "6.5.0",
        source: str = "podinfo",
        source_namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
        drift_detection: str | None = None,
        suspend: bool = False,
    ) -> None:
        self._objects.helm_release(
            name, namespace, chart=chart, version=version, source=source, source_namespace=source_namespace,
            labels=labels, drift_detection=drift_detection, suspend=suspend,
        )  # fmt: skip

    def bulk_add(self, *, kustomizations: int, helm_releases: int, namespaces: int) -> None:
        self._objects.bulk(kustomizations=kustomizations, helm_releases=helm_releases, namespaces=namespaces)

    def fetch_sources(self) -> None:
        """Every GitRepository re-resolves its ref now, as on its interval; nothing else follows."""
        with self._store.lock:
            keys = [
                e.key
                for e in self._store.select("gitrepositories")
                if not (e.obj.get("spec") or {}).get("suspend")
            ]
        for key in keys:
            self._controller.reconcile_now(key)

    # -- injected trouble ---------------------------------------------------------------------------------

    def fail_next_reconcile(
        self,
        kind: str,
        name: str,
        *,
        namespace: str = "flux-system",
        reason: str = "BuildFailed",
        message: str | None = None,
    ) -> None:
        """The next run of that object fails with `reason` (default message: a realistic one for it)."""
        kind = kind_of(kind)
        with self._store.lock:
            entry = self._world.require(kind, namespace, name)
            text = message if message is not None else default_message(kind, reason, entry)
            self._world.memo(entry.key).failure = Failure(reason, text)

    def stall(
        self,
        kind: str,
        name: str,
        *,
        namespace: str = "flux-system",
        reason: str = "InvalidCELExpression",
        message: str | None = None,
    ) -> None:
        """Stalled=True now and after every run, until the object's spec changes."""
        kind = kind_of(kind)
        with self._store.lock:
            entry = self._world.require(kind, namespace, name)
            memo = self._world.memo(entry.key)
            memo.stall = Failure(
                reason, message if message is not None else default_message(kind, reason, entry)
            )
            memo.stall_generation = generation_of(entry.obj)
            outcome = self._world.stalled(entry, None)
            if outcome is not None:
                self._world.commit(entry, outcome)

    def drift(
        self, kind: str, name: str, *, namespace: str = "flux-system", objects: Sequence[str] = ()
    ) -> None:
        """Someone changed objects in-cluster: the next run reports them (`Deployment/apps/x configured`)."""
        kind = kind_of(kind)
        with self._store.lock:
            entry = self._world.require(kind, namespace, name)
            spec = entry.obj.get("spec") or {}
            target = spec.get("targetNamespace") or namespace
            self._world.memo(entry.key).drifted = list(objects) or [f"Deployment/{target}/{name}"]

    def forbid(self, verb: str, kind_plural: str, *, namespace: str | None = None) -> None:
        """RBAC: `verb` on `kind_plural` answers 403 (in `namespace`, and at the cluster scope)."""
        self._cluster.forbid(verb, kind_plural, namespace)

    def allow(self, verb: str, kind_plural: str, *, namespace: str | None = None) -> None:
        self._cluster.allow(verb, kind_plural, namespace)

    # -- inspection ---------------------------------------------------------------------------------------

    def object(self, kind_plural: str, name: str, *, namespace: str = "flux-system") -> dict[str, Any]:
        """A deep copy of the object as the preferred API version serves it."""
        with self._store.lock:
            plural = PLURALS.get(kind_of(kind_plural), kind_plural) if kind_plural != "events" else "events"
            entry = self._store.get(plural, namespace, name)
            if entry is None:
                raise KeyError(f"no {kind_plural} {namespace}/{name}")
            return self._cluster.served(entry)

    def events(self, *, namespace: str = "flux-system", name: str | None = None) -> list[dict[str, Any]]:
        """The Events recorded in `namespace` (about object `name` only, when given), oldest first."""
        with self._store.lock:
            found = [self._cluster.served(e) for e in self._store.select("events", namespace)]
        found = [e for e in found if name is None or e["involvedObject"]["name"] == name]
        return sorted(found, key=lambda e: int(e["metadata"]["resourceVersion"]))

    def requests(self, path_prefix: str | None = None) -> list[RecordedRequest]:
        return self._faults.requests(path_prefix)

    def clear_requests(self) -> None:
        self._faults.clear_requests()

    def fail_next(
        self,
        *,
        path: str = "",
        method: str | None = None,
        status: int = 500,
        times: int = 1,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        """The next `times` requests under `path` (and `method`) get a `kind: Status` failure instead."""
        reason = reason or _REASONS.get(status, "InternalError")
        text = message or {
            409: "the object has been modified; please apply your changes to the latest version and try again"
        }.get(status, f"injected {reason} from the sandbox")
        body = status_reply(status, reason, text).body.decode()
        self._faults.fail_next(
            path=path, method=method, status=status, times=times, body=body, content_type="application/json"
        )

    def set_latency(self, seconds: float) -> None:
        """Every response waits this long first."""
        self._faults.set_latency(seconds)

    def go_down(self) -> None:
        """Close the listening socket and open connections: clients get connection refused."""
        self._cluster.cut_watches()
        self._server.down()

    def cut_watches(self) -> None:
        """End every open watch now (a proxy dropping the connection); clients resume from their rv."""
        self._cluster.cut_watches()

    def compact(self) -> None:
        """Forget the change history: the next watch from an older resourceVersion gets 410 Expired."""
        self._cluster.compact()

    def open_watches(self) -> int:
        return self._cluster.open_watches()

    def come_up(self) -> None:
        """Listen again on the same port; objects and controllers carry on."""
        self._server.up()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until no reconcile is queued or in flight."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._store.lock:
                if not self._world.running and not self._store.dirty:
                    return
            time.sleep(0.01)
        raise TimeoutError("the fake Flux controllers are still busy")
