"""FluxBackend against the fake Kubernetes API: reconcile with source, wait, suspend and resume."""

from __future__ import annotations

import time

import pytest

from services.backend import SuspendedTarget, SyncRequest
from services.errors import UserError
from services.flux.reconcile import FORCE_AT, REQUESTED_AT, RESET_AT
from tests.flux_fixtures import NS, FluxEnv, deployment, flux_env

__all__ = ["flux_env"]

KS_PATH = "/apis/kustomize.toolkit.fluxcd.io/v1"
SOURCE_PATH = "/apis/source.toolkit.fluxcd.io/v1"


def test_sync_reconciles_source_first_then_target_with_merge_patches(flux_env: FluxEnv) -> None:
    new = flux_env.commit("apps/web/deployment.yaml", deployment("web", 2), "two replicas")
    flux_env.fake.clear_requests()
    started = flux_env.backend.sync(flux_env.ref(), SyncRequest(initiated_by="alice"))
    assert started.operation is not None
    assert (started.operation.phase, started.operation.message) == ("Running", "reconcile requested")
    assert started.operation.initiated_by == "alice"

    patches = flux_env.patches()
    assert [p.path for p in patches] == [
        f"{SOURCE_PATH}/namespaces/{NS}/gitrepositories/deploy",
        f"{KS_PATH}/namespaces/{NS}/kustomizations/web",
    ]
    for patch in patches:
        assert patch.query == {"fieldManager": ["flux-client-side-apply"]}
        assert patch.headers["content-type"].startswith("application/merge-patch+json")
        assert list(patch.body) == ["metadata"]
    tokens = [p.body["metadata"]["annotations"][REQUESTED_AT] for p in patches]
    assert tokens[0] != tokens[1]
    assert tokens[1].endswith("Z")

    final = flux_env.backend.wait(flux_env.ref(), timeout=10)
    assert final.operation is not None
    assert final.operation.phase == "Succeeded"
    assert final.operation.message == f"Applied revision: main@sha1:{new}"
    assert final.operation.revision == f"main@sha1:{new}"
    assert final.sync == "Synced"
    assert flux_env.obj("kustomizations", "web")["status"]["lastHandledReconcileAt"] == tokens[1]


def test_wait_reports_progress_while_running(flux_env: FluxEnv) -> None:
    seen: list[str] = []
    flux_env.backend.sync(flux_env.ref(), SyncRequest())
    final = flux_env.backend.wait(
        flux_env.ref(),
        timeout=10,
        on_progress=lambda s: seen.append(s.operation.phase if s.operation else ""),
    )
    assert final.operation is not None
    assert final.operation.phase == "Succeeded"
    assert set(seen) <= {"Running"}


@pytest.mark.parametrize(
    ("reason", "text"),
    [("BuildFailed", "kustomize build failed"), ("HealthCheckFailed", "health check failed")],
)
def test_failures_are_reported_promptly(flux_env: FluxEnv, reason: str, text: str) -> None:
    flux_env.fake.fail_next_reconcile("Kustomization", "web", reason=reason)
    flux_env.backend.sync(flux_env.ref(), SyncRequest())
    began = time.monotonic()
    final = flux_env.backend.wait(flux_env.ref(), timeout=20)
    assert time.monotonic() - began < 5  # well before the 20 s timeout
    assert final.operation is not None
    assert final.operation.phase == "Failed"
    assert final.operation.message.startswith(f"{reason}: ")
    assert text in final.operation.message


def test_source_failure_aborts_before_the_target_is_annotated(flux_env: FluxEnv) -> None:
    flux_env.fake.fail_next_reconcile("GitRepository", "deploy", reason="GitOperationFailed")
    flux_env.fake.clear_requests()
    with pytest.raises(UserError, match="GitRepository flux-system/deploy failed") as caught:
        flux_env.backend.sync(flux_env.ref(), SyncRequest())
    assert "GitOperationFailed" in caught.value.message
    assert [p.path for p in flux_env.patches()] == [f"{SOURCE_PATH}/namespaces/{NS}/gitrepositories/deploy"]
    assert REQUESTED_AT not in (flux_env.obj("kustomizations", "web")["metadata"].get("annotations") or {})


def test_suspended_object_is_refused(flux_env: FluxEnv) -> None:
    flux_env.backend.suspend(flux_env.ref())
    flux_env.fake.clear_requests()
    with pytest.raises(
        SuspendedTarget, match="Kustomization flux-system/web is suspended: /gitops resume it first"
    ):
        flux_env.backend.sync(flux_env.ref(), SyncRequest())
    assert flux_env.patches() == []


def test_unsupported_sync_options_are_refused(flux_env: FluxEnv) -> None:
    for request in (SyncRequest(revision="abc1234"), SyncRequest(dry_run=True), SyncRequest(prune=True)):
        with pytest.raises(UserError, match="Flux does not support"):
            flux_env.backend.sync(flux_env.ref(), request)
    with pytest.raises(UserError, match="Flux always reconciles"):
        flux_env.backend.set_auto_sync(flux_env.ref(), False)
    with pytest.raises(UserError):
        flux_env.backend.terminate(flux_env.ref())
    assert flux_env.backend.automated_policy(flux_env.ref()) is None


def test_suspend_and_resume_patch_spec_and_resume_waits_on_generation(flux_env: FluxEnv) -> None:
    flux_env.fake.clear_requests()
    suspended = flux_env.backend.suspend(flux_env.ref())
    assert (suspended.suspended, suspended.health) == (True, "Suspended")
    assert flux_env.obj("kustomizations", "web")["spec"]["suspend"] is True

    new = flux_env.commit("apps/web/deployment.yaml", deployment("web", 4), "four replicas")
    flux_env.fake.fetch_sources()
    resumed = flux_env.backend.resume(flux_env.ref())
    assert resumed.operation is not None
    assert resumed.operation.phase == "Running"
    bodies = [(p.body, p.query) for p in flux_env.patches("kustomizations")]
    assert bodies == [
        ({"spec": {"suspend": True}}, {"fieldManager": ["flux-client-side-apply"]}),
        ({"spec": {"suspend": None}}, {"fieldManager": ["flux-client-side-apply"]}),
    ]
    final = flux_env.backend.wait(flux_env.ref(), timeout=10)
    assert final.operation is not None
    assert (final.operation.phase, final.operation.revision) == ("Succeeded", f"main@sha1:{new}")
    live = flux_env.obj("kustomizations", "web")
    assert "suspend" not in live["spec"]
    assert live["status"]["observedGeneration"] == live["metadata"]["generation"]


def test_helm_force_and_reset_carry_the_same_token(flux_env: FluxEnv) -> None:
    ref = flux_env.ref("podinfo", "apps", "HelmRelease")
    flux_env.fake.clear_requests()
    flux_env.backend.reconcile(ref, force=True, reset=True, initiated_by="carol")
    annotations = flux_env.patches("helmreleases")[-1].body["metadata"]["annotations"]
    assert set(annotations) == {REQUESTED_AT, FORCE_AT, RESET_AT}
    assert len(set(annotations.values())) == 1
    final = flux_env.backend.wait(ref, timeout=10)
    assert final.operation is not None
    assert final.operation.phase == "Succeeded"
    assert final.operation.initiated_by == "carol"
    with pytest.raises(UserError, match="HelmReleases only"):
        flux_env.backend.reconcile(flux_env.ref(), force=True)
