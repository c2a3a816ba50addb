"""Tekton configuration (`tekton:`, `apps[].pipelines`) and its access-control actions: every problem
with its key path in one run, the only cluster as the default, Tekton's own workspace shapes (checked
against the PipelineRun CRD of the contract), and the roles."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.config import ConfigError, LoadedConfig, load_config, parse_config_text
from services.access.policy import AccessPolicy
from services.settings.model import ACTIONS, Settings
from services.settings.tekton import pipelines_for
from services.validation import action_name

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = Path("/work/shared/contracts/tekton")

BASE = """
argocd:
  - {name: main, url: https://argo.example.com, token_env: ARGO_TOKEN}
tekton:
  - name: ci
    in_cluster: true
    namespaces: [ci, release]
    dashboard_url: https://tekton.example.com/
environments:
  - name: dev
  - name: staging
  - name: prod
apps:
  - name: web
    environments:
      dev: {backend: argocd, name: web-dev}
      prod: {backend: argocd, name: web-prod}
    pipelines:
      - name: web-ci
        namespace: ci
        params: {image: registry.example.com/web, tags: [a, b], labels: {team: shop}}
        workspaces:
          - {name: source, persistentVolumeClaim: {claimName: web-src}, subPath: checkout}
          - {name: scratch, emptyDir: {}}
          - {name: settings, configMap: {name: web-ci}}
          - {name: auth, secret: {secretName: web-auth}}
        service_account: builder
        timeout: 1h30m
        revision_param: revision
        environments: [dev]
"""


def load(text: str) -> LoadedConfig:
    return parse_config_text(textwrap.dedent(text), environ={"ARGO_TOKEN": "t", "SLACK_BOT_TOKEN": "x"})


def problems(text: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return info.value.problems


def test_a_pipeline_loads_with_tektons_shapes_and_the_only_cluster_as_default() -> None:
    loaded = load(BASE)
    settings = loaded.settings
    cluster = settings.tekton_cluster("ci")
    assert cluster is not None
    assert (cluster.namespaces, cluster.dashboard_url) == (("ci", "release"), "https://tekton.example.com")
    web = settings.app("web")
    assert web is not None
    [pipeline] = web.pipelines
    assert (pipeline.cluster, pipeline.namespace, pipeline.service_account) == ("ci", "ci", "builder")
    assert dict(pipeline.params) == {
        "image": "registry.example.com/web",
        "tags": ("a", "b"),
        "labels": {"team": "shop"},
    }
    assert [w.binding() for w in pipeline.workspaces] == [
        {"name": "source", "subPath": "checkout", "persistentVolumeClaim": {"claimName": "web-src"}},
        {"name": "scratch", "emptyDir": {}},
        {"name": "settings", "configMap": {"name": "web-ci"}},
        {"name": "auth", "secret": {"secretName": "web-auth"}},
    ]
    assert pipeline.timeout == timedelta(minutes=90)
    assert pipeline.param_values() == {
        "image": "registry.example.com/web",
        "tags": ["a", "b"],
        "labels": {"team": "shop"},
    }
    assert pipeline.revision_param == "revision"
    assert (pipelines_for(web.pipelines, "dev"), pipelines_for(web.pipelines, "prod")) == ((pipeline,), ())
    assert pipelines_for(web.pipelines, None) == (pipeline,)
    # A dump reloads as the same settings (params, workspaces, durations included), and hashes.
    assert Settings.model_validate_json(settings.model_dump_json()) == settings
    assert hash(settings) == hash(load(BASE).settings)


def test_defaults() -> None:
    text = BASE.split("        params:")[0] + "      - {name: web-verify, namespace: release}\n"
    [first, second] = load(text).settings.apps[0].pipelines
    assert (first.params, first.workspaces, first.environments) == ({}, (), ())
    assert (second.cluster, second.timeout, second.service_account, second.revision_param) == (
        "ci",
        None,
        None,
        None,
    )
    assert second.param_values() == {}
    assert second.applies_to("prod")
    assert second.applies_to(None)


def test_a_configured_pipeline_adds_no_warning() -> None:
    with_channel = "slack:\n  alerts_channel: C0ALERTS\n" + textwrap.dedent(BASE)
    assert not [w for w in load(with_channel).warnings if "tekton" in w or "pipeline" in w]
    # Without any channel, the pipeline monitor (on with pipelines) says where its alerts cannot go.
    assert [w.split(":")[0] for w in load(BASE).warnings if "pipeline" in w] == ["pipeline_monitor.channel"]


def test_a_pipeline_gate_that_covers_no_pipeline_warns_that_it_checks_nothing() -> None:
    # web's pipeline builds dev only: a gate on prod promotions has nothing to ask.
    gate = "validators:\n  - {kind: pipeline_succeeded, environments: [prod]}\n"
    warned = [w for w in load(BASE + gate).warnings if w.startswith("validators[0]")]
    assert warned == [
        "validators[0]: no app it applies to has a pipeline for its environments, so it checks nothing; "
        "add apps[].pipelines or narrow its apps / environments"
    ]
    covering = "validators:\n  - {kind: pipeline_succeeded, environments: [dev]}\n"
    assert not [w for w in load(BASE + covering).warnings if w.startswith("validators[")]


def test_the_example_file_has_tekton_and_only_the_expected_warnings() -> None:
    loaded = load_config(ROOT / "examples" / "gitops-bot.yaml", explicit=True, environ={})
    assert all("is not set" in w for w in loaded.warnings)
    [cluster] = loaded.settings.tekton
    pipelines = [p for app in loaded.settings.apps for p in app.pipelines]
    assert pipelines, "the example shows apps[].pipelines"
    assert all(p.cluster == cluster.name and p.namespace in cluster.namespaces for p in pipelines)


def test_cross_references_are_reported_with_their_key_paths_all_at_once() -> None:
    text = BASE.replace("namespace: ci\n", "namespace: cii\n").replace(
        "environments: [dev]", "environments: [stage]"
    )
    text += textwrap.indent(
        textwrap.dedent(
            """\
            - {name: web-ci, namespace: cii}
            - {name: web-e2e, namespace: ci, cluster: cl}
            """
        ),
        "      ",
    )
    not_listed = "'cii' is not a namespace of Tekton cluster 'ci' (did you mean 'ci'?)"
    assert problems(text) == (
        f"apps[0].pipelines[0].namespace: {not_listed}",
        "apps[0].pipelines[0].environments[0]: 'stage' is not an environment of this app "
        "(configured: dev, prod)",
        f"apps[0].pipelines[1].namespace: {not_listed}",
        "apps[0].pipelines[1].name: duplicate pipeline 'web-ci' in namespace 'cii' "
        "(also apps[0].pipelines[0])",
        "apps[0].pipelines[2].cluster: unknown Tekton cluster 'cl' (configured: ci)",
    )


def test_the_cluster_is_required_unless_exactly_one_is_configured() -> None:
    edge = "  - {name: edge, in_cluster: true, namespaces: [ci]}\n"
    two = BASE.replace("environments:\n  - name: dev", edge + "environments:\n  - name: dev")
    assert problems(two) == (
        "apps[0].pipelines[0].cluster: required: 2 Tekton clusters are configured (ci, edge)",
    )
    assert load(two.replace("namespace: ci\n", "namespace: ci\n        cluster: edge\n")).settings
    none = BASE.split("tekton:")[0] + "environments:" + BASE.split("environments:", 1)[1]
    assert problems(none) == ("apps[0].pipelines[0].cluster: required: no Tekton cluster is configured",)
    twice = BASE.replace("tekton:\n", "tekton:\n  - {name: ci, in_cluster: true, namespaces: [ci]}\n")
    assert problems(twice) == ("tekton[1].name: duplicate Tekton cluster name 'ci' (also tekton[0])",)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("namespaces: [ci, release]", "namespaces: []",
         "tekton[0].namespaces: list at least one namespace the bot may use"),
        ("namespaces: [ci, release]", "namespaces: [ci, ci]",
         "tekton[0].namespaces: lists ci more than once"),
        ("namespaces: [ci, release]", "namespaces: [CI]",
         "tekton[0].namespaces[0]: 'CI' is not a valid name (lowercase letters, digits and '-', at most 63, "
         "e.g. 'prod-eu')"),
        ("in_cluster: true", "in_cluster: false",
         "tekton[0]: set exactly one of kubeconfig or in_cluster: true (they are alternatives)"),
        ("in_cluster: true", "in_cluster: true\n    context: admin",
         "tekton[0]: context applies only with kubeconfig"),
        ("dashboard_url: https://tekton.example.com/", "dashboard_url: tekton.example.com",
         "tekton[0].dashboard_url: not a URL: 'tekton.example.com' (expected http:// or https://)"),
        ("{name: scratch, emptyDir: {}}", "{name: scratch}",
         "apps[0].pipelines[0].workspaces[1]: set exactly one of persistentVolumeClaim, emptyDir, configMap, "
         "secret; none is given"),
        ("{name: scratch, emptyDir: {}}", "{name: scratch, emptyDir: {}, configMap: {name: x}}",
         "apps[0].pipelines[0].workspaces[1]: set exactly one of persistentVolumeClaim, emptyDir, configMap, "
         "secret; 2 are given (emptyDir, configMap)"),
        ("{claimName: web-src}", "{claimname: web-src}",
         "apps[0].pipelines[0].workspaces[0].persistentVolumeClaim.claimname: unknown key "
         "(did you mean 'claimName'?)"),
        ("emptyDir: {}", "emptyDir: {medium: Disk}",
         "apps[0].pipelines[0].workspaces[1].emptyDir.medium: 'Disk' is not one of: , Memory"),
        ("subPath: checkout", "subPath: ../etc",
         "apps[0].pipelines[0].workspaces[0]: subPath must be relative, without '..'"),
        ("{name: scratch,", "{name: source,",
         "apps[0].pipelines[0]: workspace source is bound more than once"),
        ("image: registry.example.com/web", "image: 1.10",
         "apps[0].pipelines[0].params: 'image': expected text (quote numbers and booleans, like '3'), "
         "a list of text or a mapping of text to text; got 1.1"),
        ("tags: [a, b]", "tags: [a, 2]",
         "apps[0].pipelines[0].params: 'tags': expected text (quote numbers and booleans, like '3'), "
         "a list of text or a mapping of text to text; got ['a', 2]"),
        ("image: registry", "9image: registry",
         "apps[0].pipelines[0].params: '9image' is not a Tekton parameter name "
         "(a letter or _ first, then letters, digits, _ - .)"),
        ("revision_param: revision", "revision_param: git revision",
         "apps[0].pipelines[0].revision_param: 'git revision' is not a Tekton parameter name "
         "(like revision or image.tag)"),
        ("service_account: builder", "service_account: Builder",
         "apps[0].pipelines[0].service_account: 'Builder' is not a Kubernetes object name "
         "(lowercase, digits, '-' and '.')"),
        ("timeout: 1h30m", "timeout: soon",
         "apps[0].pipelines[0].timeout: not a duration: 'soon' (use e.g. 90s, 2m, 1h30m, 1d, or a number of "
         "seconds)"),
        ("revision_param: revision", "revison_param: revision",
         "apps[0].pipelines[0].revison_param: unknown key (did you mean 'revision_param'?)"),
    ],
)  # fmt: skip
def test_field_problems_name_the_key_and_what_is_wrong(old: str, new: str, expected: str) -> None:
    assert BASE.count(old) == 1
    found = problems(BASE.replace(old, new))
    # A misspelt key also leaves the key it meant missing; nothing else is reported.
    meant = expected.split(".claimname")[0] + ".claimName: required"
    assert found == (expected,) or sorted(found) == sorted((expected, meant))


def test_required_keys_are_reported() -> None:
    text = """
    tekton: [{name: ci, in_cluster: true}]
    environments: [{name: dev}]
    apps:
      - name: web
        environments: {dev: {backend: flux, instance: home, name: web}}
        pipelines: [{}]
    flux: [{name: home, in_cluster: true}]
    """
    assert problems(text) == (
        "tekton[0].namespaces: required",
        "apps[0].pipelines[0].name: required",
        "apps[0].pipelines[0].namespace: required",
    )


# -- the PipelineRun these settings become, against the contract's CRD --------------------------------


def _crd_schema(kind_file: str) -> dict[str, Any]:
    crd = yaml.safe_load((CONTRACT / kind_file).read_text())
    [v1] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return v1["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def _unknown_fields(data: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Keys the structural schema does not declare: what the API server would prune or refuse."""
    if isinstance(data, list) and "items" in schema:
        return [
            u for i, item in enumerate(data) for u in _unknown_fields(item, schema["items"], f"{path}[{i}]")
        ]
    if not isinstance(data, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    props = schema.get("properties", {})
    unknown = [f"{path}.{k}" for k in data if k not in props]
    return unknown + [
        u for k, v in data.items() if k in props for u in _unknown_fields(v, props[k], f"{path}.{k}")
    ]


@pytest.mark.skipif(not CONTRACT.is_dir(), reason="the Tekton contract (shared/contracts/tekton) is not here")
def test_a_pipelinerun_built_from_the_settings_is_valid_for_the_v1_crd() -> None:
    [pipeline] = load(BASE).settings.apps[0].pipelines
    params = [{"name": k, "value": v} for k, v in pipeline.param_values().items()]
    body = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"generateName": f"{pipeline.name}-run-", "namespace": pipeline.namespace},
        "spec": {
            "pipelineRef": {"name": pipeline.name},
            "params": [*params, {"name": pipeline.revision_param, "value": "0123abc"}],
            "workspaces": [w.binding() for w in pipeline.workspaces],
            "taskRunTemplate": {"serviceAccountName": pipeline.service_account},
            "timeouts": {"pipeline": "1h30m0s"},  # pipeline.timeout as Go writes it
        },
    }
    schema = _crd_schema("300-pipelinerun.yaml")
    jsonschema.Draft7Validator(schema).validate(body)
    assert _unknown_fields(body["spec"], schema["properties"]["spec"], "spec") == []
    # The check has teeth: a binding in our own spelling would be pruned by the API server.
    wrong = {
        **body["spec"],
        "workspaces": [{"name": "source", "persistent_volume_claim": {"claim_name": "x"}}],
    }
    assert _unknown_fields(wrong, schema["properties"]["spec"], "spec") == [
        "spec.workspaces[0].persistent_volume_claim"
    ]


