"""Flux summaries read only what they show (issue 20): `convert.app_row` is the row of the full
status for every state an object can be in, and `list_rows` makes the same requests as `list_apps`."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from services.backend import AppRow
from services.flux import convert as cv
from services.flux.kinds import APP_KINDS, HELM_RELEASE, KUSTOMIZATION, LISTED_SOURCES
from tests.flux_fixtures import NS, FluxEnv, flux_env

__all__ = ["flux_env"]  # the shared fixture, used by name

SOURCE = {
    "spec": {"url": "https://git.example.com/deploy.git", "ref": {"branch": "main"}},
    "status": {"artifact": {"revision": "main@sha1:1111111111111111111111111111111111111111"}},
}


def _kustomization(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web",
            "namespace": NS,
            "generation": 2,
            "labels": {"team": "web", "count": 3},
            "annotations": {"wave": "1", "kubectl.kubernetes.io/last-applied-configuration": "x" * 5000},
        },
        "spec": {"path": "./apps/web", "sourceRef": {"kind": "GitRepository", "name": "deploy"}},
        "status": {"observedGeneration": 2, **status},
    }


def _ready(state: str, reason: str = "ReconciliationSucceeded") -> dict[str, str]:
    return {"type": "Ready", "status": state, "reason": reason, "message": "m"}


def _variants() -> list[tuple[str, dict[str, Any], Any]]:
    applied = "main@sha1:1111111111111111111111111111111111111111"
    ready = _kustomization(lastAppliedRevision=applied, conditions=[_ready("True")])
    behind = _kustomization(lastAppliedRevision="main@sha1:0000000000000000000000000000000000000000",
                            conditions=[_ready("True")])  # fmt: skip
    running = {"type": "Reconciling", "status": "True", "reason": "Progressing"}
    reconciling = _kustomization(conditions=[_ready("Unknown", "Progressing"), running])
    retrying = copy.deepcopy(reconciling)
    retrying["status"]["conditions"][1]["reason"] = "ProgressingWithRetry"
    new_generation = copy.deepcopy(ready)
    new_generation["metadata"]["generation"] = 3
    suspended = copy.deepcopy(new_generation)
    suspended["spec"]["suspend"] = True
    stall = {"type": "Stalled", "status": "True", "reason": "BuildFailed"}
    stalled = _kustomization(conditions=[_ready("False", "BuildFailed"), stall])
    helm = {
        "metadata": {"name": "podinfo", "namespace": "apps"},
        "spec": {"chart": {"spec": {"chart": "podinfo", "version": "6.*",
                                    "sourceRef": {"kind": "HelmRepository", "name": "podinfo"}}}},
        "status": {"lastAttemptedRevision": "6.5.0", "lastAppliedRevision": "6.5.0",
                   "conditions": [_ready("True")], "history": [{"chartVersion": "6.5.0"}]},
    }  # fmt: skip
    odd: dict[str, Any] = {"metadata": "nope", "spec": [], "status": {"conditions": "none"}}
    found: list[tuple[str, dict[str, Any], Any]] = []
    for name, obj in [("ready", ready), ("behind", behind), ("reconciling", reconciling),
                      ("retrying", retrying), ("new generation", new_generation),
                      ("suspended", suspended), ("stalled", stalled), ("odd", odd)]:  # fmt: skip
        found += [(name, obj, SOURCE), (f"{name}, no source", obj, None)]
    return [*found, ("helm", helm, HELM_RELEASE)]


@pytest.mark.parametrize(("name", "obj", "source"), _variants(), ids=[v[0] for v in _variants()])
def test_a_row_is_the_full_statuss_row(name: str, obj: dict[str, Any], source: Any) -> None:
    kind = HELM_RELEASE if source is HELM_RELEASE else KUSTOMIZATION
    src = None if source is HELM_RELEASE else source
    expected = AppRow.of(cv.app_status("prod", obj, kind, source=src))
    assert cv.app_row("prod", obj, kind, source=src) == expected


def test_list_rows_are_the_rows_of_list_apps_with_the_same_requests(flux_env: FluxEnv) -> None:
    flux_env.fake.stall("Kustomization", "web", namespace=NS)
    flux_env.fake.wait_idle()
    flux_env.backend.list_apps()  # discovery (`GET /apis`) happens once, on the first call
    flux_env.fake.clear_requests()
    rows = flux_env.backend.list_rows()
    by_rows = [(r.method, r.path) for r in flux_env.fake.requests()]
    flux_env.fake.clear_requests()
    statuses = flux_env.backend.list_apps()
    by_statuses = [(r.method, r.path) for r in flux_env.fake.requests()]

    assert rows == [AppRow.of(s) for s in statuses]
    assert {r.ref.name for r in rows} == {"web", "api", "podinfo"}
    assert any(r.health != "Healthy" for r in rows)  # the stalled one
    assert by_rows == by_statuses
    assert len(by_rows) == len(APP_KINDS) + len(LISTED_SOURCES)
    assert flux_env.backend.list_rows(project="default") == []
