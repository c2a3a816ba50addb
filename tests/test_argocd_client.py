"""ArgoCDClient against the fake Argo CD: headers, query parameters, retries and the error family."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from services.argocd.client import DEFAULT_LIST_FIELDS, USER_AGENT, ArgoCDClient
from services.argocd.errors import (
    MAX_TEXT,
    ArgoCDAutoSyncRollbackRefused,
    ArgoCDError,
    ArgoCDInvalidArgument,
    ArgoCDNotFound,
    ArgoCDOperationInProgress,
    ArgoCDPermissionDenied,
    ArgoCDUnauthenticated,
    ArgoCDUnavailable,
)
from services.metrics import Metrics
from services.settings.model import ArgoCDInstance
from tests.argocd_fixtures import argocd_client, client_for, fake_argocd, running, slow_argocd, wait_until

__all__ = ["argocd_client", "fake_argocd", "slow_argocd"]  # fixtures used below

SYNC_BODY = {"name": "web", "prune": False, "dryRun": False, "strategy": {"hook": {"force": False}}}


def _no_token(exc: BaseException) -> None:
    """The token appears nowhere in the exception, its cause or its context."""
    seen: BaseException | None = exc
    while seen is not None:
        assert JWT_TOKEN not in str(seen)
        assert JWT_TOKEN not in repr(seen)
        seen = seen.__cause__ or seen.__context__


def test_headers_on_get(fake_argocd: FakeArgoCD, argocd_client: ArgoCDClient) -> None:
    fake_argocd.add_app("web")
    argocd_client.get_app("web")
    (request,) = fake_argocd.requests("/api/v1/applications/web")
    assert request.method == "GET"
    assert "authorization" not in request.headers  # the fake hides it; a 200 proves it was accepted
    assert request.headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("gitops-bot/")
    assert request.status == 200


def test_content_type_on_every_non_get(slow_argocd: FakeArgoCD) -> None:
    fake_argocd, argocd_client = slow_argocd, client_for(slow_argocd)
    fake_argocd.add_app("web")
    argocd_client.sync("web", SYNC_BODY)  # type: ignore[arg-type]
    wait_until(lambda: running(fake_argocd, "web"), what="the sync to start")
    argocd_client.terminate("web")
    argocd_client.patch_app("web", {"metadata": {"labels": {"team": "pay"}}})
    sent = [r for r in fake_argocd.requests() if r.method != "GET"]
    assert [r.method for r in sent] == ["POST", "DELETE", "PATCH"]
    for request in sent:
        assert request.headers["content-type"] == "application/json"
        assert request.status == 200, (request.method, request.body)
    assert fake_argocd.app("web")["metadata"]["labels"] == {"team": "pay"}


def test_fake_rejects_a_bodyless_delete_without_content_type(fake_argocd: FakeArgoCD) -> None:
    """Proves the test above means something: httpx alone omits the header and gets 415."""
    fake_argocd.add_app("web")
    url = f"{fake_argocd.base_url}/api/v1/applications/web/operation"
    response = httpx.delete(url, headers={"Authorization": f"Bearer {JWT_TOKEN}"})
    assert response.status_code == 415
    assert response.text.strip() == "Invalid content type"


def test_list_sends_fields_projects_and_selector(
    fake_argocd: FakeArgoCD, argocd_client: ArgoCDClient
) -> None:
    fake_argocd.add_app("web", project="payments", labels={"team": "pay"})
    fake_argocd.add_app("api", project="payments", labels={"team": "core"})
    fake_argocd.add_app("docs", project="default", labels={"team": "pay"})
    listed = argocd_client.list_apps(projects=("payments", "other"), selector="team=pay")
    assert [a["metadata"]["name"] for a in listed.get("items") or []] == ["web"]
    (request,) = fake_argocd.requests("/api/v1/applications")
    assert request.query["fields"] == [",".join(DEFAULT_LIST_FIELDS)]
    assert request.query["projects"] == ["payments", "other"]
    assert request.query["selector"] == ["team=pay"]
    item = (listed.get("items") or [])[0]
    assert "history" not in item.get("status", {})  # trimmed by the whitelist


def test_list_without_fields_is_untrimmed(fake_argocd: FakeArgoCD, argocd_client: ArgoCDClient) -> None:
    fake_argocd.add_app("web")
    listed = argocd_client.list_apps(fields=None)
    (request,) = fake_argocd.requests("/api/v1/applications")
    assert "fields" not in request.query
    assert (listed.get("items") or [])[0].get("status", {}).get("history")


def test_project_is_sent_and_turns_missing_into_404(
    fake_argocd: FakeArgoCD, argocd_client: ArgoCDClient
) -> None:
    fake_argocd.add_app("web", project="payments")
    assert argocd_client.get_app("web", project="payments")["metadata"]["name"] == "web"
    with pytest.raises(ArgoCDNotFound) as not_found:
        argocd_client.get_app("nope", project="payments")
    with pytest.raises(ArgoCDPermissionDenied) as denied:
        argocd_client.get_app("nope")
    requests = fake_argocd.requests("/api/v1/applications/")
    assert [r.query.get("project") for r in requests] == [["payments"], ["payments"], None]
    assert not_found.value.status == 404
    assert 'applications.argoproj.io "nope" not found' in str(not_found.value)
    assert denied.value.status == 403
    assert denied.value.code == 7


def test_get_retries_on_503_then_succeeds(fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web")
    pauses: list[float] = []
    client = client_for(fake_argocd, sleep=pauses.append, backoff=0.2)
    fake_argocd.fail_next(path="/api/v1/applications/web", method="GET", status=503, times=2)
    assert client.get_app("web")["metadata"]["name"] == "web"
    assert [r.status for r in fake_argocd.requests("/api/v1/applications/web")] == [503, 503, 200]
    assert len(pauses) == 2
    assert 0.1 <= pauses[0] <= 0.3
    assert 0.2 <= pauses[1] <= 0.6


def test_get_gives_up_after_three_tries(fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web")
    client = client_for(fake_argocd, sleep=lambda _: None)
    fake_argocd.fail_next(path="/api/v1/applications/web", method="GET", status=504, times=5)
    with pytest.raises(ArgoCDUnavailable) as caught:
        client.get_app("web")
    assert len(fake_argocd.requests("/api/v1/applications/web")) == 3
    assert caught.value.status == 504


def test_post_is_never_retried(fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web")
    client = client_for(fake_argocd, sleep=lambda _: None)
    fake_argocd.fail_next(path="/api/v1/applications/web/sync", method="POST", status=503)
    with pytest.raises(ArgoCDUnavailable):
        client.sync("web", SYNC_BODY)  # type: ignore[arg-type]
    assert len(fake_argocd.requests("/api/v1/applications/web/sync")) == 1
    assert fake_argocd.app("web").get("operation") is None


def test_bad_token_is_unauthenticated(fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web")
    with pytest.raises(ArgoCDUnauthenticated) as caught:
        client_for(fake_argocd, token="not-a-jwt").get_app("web")
    assert caught.value.status == 401
    assert "no session information" in caught.value.message


def test_operation_in_progress_and_autosync_rollback_are_distinguished(slow_argocd: FakeArgoCD) -> None:
    fake_argocd, argocd_client = slow_argocd, client_for(slow_argocd)
    fake_argocd.add_app("web")
    fake_argocd.add_app("auto", auto_sync=True)
    argocd_client.sync("web", SYNC_BODY)  # type: ignore[arg-type]
    with pytest.raises(ArgoCDOperationInProgress) as busy:
        argocd_client.sync("web", SYNC_BODY)  # type: ignore[arg-type]
    with pytest.raises(ArgoCDAutoSyncRollbackRefused) as refused:
        argocd_client.rollback("auto", 1)
    assert busy.value.status == 400
    assert busy.value.code == 9
    assert refused.value.status == 400
    assert refused.value.code == 9
    assert "auto-sync is enabled" in refused.value.message


def test_rollback_sends_the_id_as_a_json_number(fake_argocd: FakeArgoCD, argocd_client: ArgoCDClient) -> None:
    fake_argocd.add_app("web", project="payments", history=3)
    argocd_client.rollback("web", 2, project="payments")
    (request,) = fake_argocd.requests("/api/v1/applications/web/rollback")
    assert request.body == {"name": "web", "id": 2, "prune": False, "project": "payments"}
    with pytest.raises(ArgoCDInvalidArgument) as caught:
        argocd_client.rollback("web", 99)
    assert "does not have deployment with id 99" in caught.value.message


def test_no_request_of_a_full_flow_is_refused_as_415(slow_argocd: FakeArgoCD) -> None:
    fake_argocd, argocd_client = slow_argocd, client_for(slow_argocd)
    fake_argocd.add_app("web", history=2)
    argocd_client.sync("web", {**SYNC_BODY, "dryRun": True})  # type: ignore[typeddict-item]
    wait_until(lambda: running(fake_argocd, "web"), what="the sync to start")
    argocd_client.terminate("web")
    argocd_client.patch_app("web", {"spec": {"syncPolicy": {"automated": None}}})
    argocd_client.managed_resources("web")
    argocd_client.resource_tree("web")
    assert fake_argocd.requests()
    assert all(r.status != 415 for r in fake_argocd.requests())


def test_proxy_html_is_unavailable_with_bounded_text(fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web")
    page = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 5000 + "</body></html>"
    fake_argocd.fail_next(
        path="/api/v1/applications/web", status=502, body=page, content_type="text/html", times=3
    )
    with pytest.raises(ArgoCDUnavailable) as caught:
        client_for(fake_argocd, sleep=lambda _: None).get_app("web")
    assert caught.value.status == 502
    assert "502 Bad Gateway" in caught.value.message
    assert len(caught.value.message) <= MAX_TEXT
    assert len(str(caught.value)) < MAX_TEXT + 60


def test_connection_refused_is_unavailable(fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web")
    pauses: list[float] = []
    client = client_for(fake_argocd, sleep=pauses.append)
    fake_argocd.go_down()
    try:
        with pytest.raises(ArgoCDUnavailable) as caught:
            client.get_app("web")
    finally:
        fake_argocd.come_up()
    assert "cannot be reached" in caught.value.message
    assert len(pauses) == 2  # connection errors are retried on GET
    assert client.get_app("web")["metadata"]["name"] == "web"  # and it recovers


def test_slow_answer_is_unavailable(fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web")
    client = client_for(fake_argocd, read=0.2)
    fake_argocd.set_latency(1.0)
    try:
        with pytest.raises(ArgoCDUnavailable) as caught:
            client.get_app("web")
    finally:
        fake_argocd.set_latency(0)
    assert "did not answer in time" in caught.value.message


def test_token_never_appears_in_errors(fake_argocd: FakeArgoCD) -> None:
    """Not even when a proxy echoes the Authorization header back in its error page."""
    fake_argocd.add_app("web")
    client = client_for(fake_argocd, sleep=lambda _: None)
    echo = json.dumps(
        {"error": f"bad header Bearer {JWT_TOKEN}", "code": 3, "message": f"Bearer {JWT_TOKEN}"}
    )
    fake_argocd.fail_next(path="/api/v1/applications/web", method="GET", status=400, body=echo)
    fake_argocd.fail_next(path="/api/v1/applications/web/sync", status=502, body=f"<p>{JWT_TOKEN}</p>")
    errors: list[ArgoCDError] = []
    calls: list[Callable[[], object]] = [
        lambda: client.get_app("web"),
        lambda: client.sync("web", SYNC_BODY),  # type: ignore[arg-type]
        lambda: client.get_app("missing"),
        lambda: client_for(fake_argocd, token=JWT_TOKEN[:-1] + "x").get_app("web"),
    ]
    for call in calls:
        with pytest.raises(ArgoCDError) as caught:
            call()
        errors.append(caught.value)
    fake_argocd.go_down()
    try:
        with pytest.raises(ArgoCDError) as down:
            client.get_app("web")
        errors.append(down.value)
    finally:
        fake_argocd.come_up()
    assert len(errors) == 5
    for exc in errors:
        _no_token(exc)
    assert "[token]" in errors[0].message


def test_missing_token_fails_without_a_request(fake_argocd: FakeArgoCD) -> None:
    with pytest.raises(ArgoCDUnavailable) as caught:
        client_for(fake_argocd, token="").version()
    assert caught.value.message == "no token: set ARGOCD_TOKEN"
    assert fake_argocd.requests() == []


def test_version_and_metrics(fake_argocd: FakeArgoCD) -> None:
    metrics = Metrics()
    client = client_for(fake_argocd, metrics=metrics)
    assert client.version()["Version"] == "v3.6.0+sandbox"
    with pytest.raises(ArgoCDPermissionDenied):
        client.get_app("missing")
    rendered = metrics.render().decode()
    assert (
        'gitops_bot_backend_request_seconds_count{backend="argocd:sandbox",operation="version"} 1.0'
        in rendered
    )
    assert 'operation="get"' in rendered
    assert (
        'gitops_bot_backend_errors_total{backend="argocd:sandbox",kind="ArgoCDPermissionDenied"' in rendered
    )


def test_base_url_path_prefix_and_long_timeout_for_refresh() -> None:
    """A server started with --rootpath: every route sits under the prefix."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"metadata": {"name": "web"}})

    instance = ArgoCDInstance(name="prod", url="https://argocd.example.com/argocd/", token_env="T")
    client = ArgoCDClient(instance, JWT_TOKEN, transport=httpx.MockTransport(handler))
    client.get_app("web", refresh="hard")
    client.get_app("web")
    assert [r.url.path for r in seen] == ["/argocd/api/v1/applications/web"] * 2
    assert seen[0].headers["authorization"] == f"Bearer {JWT_TOKEN}"
    assert seen[0].headers["user-agent"] == USER_AGENT
    assert seen[0].url.params["refresh"] == "hard"
    assert seen[0].extensions["timeout"]["read"] >= 60
    assert seen[1].extensions["timeout"]["read"] == instance.timeouts.read


def test_non_json_success_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, text="<html>Sign in with SSO</html>", headers={"Content-Type": "text/html"}
        )

    instance = ArgoCDInstance(name="prod", url="https://argocd.example.com", token_env="T")
    client = ArgoCDClient(instance, JWT_TOKEN, transport=httpx.MockTransport(handler))
    with pytest.raises(ArgoCDUnavailable) as caught:
        client.version()
    assert "other than JSON" in caught.value.message
