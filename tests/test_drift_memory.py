"""Drift scans at scale keep only what classification needs: Flux lists decoded item by item
without managedFields, each backend's statuses dropped as they are classified, and the same
findings as classifying every status of every list."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest

from sandbox.argocd_fake import FakeArgoCD
from services.backend import AppRef, AppStatus, GitOpsBackend
from services.drift.scan import Finding, findings_for, scan
from services.flux.client import decode_list
from services.flux.kinds import KUSTOMIZATION
from tests.argocd_fixtures import backend_for
from tests.flux_fixtures import NS, TOKEN, FluxEnv, flux_env

__all__ = ["flux_env"]  # the shared fixture, used by name

NOW = datetime.now(UTC)
WINDOWS = {"suspended_after": timedelta(hours=1), "git_grace": timedelta(0)}


def raw_list(env: FluxEnv, plural: str) -> dict[str, Any]:
    """The API server's own answer, read without the client."""
    url = f"{env.fake.base_url}/apis/kustomize.toolkit.fluxcd.io/v1/{plural}"
    response = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    response.raise_for_status()
    return cast(dict[str, Any], response.json())


# -- Flux lists ------------------------------------------------------------------------------------


def test_flux_list_is_the_servers_json_without_managed_fields(flux_env: FluxEnv) -> None:
    flux_env.fake.stall("Kustomization", "web", namespace=NS)
    flux_env.fake.wait_idle()
    expected = raw_list(flux_env, "kustomizations")
    assert any(i["metadata"].get("managedFields") for i in expected["items"])  # there is something to drop
    for item in expected["items"]:
        item["metadata"].pop("managedFields", None)

    listed = flux_env.client.list(KUSTOMIZATION)
    items, version = flux_env.client.list_with_version(KUSTOMIZATION)

    by_name = {i["metadata"]["name"]: i for i in expected["items"]}
    assert sorted(by_name) == ["api", "web"]
    for got in (listed, items):
        assert {i["metadata"]["name"]: i for i in got} == by_name
    assert version.isdigit()
    assert int(version) >= int(expected["metadata"]["resourceVersion"])


def test_decode_list_reads_items_one_by_one_and_refuses_what_is_not_a_list() -> None:
    body = {
        "kind": "KustomizationList",
        "metadata": {"resourceVersion": "42", "continue": ""},
        "items": [{"metadata": {"name": "a", "managedFields": [{"manager": "x"}]}, "spec": {"n": 1.5}}, 7],
    }
    assert decode_list(json.dumps(body).encode()) == ([{"metadata": {"name": "a"}, "spec": {"n": 1.5}}], "42")
    assert decode_list(b'{"items": null}') == ([], "")
    assert decode_list(b"") == ([], "")
    for bad in (b"[1]", b"<html>login</html>", b'{"items": 3}'):
        with pytest.raises(ValueError):
            decode_list(bad)


# -- the scan --------------------------------------------------------------------------------------


def reference(backends: list[GitOpsBackend]) -> list[Finding]:
    """What the scan found before it dropped statuses: every status of every list, classified."""
    found: dict[str, Finding] = {}
    for backend in backends:
        for status in backend.list_apps(deployed=True):
            for finding in findings_for(status, now=NOW, **WINDOWS):
                found.setdefault(finding.key, finding)
    return [found[k] for k in sorted(found)]


def test_scan_finds_what_classifying_every_status_finds(flux_env: FluxEnv) -> None:
    argocd = FakeArgoCD(operation_seconds=0.1, tick=0.02).start()
    try:
        argocd.bulk_add(30, prefix="app-")
        argocd.set_health("app-00003", "Degraded", "CrashLoopBackOff")
        argocd.set_health("app-00011", "Missing")
        flux_env.fake.stall("Kustomization", "web", namespace=NS, reason="InvalidCELExpression")
        flux_env.fake.wait_idle()
        backends = [cast(GitOpsBackend, backend_for(argocd)), cast(GitOpsBackend, flux_env.backend)]

        result = scan(backends, now=NOW, **WINDOWS)
        expected = reference(backends)
    finally:
        argocd.stop()

    assert list(result.findings) == expected
    assert {f.ref.name for f in result.findings} >= {"app-00003", "app-00011", "web"}
    assert result.scanned == ("argocd:sandbox", "flux:sandbox")
    assert result.unreachable == ()


class ListingBackend:
    """A backend whose list the test can watch after handing it over."""

    def __init__(self, instance: str, names: list[str], before: ListingBackend | None = None) -> None:
        self.kind, self.instance = "argocd", instance
        self.names = names
        self.before = before
        self.handed: list[AppStatus] = []
        self.left_by_before: int | None = None

    def list_apps(self, *, deployed: bool = False, **_: object) -> list[AppStatus]:
        if self.before is not None:
            self.left_by_before = len(self.before.handed)
        self.handed = [
            AppStatus(ref=AppRef("argocd", self.instance, n), sync="Synced", health=h)
            for n, h in zip(self.names, ("Degraded", "Healthy", "Missing"), strict=False)
        ]
        return self.handed


def test_a_backends_statuses_are_gone_before_the_next_list_is_read() -> None:
    first = ListingBackend("main", ["a", "b", "c"])
    second = ListingBackend("other", ["d", "e"], before=first)

    result = scan([cast(GitOpsBackend, first), cast(GitOpsBackend, second)], now=NOW, **WINDOWS)

    assert second.left_by_before == 0  # the scan held none of the first list's statuses by then
    assert [f.key for f in result.findings] == [
        "argocd:main/-/a:failing",
        "argocd:main/-/c:failing",
        "argocd:other/-/d:failing",
    ]
