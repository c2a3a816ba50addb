"""The fake Kubernetes API server, driven by the official `kubernetes` client (docs/flux-api.md §1).

Controller behaviour (reconcile requests, suspend, failures, Events) is in test_sandbox_flux_controller.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client

from sandbox.flux_fake import FakeKubernetes
from tests.sandbox_flux_support import (
    FIELD_MANAGER,
    GIT,
    HR,
    KS,
    NS,
    Flux,
    api_client,
    as_dict,
    failure,
    start_kube,
)


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[FakeKubernetes]:
    fake, _, _ = start_kube(tmp_path)
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def api(kube: FakeKubernetes, tmp_path: Path) -> Iterator[client.ApiClient]:
    with api_client(kube, tmp_path) as loaded:
        yield loaded


@pytest.fixture
def flux(api: client.ApiClient) -> Flux:
    return Flux(api)


def names(listing: dict[str, Any]) -> list[str]:
    return [item["metadata"]["name"] for item in listing["items"]]


def test_kubeconfig_list_with_label_and_field_selectors_and_get(flux: Flux) -> None:
    listing = flux.list(KS)
    assert listing["kind"] == "KustomizationList"
    assert int(listing["metadata"]["resourceVersion"]) > 0
    assert names(listing) == ["apps", "infra"]
    assert {(i["apiVersion"], i["kind"]) for i in listing["items"]} == {
        ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
    }

    def selected(label_selector: str | None = None, field_selector: str | None = None) -> list[str]:
        return names(flux.list(KS, label_selector=label_selector, field_selector=field_selector))

    assert selected(label_selector="team=web") == ["apps"]
    assert selected(label_selector="team==web,tier") == ["apps"]
    assert selected(label_selector="team!=web") == ["infra"]
    assert selected(label_selector="team in (web,platform)") == ["apps", "infra"]
    assert selected(label_selector="team notin (web)") == ["infra"]
    assert selected(label_selector="!tier") == ["infra"]
    assert selected(field_selector="metadata.name=infra") == ["infra"]
    assert selected(field_selector="metadata.name!=infra,metadata.namespace=flux-system") == ["apps"]
    assert selected(label_selector="team=web", field_selector="metadata.name=infra") == []
    assert names(flux.list(KS, "elsewhere")) == []
    assert names(flux.list(HR, None)) == ["podinfo"]
    apps = flux.get(KS, "apps")
    assert apps["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
    assert apps["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
    assert apps["spec"]["force"] is False  # a CRD default, applied by the API server


def test_selector_errors_are_400_status(flux: Flux) -> None:
    code, body = failure(lambda: flux.list(KS, field_selector="spec.suspend=true"))
    assert code == 400
    assert (body["kind"], body["reason"]) == ("Status", "BadRequest")
    assert body["message"] == "field label not supported: spec.suspend"
    code, body = failure(lambda: flux.list(KS, label_selector="team in web"))
    assert (code, body["reason"]) == (400, "BadRequest")
    assert "unable to parse requirement" in body["message"] or "expected" in body["message"]


def test_not_found_is_a_status_with_details(flux: Flux) -> None:
    code, body = failure(lambda: flux.get(KS, "missing"))
    assert code == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'kustomizations.kustomize.toolkit.fluxcd.io "missing" not found',
        "reason": "NotFound",
        "details": {"name": "missing", "group": "kustomize.toolkit.fluxcd.io", "kind": "kustomizations"},
        "code": 404,
    }


def test_merge_patch_records_field_manager_and_bookkeeping(kube: FakeKubernetes, flux: Flux) -> None:
    before = flux.get(KS, "apps")["metadata"]
    kube.clear_requests()
    body = {"metadata": {"annotations": {"team.example.com/owner": "web"}}}
    patched = flux.patch(KS, "apps", body, field_manager=FIELD_MANAGER)
    meta = patched["metadata"]
    assert meta["annotations"]["team.example.com/owner"] == "web"
    assert meta["generation"] == before["generation"]  # metadata only: same generation
    assert int(meta["resourceVersion"]) > int(before["resourceVersion"])
    managers = {(m["manager"], m["operation"]) for m in meta["managedFields"]}
    assert (FIELD_MANAGER, "Update") in managers
    (sent,) = kube.requests("/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/apps")
    assert (sent.method, sent.status, sent.body) == ("PATCH", 200, body)
    assert sent.query["fieldManager"] == [FIELD_MANAGER]
    assert sent.headers["content-type"] == "application/merge-patch+json"
    assert "authorization" not in sent.headers

    suspended = flux.patch(KS, "apps", {"spec": {"suspend": True}})
    assert suspended["metadata"]["generation"] == before["generation"] + 1
    assert suspended["spec"]["suspend"] is True
    again = flux.patch(KS, "apps", {"spec": {"suspend": True}})
    assert (
        again["metadata"]["resourceVersion"] == suspended["metadata"]["resourceVersion"]
    )  # a no-op writes nothing
    resumed = flux.patch(KS, "apps", {"spec": {"suspend": None}})
    assert "suspend" not in resumed["spec"]
    assert resumed["metadata"]["generation"] == before["generation"] + 2
    # Removing a defaulted field brings the default back: no spec change, no new generation.
    defaulted = flux.patch(KS, "apps", {"spec": {"force": None}})
    assert defaulted["spec"]["force"] is False
    assert defaulted["metadata"]["generation"] == resumed["metadata"]["generation"]


def test_schema_violations_are_422_invalid_with_causes(flux: Flux) -> None:
    def patch(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return failure(lambda: flux.patch(KS, "apps", body))

    code, body = patch({"spec": {"suspend": "yes"}})
    assert (code, body["reason"], body["code"]) == (422, "Invalid", 422)
    assert body["message"] == (
        'Kustomization.kustomize.toolkit.fluxcd.io "apps" is invalid: spec.suspend: Invalid value: "string": '
        'spec.suspend in body must be of type boolean: "string"'
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueTypeInvalid",
            "message": 'Invalid value: "string": spec.suspend in body must be of type boolean: "string"',
            "field": "spec.suspend",
        }
    ]
    _, body = patch({"spec": {"interval": None, "sourceRef": {"kind": "Svn"}, "timeout": "soon"}})
    causes = {c["field"]: (c["reason"], c["message"]) for c in body["details"]["causes"]}
    assert causes["spec.interval"] == ("FieldValueRequired", "Required value")
    assert causes["spec.sourceRef.kind"][0] == "FieldValueNotSupported"
    assert causes["spec.sourceRef.kind"][1].startswith(
        'Unsupported value: "Svn": supported values: "OCIRepository"'
    )
    assert causes["spec.timeout"][0] == "FieldValueInvalid"
    assert "should match" in causes["spec.timeout"][1]
    assert body["message"].startswith('Kustomization.kustomize.toolkit.fluxcd.io "apps" is invalid: [')
    _, body = patch({"metadata": {"labels": {"team": "not valid!"}}})
    assert body["details"]["causes"][0]["field"] == "metadata.labels"
    code, body = failure(lambda: flux.patch(HR, "podinfo", {"spec": {"chart": None}}))
    assert code == 422
    assert body["details"]["causes"][0]["message"].endswith(
        "either chart or chartRef must be set"
    )  # a CEL rule


def test_unknown_fields_are_pruned_with_a_warning(flux: Flux) -> None:
    body = {"spec": {"suspnd": True}, "metadata": {"labelz": {"a": "b"}}}
    data, code, headers = flux.patch_with_info(KS, "apps", body)
    assert code == 200
    assert (
        headers["Warning"]
        == '299 - "unknown field \\"metadata.labelz\\"", 299 - "unknown field \\"spec.suspnd\\""'
    )
    assert "suspnd" not in data["spec"]
    assert "labelz" not in data["metadata"]
    assert "suspnd" not in flux.get(KS, "apps")["spec"]
    code, status = failure(lambda: flux.patch(KS, "apps", body, field_validation="Strict"))
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == (
        'Kustomization in version "v1" cannot be handled as a Kustomization: strict decoding error: '
        'unknown field "metadata.labelz", unknown field "spec.suspnd"'
    )


def test_status_is_a_subresource_and_stale_resource_versions_conflict(flux: Flux) -> None:
    before = flux.get(KS, "apps")
    after = flux.patch(KS, "apps", {"status": {"lastAppliedRevision": "x"}})
    assert after["status"] == before["status"]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    stale = {"metadata": {"resourceVersion": "1", "annotations": {"a": "b"}}}
    code, body = failure(lambda: flux.patch(KS, "apps", stale))
    assert (code, body["reason"]) == (409, "Conflict")
    assert body["message"].startswith(
        'Operation cannot be fulfilled on kustomizations.kustomize.toolkit.fluxcd.io "apps"'
    )


def test_json_patch_is_supported_and_strategic_merge_is_415(flux: Flux) -> None:
    ops = [{"op": "add", "path": "/spec/suspend", "value": True}]
    patched = flux.patch(KS, "apps", ops, _content_type="application/json-patch+json")
    assert patched["spec"]["suspend"] is True
    code, body = failure(lambda: flux.patch(KS, "apps", ops))  # a list sent as a merge patch
    assert (code, body["reason"]) == (400, "BadRequest")
    code, body = failure(
        lambda: flux.patch(KS, "apps", {"spec": {}}, _content_type="application/strategic-merge-patch+json")
    )
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")
    bad = [{"op": "replace", "path": "/spec/nothing/here", "value": 1}]
    code, body = failure(lambda: flux.patch(KS, "apps", bad, _content_type="application/json-patch+json"))
    assert code == 422


def test_injected_failures_are_status_bodies(kube: FakeKubernetes, flux: Flux) -> None:
    kube.fail_next(path="/apis/kustomize.toolkit.fluxcd.io", method="PATCH", status=409)
    code, body = failure(lambda: flux.patch(KS, "apps", {"metadata": {"annotations": {"a": "b"}}}))
    assert (code, body["kind"], body["reason"]) == (409, "Status", "Conflict")
    assert (
        flux.patch(KS, "apps", {"metadata": {"annotations": {"a": "b"}}})["metadata"]["annotations"]["a"]
        == "b"
    )


def test_forbidden_and_unauthorized(kube: FakeKubernetes, flux: Flux) -> None:
    kube.forbid("patch", "kustomizations")
    code, body = failure(lambda: flux.patch(KS, "apps", {"spec": {}}))
    assert (code, body["reason"]) == (403, "Forbidden")
    assert body["message"] == (
        'kustomizations.kustomize.toolkit.fluxcd.io "apps" is forbidden: User '
        '"system:serviceaccount:flux-system:gitops-bot" cannot patch resource "kustomizations" in API group '
        '"kustomize.toolkit.fluxcd.io" in the namespace "flux-system"'
    )
    assert body["details"] == {
        "name": "apps",
        "group": "kustomize.toolkit.fluxcd.io",
        "kind": "kustomizations",
    }
    kube.forbid("list", "helmreleases", namespace=NS)
    code, body = failure(lambda: flux.list(HR, None))
    assert code == 403
    assert body["message"].endswith("at the cluster scope")
    assert flux.list(HR, "other")["items"] == []
    kube.allow("list", "helmreleases", namespace=NS)
    assert len(flux.list(HR, None)["items"]) == 1

    configuration = client.Configuration()
    configuration.host = kube.base_url
    configuration.api_key = {"authorization": "Bearer wrong-token"}
    with client.ApiClient(configuration) as anonymous:
        code, body = failure(lambda: client.CustomObjectsApi(anonymous).list_cluster_custom_object(*KS))
    assert (code, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized")


def discover(api: client.ApiClient, path: str) -> dict[str, Any]:
    """GET a discovery document the way the generated API classes send requests."""
    request = api.param_serialize(
        "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
    )
    response = api.call_api(*request)
    response.read()  # type: ignore[no-untyped-call]
    return as_dict(api.response_deserialize(response, {"200": "object"}).data)


def test_discovery_serves_the_current_versions(api: client.ApiClient) -> None:
    groups = client.ApisApi(api).get_api_versions().groups
    preferred = {g.name: g.preferred_version.version if g.preferred_version else "" for g in groups}
    assert preferred == {
        "helm.toolkit.fluxcd.io": "v2",
        "kustomize.toolkit.fluxcd.io": "v1",
        "source.toolkit.fluxcd.io": "v1",
    }
    group = discover(api, "/apis/kustomize.toolkit.fluxcd.io")
    assert (group["kind"], group["preferredVersion"]["groupVersion"]) == (
        "APIGroup",
        "kustomize.toolkit.fluxcd.io/v1",
    )
    resources = discover(api, "/apis/source.toolkit.fluxcd.io/v1")["resources"]
    plural = {r["name"]: r for r in resources}
    assert {"gitrepositories", "ocirepositories", "helmrepositories", "helmcharts"} <= set(plural)
    assert plural["gitrepositories"]["shortNames"] == ["gitrepo"]
    assert plural["gitrepositories"]["namespaced"] is True
    assert "gitrepositories/status" in plural
    code, body = failure(lambda: discover(api, "/apis/helm.toolkit.fluxcd.io/v2beta1"))
    assert (code, body["reason"]) == (404, "NotFound")
    assert client.VersionApi(api).get_code().git_version.startswith("v1.33")


def test_discovery_and_paths_on_an_old_cluster(tmp_path: Path) -> None:
    old = {"helm.toolkit.fluxcd.io": ["v2beta1", "v2beta2"], "source.toolkit.fluxcd.io": ["v1beta2"]}
    kube, _, _ = start_kube(tmp_path, served=old)
    try:
        with api_client(kube, tmp_path) as api:
            group = discover(api, "/apis/helm.toolkit.fluxcd.io")
            assert [v["version"] for v in group["versions"]] == ["v2beta2", "v2beta1"]
            assert group["preferredVersion"]["version"] == "v2beta2"
            flux = Flux(api)
            code, _ = failure(lambda: flux.list(HR))
            assert code == 404  # v2 is not served before Flux 2.3
            current = flux.get(("helm.toolkit.fluxcd.io", "v2beta2", "helmreleases"), "podinfo")
            assert current["apiVersion"] == "helm.toolkit.fluxcd.io/v2beta2"
            assert current["status"]["history"][0]["chartVersion"] == "6.5.0"
            legacy = flux.get(("helm.toolkit.fluxcd.io", "v2beta1", "helmreleases"), "podinfo")
            assert "history" not in legacy["status"]
            assert legacy["status"]["lastAppliedRevision"] == "6.5.0"
            assert failure(lambda: flux.get(GIT, "flux-system"))[0] == 404
            source = flux.get(("source.toolkit.fluxcd.io", "v1beta2", "gitrepositories"), "flux-system")
            assert source["status"]["artifact"]["revision"].startswith("main@sha1:")
    finally:
        kube.stop()


def test_latency_and_going_down(kube: FakeKubernetes, flux: Flux) -> None:
    kube.set_latency(0.2)
    started = time.perf_counter()
    flux.get(KS, "apps")
    assert time.perf_counter() - started >= 0.2
    kube.set_latency(0)
    port = kube.base_url
    kube.go_down()
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        flux.co.list_cluster_custom_object(*KS, _request_timeout=2)
    kube.come_up()
    assert kube.base_url == port
    assert len(flux.list(KS, None)["items"]) == 2


def test_bulk_add_lists_cluster_wide_fast(tmp_path: Path) -> None:
    gc.collect()  # time this fake, not the collection of garbage earlier tests left behind
    with FakeKubernetes() as kube:
        started = time.perf_counter()
        kube.bulk_add(kustomizations=2000, helm_releases=500, namespaces=20)
        created = time.perf_counter() - started
        with api_client(kube, tmp_path) as api:
            flux = Flux(api)
            started = time.perf_counter()
            ks = flux.list(KS, None)
            hr = flux.list(HR, None)
            listed = time.perf_counter() - started
            page = flux.list(KS, None, label_selector="tier=data", limit=500)
            rest = flux.list(KS, None, label_selector="tier=data", continue_=page["metadata"]["continue"])
    print(f"bulk_add 2000 ks + 500 hr: {created:.2f} s; cluster-wide list of both: {listed:.3f} s")
    assert (len(ks["items"]), len(hr["items"])) == (2000, 500)
    assert len({i["metadata"]["namespace"] for i in ks["items"]}) == 20
    assert created < 10
    assert listed < 2
    assert page["metadata"]["remainingItemCount"] == len(rest["items"]) == 666 - 500
    assert all(json.dumps(i).count('"Ready"') for i in ks["items"][:5])
