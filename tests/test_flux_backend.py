"""FluxBackend against the fake Kubernetes API: reading, discovery, and errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.backend import AppNotFound, AppRef, GitOpsBackend, SyncRequest
from services.errors import BackendUnavailable, PermissionDenied
from services.flux import FluxBackend, FluxClient
from services.metrics import Metrics
from services.settings.model import FluxCluster
from tests.flux_fixtures import CLUSTER, NS, TOKEN, FluxEnv, deployment, flux_env, start_env

__all__ = ["flux_env"]

KS_PATH = "/apis/kustomize.toolkit.fluxcd.io/v1"
SOURCE_PATH = "/apis/source.toolkit.fluxcd.io/v1"


def test_backend_satisfies_the_protocol(flux_env: FluxEnv) -> None:
    assert isinstance(flux_env.backend, GitOpsBackend)
    assert (flux_env.backend.kind, flux_env.backend.instance) == ("flux", CLUSTER)
    assert flux_env.backend.version() == "flux (kustomize.toolkit.fluxcd.io/v1, helm.toolkit.fluxcd.io/v2)"


def test_list_with_selector_sends_one_request_per_kind(flux_env: FluxEnv) -> None:
    flux_env.backend.version()  # discovery out of the way
    flux_env.fake.clear_requests()
    apps = flux_env.backend.list_apps(selector="team=web")
    assert sorted(a.ref.display for a in apps) == [f"{CLUSTER}/apps/podinfo", f"{CLUSTER}/{NS}/web"]
    sent = [(r.method, r.path, r.query.get("labelSelector")) for r in flux_env.fake.requests()]
    assert sorted(sent) == sorted(
        [
            ("GET", f"{KS_PATH}/kustomizations", ["team=web"]),
            ("GET", "/apis/helm.toolkit.fluxcd.io/v2/helmreleases", ["team=web"]),
            ("GET", f"{SOURCE_PATH}/gitrepositories", None),
            ("GET", f"{SOURCE_PATH}/ocirepositories", None),
            ("GET", f"{SOURCE_PATH}/helmrepositories", None),
        ]
    )
    web = next(a for a in apps if a.ref.name == "web")
    assert (web.sync, web.health, web.ref.kind) == ("Synced", "Healthy", "Kustomization")
    assert web.repo_url == f"file://{flux_env.bare}"
    assert ("team", "web") in web.labels
    podinfo = next(a for a in apps if a.ref.name == "podinfo")
    assert (podinfo.ref.kind, podinfo.revision, podinfo.health) == ("HelmRelease", "6.5.0", "Healthy")


def test_get_maps_status_and_shows_git_ahead(flux_env: FluxEnv) -> None:
    head = flux_env.bare_git("rev-parse", "main").strip()
    status = flux_env.backend.get(flux_env.ref())
    assert (status.sync, status.health, status.suspended) == ("Synced", "Healthy", False)
    assert status.revision == status.source_revision == f"main@sha1:{head}"
    assert (status.target_revision, status.path) == ("main", "./apps/web")
    ready = next(c for c in status.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("True", "ReconciliationSucceeded")
    assert ready.message == f"Applied revision: main@sha1:{head}"

    new = flux_env.commit("apps/web/deployment.yaml", deployment("web", 3), "scale web")
    flux_env.fake.fetch_sources()
    ahead = flux_env.backend.get(flux_env.ref())
    assert (ahead.sync, ahead.revision, ahead.source_revision) == (
        "OutOfSync",
        f"main@sha1:{head}",
        f"main@sha1:{new}",
    )


def test_get_adds_warning_events_as_conditions(flux_env: FluxEnv) -> None:
    flux_env.fake.fail_next_reconcile("Kustomization", "web", reason="BuildFailed")
    flux_env.backend.sync(flux_env.ref(), SyncRequest())
    flux_env.backend.wait(flux_env.ref(), timeout=10)
    status = flux_env.backend.get(flux_env.ref())
    warnings = [c for c in status.conditions if c.type == "Warning"]
    assert warnings
    assert warnings[0].reason == "BuildFailed"
    assert "kustomize build failed" in warnings[0].message
    assert status.health == "Degraded"


def test_find_and_names_fill_in_namespace_and_kind(flux_env: FluxEnv) -> None:
    assert flux_env.backend.find("podinfo") == [flux_env.ref("podinfo", "apps", "HelmRelease")]
    assert flux_env.backend.find("web", namespace="apps") == []
    assert flux_env.backend.names() == ["api", "podinfo", "web"]
    bare = AppRef("flux", CLUSTER, "api")
    assert flux_env.backend.get(bare).ref == flux_env.ref("api")


def test_rbac_forbidden_becomes_permission_denied(flux_env: FluxEnv) -> None:
    flux_env.fake.forbid("patch", "kustomizations", namespace=NS)
    with pytest.raises(PermissionDenied, match="patch kustomizations in namespace `flux-system`"):
        flux_env.backend.suspend(flux_env.ref())
    flux_env.fake.forbid("list", "helmreleases")
    with pytest.raises(PermissionDenied, match="list helmreleases across all namespaces"):
        flux_env.backend.list_apps()


def test_missing_object_is_app_not_found(flux_env: FluxEnv) -> None:
    with pytest.raises(AppNotFound, match="No Kustomization flux-system/nope on Flux cluster `sandbox`"):
        flux_env.backend.get(flux_env.ref("nope"))
    with pytest.raises(AppNotFound):
        flux_env.backend.get(AppRef("flux", CLUSTER, "nope"))


def test_api_down_is_backend_unavailable(flux_env: FluxEnv) -> None:
    flux_env.fake.go_down()
    with pytest.raises(BackendUnavailable, match="cannot be reached") as caught:
        flux_env.backend.get(flux_env.ref())
    assert caught.value.backend == f"Flux {CLUSTER}"
    flux_env.fake.come_up()
    assert flux_env.backend.get(flux_env.ref()).health == "Healthy"


def test_slow_api_is_backend_unavailable(tmp_path: Path) -> None:
    env = start_env(tmp_path, timeout=(1.0, 0.3), with_helm=False)
    try:
        env.fake.set_latency(1.0)
        began = time.monotonic()
        with pytest.raises(BackendUnavailable, match="did not answer in time") as caught:
            env.backend.get(env.ref())
        assert time.monotonic() - began < 2.5  # one read timeout, no retries of a slow answer
        assert TOKEN not in str(caught.value)
    finally:
        env.fake.set_latency(0)
        env.client.close()
        env.fake.stop()


def test_old_cluster_discovery_falls_back_to_beta_versions(tmp_path: Path) -> None:
    served = {
        "kustomize.toolkit.fluxcd.io": ("v1beta2",),
        "helm.toolkit.fluxcd.io": ("v2beta2",),
        "source.toolkit.fluxcd.io": ("v1beta2",),
    }
    env = start_env(tmp_path, served=served)
    try:
        assert (
            env.backend.version()
            == "flux (kustomize.toolkit.fluxcd.io/v1beta2, helm.toolkit.fluxcd.io/v2beta2)"
        )
        apps = env.backend.list_apps()
        assert sorted(a.ref.name for a in apps) == ["api", "podinfo", "web"]
        status = env.backend.get(env.ref())
        assert (status.sync, status.health) == ("Synced", "Healthy")
        paths = {r.path for r in env.fake.requests() if r.method == "GET"}
        assert "/apis/kustomize.toolkit.fluxcd.io/v1beta2/namespaces/flux-system/kustomizations/web" in paths
        assert "/apis/source.toolkit.fluxcd.io/v1beta2/gitrepositories" in paths
        assert not any("/v1/" in p for p in paths if p.startswith("/apis/"))
    finally:
        env.client.close()
        env.fake.stop()


def test_rejected_credentials_are_unavailable_without_the_token(flux_env: FluxEnv, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "wrong-kubeconfig"
    kubeconfig.write_text(
        Path(str(flux_env.cluster.kubeconfig)).read_text().replace(TOKEN, "wrong-token-abcdefghijkl")
    )
    cluster = FluxCluster(name=CLUSTER, kubeconfig=kubeconfig, context="sandbox")
    client = FluxClient(cluster, connect_retries=0)
    backend = FluxBackend(cluster, client, None, flux_env.settings)
    try:
        with pytest.raises(BackendUnavailable, match="rejected the bot's credentials") as caught:
            backend.list_apps()
        assert "wrong-token" not in str(caught.value)
    finally:
        client.close()


def test_in_cluster_config_missing_is_unavailable(flux_env: FluxEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    cluster = FluxCluster(name="incluster", in_cluster=True)
    backend = FluxBackend(cluster, FluxClient(cluster), None, flux_env.settings)
    with pytest.raises(BackendUnavailable, match="cannot load the in-cluster config"):
        backend.get(AppRef("flux", "incluster", "web", namespace=NS, kind="Kustomization"))


def test_calls_are_timed_per_cluster_and_operation(flux_env: FluxEnv) -> None:
    metrics = Metrics()
    client = FluxClient(flux_env.cluster, metrics=metrics)
    backend = FluxBackend(flux_env.cluster, client, None, flux_env.settings)
    try:
        backend.get(flux_env.ref())
        flux_env.fake.forbid("get", "kustomizations")
        with pytest.raises(PermissionDenied):
            backend.get(flux_env.ref())
    finally:
        client.close()
    text = metrics.render().decode()
    assert 'gitops_bot_backend_request_seconds_count{backend="flux:sandbox",operation="get"}' in text
    assert (
        'gitops_bot_backend_request_seconds_count{backend="flux:sandbox",operation="discovery"} 1.0' in text
    )
    assert 'backend="flux:sandbox",kind="FluxForbidden",operation="get"' in text


def test_an_injected_api_client_is_used_as_is(flux_env: FluxEnv) -> None:
    from kubernetes import config as k8s_config

    kubeconfig = str(flux_env.cluster.kubeconfig)
    api = k8s_config.new_client_from_config(config_file=kubeconfig, context="sandbox")  # type: ignore[no-untyped-call]
    client = FluxClient(flux_env.cluster, api_client=api)
    try:
        backend = FluxBackend(flux_env.cluster, client, None, flux_env.settings)
        assert backend.get(flux_env.ref("api")).health == "Healthy"
    finally:
        client.close()
