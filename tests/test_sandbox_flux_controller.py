"""The fake Flux controllers behind the fake API server (docs/flux-api.md §2–§4, §6), via the real client."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from kubernetes import client

from sandbox.flux_fake import FakeKubernetes
from sandbox.flux_git import commit_file, commit_files
from sandbox.flux_kinds import load_schemas
from sandbox.k8s_schema import StructuralSchema
from tests.sandbox_flux_support import (
    GIT,
    HR,
    KS,
    NS,
    REQUESTED_AT,
    Flux,
    Target,
    api_client,
    conditions,
    deployment,
    request_reconcile,
    start_kube,
    wait_for,
    wait_handled,
)

CONTRACTS = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "flux"


class World:
    def __init__(self, kube: FakeKubernetes, bare: Path, work: Path, api: client.ApiClient) -> None:
        self.kube, self.bare, self.work = kube, bare, work
        self.flux = Flux(api)
        self.core = client.CoreV1Api(api)

    def get(self, target: Target, name: str) -> dict[str, Any]:
        return self.flux.get(target, name)

    def patch(self, target: Target, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.flux.patch(target, name, body)

    def reconcile(self, target: Target, name: str, token: str) -> dict[str, Any]:
        request_reconcile(self.flux, target, name, token)
        return wait_handled(self.flux, target, name, token)

    def events(self, kind: str, name: str) -> list[client.CoreV1Event]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        return list(self.core.list_namespaced_event(NS, field_selector=selector).items)

    def settled(self, target: Target, name: str) -> dict[str, Any] | None:
        """The object once the controller caught up with its generation, else None."""
        obj = self.get(target, name)
        return obj if obj["status"].get("observedGeneration") == obj["metadata"]["generation"] else None


@contextlib.contextmanager
def running_world(tmp_path: Path, reconcile_seconds: float = 0.1) -> Iterator[World]:
    kube, bare, work = start_kube(tmp_path, reconcile_seconds=reconcile_seconds)
    try:
        with api_client(kube, tmp_path) as api:
            yield World(kube, bare, work, api)
    finally:
        kube.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running_world(tmp_path) as started:
        yield started


@pytest.fixture
def slow_world(tmp_path: Path) -> Iterator[World]:
    """Runs long enough for a poll to see the Progressing phase even on a loaded machine."""
    with running_world(tmp_path, reconcile_seconds=1.0) as started:
        yield started


def new_commit(world: World, replicas: int = 3) -> str:
    sha = commit_file(
        world.work, "apps/podinfo/deployment.yaml", deployment("podinfo", "apps", replicas), "Scale up"
    )
    world.kube.fetch_sources()
    return sha


def test_reconcile_request_is_handled_with_the_token(slow_world: World) -> None:
    world = slow_world
    first = world.get(KS, "apps")["status"]
    sha = new_commit(world)
    source = world.get(GIT, "flux-system")["status"]["artifact"]["revision"]
    assert source == f"main@sha1:{sha}"
    assert (
        world.get(KS, "apps")["status"]["lastAppliedRevision"] == first["lastAppliedRevision"] != source
    )  # Git ahead

    token = "2026-08-07T16:50:15.123456789+03:00"
    request_reconcile(world.flux, KS, "apps", token)

    def progressing() -> bool:
        cond = conditions(world.get(KS, "apps"))
        return cond.get("Reconciling", {}).get("reason") == "Progressing"

    wait_for(progressing)
    during = world.get(KS, "apps")
    assert conditions(during)["Ready"]["status"] == "Unknown"
    assert during["status"].get("lastHandledReconcileAt") != token  # written only by the final update
    done = wait_handled(world.flux, KS, "apps", token)
    cond = conditions(done)
    assert (cond["Ready"]["status"], cond["Ready"]["reason"]) == ("True", "ReconciliationSucceeded")
    assert cond["Ready"]["message"] == f"Applied revision: main@sha1:{sha}"
    assert "Reconciling" not in cond
    assert done["status"]["lastAppliedRevision"] == done["status"]["lastAttemptedRevision"] == source
    assert done["status"]["observedGeneration"] == done["metadata"]["generation"]
    assert {e["id"] for e in done["status"]["inventory"]["entries"]} == {
        "apps_podinfo_apps_Deployment",
        "apps_podinfo__Service",
    }
    assert done["status"]["history"][0]["metadata"]["revision"] == source
    messages = [(e.type, e.reason, e.message or "") for e in world.events("Kustomization", "apps")]
    assert ("Normal", "ReconciliationSucceeded", "Deployment/apps/podinfo configured") in messages
    assert any(m.startswith("Reconciliation finished in ") for _, _, m in messages)
    # The same revision again: nothing to apply, so no change-set Event, but the token is handled.
    again = world.reconcile(KS, "apps", token + "-2")
    assert again["status"]["history"][0]["totalReconciliations"] == 2
    assert [m for _, _, m in messages if "configured" in m] == ["Deployment/apps/podinfo configured"]


def test_suspend_is_honoured_and_resume_reconciles(world: World) -> None:
    suspended = world.patch(KS, "apps", {"spec": {"suspend": True}})
    token = "2026-01-01T00:00:00Z"
    request_reconcile(world.flux, KS, "apps", token)
    world.kube.wait_idle()  # the controller has looked at both writes
    still = world.get(KS, "apps")
    assert still["status"].get("lastHandledReconcileAt") != token
    assert still["status"]["observedGeneration"] == suspended["metadata"]["generation"] - 1
    assert "Reconciling" not in conditions(still)
    resumed = world.patch(KS, "apps", {"spec": {"suspend": None}})
    done = wait_for(lambda: world.settled(KS, "apps"))
    assert done["metadata"]["generation"] == resumed["metadata"]["generation"]
    assert done["status"]["lastHandledReconcileAt"] == token  # the pending request is answered too


def test_build_failure_shape_then_recovery(world: World) -> None:
    applied = world.get(KS, "apps")["status"]["lastAppliedRevision"]
    sha = new_commit(world)
    world.kube.fail_next_reconcile("Kustomization", "apps", reason="BuildFailed")
    failed = world.reconcile(KS, "apps", "t1")
    cond, status = conditions(failed), failed["status"]
    assert (cond["Ready"]["status"], cond["Ready"]["reason"]) == ("False", "BuildFailed")
    assert cond["Ready"]["message"].startswith("kustomize build failed: ")
    assert (cond["Reconciling"]["status"], cond["Reconciling"]["reason"]) == ("True", "ProgressingWithRetry")
    assert cond["Reconciling"]["message"].startswith(f"Building manifests for revision main@sha1:{sha}")
    assert status["lastAttemptedRevision"] == f"main@sha1:{sha}"
    assert status["lastAppliedRevision"] == applied
    assert status["observedGeneration"] == failed["metadata"]["generation"]
    warnings = [e for e in world.events("Kustomization", "apps") if e.type == "Warning"]
    assert [(e.reason, e.message) for e in warnings] == [("BuildFailed", cond["Ready"]["message"])]
    assert (warnings[0].metadata.annotations or {})[
        "kustomize.toolkit.fluxcd.io/revision"
    ] == f"main@sha1:{sha}"
    recovered = world.reconcile(KS, "apps", "t2")
    assert conditions(recovered)["Ready"]["status"] == "True"
    assert recovered["status"]["lastAppliedRevision"] == f"main@sha1:{sha}"


def test_health_check_failure_applies_but_does_not_advance(world: World) -> None:
    applied = world.get(KS, "apps")["status"]["lastAppliedRevision"]
    sha = new_commit(world, replicas=5)
    world.kube.fail_next_reconcile("ks", "apps", reason="HealthCheckFailed")
    failed = world.reconcile(KS, "apps", "t1")
    cond = conditions(failed)
    assert (cond["Ready"]["reason"], cond["Healthy"]["status"], cond["Healthy"]["reason"]) == (
        "HealthCheckFailed",
        "False",
        "HealthCheckFailed",
    )
    assert cond["Ready"]["message"].startswith("health check failed after ")
    assert cond["Reconciling"]["message"].startswith(f"Running health checks for revision main@sha1:{sha}")
    assert failed["status"]["lastAppliedRevision"] == applied
    assert failed["status"]["lastAttemptedRevision"] == f"main@sha1:{sha}"
    messages = [e.message for e in world.events("Kustomization", "apps")]
    assert "Deployment/apps/podinfo configured" in messages  # the objects were applied


def test_a_missing_path_in_git_is_an_artifact_failure(world: World) -> None:
    commit_files(
        world.work, {"apps/podinfo/deployment.yaml": None, "apps/podinfo/service.yaml": None}, "Remove"
    )
    world.kube.fetch_sources()
    world.kube.add_kustomization("typo", path="./apps/typo", source="flux-system")
    cond = conditions(world.get(KS, "typo"))
    assert (cond["Ready"]["reason"], cond["Reconciling"]["reason"]) == (
        "ArtifactFailed",
        "ProgressingWithRetry",
    )
    assert "kustomization path not found" in cond["Ready"]["message"]


def test_blocked_kustomizations_wait_without_reconciling(world: World) -> None:
    world.kube.add_kustomization("orphan", path="./apps", source="missing")
    cond = conditions(world.get(KS, "orphan"))
    assert (cond["Ready"]["reason"], cond["Ready"]["message"]) == (
        "ArtifactFailed",
        "Source artifact not found, retrying in 30s",
    )
    assert "Reconciling" not in cond
    generation = world.patch(KS, "apps", {"spec": {"dependsOn": [{"name": "nope"}]}})["metadata"][
        "generation"
    ]
    blocked = world.reconcile(KS, "apps", "t1")
    cond = conditions(blocked)
    assert (cond["Ready"]["reason"], cond["Ready"]["message"]) == (
        "DependencyNotReady",
        "dependency 'flux-system/nope' is not ready",
    )
    assert "Reconciling" not in cond
    assert blocked["status"]["observedGeneration"] == generation - 1


def test_source_fetch_failure_shape(world: World) -> None:
    revision = world.get(GIT, "flux-system")["status"]["artifact"]["revision"]
    world.kube.fail_next_reconcile("GitRepository", "flux-system", reason="GitOperationFailed")
    failed = world.reconcile(GIT, "flux-system", "t1")
    cond = conditions(failed)
    assert (cond["FetchFailed"]["status"], cond["FetchFailed"]["reason"]) == ("True", "GitOperationFailed")
    assert (cond["Ready"]["status"], cond["Ready"]["reason"]) == ("False", "GitOperationFailed")
    assert cond["Ready"]["message"].startswith("failed to checkout and determine revision: unable to clone")
    assert failed["status"]["artifact"]["revision"] == revision  # the last good artifact stays
    fixed = world.reconcile(GIT, "flux-system", "t2")
    assert "FetchFailed" not in conditions(fixed)
    assert conditions(fixed)["Ready"]["status"] == "True"


def test_stalled_objects_stop_the_wait(world: World) -> None:
    world.kube.stall("Kustomization", "apps")
    stalled = world.reconcile(KS, "apps", "t1")
    cond = conditions(stalled)
    assert (cond["Stalled"]["status"], cond["Stalled"]["reason"]) == ("True", "InvalidCELExpression")
    assert cond["Ready"]["status"] == "False"
    assert "Reconciling" not in cond
    assert stalled["status"]["observedGeneration"] == stalled["metadata"]["generation"]


def test_helm_release_force_reset_upgrade_and_failure(world: World) -> None:
    first = world.get(HR, "podinfo")["status"]
    assert first["history"][0]["version"] == 1
    plain = world.reconcile(HR, "podinfo", "t1")
    assert plain["status"]["history"][0]["version"] == 1  # in sync: no Helm action
    token = "t2"
    notes = {REQUESTED_AT: token, "reconcile.fluxcd.io/forceAt": token, "reconcile.fluxcd.io/resetAt": token}
    world.patch(HR, "podinfo", {"metadata": {"annotations": notes}})
    forced = wait_handled(world.flux, HR, "podinfo", token)
    status = forced["status"]
    assert (status["lastHandledForceAt"], status["lastHandledResetAt"]) == (token, token)
    assert [(h["version"], h["status"]) for h in status["history"]] == [(2, "deployed"), (1, "superseded")]
    ready = conditions(forced)["Ready"]
    assert ready["reason"] == "UpgradeSucceeded"
    assert (
        ready["message"]
        == "Helm upgrade succeeded for release flux-system/podinfo.v2 with chart podinfo@6.5.0"
    )

    world.patch(HR, "podinfo", {"spec": {"chart": {"spec": {"version": "6.7.1"}}}})
    upgraded = wait_for(lambda: world.settled(HR, "podinfo"))
    assert upgraded["status"]["history"][0]["chartVersion"] == "6.7.1"
    chart = world.flux.get(("source.toolkit.fluxcd.io", "v1", "helmcharts"), "flux-system-podinfo")
    assert chart["status"]["artifact"]["revision"] == "6.7.1"

    world.kube.fail_next_reconcile("HelmRelease", "podinfo", reason="UpgradeFailed")
    failed = world.reconcile(HR, "podinfo", "t3")
    cond = conditions(failed)
    assert (cond["Ready"]["status"], cond["Ready"]["reason"]) == ("False", "UpgradeFailed")
    assert cond["Ready"]["message"].startswith(
        "Helm upgrade failed for release flux-system/podinfo with chart podinfo@6.7.1"
    )
    assert cond["Reconciling"]["reason"] == "ProgressingWithRetry"
    assert failed["status"]["history"][0]["status"] == "failed"
    assert (failed["status"]["failures"], failed["status"]["upgradeFailures"]) == (1, 1)
    assert [e.reason for e in world.events("HelmRelease", "podinfo") if e.type == "Warning"] == [
        "UpgradeFailed"
    ]


def test_drift_shows_as_a_configured_line_on_the_same_revision(world: World) -> None:
    world.kube.drift("Kustomization", "apps", objects=["Deployment/apps/podinfo"])
    world.reconcile(KS, "apps", "t1")
    normal = [e.message for e in world.events("Kustomization", "apps") if e.type == "Normal"]
    assert "Deployment/apps/podinfo configured" in normal


def test_every_status_the_controllers_write_fits_the_crd_schema(world: World) -> None:
    new_commit(world)
    world.kube.fail_next_reconcile("HelmRelease", "podinfo", reason="RollbackSucceeded")
    world.reconcile(HR, "podinfo", "t1")
    world.kube.fail_next_reconcile("Kustomization", "apps", reason="HealthCheckFailed")
    world.reconcile(KS, "apps", "t1")
    world.reconcile(KS, "infra", "t1")
    schemas = load_schemas()
    for kind, info in schemas.items():
        for obj in world.flux.list((info["group"], info["version"], info["plural"]), None)["items"]:
            checked = StructuralSchema(info["schema"]).check(obj, sections=("spec", "status"))
            url_only = [c for c in checked.causes if not (kind == "GitRepository" and c.field == "spec.url")]
            assert (kind, url_only, checked.unknown) == (kind, [], [])


@pytest.mark.skipif(not CONTRACTS.is_dir(), reason="the contract files are not next to the repository")
def test_schema_extract_matches_the_crd_contracts() -> None:
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (
                    v
                    if k in ("default", "enum", "required")
                    else strip(v)
                    if k != "properties"
                    else {p: strip(s) for p, s in v.items()}
                )
                for k, v in node.items()
                if not (k == "description" and not isinstance(v, dict))
            }
        return [strip(x) for x in node] if isinstance(node, list) else node

    extract = load_schemas()
    for path in sorted(CONTRACTS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        kind = crd["spec"]["names"]["kind"]
        (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
        assert extract[kind]["version"] == version["name"]
        assert json.dumps(extract[kind]["schema"], sort_keys=True) == json.dumps(
            strip(version["schema"]["openAPIV3Schema"]), sort_keys=True
        )
