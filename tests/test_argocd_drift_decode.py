"""The drift scan's list read from the bytes (issue 20): every `AppStatus` equals the dict
conversion's, on the fake, on the contract's real Applications and on mistyped payloads, with the
same single list request and the same `fields=`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sandbox.argocd_fake import FakeArgoCD
from services.argocd import convert, drift_rows
from services.argocd.client import DEFAULT_LIST_FIELDS, DEPLOYED_FIELDS
from services.argocd.payloads import ApplicationPayload
from services.argocd.transport import NotAnObject
from services.backend import AppStatus, SyncRequest
from tests.argocd_fixtures import INSTANCE, backend_for, client_for
from tests.sandbox_argocd_support import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "shared/contracts/argocd/examples"
BROWSER = "https://argocd.example.com"


def _dict_path(
    apps: list[Any], *, trimmed: bool, instance: str = "prod", browser: str = BROWSER
) -> list[AppStatus]:
    """What `list_apps(deployed=True)` returned before: each item converted from dicts."""
    return [convert.app_status(instance, app, browser_url=browser, trimmed=trimmed) for app in apps]


def _statuses(body: bytes, *, trimmed: bool) -> list[AppStatus]:
    """What the backend's drift list gives for this body: `split`, then every status."""
    return list(
        drift_rows.iter_statuses("prod", drift_rows.split(body), browser_url=BROWSER, trimmed=trimmed)
    )


def _decode(apps: list[Any], *, trimmed: bool) -> list[AppStatus]:
    return _statuses(json.dumps({"items": apps}).encode(), trimmed=trimmed)


@pytest.fixture(scope="module")
def fleet() -> Iterator[FakeArgoCD]:
    """Apps in every state drift tells apart: degraded, Git ahead, live changed, failed and
    succeeded syncs, an operation under way."""
    fake = FakeArgoCD(operation_seconds=0.05, tick=0.02).start()
    try:
        fake.bulk_add(6, prefix="app-")
        fake.set_health("app-00000", "Degraded", "Back-off restarting failed container")
        fake.push_revision("app-00001", image="registry.example.com/web:2.0.0")
        fake.drift("app-00002", replicas=5)
        backend = backend_for(fake)
        fake.fail_next_sync("app-00003", message="one or more objects failed to apply")
        for name in ("app-00003", "app-00004"):
            backend.sync(backend.find(name)[0], SyncRequest())
        wait_for(lambda: all(
            (fake.app(n)["status"].get("operationState") or {}).get("finishedAt")
            for n in ("app-00003", "app-00004")
        ))  # fmt: skip
        fake.push_revision("app-00005")
        backend.sync(backend.find("app-00005")[0], SyncRequest())  # may still run when listed
        yield fake
    finally:
        fake.stop()


def test_the_fakes_drift_list_equals_the_dict_conversion_with_the_same_request(fleet: FakeArgoCD) -> None:
    backend = backend_for(fleet)
    fields = (*DEFAULT_LIST_FIELDS, *DEPLOYED_FIELDS)
    with client_for(fleet) as client:
        raw = client.list_apps(fields=fields).get("items") or []
    fleet.clear_requests()
    got = backend.list_apps(deployed=True)

    sent = fleet.requests("/api/v1/applications")
    assert [(r.method, r.path, r.query) for r in sent] == [
        ("GET", "/api/v1/applications", {"fields": [",".join(fields)]})
    ]
    # The fake may have moved on between the two lists only for the app still syncing.
    still = {"app-00005"}
    expected = _dict_path(raw, trimmed=True, instance=INSTANCE, browser=backend.settings.browser_url)
    assert [s for s in got if s.ref.name not in still] == [s for s in expected if s.ref.name not in still]
    assert [s.ref.name for s in got] == [f"app-{i:05d}" for i in range(6)]
    # The fleet really holds what drift reads: a failed sync, a degraded app, a counted sync result.
    by_name = {s.ref.name: s for s in got}
    assert by_name["app-00000"].health == "Degraded"
    failed = by_name["app-00003"].operation
    assert failed is not None
    assert failed.phase == "Failed"
    assert failed.resources_total > 0
    assert by_name["app-00001"].revision != by_name["app-00001"].source_revision


