"""The fake Argo CD, continued: auto-sync, rollback, patch, bodies, managed resources, faults, scale."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from sandbox.argocd_fake import FakeArgoCD
from tests.sandbox_argocd_support import (
    AUTH,
    EXTRACT,
    SWAGGER,
    error,
    get_app,
    settled,
    wait_for,
)


def test_auto_sync_follows_new_commits_but_not_drift(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web", auto_sync=True)
    sha = argocd.push_revision("web", image="registry.example.com/web:3.0.0")
    done = wait_for(lambda: (a := settled(client, "web"))["status"]["sync"]["status"] == "Synced" and a)
    assert done["status"]["history"][-1]["revision"] == sha
    assert done["status"]["history"][-1]["initiatedBy"] == {"automated": True}

    argocd.drift("web", replicas=9)
    # A refresh returns only after the controller reconciled, so it had its chance to heal.
    refreshed = client.get("/api/v1/applications/web", params={"refresh": "normal"}).json()
    assert refreshed["status"]["sync"]["status"] == "OutOfSync"
    assert "operation" not in refreshed
    argocd.heal("web")
    assert get_app(client, "web")["status"]["sync"]["status"] == "Synced"


# -- rollback and patch --------------------------------------------------------------------------------


def test_rollback_rules_and_patching_auto_sync_off(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web", auto_sync=True, history=3)
    first = get_app(client, "web")["status"]["history"][0]

    refused = client.post("/api/v1/applications/web/rollback", json={"id": 1})
    assert error(refused) == (400, 9, "rollback cannot be initiated when auto-sync is enabled")

    patch = {"patch": json.dumps({"spec": {"syncPolicy": {"automated": None}}}), "patchType": "merge"}
    patched = client.patch("/api/v1/applications/web", json=patch)
    assert patched.status_code == 200
    assert "automated" not in patched.json()["spec"]["syncPolicy"]

    missing = client.post("/api/v1/applications/web/rollback", json={"id": 42})
    assert error(missing) == (400, 3, "application argocd/web does not have deployment with id 42")

    started = client.post("/api/v1/applications/web/rollback", json={"id": 1})
    assert started.status_code == 200, started.text
    assert started.json()["operation"]["sync"]["syncStrategy"] == {"apply": {}}
    done = settled(client, "web")
    assert done["status"]["operationState"]["phase"] == "Succeeded"
    assert done["status"]["history"][-1]["id"] == 4
    assert done["status"]["history"][-1]["revision"] == first["revision"]
    assert done["status"]["sync"]["status"] == "OutOfSync"  # live is older than the branch head


def test_history_is_truncated_to_the_revision_history_limit(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("old", history=12)
    argocd.add_app("web")
    limit = {"patch": json.dumps({"spec": {"revisionHistoryLimit": 2}}), "patchType": "merge"}
    assert client.patch("/api/v1/applications/web", json=limit).status_code == 200
    client.post("/api/v1/applications/web/sync", json={})
    done = settled(client, "web")

    assert [entry["id"] for entry in get_app(client, "old")["status"]["history"]] == list(range(3, 13))
    assert [entry["id"] for entry in done["status"]["history"]] == [3, 4]


def test_patch_types(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web")
    ops = [{"op": "replace", "path": "/spec/source/targetRevision", "value": "does-not-exist"}]
    json_patch = client.patch(
        "/api/v1/applications/web", json={"patch": json.dumps(ops), "patchType": "json"}
    )
    other = client.patch("/api/v1/applications/web", json={"patch": "{}", "patchType": "strategic"})

    assert json_patch.status_code == 200
    assert json_patch.json()["status"]["sync"]["status"] == "Unknown"
    assert json_patch.json()["status"]["conditions"][0]["type"] == "ComparisonError"
    assert error(other) == (400, 3, "Patch type 'strategic' is not supported")


# -- body validation against the swagger extract -------------------------------------------------------


def test_bodies_are_validated_against_the_swagger_definitions(
    argocd: FakeArgoCD, client: httpx.Client
) -> None:
    argocd.add_app("web")
    quoted = client.post("/api/v1/applications/web/rollback", json={"id": "1"})
    typo = client.post("/api/v1/applications/web/sync", json={"prnue": True})
    wrong_type = client.post("/api/v1/applications/web/sync", json={"prune": "yes"})
    nested = client.post("/api/v1/applications/web/sync", json={"retryStrategy": {"limit": "2"}})
    hook = client.post("/api/v1/applications/web/sync", json={"strategy": {"hook": {"force": False}}})

    assert error(quoted) == (
        400,
        3,
        "json: cannot unmarshal string into Go struct field ApplicationRollbackRequest.id of type int64",
    )
    assert error(typo) == (400, 3, 'unknown field "prnue"')
    assert error(wrong_type) == (
        400,
        3,
        "json: cannot unmarshal string into Go struct field ApplicationSyncRequest.prune of type bool",
    )
    assert error(nested)[2].endswith("ApplicationSyncRequest.retryStrategy.limit of type int64")
    assert hook.status_code == 200


@pytest.mark.skipif(not SWAGGER.exists(), reason="shared contracts not checked out next to the repo")
def test_contract_extract_agrees_with_swagger() -> None:
    swagger = json.loads(SWAGGER.read_text())["definitions"]
    extract = json.loads(EXTRACT.read_text())

    for root in ("applicationApplicationSyncRequest", "applicationApplicationRollbackRequest"):
        assert root in extract["definitions"]
    for name, definition in extract["definitions"].items():
        upstream = swagger[name]["properties"]
        assert set(definition["properties"]) == set(upstream), name
        for prop, spec in definition["properties"].items():
            for key in ("type", "format", "$ref"):
                assert spec.get(key) == upstream[prop].get(key), f"{name}.{prop}.{key}"
            if "items" in spec:
                assert spec["items"] == {
                    k: v for k, v in upstream[prop]["items"].items() if k in spec["items"]
                }


# -- diff, tree, revision metadata ---------------------------------------------------------------------


def test_managed_resources_show_changed_created_and_extraneous(
    argocd: FakeArgoCD, client: httpx.Client
) -> None:
    argocd.add_app("web", dest_namespace="prod")
    new_config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags", "namespace": "prod"}}
    argocd.push_revision(
        "web", image="registry.example.com/web:2.0.0", remove=["ConfigMap/web-config"], add=[new_config]
    )
    argocd.drift("web", replicas=7)
    items = client.get("/api/v1/applications/web/managed-resources").json()["items"]
    by_name = {(item["kind"], item["name"]): item for item in items}

    changed = by_name[("Deployment", "web")]
    assert changed["group"] == "apps"
    assert changed["modified"] is True
    live, predicted = json.loads(changed["normalizedLiveState"]), json.loads(changed["predictedLiveState"])
    assert live["spec"]["replicas"] == 7
    assert predicted["spec"]["replicas"] == 2
    assert predicted["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/web:2.0.0"
    assert {"managedFields", "uid", "resourceVersion", "creationTimestamp", "generation"} <= set(
        live["metadata"]
    )
    assert "status" in live

    created = by_name[("ConfigMap", "flags")]
    assert (created["liveState"], created["normalizedLiveState"], created["modified"]) == (
        "null",
        "null",
        True,
    )
    assert json.loads(created["predictedLiveState"]) == new_config

    extraneous = by_name[("ConfigMap", "web-config")]
    assert (extraneous["targetState"], extraneous["predictedLiveState"]) == ("null", "null")
    assert "modified" not in extraneous
    assert "group" not in extraneous

    unchanged = by_name[("Service", "web")]
    assert "modified" not in unchanged
    assert all(isinstance(item[key], str) for item in items for key in ("liveState", "targetState"))

    trimmed = client.get(
        "/api/v1/applications/web/managed-resources", params={"fields": "items.name,items.kind"}
    )
    assert trimmed.json()["items"][0].keys() == {"name", "kind"}


def test_prune_removes_extraneous_objects_only_when_asked(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web")
    argocd.push_revision("web", remove=["ConfigMap/web-config"])
    client.post("/api/v1/applications/web/sync", json={})
    kept = settled(client, "web")
    skipped = [
        r for r in kept["status"]["operationState"]["syncResult"]["resources"] if r["kind"] == "ConfigMap"
    ]
    assert skipped[0]["status"] == "PruneSkipped"
    assert kept["status"]["sync"]["status"] == "OutOfSync"

    client.post("/api/v1/applications/web/sync", json={"prune": True})
    pruned = wait_for(lambda: (a := settled(client, "web"))["status"]["sync"]["status"] == "Synced" and a)
    rows = pruned["status"]["operationState"]["syncResult"]["resources"]
    assert [r["status"] for r in rows if r["kind"] == "ConfigMap"] == ["Pruned"]


def test_resource_tree_and_health(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web", replicas=2, images=["registry.example.com/web:1.2.3"])
    argocd.set_health("web", "Degraded", "Deployment exceeded its progress deadline")
    nodes = client.get("/api/v1/applications/web/resource-tree").json()["nodes"]
    pods = [node for node in nodes if node["kind"] == "Pod"]

    assert {node["kind"] for node in nodes} == {"ConfigMap", "Service", "Deployment", "ReplicaSet", "Pod"}
    assert len(pods) == 2
    assert pods[0]["images"] == ["registry.example.com/web:1.2.3"]
    assert pods[0]["health"]["status"] == "Degraded"
    assert pods[0]["parentRefs"][0]["kind"] == "ReplicaSet"
    assert get_app(client, "web")["status"]["health"] == {
        "status": "Degraded",
        "message": "Deployment exceeded its progress deadline",
    }


def test_revision_metadata(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web")
    sha = argocd.push_revision(
        "web", message="Bump web to 2.0", author="Bob <bob@example.com>", tags=["v2.0"]
    )
    found = client.get(f"/api/v1/applications/web/revisions/{sha}/metadata").json()
    unknown = client.get("/api/v1/applications/web/revisions/0000000/metadata")

    assert found["author"] == "Bob <bob@example.com>"
    assert found["message"] == "Bump web to 2.0"
    assert found["tags"] == ["v2.0"]
    assert found["date"].endswith("Z")
    assert error(unknown)[:2] == (404, 5)


# -- injected trouble and the request log ---------------------------------------------------------------


def test_fail_next_serves_a_proxy_error_once(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.fail_next(
        path="/api/v1/applications", status=502, body="<html>Bad Gateway</html>", content_type="text/html"
    )
    proxy = client.get("/api/v1/applications")
    normal = client.get("/api/v1/applications")

    assert proxy.status_code == 502
    assert proxy.headers["content-type"] == "text/html"
    assert proxy.text == "<html>Bad Gateway</html>"
    assert normal.status_code == 200
    assert [r.status for r in argocd.requests("/api/v1/applications")] == [502, 200]


def test_requests_are_recorded_without_credentials(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.add_app("web")
    argocd.clear_requests()
    listed = client.get("/api/v1/applications", params={"projects": ["a", "default"]})
    client.post("/api/v1/applications/web/sync", json={"dryRun": True})
    recorded = argocd.requests()

    assert [(r.method, r.path) for r in recorded] == [
        ("GET", "/api/v1/applications"),
        ("POST", "/api/v1/applications/web/sync"),
    ]
    assert recorded[0].query == {"projects": ["a", "default"]}
    assert recorded[0].bytes_sent == len(listed.content)
    assert recorded[1].body == {"dryRun": True}
    assert all("authorization" not in r.headers for r in recorded)


def test_latency_delays_every_response(argocd: FakeArgoCD, client: httpx.Client) -> None:
    argocd.set_latency(0.2)
    started = time.monotonic()
    assert client.get("/api/version").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_go_down_refuses_connections_and_come_up_reuses_the_port(
    argocd: FakeArgoCD, client: httpx.Client
) -> None:
    argocd.add_app("web")
    url = argocd.base_url
    assert client.get("/api/v1/applications/web").status_code == 200
    argocd.go_down()
    with pytest.raises(httpx.TransportError):
        client.get("/api/v1/applications/web")
    with pytest.raises(httpx.ConnectError), httpx.Client(base_url=url) as fresh:
        fresh.get("/api/version")
    argocd.come_up()

    assert argocd.base_url == url
    assert client.get("/api/v1/applications/web").json()["metadata"]["name"] == "web"


def test_five_thousand_apps_list_quickly() -> None:
    with FakeArgoCD() as argocd, httpx.Client(base_url=argocd.base_url, headers=AUTH, timeout=30) as client:
        started = time.perf_counter()
        argocd.bulk_add(5000)
        added = time.perf_counter() - started
        started = time.perf_counter()
        response = client.get("/api/v1/applications")
        listed = time.perf_counter() - started
        print(f"5,000 apps: add {added:.2f}s, full list {listed:.3f}s, {len(response.content) / 1e6:.1f} MB")

    assert len(response.json()["items"]) == 5000
    assert listed < 5
