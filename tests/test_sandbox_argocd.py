"""The fake Argo CD speaks the documented REST contract (docs/argocd-api.md) over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD, Upstream
from tests.sandbox_argocd_support import (
    AUTH,
    JSON,
    ManualClock,
    error,
    get_app,
    settled,
    wait_for,
)


def test_auth_is_required_and_bad_tokens_get_the_documented_401s(argocd: FakeArgoCD) -> None:
    with httpx.Client(base_url=argocd.base_url) as anonymous:
        missing = anonymous.get("/api/v1/applications")
        not_jwt = anonymous.get("/api/v1/applications", headers={"Authorization": "Bearer opaque"})
        forged = JWT_TOKEN.rsplit(".", 1)[0] + ".b3RoZXItc2lnbmF0dXJl"
        wrong = anonymous.get("/api/v1/applications", headers={"Authorization": f"Bearer {forged}"})
        version = anonymous.get("/api/version").json()
        userinfo = anonymous.get("/api/v1/session/userinfo")
        good_version = anonymous.get("/api/version", headers=AUTH).json()
        good_userinfo = anonymous.get("/api/v1/session/userinfo", headers=AUTH).json()

    assert error(missing) == (401, 16, "no session information")
    assert error(not_jwt) == (401, 16, "no session information")
    assert error(wrong) == (401, 16, "invalid session: token signature is invalid")
    assert version == {"Version": "v3.6.0+sandbox"}
    assert userinfo.status_code == 200
    assert "loggedIn" not in userinfo.json()
    assert {"Version", "BuildDate", "GitCommit", "KubectlVersion", "HelmVersion"} <= set(good_version)
    assert good_userinfo == {"loggedIn": True, "username": "gitops-bot", "iss": "argocd"}


def test_non_get_requests_need_exactly_application_json(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web")
    bare = client.post("/api/v1/applications/web/sync", content=b"{}")
    charset = client.post(
        "/api/v1/applications/web/sync",
        content=b"{}",
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    delete_bare = client.delete("/api/v1/applications/web/operation")
    delete_json = client.delete("/api/v1/applications/web/operation", headers=JSON)
    upper = client.post(
        "/api/v1/applications/web/sync", content=b"{}", headers={"Content-Type": "Application/JSON"}
    )

    for response in (bare, charset, delete_bare):
        assert response.status_code == 415
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == "Invalid content type"
    assert error(delete_json) == (400, 3, "Unable to terminate operation. No operation is in progress")
    assert upper.status_code == 200


def test_unknown_routes_and_methods(client: httpx.Client) -> None:
    assert error(client.get("/api/v1/nope")) == (404, 5, "Not Found")
    assert client.put("/api/v1/applications/web/sync", json={}).status_code == 405


# -- list ---------------------------------------------------------------------------------------------


def test_list_filters_by_selector_projects_name_and_repo(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("pay-api", project="payments", labels={"team": "pay", "tier": "api"})
    argocd.add_app(
        "pay-web", project="payments", labels={"team": "pay"}, repo_url="https://git.example.com/web.git"
    )
    argocd.add_app("core-db", project="core", labels={"team": "core"})
    argocd.add_app("loner", project="core")

    def names(**params: Any) -> list[str]:
        response = client.get("/api/v1/applications", params=params)
        assert response.status_code == 200, response.text
        return [item["metadata"]["name"] for item in response.json()["items"]]

    assert names() == ["core-db", "loner", "pay-api", "pay-web"]
    assert names(selector="team=pay") == ["pay-api", "pay-web"]
    assert names(selector="team==pay,tier") == ["pay-api"]
    assert names(selector="team!=pay") == ["core-db", "loner"]
    assert names(selector="team in (core, pay),!tier") == ["core-db", "pay-web"]
    assert names(selector="team notin (pay)") == ["core-db", "loner"]
    assert names(selector="!team") == ["loner"]
    assert names(projects=["payments", "core"]) == ["core-db", "loner", "pay-api", "pay-web"]
    assert names(projects="core") == ["core-db", "loner"]
    assert names(project="payments", projects="core") == ["pay-api", "pay-web"]  # legacy wins
    assert names(name="pay-web") == ["pay-web"]
    assert names(repo="https://git.example.com/web.git") == ["pay-web"]

    bad = client.get("/api/v1/applications", params={"selector": "team in pay"})
    status, code, message = error(bad)
    assert (status, code) == (500, 2)
    assert message.startswith("error parsing the selector: ")


def test_list_fields_keep_only_the_whitelist(argocd: FakeArgoCD, client: httpx.Client) -> None:
    for index in range(5):
        argocd.add_app(f"app-{index}", labels={"team": "pay"})
    full = client.get("/api/v1/applications")
    fields = ",".join(
        [
            "items.metadata.name",
            "items.spec.project",
            "items.status.sync.status",
            "items.status.health",
            "items.status.history",  # not on the whitelist: silently dropped
            "items.status.operationState.phase",
            "items.metadata.resourceVersion",  # not on the whitelist either
        ]
    )
    trimmed = client.get("/api/v1/applications", params={"fields": fields})
    excluded = client.get("/api/v1/applications", params={"fields": "-items.status.resources"})

    assert len(trimmed.content) * 5 < len(full.content)
    body = trimmed.json()
    assert body["metadata"]["resourceVersion"]
    assert body["items"][0] == {
        "metadata": {"name": "app-0"},
        "spec": {"project": "default"},
        "status": {
            "sync": {"status": "Synced"},
            "health": {"status": "Healthy"},
            "operationState": {"phase": "Succeeded"},
        },
    }
    assert "kind" not in body["items"][0]
    assert "apiVersion" not in body["items"][0]
    assert full.json()["items"][0]["kind"] == "Application"
    item = excluded.json()["items"][0]
    assert "resources" not in item["status"]
    assert "history" not in item["status"]
    assert item["status"]["summary"]["images"] == ["registry.example.com/app-0:1.0.0"]
    assert item["metadata"]["labels"] == {"team": "pay"}


# -- get and the anti-enumeration rule -----------------------------------------------------------------


def test_get_returns_403_without_project_and_404_with_one(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web", project="shop")
    argocd.add_app("secret", project="shop")
    argocd.forbid("secret")
    not_found = (404, 5, 'applications.argoproj.io "ghost" not found')

    assert error(client.get("/api/v1/applications/ghost")) == (403, 7, "permission denied")
    assert error(client.get("/api/v1/applications/ghost", params={"project": "shop"})) == not_found
    assert error(client.get("/api/v1/applications/secret")) == (403, 7, "permission denied")
    assert error(client.get("/api/v1/applications/secret", params={"projects": "shop"}))[0] == 404
    assert error(client.get("/api/v1/applications/web", params={"project": "other"}))[0] == 404
    assert client.get("/api/v1/applications/web", params={"project": "shop"}).status_code == 200
    assert error(client.get("/api/v1/applications/web", params={"projects": ["a", "b"]})) == (
        400,
        3,
        "multiple projects specified - the get endpoint accepts either zero or one project",
    )
    listed = [i["metadata"]["name"] for i in client.get("/api/v1/applications").json()["items"]]
    assert listed == ["web"]


def test_get_app_has_the_shape_of_the_contract_examples(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web", project="shop", labels={"team": "pay"}, history=3)
    app = get_app(client, "web")

    assert set(app["metadata"]) >= {
        "name",
        "namespace",
        "labels",
        "resourceVersion",
        "uid",
        "creationTimestamp",
    }
    assert app["spec"]["source"]["targetRevision"] == "HEAD"
    assert app["spec"]["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "web"}
    status = app["status"]
    assert [entry["id"] for entry in status["history"]] == [1, 2, 3]
    assert all(
        len(entry["revision"]) == 40 and entry["deployedAt"].endswith("Z") for entry in status["history"]
    )
    assert status["sync"]["status"] == "Synced"
    assert status["sync"]["revision"] == status["history"][-1]["revision"]
    assert status["health"] == {"status": "Healthy"}
    assert status["operationState"]["phase"] == "Succeeded"
    assert {r["kind"] for r in status["resources"]} == {"Deployment", "Service", "ConfigMap"}
    assert argocd.app("web") == app


def test_refresh_returns_after_the_controller_reconciled(
    argocd: FakeArgoCD, client: httpx.Client, clock: ManualClock
) -> None:
    argocd.add_app("web")
    before = get_app(client, "web")["status"]["reconciledAt"]
    clock.now += 120
    refreshed = client.get("/api/v1/applications/web", params={"refresh": "hard"}).json()

    assert refreshed["status"]["reconciledAt"] > before
    assert "argocd.argoproj.io/refresh" not in (refreshed["metadata"].get("annotations") or {})


# -- sync ---------------------------------------------------------------------------------------------


def test_sync_runs_in_the_controller_and_appends_history(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web")
    sha = argocd.push_revision("web", image="registry.example.com/web:2.0.0", message="bump web")
    assert get_app(client, "web")["status"]["sync"]["status"] == "OutOfSync"

    started = client.post(
        "/api/v1/applications/web/sync",
        json={"prune": True, "infos": [{"name": "slack-user", "value": "@al"}]},
    )
    assert started.status_code == 200, started.text
    operation = started.json()["operation"]
    assert operation["sync"] == {"revision": sha, "prune": True, "syncOptions": ["CreateNamespace=true"]}
    assert operation["initiatedBy"] == {"username": "gitops-bot"}
    assert operation["info"] == [{"name": "slack-user", "value": "@al"}]

    busy = client.post("/api/v1/applications/web/sync", json={})  # the operation is set: deterministic
    assert error(busy) == (400, 9, "another operation is already in progress")

    done = settled(client, "web")
    state = done["status"]["operationState"]
    assert state["phase"] == "Succeeded"
    assert state["message"] == "successfully synced (all tasks run)"
    assert {r["status"] for r in state["syncResult"]["resources"]} == {"Synced"}
    assert "operation" not in done
    assert done["status"]["sync"] == {**done["status"]["sync"], "status": "Synced", "revision": sha}
    last = done["status"]["history"][-1]
    assert (last["id"], last["revision"], last["initiatedBy"]) == (4, sha, {"username": "gitops-bot"})
    assert done["status"]["summary"]["images"] == ["registry.example.com/web:2.0.0"]


def test_an_app_can_mirror_real_commits(argocd: FakeArgoCD, client: httpx.Client) -> None:
    """The demo feeds its deploy repository's commits in: the API reports their SHAs, authors and dates."""
    real = [
        Upstream(
            "1" * 40, "Ann <ann@example.com>", "2024-05-02T10:00:00Z", "web 1.0", "r.example/web:1.0", 2
        ),
        Upstream(
            "2" * 40, "Bob <bob@example.com>", "2024-05-02T11:00:00Z", "web 1.1\n\nbody", "r.example/web:1.1"
        ),
    ]
    argocd.add_app("web", commits=real)
    status = get_app(client, "web")["status"]
    assert [(h["id"], h["revision"]) for h in status["history"]] == [(1, "1" * 40), (2, "2" * 40)]
    assert status["history"][0]["deployedAt"] == "2024-05-02T10:01:00Z"  # a minute after the commit
    assert (status["sync"]["status"], status["sync"]["revision"]) == ("Synced", "2" * 40)
    assert status["summary"]["images"] == ["r.example/web:1.1"]
    meta = client.get("/api/v1/applications/web/revisions/2222222/metadata").json()
    assert meta == {
        "author": "Bob <bob@example.com>",
        "date": "2024-05-02T11:00:00Z",
        "message": "web 1.1\n\nbody",
    }

    sha = argocd.push_revision("web", image="r.example/web:1.2", sha="3" * 40, date="2024-05-02T12:00:00Z")
    assert sha == "3" * 40
    client.post("/api/v1/applications/web/sync", json={})
    done = settled(client, "web")
    assert done["status"]["operationState"]["syncResult"]["revision"] == sha
    assert done["status"]["history"][-1]["revision"] == sha
    with pytest.raises(ValueError, match="not a full commit SHA"):
        argocd.push_revision("web", sha="not-a-sha")


