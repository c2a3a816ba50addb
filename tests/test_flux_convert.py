"""Pure parts of the Flux backend: revisions, status mapping, the §2 verdicts, error classes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.backend import AppNotFound, AppRef
from services.errors import BackendUnavailable, PermissionDenied, UserError
from services.flux import convert as cv
from services.flux import reconcile as rc
from services.flux.errors import FluxForbidden, FluxInvalid, FluxNotFound, FluxUnavailable, classify
from services.flux.kinds import GIT_REPOSITORY, HELM_RELEASE, KUSTOMIZATION
from services.flux.translate import translate

SHA_A = "5f1c0e3a2b9d4c7e8f60718293a4b5c6d7e8f901"
SHA_B = "9b2e77c1d0aa4f5e9c3b2a1908f7e6d5c4b3a291"
TOKEN = "2026-03-02T11:00:00.000000000Z"


def ks(*conditions: dict[str, Any], generation: int = 4, observed: int = 4, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "apps", "namespace": "flux-system", "generation": generation},
        "spec": {"path": "./apps/production", "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
        "status": {"observedGeneration": observed, "conditions": list(conditions), **status},
    }


def cond(type_: str, status: str, reason: str = "", message: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message, **extra}


READY = cond("Ready", "True", "ReconciliationSucceeded", f"Applied revision: main@sha1:{SHA_A}")
BUILD_FAILED = cond("Ready", "False", "BuildFailed", "kustomize build failed: accumulating resources")
RETRYING = cond("Reconciling", "True", "ProgressingWithRetry", "Building manifests")


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        (f"main@sha1:{SHA_A}", SHA_A),
        (f"main/{SHA_A}", SHA_A),
        (f"sha1:{SHA_A}", SHA_A),
        (f"v1.2.3@sha1:{SHA_A.upper()}", SHA_A),
        ("latest@sha256:" + "ab" * 32, "ab" * 32),
        ("6.7.1", None),
        (None, None),
    ],
)
def test_revision_hex_reads_every_flux_form(revision: str | None, expected: str | None) -> None:
    assert cv.revision_hex(revision) == expected


def test_same_revision_compares_the_hex_parts() -> None:
    assert cv.same_revision(f"main@sha1:{SHA_A}", f"main/{SHA_A}")
    assert not cv.same_revision(f"main@sha1:{SHA_A}", f"main@sha1:{SHA_B}")
    assert not cv.same_revision(None, f"main@sha1:{SHA_A}")


def test_status_of_a_ready_kustomization_that_git_is_ahead_of() -> None:
    obj = ks(READY, lastAppliedRevision=f"main@sha1:{SHA_A}")
    source = {
        "spec": {"url": "https://git/x", "ref": {"branch": "main"}},
        "status": {"artifact": {"revision": f"main@sha1:{SHA_B}"}},
    }
    status = cv.app_status("prod", obj, KUSTOMIZATION, source=source)
    assert status.ref == AppRef("flux", "prod", "apps", namespace="flux-system", kind="Kustomization")
    assert (status.sync, status.health) == ("OutOfSync", "Healthy")
    assert status.revision == f"main@sha1:{SHA_A}"
    assert status.source_revision == f"main@sha1:{SHA_B}"
    assert (status.target_revision, status.repo_url, status.path) == (
        "main",
        "https://git/x",
        "./apps/production",
    )
    assert [c.type for c in status.conditions] == ["Ready"]
    assert status.conditions[0].reason == "ReconciliationSucceeded"


@pytest.mark.parametrize(
    ("conditions", "suspend", "expected"),
    [
        ([READY], False, "Healthy"),
        ([READY], True, "Suspended"),
        ([cond("Reconciling", "True", "Progressing"), cond("Ready", "Unknown")], False, "Progressing"),
        ([RETRYING, BUILD_FAILED], False, "Degraded"),
        ([cond("Stalled", "True", "AccessDenied"), cond("Ready", "False")], False, "Degraded"),
        ([], False, "Unknown"),
    ],
)
def test_health_from_conditions(conditions: list[dict[str, Any]], suspend: bool, expected: str) -> None:
    obj = ks(*conditions)
    obj["spec"]["suspend"] = suspend
    assert cv.health(obj) == expected


def test_warning_events_newest_first_at_most_five() -> None:
    events = [
        {"type": "Warning", "reason": f"R{i}", "message": f"m{i}", "lastTimestamp": f"2026-03-02T10:0{i}:00Z"}
        for i in range(7)
    ] + [{"type": "Normal", "reason": "Fine", "message": "ok", "lastTimestamp": "2026-03-02T11:00:00Z"}]
    found = cv.warnings(events)
    assert [c.reason for c in found] == ["R6", "R5", "R4", "R3", "R2"]
    assert all(c.type == "Warning" for c in found)


def test_helm_history_newest_first_with_the_first_current() -> None:
    obj = {
        "status": {
            "history": [
                {
                    "version": 7,
                    "chartName": "podinfo",
                    "chartVersion": "6.7.1",
                    "status": "deployed",
                    "lastDeployed": "2026-03-02T10:00:00Z",
                },
                {"version": 6, "chartName": "podinfo", "chartVersion": "6.7.0", "status": "superseded"},
            ]
        }
    }
    entries = cv.helm_history(obj)
    assert [(e.id, e.revision, e.current) for e in entries] == [("7", "6.7.1", True), ("6", "6.7.0", False)]
    assert cv.helm_deployed(obj) == "6.7.1"


def test_token_is_rfc3339_nano_utc_and_avoids_given_values() -> None:
    fixed = 1_772_445_600_123_456_789
    first = rc.token(lambda: fixed)
    assert first == "2026-03-02T10:00:00.123456789Z"
    assert rc.token(lambda: fixed, avoid=(first,)) == "2026-03-02T10:00:00.123456790Z"


def test_request_patch_carries_the_same_token_for_force_and_reset() -> None:
    patch = rc.request_patch(TOKEN, force=True, reset=True)
    assert patch == {
        "metadata": {"annotations": {rc.REQUESTED_AT: TOKEN, rc.FORCE_AT: TOKEN, rc.RESET_AT: TOKEN}}
    }


def handled(*conditions: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return ks(*conditions, lastHandledReconcileAt=TOKEN, lastAppliedRevision=f"main@sha1:{SHA_A}", **kwargs)


@pytest.mark.parametrize(
    ("obj", "phase", "text"),
    [
        (ks(READY, lastHandledReconcileAt="older"), "Pending", "waiting"),
        (handled(READY), "Succeeded", f"Applied revision: main@sha1:{SHA_A}"),
        (handled(READY, generation=5), "Running", ""),
        (handled(RETRYING, BUILD_FAILED), "Failed", "BuildFailed: kustomize build failed"),
        (
            handled(cond("Ready", "False", "HealthCheckFailed", "health check failed after 5m")),
            "Failed",
            "HealthCheckFailed",
        ),
        (
            handled(cond("Ready", "False", "DependencyNotReady", "dependency 'x' is not ready")),
            "Running",
            "waiting",
        ),
        (
            handled(cond("Ready", "False", "ArtifactFailed", "Source artifact not found, retrying in 30s")),
            "Running",
            "waiting",
        ),
        (
            handled(cond("Stalled", "True", "AccessDenied", "cross-namespace"), cond("Ready", "False")),
            "Failed",
            "AccessDenied",
        ),
        (
            handled(
                cond("Reconciling", "True", "Progressing", "Running health checks"), cond("Ready", "Unknown")
            ),
            "Running",
            "health",
        ),
    ],
)
def test_assess_follows_section_2(obj: dict[str, Any], phase: str, text: str) -> None:
    verdict = rc.assess(obj, KUSTOMIZATION, token=TOKEN)
    assert verdict.phase == phase
    assert text in verdict.message


def test_assess_after_resume_uses_the_ready_conditions_generation() -> None:
    stale = ks(cond("Ready", "True", observedGeneration=4), generation=5, observed=4)
    assert rc.assess(stale, KUSTOMIZATION, generation=5).phase == "Pending"
    failed = ks(RETRYING, {**BUILD_FAILED, "observedGeneration": 5}, generation=5, observed=4)
    assert rc.assess(failed, KUSTOMIZATION, generation=5).phase == "Failed"
    done = ks(
        {**READY, "observedGeneration": 5}, generation=5, observed=5, lastAppliedRevision="main@sha1:" + SHA_A
    )
    assert rc.assess(done, KUSTOMIZATION, generation=5).phase == "Succeeded"


def test_source_success_message_names_the_fetched_revision() -> None:
    obj = {
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "lastHandledReconcileAt": TOKEN,
            "artifact": {"revision": "main@sha1:" + SHA_B},
            "conditions": [cond("Ready", "True", "Succeeded")],
        },
    }
    assert rc.assess(obj, GIT_REPOSITORY, token=TOKEN).message == f"Fetched revision: main@sha1:{SHA_B}"


def status_body(code: int, reason: str, message: str) -> str:
    return json.dumps(
        {"kind": "Status", "status": "Failure", "reason": reason, "message": message, "code": code}
    )


def test_classify_reads_status_bodies_and_bounds_text() -> None:
    err = classify(404, status_body(404, "NotFound", "not found"), operation="get", kind="Kustomization")
    assert isinstance(err, FluxNotFound)
    assert err.reason == "NotFound"
    assert isinstance(classify(403, status_body(403, "Forbidden", "no"), operation="x"), FluxForbidden)
    assert isinstance(classify(422, status_body(422, "Invalid", "bad"), operation="x"), FluxInvalid)
    long = classify(503, "<html>" + "x" * 1000, operation="list")
    assert isinstance(long, FluxUnavailable)
    assert len(long.message) <= 300


def test_translate_names_the_object_and_the_rbac_verb() -> None:
    ref = AppRef("flux", "prod", "apps", namespace="flux-system", kind="Kustomization")
    missing = FluxNotFound("nope", kind="Kustomization", name="apps", namespace="flux-system")
    found = translate(missing, cluster="prod", action="read", ref=ref)
    assert isinstance(found, AppNotFound)
    assert "Kustomization flux-system/apps" in found.message
    other = FluxNotFound("nope", kind="GitRepository", name="apps", namespace="flux-system")
    assert type(translate(other, cluster="prod", action="read", ref=ref)) is UserError
    forbidden = FluxForbidden("denied", verb="patch", kind="Kustomization", namespace="flux-system")
    denied = translate(forbidden, cluster="prod", action="reconcile", ref=ref)
    assert isinstance(denied, PermissionDenied)
    assert "patch kustomizations in namespace `flux-system`" in denied.reason
    down = translate(FluxUnavailable("refused"), cluster="prod", action="read", ref=None)
    assert isinstance(down, BackendUnavailable)
    assert down.backend == "Flux prod"


def test_helm_release_sync_compares_attempted_and_deployed_chart() -> None:
    obj = {
        "metadata": {"name": "podinfo", "namespace": "apps", "generation": 2},
        "spec": {
            "chart": {
                "spec": {
                    "chart": "podinfo",
                    "version": "6.7.x",
                    "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
                }
            }
        },
        "status": {
            "observedGeneration": 2,
            "lastAttemptedRevision": "6.7.2",
            "history": [{"version": 3, "chartVersion": "6.7.1"}],
            "conditions": [cond("Ready", "False", "UpgradeFailed", "Helm upgrade failed")],
        },
    }
    status = cv.app_status("prod", obj, HELM_RELEASE)
    assert (status.sync, status.health, status.revision) == ("OutOfSync", "Degraded", "6.7.1")
    assert (status.target_revision, status.path, status.source_revision) == ("6.7.x", "podinfo", "6.7.2")