# -- access control -----------------------------------------------------------------------------------


def _policy(access: Mapping[str, Any]) -> AccessPolicy:
    return AccessPolicy(load(BASE + textwrap.dedent(f"access: {dict(access)!r}\n")).settings, None)


def test_viewers_list_runs_and_deployers_start_and_cancel_them_where_granted() -> None:
    access = _policy(
        {
            "grants": [
                {"role": "viewer", "users": ["UVIEW"]},
                {"role": "deployer", "users": ["UDEPLOY"], "environments": ["dev"]},
                {"role": "admin", "users": ["UADMIN"]},
            ]
        }
    )
    assert access.decide("UVIEW", "pipelines", env="prod").allowed
    denied = access.decide("UVIEW", "pipeline_run", env="dev", app="web")
    assert not denied.allowed
    assert denied.reason.startswith("`pipeline_run`")
    assert "needs" in denied.reason
    assert not access.decide("UVIEW", "pipeline_cancel", env="dev").allowed
    assert access.decide("UDEPLOY", "pipeline_run", env="dev", app="web").allowed
    assert access.decide("UDEPLOY", "pipeline_cancel", env="dev", app="web").allowed
    assert not access.decide("UDEPLOY", "pipeline_cancel", env="prod", app="web").allowed
    assert {"pipelines", "pipeline_run", "pipeline_cancel"} <= access.allowed_actions("UADMIN")
    assert "pipeline_run" not in access.allowed_actions("UVIEW")


def test_custom_roles_name_the_pipeline_actions_and_typos_are_caught() -> None:
    access = _policy(
        {"roles": [{"name": "ci-operator", "actions": ["pipelines", "pipeline_run"]}],
         "grants": [{"role": "ci-operator", "users": ["UCI"]}]}
    )  # fmt: skip
    assert access.decide("UCI", "pipeline_run", env="prod").allowed
    assert not access.decide("UCI", "pipeline_cancel", env="prod").allowed
    (found,) = problems(BASE + "access: {roles: [{name: ci, actions: [pipeline-run]}]}\n")
    assert found.startswith("access.roles[0].actions[0]: 'pipeline-run' is not one of: ")
    assert found.endswith("(did you mean 'pipeline_run'?)")


def test_without_access_control_everyone_may_list_runs_but_not_start_them() -> None:
    access = AccessPolicy(load(BASE).settings, None)
    assert access.decide("UANY", "pipelines").allowed
    assert not access.decide("UANY", "pipeline_run", env="dev").allowed


@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_a_role_may_name_can_be_searched_in_the_audit_trail(action: str) -> None:
    assert action_name(action) == action
