"""Drift scans at scale keep only what classification needs: Flux lists decoded item by item
without managedFields, each status classified as it comes (one app's tree at a time), sources kept
as the few keys a status reads, and the same findings as classifying every status of every list."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest

from sandbox.argocd_fake import FakeArgoCD
from services.backend import AppRef, AppStatus, GitOpsBackend, StreamsDeployed
from services.coalesce import coalescing
from services.drift.scan import Finding, findings_for, scan
from services.errors import BackendUnavailable
from services.flux import convert as cv
from services.flux.client import decode_list, objects, split_list
from services.flux.kinds import APP_KINDS, KUSTOMIZATION, LISTED_SOURCES
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


def test_objects_are_decoded_one_at_a_time_and_dropped_from_the_list() -> None:
    items = [{"metadata": {"name": n, "managedFields": [{"manager": "x"}]}} for n in ("a", "b", "c")]
    raw, _ = split_list(json.dumps({"items": items}).encode())
    reading = objects(raw)
    first = next(reading)
    assert first == {"metadata": {"name": "a"}}
    assert len(raw) == 2  # the first item's bytes are no longer held by the list
    assert [o["metadata"]["name"] for o in reading] == ["b", "c"]
    assert raw == []


def test_flux_statuses_from_the_sources_few_keys_equal_the_whole_source_conversion(flux_env: FluxEnv) -> None:
    flux_env.fake.stall("Kustomization", "web", namespace=NS)
    flux_env.fake.wait_idle()
    client, backend = flux_env.client, flux_env.backend
    sources = {
        (kind.kind, o["metadata"]["namespace"], o["metadata"]["name"]): o
        for kind in LISTED_SOURCES
        for o in client.list(kind)
    }
    expected = []
    for kind in APP_KINDS:
        for obj in client.list(kind):
            ref = cv.source_ref(obj, kind)
            source = sources.get((ref[0].kind, ref[1], ref[2])) if ref else None
            expected.append(cv.app_status(backend.instance, obj, kind, source=source))
    assert {s.ref.name for s in expected} == {"web", "api", "podinfo"}
    assert any(s.source_revision and s.target_revision and s.repo_url for s in expected)  # read from sources
    flux_env.fake.clear_requests()

    assert backend.list_apps() == expected
    assert list(backend.iter_deployed()) == expected
    assert backend.list_apps(deployed=True) == expected
    lists = [r.path for r in flux_env.fake.requests() if r.method == "GET"]
    per_scan = len(APP_KINDS) + len(LISTED_SOURCES)
    assert len(lists) == 3 * per_scan  # one list per app kind and per source kind, each time
    assert len(set(lists)) == per_scan


def test_argocd_iter_deployed_is_list_apps_deployed_with_one_request() -> None:
    argocd = FakeArgoCD().start()
    try:
        argocd.bulk_add(12, prefix="app-")
        argocd.set_health("app-00004", "Degraded", "CrashLoopBackOff")
        backend = backend_for(argocd)
        expected = backend.list_apps(deployed=True)
        argocd.clear_requests()
        streamed = coalescing(backend, ttl=30.0).iter_deployed()
        assert argocd.requests("/api/v1/applications") == []  # nothing asked before the first status
        got = list(streamed)
        sent = argocd.requests("/api/v1/applications")
    finally:
        argocd.stop()
    assert got == expected
    assert len(sent) == 1
    assert isinstance(backend, StreamsDeployed)


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


class StreamingBackend:
    """A backend handing its statuses over one at a time, watching what the scan keeps of them."""

    def __init__(self, instance: str, names: list[str], *, fail_after: int | None = None) -> None:
        self.kind, self.instance = "argocd", instance
        self.names = names
        self.fail_after = fail_after
        self.holders: list[int] = []  # references to the previous status when the next is made

    def list_apps(self, **_: object) -> list[AppStatus]:
        raise AssertionError("a streaming backend is read with iter_deployed")

    def iter_deployed(self) -> Iterator[AppStatus]:
        previous: AppStatus | None = None
        for n, name in enumerate(self.names):
            if previous is not None:
                self.holders.append(sys.getrefcount(previous) - 2)  # minus `previous` and the argument
            if n == self.fail_after:
                raise BackendUnavailable(f"argocd:{self.instance}", "connection reset")
            previous = AppStatus(ref=AppRef("argocd", self.instance, name), sync="Synced", health="Degraded")
            yield previous


def test_the_scan_classifies_each_status_as_it_comes_and_keeps_none() -> None:
    backend = StreamingBackend("main", [f"app-{i}" for i in range(50)])

    result = scan([cast(GitOpsBackend, backend)], now=NOW, **WINDOWS)

    assert len(result.findings) == 50
    # Only the scan's loop variable still names the last status when the next is made: no list.
    assert backend.holders == [1] * 49


def test_a_stream_that_fails_half_way_is_unreachable_and_none_of_its_findings_count() -> None:
    broken = StreamingBackend("main", ["a", "b", "c", "d"], fail_after=2)
    other = StreamingBackend("other", ["e"])

    result = scan([cast(GitOpsBackend, broken), cast(GitOpsBackend, other)], now=NOW, **WINDOWS)

    assert result.unreachable == ("argocd:main",)
    assert result.scanned == ("argocd:other",)
    assert [f.key for f in result.findings] == ["argocd:other/-/e:failing"]
