"""deploy/: the kustomize base and overlays render, validate against Kubernetes' schemas, and keep
their promises (probes, non-root, read-only root, least-privilege RBAC, narrow egress, no secrets).

The renderer is tests/kustomize_support.py; when kubectl is installed, its built-in kustomize must
render exactly the same objects. overlays/ha's own promises are in tests/test_deploy_ha.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.kustomize_support import (
    DEPLOY,
    ROOT,
    Obj,
    bot_config,
    build,
    find_one,
    load_all,
    object_key,
    pod_container,
    pod_env,
)

FLUX_CRDS = Path("/work/shared/contracts/flux")
# The oldest minor still in common support and the newest the validator ships.
K8S_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())
OVERLAYS = ("socket-mode", "http-mode", "ha")
SINGLE_REPLICA = ("socket-mode", "http-mode")  # SQLite on a ReadWriteOnce claim
TARGETS = ("base", *OVERLAYS)
TEKTON = "tekton"  # deploy/tekton: optional, applied on its own (Roles in the pipelines' namespaces)
_one = find_one  # its old name here: tests/test_tekton_rbac.py imports it from this module


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    overlays = {o: build(DEPLOY / "overlays" / o) for o in OVERLAYS}
    return {"base": build(DEPLOY / "base"), **overlays, TEKTON: build(DEPLOY / TEKTON)}


# -- rendering and schemas ------------------------------------------------------------------------


@pytest.mark.parametrize("target", [*TARGETS, TEKTON])
def test_every_rendered_object_validates_against_the_kubernetes_schemas(
    rendered: dict[str, list[Obj]], target: str
) -> None:
    objects = rendered[target]
    assert len({object_key(o) for o in objects}) == len(objects), "duplicate objects"
    for obj in objects:
        for version in K8S_VERSIONS:
            # strict: unknown fields are errors, as with kubectl's server-side field validation.
            kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) not installed"
)
@pytest.mark.parametrize("target", [*TARGETS, TEKTON])
def test_the_renderer_agrees_with_kubectl_kustomize(rendered: dict[str, list[Obj]], target: str) -> None:
    directory = DEPLOY / target if target in ("base", TEKTON) else DEPLOY / "overlays" / target
    done = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    if done.returncode != 0 and "unknown command" in done.stderr:
        pytest.skip("this kubectl has no kustomize")
    assert done.returncode == 0, done.stderr
    theirs = {object_key(o): o for o in yaml.safe_load_all(done.stdout) if o}
    assert {object_key(o): o for o in rendered[target]} == theirs


@pytest.mark.skipif(not FLUX_CRDS.is_dir(), reason="the Flux CRDs (shared/contracts/flux) are not here")
def test_the_flux_example_validates_against_the_flux_crds() -> None:
    crds = {}
    for path in FLUX_CRDS.glob("*.yaml"):
        for crd in load_all(path):
            for version in crd["spec"]["versions"]:
                api = f"{crd['spec']['group']}/{version['name']}"
                crds[api, crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    objects = load_all(DEPLOY / "examples" / "flux-sync.yaml")
    for obj in objects:
        schema = crds[obj["apiVersion"], obj["kind"]]
        jsonschema.Draft7Validator(schema).validate(obj)
        assert not _unknown_fields(obj, schema), "fields the API server would reject"
    kustomization = find_one(objects, "Kustomization")
    assert (ROOT / kustomization["spec"]["path"] / "kustomization.yaml").exists()


def _unknown_fields(data: Any, schema: Obj, path: str = "") -> list[str]:
    """Keys a structural schema does not declare (what strict field validation refuses)."""
    if isinstance(data, list) and "items" in schema:
        return [
            u for i, item in enumerate(data) for u in _unknown_fields(item, schema["items"], f"{path}[{i}]")
        ]
    if not isinstance(data, dict) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if "properties" not in schema:
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return [u for k, v in data.items() for u in _unknown_fields(v, extra, f"{path}.{k}")]
        return []
    props = schema["properties"]
    unknown = [f"{path}.{k}" for k in data if k not in props]
    return unknown + [
        u for k, v in data.items() if k in props for u in _unknown_fields(v, props[k], f"{path}.{k}")
    ]


# -- the pod -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", OVERLAYS)
def test_probes_security_and_volumes(rendered: dict[str, list[Obj]], target: str) -> None:
    objects = rendered[target]
    deployment = find_one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod_container(objects)
    settings = bot_config(objects)
    [port] = container["ports"]
    assert port["containerPort"] == settings.server.port
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": port["name"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    config_map = find_one(objects, "ConfigMap", volumes[mounts["/config"]]["configMap"]["name"])
    assert pod_env(objects)["GITOPS_BOT_CONFIG"]["value"] == "/config/" + next(iter(config_map["data"]))
    assert str(settings.git.cache_dir).startswith("/data/")
    assert pod["enableServiceLinks"] is False  # no GITOPS_BOT_PORT=tcp://… injected by a Service
    assert ":" in container["image"]
    assert not container["image"].endswith(":latest")


@pytest.mark.parametrize("target", SINGLE_REPLICA)
def test_one_replica_keeps_sqlite_on_a_read_write_once_claim(
    rendered: dict[str, list[Obj]], target: str
) -> None:
    objects = rendered[target]
    deployment = find_one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in pod_container(objects)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"]
    assert find_one(objects, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteOnce"]
    settings = bot_config(objects)
    assert settings.database.url is None  # the SQLite file at audit.database, on the claim
    assert str(settings.audit.database).startswith("/data/")
    # One SQLite writer: a single replica, the old pod gone before the new one opens the file.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("target", OVERLAYS)
def test_graceful_shutdown_fits_in_the_grace_period(rendered: dict[str, list[Obj]], target: str) -> None:
    pod = find_one(rendered[target], "Deployment")["spec"]["template"]["spec"]
    timeout = bot_config(rendered[target]).server.shutdown_timeout.total_seconds()
    # The bot needs the timeout plus a few seconds to record interrupted jobs and close the database.
    assert pod["terminationGracePeriodSeconds"] >= timeout + 10


MODES = [
    ("socket-mode", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"),
    ("http-mode", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"),
    ("ha", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"),  # built on http-mode
]


@pytest.mark.parametrize(("target", "mode_var", "other"), MODES)
def test_secrets_come_from_the_secret_and_the_overlay_picks_the_mode(
    rendered: dict[str, list[Obj]], target: str, mode_var: str, other: str
) -> None:
    objects = rendered[target]
    env = pod_env(objects)
    container = pod_container(objects)
    assert "envFrom" not in container, "named keys only: a stray SLACK_APP_TOKEN would switch the mode"
    settings = bot_config(objects)
    needed = {"SLACK_BOT_TOKEN", mode_var} | {a.token_env for a in settings.argocd}
    needed |= {r.credentials_env for r in settings.repositories if r.credentials_env}
    needed |= {settings.database.password_env} if settings.database.password_env else set()
    for name in needed:
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "gitops-bot", name
        assert env[name]["valueFrom"]["secretKeyRef"]["key"] == name
    assert other not in env
    assert all("value" not in e for e in env.values() if re.search(r"TOKEN|SECRET|PASSWORD", e["name"]))
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_socket_mode_has_no_service_and_http_mode_publishes_only_slack_events(
    rendered: dict[str, list[Obj]],
) -> None:
    assert not [o for o in rendered["socket-mode"] if o["kind"] in ("Service", "Ingress")]
    objects = rendered["http-mode"]
    service = find_one(objects, "Service")
    pod_labels = find_one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == pod_container(objects)["ports"][0]["name"]
    [rule] = find_one(objects, "Ingress")["spec"]["rules"]
    [path] = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/slack/events", "Exact")
    assert path["backend"]["service"] == {"name": service["metadata"]["name"], "port": {"name": port["name"]}}
    extra = find_one(objects, "NetworkPolicy", "gitops-bot-ingress-controller")
    assert [p for r in extra["spec"]["ingress"] for p in r["ports"]] == [{"protocol": "TCP", "port": 3000}]


# -- RBAC and network ----------------------------------------------------------------------------------


def test_rbac_is_exactly_what_the_bot_uses(rendered: dict[str, list[Obj]]) -> None:
    objects = rendered["base"]
    roles = [o for o in objects if o["kind"] in ("Role", "ClusterRole")]
    assert sorted(r["kind"] for r in roles) == ["ClusterRole", "Role"]
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"{role['metadata']['name']}: wildcard in {field}"
    cluster = {(g, r): set(rule["verbs"]) for rule in find_one(objects, "ClusterRole")["rules"]
               for g in rule["apiGroups"] for r in rule["resources"]}  # fmt: skip
    flux = {"get", "list", "watch", "patch"}
    assert cluster == {
        ("kustomize.toolkit.fluxcd.io", "kustomizations"): flux,
        ("helm.toolkit.fluxcd.io", "helmreleases"): flux,
        ("source.toolkit.fluxcd.io", "gitrepositories"): flux,
        ("source.toolkit.fluxcd.io", "ocirepositories"): flux,
        ("source.toolkit.fluxcd.io", "helmrepositories"): flux,
        ("source.toolkit.fluxcd.io", "helmcharts"): flux,
        ("source.toolkit.fluxcd.io", "buckets"): flux,
        ("", "events"): {"list"},
    }
    settings = bot_config(objects)
    role = find_one(objects, "Role")
    assert role["metadata"]["namespace"] == settings.leader.namespace
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "create", "update"}
    for rule in role["rules"]:
        assert (rule["apiGroups"], rule["resources"]) == (["coordination.k8s.io"], ["leases"])
        if rule["verbs"] != ["create"]:  # create cannot be limited by name; the rest is
            assert rule["resourceNames"] == [settings.leader.lease_name]
    account = find_one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    for binding in (o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "gitops-bot"}]
        bound = [r for r in roles if r["metadata"]["name"] == binding["roleRef"]["name"]]
        assert [r["kind"] for r in bound] == [binding["roleRef"]["kind"]]


def _ports(rules: list[Obj]) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for rule in rules for p in rule["ports"]}


def test_network_policy_allows_only_the_documented_traffic(rendered: dict[str, list[Obj]]) -> None:
    policy = find_one(rendered["base"], "NetworkPolicy")
    spec = policy["spec"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert spec["podSelector"]["matchLabels"].items() <= (
        find_one(rendered["base"], "Deployment")["spec"]["template"]["metadata"]["labels"].items()
    )
    for rule in spec["egress"] + spec["ingress"]:
        assert rule.get("ports"), "a rule without ports allows every port"
        assert rule.get("to") or rule.get("from"), "a rule without peers allows everyone"
    assert _ports(spec["egress"]) == {("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 6443)}
    assert _ports(spec["ingress"]) == {("TCP", 3000)}
    dns = [r for r in spec["egress"] if ("UDP", 53) in _ports([r])]
    assert [_ports(dns)] == [{("UDP", 53), ("TCP", 53)}]
    assert dns[0]["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    blocks = [peer["ipBlock"] for r in spec["egress"] for peer in r["to"] if "ipBlock" in peer]
    internet = [b for b in blocks if b["cidr"] == "0.0.0.0/0"]
    assert internet, "Slack and Git hosts"
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(internet[0]["except"])
    guide = (ROOT / "docs" / "deploy.md").read_text()
    for placeholder in (b["cidr"] for b in blocks if b is not internet[0]):
        # Placeholders are documentation ranges (RFC 5737), and the guide says what to put there.
        assert re.match(r"(192\.0\.2|198\.51\.100|203\.0\.113)\.", placeholder), placeholder
        assert placeholder in guide


# -- secrets and the guide -----------------------------------------------------------------------------

TOKEN_SHAPES = re.compile(
    r"xox[abpr]-\d|xapp-\d-|eyJ[\w-]{8,}\.eyJ|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_|glpat-|AKIA[0-9A-Z]{16}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
PLACEHOLDER = re.compile(r"REPLACE|CHANGE-?ME|EXAMPLE|<[^>]+>", re.IGNORECASE)


def test_no_secret_values_are_committed() -> None:
    files = [p for p in DEPLOY.rglob("*") if p.is_file()] + [ROOT / "docs" / "deploy.md"]
    for path in files:
        text = path.read_text()
        assert not TOKEN_SHAPES.search(text), f"{path}: looks like a real credential"
        if path.suffix != ".yaml":
            continue
        for obj in load_all(path):
            kind = obj.get("kind")  # deploy/base/gitops-bot.yaml is the bot's config, not an object
            values = {**obj.get("data", {}), **obj.get("stringData", {})} if kind == "Secret" else {}
            values |= obj.get("spec", {}).get("encryptedData", {}) if kind == "SealedSecret" else {}
            for key, value in values.items():
                assert PLACEHOLDER.search(str(value)), f"{path}: {key} is not an obvious placeholder"


def test_the_secret_examples_provide_every_key_the_deployments_read(rendered: dict[str, list[Obj]]) -> None:
    read = {e["valueFrom"]["secretKeyRef"]["key"] for o in OVERLAYS for e in pod_env(rendered[o]).values()
            if "secretKeyRef" in e.get("valueFrom", {})}  # fmt: skip
    examples = DEPLOY / "examples"
    [secret] = load_all(examples / "secret.yaml")
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(secret, version, strict=True)
    assert (secret["metadata"]["name"], set(secret["stringData"])) == ("gitops-bot", read)
    [external] = load_all(examples / "externalsecret.yaml")
    assert external["apiVersion"].startswith("external-secrets.io/")
    assert external["spec"]["target"]["name"] == "gitops-bot"
    assert {d["secretKey"] for d in external["spec"]["data"]} == read
    [sealed] = load_all(examples / "sealedsecret.yaml")
    assert (sealed["apiVersion"], sealed["metadata"]["name"]) == ("bitnami.com/v1alpha1", "gitops-bot")
    assert set(sealed["spec"]["encryptedData"]) == read
    # Not in the base: applying an overlay must never overwrite the real Secret with placeholders.
    assert not [o for t in TARGETS for o in rendered[t] if o["kind"] == "Secret"]


def test_the_guide_gives_the_argo_cd_account_and_rbac_and_no_more() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    # apiKey and nothing else: the account can use the API and cannot log in to the UI.
    assert re.search(r"^\s*accounts\.gitops-bot: apiKey\s*(#|$)", guide, re.MULTILINE)
    needles = ["argocd account generate-token --account gitops-bot"]
    needles += [f"kubectl apply -k deploy/overlays/{overlay}" for overlay in OVERLAYS]
    for needle in needles:
        assert needle in guide, needle
    policies = [
        [f.strip() for f in line.split(",")]
        for line in guide.splitlines()
        if line.startswith("p, role:gitops-bot")
    ]
    assert policies, "policy.csv lines for role:gitops-bot"
    assert {p[2] for p in policies} == {"applications"}
    assert {p[3] for p in policies} == {"get", "sync", "update", "override"}
    assert all(p[5] == "allow" for p in policies)
    assert "g, gitops-bot, role:gitops-bot" in guide
