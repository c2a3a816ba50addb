"""The diff renderer and the one-line summaries (Argo CD objects and Flux `git diff` text)."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from services.backend import ResourceChange
from services.diffing.render import (
    RenderedDiff,
    render_changes,
    render_unified_text,
    strip_noise,
    summarize_changes,
    summarize_unified,
    to_yaml,
)
from services.diffing.summary import split_image

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def deployment(
    name: str = "api",
    *,
    image: str = "ghcr.io/acme/api:1.4.2",
    replicas: int = 3,
    sidecar: str = "ghcr.io/acme/envoy:1.29.1",
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "prod",
            "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": "shop"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": name}},
                "spec": {
                    "initContainers": [{"name": "migrate", "image": image, "args": ["migrate", "--up"]}],
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "env": [{"name": "LOG_LEVEL", "value": "info"}],
                            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                        },
                        {"name": "envoy", "image": sidecar},
                    ],
                },
            },
        },
    }


def live_version(obj: dict[str, Any]) -> dict[str, Any]:
    """What the API server returns for an applied object: the same plus server-owned noise."""
    live = copy.deepcopy(obj)
    meta = live["metadata"]
    meta.update(
        {
            "uid": "5f0c2a4e-9d1b-4a7e-8c3f-2b6d1e0a9f77",
            "resourceVersion": "81234",
            "generation": 7,
            "creationTimestamp": "2026-03-01T10:00:00Z",
            "selfLink": f"/apis/apps/v1/namespaces/prod/deployments/{meta['name']}",
            "managedFields": [
                {"manager": "argocd-controller", "operation": "Apply", "fieldsV1": {"f:spec": {}}}
            ],
        }
    )
    meta.setdefault("annotations", {})[LAST_APPLIED] = '{"apiVersion":"apps/v1"}'
    live["status"] = {"replicas": 3, "readyReplicas": 3, "observedGeneration": 7}
    return live


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "api", "namespace": "prod"},
        "spec": {
            "selector": {"app.kubernetes.io/name": "api"},
            "ports": [{"port": 80, "targetPort": "http"}],
        },
    }


def configmap(data: dict[str, str], name: str = "api-config") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "prod"},
        "data": data,
    }


def secret(data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "api-db", "namespace": "prod"},
        "data": data,
    }


def helmrelease(version: str) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "podinfo", "namespace": "apps"},
        "spec": {
            "interval": "10m",
            "chart": {
                "spec": {
                    "chart": "podinfo",
                    "version": version,
                    "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
                }
            },
            "values": {"replicaCount": 2},
        },
    }


def change(live: dict[str, Any] | None, target: dict[str, Any] | None) -> ResourceChange:
    obj = target if target is not None else live
    assert obj is not None
    api = obj["apiVersion"]
    group = api.split("/")[0] if "/" in api else ""
    meta = obj["metadata"]
    return ResourceChange(group, obj["kind"], meta.get("namespace", ""), meta["name"], live, target)


# --- strip_noise / to_yaml ---------------------------------------------------------------------


def test_strip_noise_removes_server_fields_without_mutating_input() -> None:
    live = live_version(deployment())
    before = copy.deepcopy(live)
    stripped = strip_noise(live)
    assert live == before
    assert stripped == deployment()
    assert "annotations" not in stripped["metadata"]  # emptied by dropping last-applied


def test_strip_noise_keeps_other_annotations() -> None:
    obj = deployment()
    obj["metadata"]["annotations"] = {"team": "payments", LAST_APPLIED: "{}"}
    assert strip_noise(obj)["metadata"]["annotations"] == {"team": "payments"}


def test_noise_only_difference_gives_no_diff() -> None:
    rendered = render_changes([change(live_version(deployment()), deployment())])
    assert rendered.empty
    assert rendered.text == ""
    assert rendered.summary == "no changes"


def test_to_yaml_keeps_key_order_and_is_stable() -> None:
    text = to_yaml(deployment())
    assert text.splitlines()[:4] == ["apiVersion: apps/v1", "kind: Deployment", "metadata:", "  name: api"]
    assert "      containers:\n      - name: api\n        image: ghcr.io/acme/api:1.4.2\n" in text
    assert to_yaml(copy.deepcopy(deployment())) == text
    assert to_yaml(None) == ""
    assert to_yaml({}) == "{}\n"


def test_to_yaml_quotes_what_a_loader_would_retype_and_keeps_multiline_readable() -> None:
    obj: dict[str, Any] = {
        "data": {
            "enabled": "yes",
            "ratio": "1.25",
            "version": "6.5.0",
            "date": "2026-03-01",
            "nginx.conf": "server {\n  listen 80;\n}\n",
            "blank": "",
        },
        "n": None,
        "list": [],
    }
    text = to_yaml(obj)
    assert 'enabled: "yes"' in text
    assert 'ratio: "1.25"' in text
    assert "version: 6.5.0" in text
    assert 'date: "2026-03-01"' in text
    assert "  nginx.conf: |\n    server {\n      listen 80;\n    }\n" in text
    assert 'blank: ""' in text
    assert YAML(typ="safe").load(text) == obj


_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
_json = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _json, max_size=5))
def test_to_yaml_round_trips_through_yaml_loaders(obj: dict[str, Any]) -> None:
    text = to_yaml(obj)
    assert YAML(typ="safe").load(text) == (obj or {})
    yaml11 = pytest.importorskip("yaml")  # PyYAML resolves the YAML 1.1 booleans / numbers
    assert yaml11.safe_load(text) == (obj or {})


# --- render_changes / summarize_changes --------------------------------------------------------


def test_image_tag_change_summary_and_diff() -> None:
    rendered = render_changes(
        [change(live_version(deployment()), deployment(image="ghcr.io/acme/api:1.4.3"))]
    )
    assert rendered.summary == "image migrate 1.4.2 → 1.4.3, image api 1.4.2 → 1.4.3"
    (view,) = rendered.resources
    assert view.key == "apps/Deployment/prod/api"
    assert view.change == "changed"
    assert view.text.startswith(
        "===== apps/Deployment/prod/api (changed) =====\n"
        "--- live/apps/Deployment/prod/api\n+++ target/apps/Deployment/prod/api\n"
    )
    assert "-        image: ghcr.io/acme/api:1.4.2\n+        image: ghcr.io/acme/api:1.4.3\n" in view.text
    assert (view.added, view.removed) == (2, 2)
    assert "managedFields" not in view.text
    assert "status" not in view.text


def test_image_repository_change_shows_full_refs() -> None:
    summary = summarize_changes(
        [change(deployment(), deployment(sidecar="docker.io/envoyproxy/envoy:v1.30.0"))]
    )
    assert summary == "image envoy ghcr.io/acme/envoy:1.29.1 → docker.io/envoyproxy/envoy:v1.30.0"


def test_image_digest_and_registry_port() -> None:
    assert split_image("registry:5000/team/api") == ("registry:5000/team/api", "", "")
    old = "registry:5000/team/api:2.0@sha256:" + "a" * 64
    new = "registry:5000/team/api:2.1@sha256:" + "b" * 64
    summary = summarize_changes([change(deployment(image=old), deployment(image=new))])
    assert "image api 2.0@sha256:aaaaaaaaaaaa → 2.1@sha256:bbbbbbbbbbbb" in summary


def test_cronjob_image_and_long_values_are_bounded() -> None:
    def cronjob(tag: str) -> dict[str, Any]:
        pod = {"spec": {"containers": [{"name": "report", "image": f"ghcr.io/acme/report:{tag}"}]}}
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "report", "namespace": "prod"},
            "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": pod}}},
        }

    assert summarize_changes([change(cronjob("1.0"), cronjob("1.1"))]) == "image report 1.0 → 1.1"
    summary = summarize_changes([change(cronjob("1.0"), cronjob("x" * 200))])
    assert "x" * 79 + "…" in summary
    assert "x" * 80 not in summary


def test_replicas_and_combined_summary_order() -> None:
    changes = [
        change(configmap({"LOG_LEVEL": "info"}, name="legacy"), None),
        change(None, configmap({"LOG_LEVEL": "info"}, name="new-config")),
        change(configmap({"A": "1", "B": "2", "C": "3"}), configmap({"A": "10", "B": "20", "C": "3"})),
        change(live_version(deployment()), deployment(image="ghcr.io/acme/api:1.4.3", replicas=5)),
    ]
    assert summarize_changes(changes) == (
        "image migrate 1.4.2 → 1.4.3, image api 1.4.2 → 1.4.3, replicas 3 → 5, "
        "2 ConfigMap keys changed, 1 resource will be created, 1 will be pruned"
    )


def test_replicas_named_when_several_workloads_scale() -> None:
    changes = [
        change(deployment("api", replicas=3), deployment("api", replicas=5)),
        change(deployment("worker", replicas=1), deployment("worker", replicas=2)),
    ]
    assert summarize_changes(changes) == "replicas api 3 → 5, replicas worker 1 → 2"


def test_configmap_and_secret_keys_counted() -> None:
    changes = [
        change(configmap({"A": "1", "B": "2"}), configmap({"A": "1", "B": "3", "D": "4"})),
        change(secret({"password": "++++++++", "user": "++++"}), secret({"password": "+++++++++"})),
    ]
    assert summarize_changes(changes) == (
        "1 ConfigMap key changed, 1 ConfigMap key added, 1 Secret key changed, 1 Secret key removed"
    )


def test_helmrelease_chart_version_and_fallback_count() -> None:
    values_only = helmrelease("6.5.4")
    values_only["spec"]["values"] = {"replicaCount": 3}
    changes = [
        change(helmrelease("6.5.0"), helmrelease("6.5.4")),
        change(service(), {**service(), "spec": {**service()["spec"], "type": "LoadBalancer"}}),
    ]
    assert summarize_changes(changes) == "chart podinfo 6.5.0 → 6.5.4, 1 other resource changed"
    assert summarize_changes(changes[1:]) == "1 resource changed"
    assert summarize_changes([change(helmrelease("6.5.4"), values_only)]) == "1 resource changed"
    assert summarize_changes([]) == "no changes"


def test_created_and_pruned_headers_and_counts() -> None:
    new = configmap({"LOG_LEVEL": "info", "FEATURE_X": "on"}, name="new-config")
    old = live_version(configmap({"x": "1"}, name="legacy"))
    rendered = render_changes([change(None, new), change(old, None)])
    pruned, created = rendered.resources  # sorted by key: legacy < new-config
    assert created.text.startswith("===== ConfigMap/prod/new-config (created) =====\n")
    assert (created.added, created.removed) == (len(to_yaml(new).splitlines()), 0)
    assert all(line.startswith("+") for line in created.text.splitlines()[4:])
    assert pruned.text.startswith("===== ConfigMap/prod/legacy (pruned) =====\n")
    assert (pruned.added, pruned.removed) == (0, len(to_yaml(strip_noise(old)).splitlines()))
    assert "resourceVersion" not in pruned.text
    assert rendered.summary == "1 resource will be created, 1 will be pruned"
    assert rendered.text == pruned.text + "\n" + created.text


def test_sorted_by_key_and_identical_pairs_dropped() -> None:
    changes = [
        change(configmap({"a": "1"}, name="zeta"), configmap({"a": "2"}, name="zeta")),
        change(service(), service()),
        change(deployment("web"), deployment("web", replicas=4)),
        change(configmap({"a": "1"}, name="alpha"), configmap({"a": "2"}, name="alpha")),
    ]
    rendered = render_changes(changes)
    assert [v.key for v in rendered.resources] == [
        "ConfigMap/prod/alpha",
        "ConfigMap/prod/zeta",
        "apps/Deployment/prod/web",
    ]
    assert isinstance(rendered, RenderedDiff)
    assert not rendered.empty
    assert rendered.summary == "replicas 3 → 4, 2 ConfigMap keys changed"


def test_two_hundred_resources_render_fast() -> None:
    changes = [
        change(
            live_version(deployment(f"svc-{i:03}")),
            deployment(f"svc-{i:03}", image=f"ghcr.io/acme/api:2.{i}"),
        )
        for i in range(200)
    ]
    started = time.perf_counter()
    rendered = render_changes(changes)
    elapsed = time.perf_counter() - started
    assert len(rendered.resources) == 200
    assert elapsed < 1.0
    assert len(rendered.summary) < 400


# --- Flux: git diff text -----------------------------------------------------------------------

GIT_DIFF = """\
diff --git a/apps/prod/kustomization.yaml b/apps/prod/kustomization.yaml
index 3b18e51..a1c9f02 100644
--- a/apps/prod/kustomization.yaml
+++ b/apps/prod/kustomization.yaml
@@ -5,6 +5,6 @@ resources:
   - ../base
 images:
   - name: ghcr.io/acme/api
