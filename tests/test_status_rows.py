"""Lean list rows (issue 20): each row equals what the full conversion shows, the overview renders
the same message from rows, and it still costs one list request per instance with the same fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers.gitops.status import status_overview
from sandbox.argocd_fake import FakeArgoCD
from services.argocd import ArgoCDBackend, convert, rows
from services.argocd.client import ANNOTATION_FIELD, DEFAULT_LIST_FIELDS, NAME_FIELDS
from services.argocd.payloads import ApplicationPayload
from services.backend import AppRow, SyncRequest
from services.coalesce import CoalescingBackend
from services.errors import BackendUnavailable, PermissionDenied
from services.holds import HoldStore
from services.operations import GitOpsService
from services.store.sqlite import SqliteDatabase
from tests.argocd_fixtures import backend_for
from tests.sandbox_argocd_support import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "shared/contracts/argocd/examples"
APPS = "/api/v1/applications"
BROWSER = "https://argocd.example.com"


def _contract_apps() -> list[ApplicationPayload]:
    found = sorted(EXAMPLES.glob("app-*.json")) if EXAMPLES.is_dir() else []
    if not found:
        pytest.skip("shared Argo CD examples not present")
    return [json.loads(path.read_text()) for path in found]


def test_rows_equal_the_full_conversion_on_the_contracts_applications() -> None:
    apps = _contract_apps()
    full = [AppRow.of(convert.app_status("prod", app, browser_url=BROWSER)) for app in apps]
    assert [rows.row_of("prod", app) for app in apps] == full
    assert rows.decode_rows("prod", json.dumps({"items": apps}).encode()) == full
    # The examples cover an unfinished operation, a finished one and none at all.
    assert {r.running for r in full} >= {"Running", None}
    assert any(r.phase == "Succeeded" for r in full)


def test_a_mistyped_value_is_read_as_the_full_conversion_reads_it() -> None:
    apps: list[dict[str, Any]] = [
        {"metadata": "not an object", "status": {"sync": {"status": 3}}},
        {"metadata": {"name": "web", "labels": {"team": "a", "n": 1}}, "status": {"health": "Healthy"}},
        {"metadata": {"name": "api"}, "status": {"operationState": {"startedAt": "2025-01-01T00:00:00Z"}}},
    ]
    expected = [AppRow.of(convert.app_status("prod", app, browser_url=BROWSER)) for app in apps]  # type: ignore[arg-type]
    assert rows.decode_rows("prod", json.dumps({"items": apps}).encode()) == expected
    assert rows.decode_rows("prod", json.dumps({"items": apps[1:]}).encode()) == expected[1:]
    assert expected[2].running == "Running"  # an operation without a phase yet is under way
    with pytest.raises(ValueError, match="JSON"):
        rows.decode_rows("prod", b"<html>login</html>")


@pytest.fixture
def fleet() -> Iterator[FakeArgoCD]:
    with FakeArgoCD(operation_seconds=30, tick=0.01) as fake:
        fake.bulk_add(40)
        fake.add_app("web", labels={"team": "payments", "tier": "front"}, project="shop")
        fake.add_app("api", labels={"team": "payments"}, project="shop")
        fake.set_health("app-00003", "Degraded", "CrashLoopBackOff")
        fake.set_health("app-00007", "Progressing", "rolling out")
        fake.push_revision("api", image="registry.example.com/api:2.0.0")  # OutOfSync
        yield fake


def _sync_started(fake: FakeArgoCD, backend: ArgoCDBackend) -> None:
    fake.push_revision("web", image="registry.example.com/web:2.0.0")
    ref = backend.find("web")[0]
    backend.sync(ref, SyncRequest())
    # Until the controller picks it up the list has no operation state: compare a settled fleet.
    wait_for(lambda: (op := backend.get(ref).operation) is not None and op.started_at is not None)


def test_rows_from_the_fake_equal_the_full_conversion(fleet: FakeArgoCD) -> None:
    backend = backend_for(fleet)
    _sync_started(fleet, backend)
    for kwargs in ({}, {"annotations": True}, {"selector": "team=payments"}, {"project": "shop"}):
        expected = [AppRow.of(s) for s in backend.list_apps(**kwargs)]
        assert backend.list_rows(**kwargs) == expected
    shown = {r.ref.name: r for r in backend.list_rows()}
    assert shown["web"].running == "Running"
    assert shown["web"].labels == (("team", "payments"), ("tier", "front"))
    assert (shown["api"].sync, shown["app-00003"].health) == ("OutOfSync", "Degraded")
    assert len(shown) == 42


def test_the_overview_renders_the_same_message_from_rows(fleet: FakeArgoCD) -> None:
    backend = backend_for(fleet)
    _sync_started(fleet, backend)
    statuses = sorted(backend.list_apps(), key=lambda a: a.ref.display)
    listed = sorted(backend.list_rows(), key=lambda a: a.ref.display)
    from_rows = status_overview(listed, ["other: connection refused"], "Apps")
    assert from_rows == status_overview(statuses, ["other: connection refused"], "Apps")
    assert "need attention" in from_rows.text
    assert "Running" in json.dumps(from_rows.blocks)  # the unfinished sync is on web's line


def _service(tmp_path: Path, *backends: Any) -> tuple[GitOpsService, SqliteDatabase]:
    class Resolver:  # the one part of AppResolver `overview` reads
        def __init__(self) -> None:
            self.backends = list(backends)

    database = SqliteDatabase(tmp_path / "audit.db")
    service = GitOpsService(Resolver(), HoldStore(database), sync_timeout=timedelta(seconds=5),  # type: ignore[arg-type]
                            batch_concurrency=2)  # fmt: skip
    return service, database


def _lists(fake: FakeArgoCD) -> list[str | None]:
    index = ",".join(NAME_FIELDS)
    return [
        ",".join(r.query.get("fields") or []) or None
        for r in fake.requests(APPS)
        if r.path == APPS and r.method == "GET" and ",".join(r.query.get("fields") or []) != index
    ]


def test_the_overview_makes_one_list_request_per_instance_with_the_same_fields(
    fleet: FakeArgoCD, tmp_path: Path
) -> None:
    with FakeArgoCD() as other:
        other.add_app("edge")
        service, database = _service(
            tmp_path,
            CoalescingBackend(backend_for(fleet), ttl=0),
            CoalescingBackend(backend_for(other), ttl=0),
        )
        try:
            fleet.clear_requests()
            overview = service.overview()
            assert len(overview.apps) == 43
            assert overview.unreachable == ()
            assert all(isinstance(a, AppRow) for a in overview.apps)
            assert [a.ref.display for a in overview.apps] == sorted(a.ref.display for a in overview.apps)
            trimmed = [",".join(DEFAULT_LIST_FIELDS)]
            assert _lists(fleet) == trimmed
            assert _lists(other) == trimmed
            fleet.clear_requests()
            service.overview(selector="team=payments", annotations=True)
            assert _lists(fleet) == [",".join((*DEFAULT_LIST_FIELDS, ANNOTATION_FIELD))]
        finally:
            database.close()


def test_rows_are_cached_like_lists_and_forgotten_after_a_write(fleet: FakeArgoCD) -> None:
    backend = CoalescingBackend(backend_for(fleet), ttl=60)
    fleet.clear_requests()
    first = backend.list_rows()
    assert backend.list_rows() == first
    assert len(_lists(fleet)) == 1
    backend.sync(backend.find("web")[0], SyncRequest())
    backend.list_rows()
    assert len(_lists(fleet)) == 2


def test_a_login_page_or_an_error_is_an_unreachable_instance(fleet: FakeArgoCD) -> None:
    backend = backend_for(fleet)
    fleet.fail_next(
        path=APPS, method="GET", status=200, body="<html>Sign in</html>", content_type="text/html"
    )
    with pytest.raises(BackendUnavailable, match="not Argo CD's API"):
        backend.list_rows()
    fleet.fail_next(path=APPS, method="GET", status=200, body="[1, 2]")
    with pytest.raises(BackendUnavailable, match="not Argo CD's API"):
        backend.list_rows()
    fleet.fail_next(path=APPS, method="GET", status=403, times=1)
    with pytest.raises(PermissionDenied, match="does not allow the bot to list apps"):
        backend.list_rows()
    assert len(backend.list_rows()) == 42  # the next list is whole again
