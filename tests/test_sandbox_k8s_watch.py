"""Watches on the fake Kubernetes API server, driven by the official client's `kubernetes.watch.Watch`."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from sandbox.flux_fake import FakeKubernetes
from sandbox.flux_git import commit_file
from tests.sandbox_flux_support import (
    FIELD_MANAGER,
    GIT,
    HR,
    KS,
    NS,
    Flux,
    api_client,
    deployment,
    request_reconcile,
    start_kube,
    wait_for,
)

Event = dict[str, Any]
KS_PATH = "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations"


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[FakeKubernetes, Path]]:
    kube, _, work = start_kube(tmp_path)
    try:
        kube.wait_idle()  # the first reconciles of the fixture objects are done
        yield kube, work
    finally:
        kube.stop()


@pytest.fixture
def kube(started: tuple[FakeKubernetes, Path]) -> FakeKubernetes:
    return started[0]


@pytest.fixture
def api(kube: FakeKubernetes, tmp_path: Path) -> Iterator[client.ApiClient]:
    with api_client(kube, tmp_path) as loaded:
        yield loaded


@pytest.fixture
def flux(api: client.ApiClient) -> Flux:
    return Flux(api)


def stream(api: client.ApiClient, target: tuple[str, str, str], **options: Any) -> Iterator[Event]:
    """`Watch().stream` of a cluster-wide list (a namespaced one with `namespace=`), raw objects."""
    objects = client.CustomObjectsApi(api)
    group, version, plural = target
    namespace = options.pop("namespace", None)
    if namespace is None:
        return watch.Watch().stream(objects.list_cluster_custom_object, group, version, plural, **options)  # type: ignore[no-untyped-call,no-any-return]
    return watch.Watch().stream(  # type: ignore[no-untyped-call,no-any-return]
        objects.list_namespaced_custom_object, group, version, namespace, plural, **options
    )


def collect(events: Iterator[Event], until: Callable[[list[Event]], bool] | None = None) -> list[Event]:
    """Events until `until` holds (then the watch is closed) or the server ends the stream."""
    seen: list[Event] = []
    try:
        for event in events:
            seen.append(event)
            if until is not None and until(seen):
                break
    finally:
        getattr(events, "close", lambda: None)()
    return seen


def count(n: int) -> Callable[[list[Event]], bool]:
    return lambda seen: len(seen) >= n


def count_is(seen: list[Event], n: int) -> Callable[[], bool]:
    return lambda: len(seen) == n


def brief(events: list[Event]) -> list[tuple[str, str]]:
    return [(e["type"], e["raw_object"]["metadata"].get("name", "")) for e in events]


def label(flux: Flux, name: str, **labels: str | None) -> dict[str, Any]:
    return flux.patch(KS, name, {"metadata": {"labels": labels}}, field_manager=FIELD_MANAGER)


def test_list_then_watch_sees_a_reconcile_as_modified(
    started: tuple[FakeKubernetes, Path], flux: Flux
) -> None:
    kube, work = started
    listing = flux.list(KS, None)
    sha = commit_file(work, "apps/podinfo/deployment.yaml", deployment("podinfo", "apps", 3), "Scale up")
    kube.fetch_sources()
    revision = f"main@sha1:{sha}"
    assert flux.get(GIT, "flux-system")["status"]["artifact"]["revision"] == revision
    request_reconcile(flux, KS, "apps", "2026-01-02T03:04:05Z")

    def applied(seen: list[Event]) -> bool:
        return bool(seen[-1]["raw_object"].get("status", {}).get("lastAppliedRevision") == revision)

    events = collect(
        stream(flux.co.api_client, KS, resource_version=listing["metadata"]["resourceVersion"],
               timeout_seconds=10),
        applied,
    )  # fmt: skip
    assert {t for t, _ in brief(events)} == {"MODIFIED"}  # only changes after the list: no ADDED
    assert {n for _, n in brief(events)} == {"apps"}
    versions = [int(e["raw_object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)
    assert versions[0] > int(listing["metadata"]["resourceVersion"])
    assert events[0]["raw_object"]["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
    # Encoded exactly as GET serves it (the reconcile is over, nothing changed since).
    kube.wait_idle()
    assert events[-1]["raw_object"] == flux.get(KS, "apps")


def test_no_resource_version_starts_with_the_current_state(kube: FakeKubernetes, flux: Flux) -> None:
    api = flux.co.api_client
    cluster = brief(collect(stream(api, KS, timeout_seconds=5), count(2)))
    assert cluster == [("ADDED", "apps"), ("ADDED", "infra")]
    from_zero = collect(stream(api, KS, namespace=NS, resource_version="0", timeout_seconds=5), count(2))
    assert [e["raw_object"] for e in from_zero] == flux.list(KS)["items"]
    assert collect(stream(api, KS, namespace="elsewhere", timeout_seconds=1)) == []


def test_events_are_served_in_the_requested_version(tmp_path: Path) -> None:
    kube, _, _ = start_kube(tmp_path, served={"helm.toolkit.fluxcd.io": ["v2", "v2beta1"]})
    try:
        kube.wait_idle()
        with api_client(kube, tmp_path) as api:
            legacy = ("helm.toolkit.fluxcd.io", "v2beta1", "helmreleases")
            events = collect(stream(api, legacy, timeout_seconds=5), count(1))
            assert [e["raw_object"] for e in events] == [Flux(api).get(legacy, "podinfo")]
            assert "history" not in events[0]["raw_object"]["status"]
            current = collect(stream(api, HR, timeout_seconds=5), count(1))
            assert [e["raw_object"] for e in current] == [Flux(api).get(HR, "podinfo")]
            assert current[0]["raw_object"]["status"]["history"]
    finally:
        kube.stop()


def test_selectors_filter_and_objects_move_in_and_out(kube: FakeKubernetes, flux: Flux) -> None:
    api = flux.co.api_client
    # Without the selector "apps" would come first (key order).
    platform = collect(stream(api, KS, label_selector="team=platform", timeout_seconds=5), count(1))
    assert brief(platform) == [("ADDED", "infra")]
    by_name = collect(stream(api, KS, field_selector="metadata.name!=apps", timeout_seconds=5), count(1))
    assert brief(by_name) == [("ADDED", "infra")]
    start = flux.list(KS)["metadata"]["resourceVersion"]
    label(flux, "apps", team="ops")  # leaves the selection
    label(flux, "infra", team="web")  # enters it
    label(flux, "infra", note="x")  # stays in it
    label(flux, "apps", note="y")  # stays out
    label(flux, "infra", note="z")
    events = collect(
        stream(api, KS, label_selector="team=web", resource_version=start, timeout_seconds=10), count(4)
    )
    assert brief(events) == [
        ("DELETED", "apps"), ("ADDED", "infra"), ("MODIFIED", "infra"), ("MODIFIED", "infra"),
    ]  # fmt: skip
    assert events[0]["raw_object"]["metadata"]["labels"]["team"] == "ops"  # the object as it is now
    code = collect_error(
        lambda: collect(stream(api, KS, field_selector="spec.path=./apps", timeout_seconds=1))
    )
    assert code == 400  # custom resources index only metadata.name / metadata.namespace


def collect_error(call: Callable[[], Any]) -> int:
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    raise AssertionError("the watch did not fail")


def test_resume_from_a_saved_version_after_a_cut_loses_nothing(kube: FakeKubernetes, flux: Flux) -> None:
    api = flux.co.api_client
    start = flux.list(KS)["metadata"]["resourceVersion"]
    first: list[Event] = []

    def read() -> None:
        for event in stream(api, KS, resource_version=start, timeout_seconds=20):
            first.append(event)

    reader = threading.Thread(target=read)
    reader.start()
    wait_for(lambda: kube.cluster.open_watches() == 1)
    for n in range(1, 4):
        label(flux, "apps", step=str(n))
    wait_for(lambda: len(first) == 3)
    kube.cluster.cut_watches()
    reader.join(timeout=2)
    assert not reader.is_alive()  # the body ended: the client's stream is over
    assert kube.cluster.open_watches() == 0
    saved = first[-1]["raw_object"]["metadata"]["resourceVersion"]
    for n in range(4, 7):  # while nobody watches
        label(flux, "apps", step=str(n))
    second = collect(stream(api, KS, resource_version=saved, timeout_seconds=10), lambda seen: len(seen) == 3)
    steps = [e["raw_object"]["metadata"]["labels"]["step"] for e in first + second]
    assert steps == ["1", "2", "3", "4", "5", "6"]  # nothing lost, nothing twice


def test_the_client_resumes_by_itself_after_a_cut(kube: FakeKubernetes, flux: Flux) -> None:
    api = flux.co.api_client
    start = flux.list(KS)["metadata"]["resourceVersion"]
    seen: list[Event] = []
    watcher = watch.Watch()  # type: ignore[no-untyped-call]
    objects = client.CustomObjectsApi(api)

    def read() -> None:
        # No timeout_seconds: the client re-watches from its last resourceVersion when a stream ends.
        events = watcher.stream(objects.list_cluster_custom_object, *KS, resource_version=start)  # type: ignore[no-untyped-call]
        with contextlib.suppress(Exception):  # stop() shuts the socket under the read
            seen.extend(events)

    reader = threading.Thread(target=read)
    reader.start()
    for n in range(1, 7):
        wait_for(lambda: kube.cluster.open_watches() == 1)
        label(flux, "apps", step=str(n))
        wait_for(count_is(seen, n))
        if n % 2 == 0:
            kube.cluster.cut_watches()
    watcher.stop()  # type: ignore[no-untyped-call]
    reader.join(timeout=3)
    assert not reader.is_alive()
    steps = [e["raw_object"]["metadata"]["labels"]["step"] for e in seen]
    assert steps[:6] == ["1", "2", "3", "4", "5", "6"]
    resumed = [r for r in kube.requests(KS_PATH) if r.query.get("watch")]
    assert len(resumed) >= 3  # the first watch and one per cut (the last may race the stop)
    assert resumed[1].query["resourceVersion"] == [seen[1]["raw_object"]["metadata"]["resourceVersion"]]


def test_a_compacted_version_is_410_expired(kube: FakeKubernetes, flux: Flux) -> None:
    api = flux.co.api_client
    old = flux.list(KS)["metadata"]["resourceVersion"]
    label(flux, "apps", step="1")
    kube.cluster.compact()
    current = flux.list(KS)["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as raised:
        collect(stream(api, KS, resource_version=old, timeout_seconds=5))
    assert raised.value.status == 410
    assert raised.value.reason == f"Expired: too old resource version: {old} ({current})"
    # Without a timeout the client retries once from the same version, then gives up the same way.
    with pytest.raises(ApiException) as again:
        collect(stream(api, KS, resource_version=old))
    assert again.value.status == 410
    # On the wire: 200, then one ERROR event carrying the Status, then the end.
    reply = httpx.get(
        f"{kube.base_url}{KS_PATH}",
        params={"watch": "true", "resourceVersion": old},
        headers={"Authorization": f"Bearer {kube.token}"},
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["transfer-encoding"] == "chunked"
    assert [json.loads(line) for line in reply.text.splitlines()] == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": f"too old resource version: {old} ({current})", "reason": "Expired", "code": 410,
            },
        }
    ]  # fmt: skip
    # From the compaction point on, watching works again.
    label(flux, "apps", step="2")
    events = collect(stream(api, KS, resource_version=current, timeout_seconds=5), lambda seen: True)
    assert events[0]["raw_object"]["metadata"]["labels"]["step"] == "2"


def test_bookmarks_carry_the_current_version(kube: FakeKubernetes, flux: Flux) -> None:
    kube.cluster.bookmark_seconds = 0.2
    api = flux.co.api_client
    start = flux.list(KS)["metadata"]["resourceVersion"]
    label(flux, "apps", step="1")
    events = collect(
        stream(api, KS, resource_version=start, allow_watch_bookmarks=True, timeout_seconds=5),
        lambda seen: seen[-1]["type"] == "BOOKMARK",
    )
    assert [t for t, _ in brief(events)] == ["MODIFIED", "BOOKMARK"]
    with kube.cluster.store.lock:
        now = kube.cluster.store.resource_version
    assert events[-1]["raw_object"] == {
        "kind": "Kustomization",
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "metadata": {"resourceVersion": str(now)},
    }
    assert int(events[-1]["raw_object"]["metadata"]["resourceVersion"]) >= int(
        events[0]["raw_object"]["metadata"]["resourceVersion"]
    )


def test_timeout_seconds_ends_the_stream_without_bookmarks_unless_asked(
    kube: FakeKubernetes, flux: Flux
) -> None:
    kube.cluster.bookmark_seconds = 0.2
    start = flux.list(KS)["metadata"]["resourceVersion"]
    began = time.monotonic()
    events = collect(stream(flux.co.api_client, KS, resource_version=start, timeout_seconds=1))
    elapsed = time.monotonic() - began
    assert events == []  # nothing changed, and no bookmarks were asked for
    assert 0.9 <= elapsed < 2.5
    wait_for(lambda: kube.cluster.open_watches() == 0, timeout=1)


def test_watch_needs_the_watch_verb(kube: FakeKubernetes, flux: Flux) -> None:
    kube.forbid("watch", "kustomizations", namespace=NS)
    with pytest.raises(ApiException) as raised:
        collect(stream(flux.co.api_client, KS, namespace=NS, timeout_seconds=1))
    assert raised.value.status == 403
    body = json.loads(raised.value.body or "{}")
    assert body["reason"] == "Forbidden"
    assert 'cannot watch resource "kustomizations"' in body["message"]
    assert flux.list(KS)["items"]  # list is still allowed
    assert kube.cluster.open_watches() == 0


def test_stop_with_an_open_watch_is_prompt(tmp_path: Path) -> None:
    kube, _, _ = start_kube(tmp_path)
    kube.cluster.bookmark_seconds = 0.2
    outcome: list[BaseException | None] = []
    with api_client(kube, tmp_path) as api:

        def read() -> None:
            try:
                collect(stream(api, KS, allow_watch_bookmarks=True, timeout_seconds=30))
                outcome.append(None)
            except Exception as exc:  # the connection dies under the client
                outcome.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        wait_for(lambda: kube.cluster.open_watches() == 1)
        began = time.monotonic()
        kube.stop()
        assert time.monotonic() - began < 1.0
        reader.join(timeout=1.0)
        assert not reader.is_alive()
        assert len(outcome) == 1
        wait_for(lambda: kube.cluster.open_watches() == 0, timeout=1.0)  # the server side ended too