-    newTag: 1.4.2 # {"$imagepolicy": "flux-system:api:tag"}
+    newTag: 1.4.3 # {"$imagepolicy": "flux-system:api:tag"}
 replicas:
   - name: api
diff --git a/apps/prod/podinfo.yaml b/apps/prod/podinfo.yaml
index 77aa012..90fe3b1 100644
--- a/apps/prod/podinfo.yaml
+++ b/apps/prod/podinfo.yaml
@@ -8,10 +8,10 @@ spec:
   chart:
     spec:
       chart: podinfo
-      version: "6.5.0"
+      version: "6.5.4"
       sourceRef:
         kind: HelmRepository
         name: podinfo
   values:
-    replicaCount: 2
+    replicaCount: 3
--- removed line whose text starts with "-- "
+++ added line whose text starts with "++ "
diff --git a/apps/prod/worker.yaml b/apps/prod/worker.yaml
new file mode 100644
index 0000000..5d2e8a1
--- /dev/null
+++ b/apps/prod/worker.yaml
@@ -0,0 +1,3 @@
+apiVersion: apps/v1
+kind: Deployment
+metadata:
diff --git a/apps/prod/legacy.yaml b/apps/prod/legacy.yaml
deleted file mode 100644
index 1f2e3d4..0000000
--- a/apps/prod/legacy.yaml
+++ /dev/null
@@ -1,2 +0,0 @@
-apiVersion: v1
-kind: ConfigMap
"""


def test_summarize_unified_kustomize_newtag_and_helm_chart() -> None:
    assert summarize_unified(GIT_DIFF) == (
        "image api 1.4.2 → 1.4.3, chart podinfo 6.5.0 → 6.5.4, replicas 2 → 3, "
        "4 files changed (1 new, 1 deleted)"
    )


def test_summarize_unified_image_lines_and_values_tags() -> None:
    text = """\
