"""Helpers shared by the fake Kubernetes / Flux contract tests (plain functions, no fixtures)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from sandbox.flux_fake import FakeKubernetes
from sandbox.flux_git import make_deploy_repo

Target = tuple[str, str, str]  # group, version, plural
Body = dict[str, Any] | list[dict[str, Any]]
KS = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
HR = ("helm.toolkit.fluxcd.io", "v2", "helmreleases")
GIT = ("source.toolkit.fluxcd.io", "v1", "gitrepositories")
NS = "flux-system"
FIELD_MANAGER = "flux-client-side-apply"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


def deployment(name: str, namespace: str, replicas: int) -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
        f"spec:\n  replicas: {replicas}\n"
    )


SERVICE = (
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo\n  namespace: apps\n"
    "spec:\n  ports: [{port: 80}]\n"
)
FILES = {
    "apps/podinfo/deployment.yaml": deployment("podinfo", "apps", 1),
    "apps/podinfo/service.yaml": SERVICE,
    "apps/podinfo/kustomization.yaml": "resources: [deployment.yaml, service.yaml]\n",
    "infra/namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n",
}


def start_kube(tmp_path: Path, **options: Any) -> tuple[FakeKubernetes, Path, Path]:
    """A started fake with a GitRepository over a real bare repo, two Kustomizations and a HelmRelease."""
    bare, work = make_deploy_repo(tmp_path, FILES)
    options = {"tick": 0.01, "reconcile_seconds": 0.1, **options}
    kube = FakeKubernetes(**options).start()
    kube.add_git_repository("flux-system", url=f"file://{bare}")
    kube.add_kustomization("infra", path="./infra", source="flux-system", labels={"team": "platform"})
    kube.add_kustomization(
        "apps", path="./apps", source="flux-system", labels={"team": "web", "tier": "front"}
    )
    kube.add_helm_repository("podinfo")
    kube.add_helm_release("podinfo", labels={"team": "web"})
    return kube, bare, work


def api_client(kube: FakeKubernetes, tmp_path: Path) -> client.ApiClient:
    path = kube.write_kubeconfig(tmp_path / "kubeconfig")
    loaded: client.ApiClient = config.new_client_from_config(config_file=str(path), context="sandbox")  # type: ignore[no-untyped-call]
    return loaded


def as_dict(value: object) -> dict[str, Any]:
    assert isinstance(value, dict)
    return value


class Flux:
    """`CustomObjectsApi` with dict results (the generated client types custom objects as `object`)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.co = client.CustomObjectsApi(api)

    def list(
        self,
        target: Target,
        namespace: str | None = NS,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {
            "label_selector": label_selector,
            "field_selector": field_selector,
            "limit": limit,
            "_continue": continue_,
        }
        if namespace is None:
            return as_dict(self.co.list_cluster_custom_object(*target, **query))
        return as_dict(
            self.co.list_namespaced_custom_object(target[0], target[1], namespace, target[2], **query)
        )

    def get(self, target: Target, name: str, namespace: str = NS) -> dict[str, Any]:
        return as_dict(self.co.get_namespaced_custom_object(target[0], target[1], namespace, target[2], name))

    def patch(self, target: Target, name: str, body: Body, **options: Any) -> dict[str, Any]:
        return as_dict(
            self.co.patch_namespaced_custom_object(target[0], target[1], NS, target[2], name, body, **options)
        )

    def patch_with_info(
        self, target: Target, name: str, body: Body
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        data, code, headers = self.co.patch_namespaced_custom_object_with_http_info(
            target[0], target[1], NS, target[2], name, body
        )
        return as_dict(data), int(code), dict(headers or {})


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def failure(call: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    """The status code and decoded `kind: Status` body of an ApiException the call raises."""
    try:
        call()
    except ApiException as exc:
        return int(exc.status), json.loads(exc.body or "null")
    raise AssertionError("the call did not fail")


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}


def request_reconcile(flux: Flux, target: Target, name: str, token: str) -> None:
    body = {"metadata": {"annotations": {REQUESTED_AT: token}}}
    flux.patch(target, name, body, field_manager=FIELD_MANAGER)


def wait_handled(flux: Flux, target: Target, name: str, token: str) -> dict[str, Any]:
    """Poll like `flux reconcile` (docs/flux-api.md §2) until the controller answered this token."""

    def handled() -> dict[str, Any] | None:
        obj = flux.get(target, name)
        return obj if obj.get("status", {}).get("lastHandledReconcileAt") == token else None

    found: dict[str, Any] = wait_for(handled)
    return found