def test_an_untrimmed_drift_list_equals_the_dict_conversion(fleet: FakeArgoCD) -> None:
    backend = backend_for(fleet, list_fields=None)
    with client_for(fleet) as client:
        raw = client.list_apps(fields=None).get("items") or []
    got = {s.ref.name: s for s in backend.list_apps(deployed=True)}
    assert len(got) == len(raw) == 6
    for status in _dict_path(raw, trimmed=False, instance=INSTANCE, browser=backend.settings.browser_url):
        if status.ref.name != "app-00005":
            assert got[status.ref.name] == status


def test_the_contracts_applications_decode_to_the_dict_conversion() -> None:
    found = sorted(EXAMPLES.glob("app-*.json")) if EXAMPLES.is_dir() else []
    if not found:
        pytest.skip("shared Argo CD examples not present")
    apps: list[ApplicationPayload] = [json.loads(path.read_text()) for path in found]
    for trimmed in (True, False):
        expected = _dict_path(apps, trimmed=trimmed)
        assert _decode(apps, trimmed=trimmed) == expected
    # The examples carry what the structs must keep: history, resources, a sync result, conditions.
    assert any(s.resources for s in expected)
    assert any(s.conditions for s in expected)
    assert any(s.operation is not None and s.operation.resources_total for s in expected)


def _opstate(**extra: object) -> dict[str, object]:
    return {"metadata": {"name": "api"}, "status": {"operationState": {"phase": "Succeeded", **extra}}}


def test_explicit_nulls_and_odd_leaves_take_the_fast_path_and_still_equal() -> None:
    apps: list[Any] = [
        {"metadata": {"name": "web", "labels": {"team": "a", "n": 1}}, "status": {"sync": None}},
        _opstate(operation={"sync": None}),  # present but null: `convert` still sees an operation
        _opstate(operation={"sync": {"revision": "abc", "resources": [{"kind": "Job"}, {}]}}),
        {"metadata": {"name": "odd"}, "status": {"health": "Healthy", "conditions": [3, {"type": "X"}]}},
        {"operation": {}, "spec": {"sources": [{"repoURL": "r", "chart": "c"}]}},
    ]
    _structs_accept(apps)
    assert _decode(apps, trimmed=True) == _dict_path(apps, trimmed=True)
    assert _decode(apps, trimmed=False) == _dict_path(apps, trimmed=False)


def _structs_accept(apps: list[Any]) -> None:
    for app in apps:
        drift_rows._APP.decode(json.dumps(app).encode())


@pytest.mark.parametrize(
    "app",
    [
        {"metadata": "not an object", "status": {"sync": {"status": 3}}},
        {"status": {"resources": "none"}},
        {"status": {"resources": [{"kind": "Pod", "health": {"status": "Missing"}}, "junk"]}},
        _opstate(operation={"sync": {"resources": [1, {"kind": "Job"}]}}),
        _opstate(operation={"retryLater": True}),  # an unknown key would vanish and empty the object
        _opstate(unknownKey="x"),
    ],
)
def test_a_mistyped_payload_falls_back_to_the_dict_path_and_still_equals(app: dict[str, Any]) -> None:
    apps: list[Any] = [app, _opstate(operation={"sync": {"revision": "abc"}})]
    with pytest.raises(msgspec.ValidationError):
        _structs_accept(apps[:1])  # the structs refuse it, so that app is read as dicts
    for trimmed in (True, False):
        assert _decode(apps, trimmed=trimmed) == _dict_path(apps, trimmed=trimmed)


def test_bodies_that_are_no_list_are_read_as_the_dict_path_reads_them() -> None:
    def read(body: bytes) -> list[AppStatus]:
        return _statuses(body, trimmed=True)

    for empty in (b"", b"{}", b'{"items": null}'):
        assert read(empty) == []
    with pytest.raises(NotAnObject):
        read(b"[1]")
    with pytest.raises(msgspec.DecodeError):  # the transport reports it as "not JSON"
        read(b"<html>login</html>")