--- a/deploy.yaml
+++ b/deploy.yaml
@@ -20,5 +20,5 @@
       containers:
       - name: api
-        image: ghcr.io/acme/api:1.4.2
+        image: ghcr.io/acme/api:1.5.0
       - name: envoy
-        image: envoyproxy/envoy:v1.29.1
+        image: docker.io/envoyproxy/envoy:v1.30.0
--- a/values.yaml
+++ b/values.yaml
@@ -1,4 +1,4 @@
 image:
   repository: ghcr.io/acme/web
-  tag: "2.0.1"
+  tag: "2.0.2"
 replicas: 2
"""
    assert summarize_unified(text) == (
        "image api 1.4.2 → 1.5.0, image envoy envoyproxy/envoy:v1.29.1 → docker.io/envoyproxy/envoy:v1.30.0, "
        "image web 2.0.1 → 2.0.2, 2 files changed"
    )


def test_summarize_unified_is_best_effort() -> None:
    assert summarize_unified("") == "no changes"
    assert summarize_unified("garbage\n@@ nonsense\n+x\n") == "1 file changed"
    assert summarize_unified("diff --git a/x b/x\nBinary files a/x and b/x differ\n") == "1 file changed"
    assert isinstance(summarize_unified("\x00\ufeff@@ -1 +1 @@\n-\n+" * 50), str)


def test_render_unified_text_splits_files_and_detects_new_and_deleted() -> None:
    rendered = render_unified_text(GIT_DIFF)
    assert [(v.key, v.change, v.added, v.removed) for v in rendered.resources] == [
        ("apps/prod/kustomization.yaml", "changed", 1, 1),
        ("apps/prod/podinfo.yaml", "changed", 3, 3),
        ("apps/prod/worker.yaml", "created", 3, 0),
        ("apps/prod/legacy.yaml", "pruned", 0, 2),
    ]
    podinfo = rendered.resources[1]
    assert podinfo.text.startswith("===== apps/prod/podinfo.yaml (changed) =====\ndiff --git a/apps/prod/")
    assert podinfo.text.endswith('+++ added line whose text starts with "++ "\n')
    assert rendered.summary == summarize_unified(GIT_DIFF)
    assert render_unified_text("").empty
    assert render_unified_text("").summary == "no changes"


def test_render_unified_text_plain_diff_without_git_headers() -> None:
    text = (
        "--- a/x.yaml\t2026-03-01 10:00:00\n+++ b/x.yaml\n@@ -1 +1 @@\n-a: 1\n+a: 2\n"
        "--- a/y.yaml\n+++ b/y.yaml\n@@ -1 +1 @@\n-b\n+c\n"
    )
    rendered = render_unified_text(text)
    assert [(v.key, v.change, v.added, v.removed) for v in rendered.resources] == [
        ("x.yaml", "changed", 1, 1),
        ("y.yaml", "changed", 1, 1),
    ]