def test_sync_revision_rules(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("auto", auto_sync=True)
    argocd.add_app("manual")
    blocked = client.post("/api/v1/applications/auto/sync", json={"revision": "v9"})
    unknown = client.post("/api/v1/applications/manual/sync", json={"revision": "does-not-exist"})

    assert error(blocked) == (400, 9, "Cannot sync to v9: auto-sync currently set to HEAD")
    status, code, message = error(unknown)
    assert (status, code) == (400, 9)
    assert message.startswith("rpc error:")
    assert "unable to resolve 'does-not-exist' to a commit SHA" in message


def test_dry_run_changes_nothing_and_adds_no_history(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web")
    argocd.push_revision("web", replicas=5)
    assert client.post("/api/v1/applications/web/sync", json={"dryRun": True}).status_code == 200
    done = settled(client, "web")

    state = done["status"]["operationState"]
    assert state["phase"] == "Succeeded"
    assert state["message"].endswith("(dry run)")
    assert all(r["message"].endswith("(dry run)") for r in state["syncResult"]["resources"])
    assert len(done["status"]["history"]) == 3
    assert done["status"]["sync"]["status"] == "OutOfSync"


def test_partial_sync_applies_only_the_selected_resource(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web")
    argocd.push_revision("web", replicas=5, config={"LOG_LEVEL": "debug"})
    only = {"group": "apps", "kind": "Deployment", "name": "web", "namespace": "web"}
    client.post("/api/v1/applications/web/sync", json={"resources": [only]})
    done = settled(client, "web")

    rows = done["status"]["operationState"]["syncResult"]["resources"]
    assert [(r["kind"], r["message"]) for r in rows] == [("Deployment", "deployment.apps/web configured")]
    assert len(done["status"]["history"]) == 3
    statuses = {r["kind"]: r["status"] for r in done["status"]["resources"]}
    assert statuses == {"Deployment": "Synced", "ConfigMap": "OutOfSync", "Service": "Synced"}


def test_injected_failure_fails_the_operation(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web")
    argocd.push_revision("web", image="registry.example.com/web:broken")
    argocd.fail_next_sync("web", message="one or more objects failed to apply")
    client.post("/api/v1/applications/web/sync", json={})
    done = settled(client, "web")

    state = done["status"]["operationState"]
    assert (state["phase"], state["message"]) == ("Failed", "one or more objects failed to apply")
    failed = [r for r in state["syncResult"]["resources"] if r["status"] == "SyncFailed"]
    assert [(r["kind"], r["name"], r["message"]) for r in failed] == [
        ("Deployment", "web", "one or more objects failed to apply")
    ]
    assert len(done["status"]["history"]) == 3
    assert done["status"]["sync"]["status"] == "OutOfSync"


def test_running_operation_reports_progress_and_can_be_terminated(slow_client: httpx.Client) -> None:
    client = slow_client
    client.post("/api/v1/applications/web/sync", json={})

    def progressed() -> dict[str, Any] | None:
        state = get_app(client, "web")["status"].get("operationState") or {}
        return state if state.get("syncResult", {}).get("resources") else None

    state = wait_for(progressed)
    assert (state["phase"], state["message"]) == ("Running", "one or more tasks are running")
    assert "finishedAt" not in state
    assert get_app(client, "web")["status"]["health"]["status"] == "Progressing"

    stopped = client.delete("/api/v1/applications/web/operation", headers=JSON)
    assert (stopped.status_code, stopped.json()) == (200, {})
    done = settled(client, "web")
    final = done["status"]["operationState"]
    assert (final["phase"], final["message"]) == ("Failed", "Operation terminated")
    assert len(final["syncResult"]["resources"]) < 3  # the remaining tasks never ran
    assert len(done["status"]["history"]) == 3
    assert error(client.delete("/api/v1/applications/web/operation", headers=JSON))[:2] == (400, 3)
