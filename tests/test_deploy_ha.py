"""deploy/overlays/ha: two replicas sharing PostgreSQL keep their promises — rolled one at a time,
never both on one node if avoidable, a disruption budget, a Git cache per pod and no shared claim,
the database password only from the Secret, TLS to the server, egress to it, leader election on.

Rendering, schema validation and the comparison with `kubectl kustomize` run for this overlay in
tests/test_deploy.py with the others.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bot.config import parse_config_text
from tests.kustomize_support import (
    DEPLOY,
    ENVIRON,
    ROOT,
    Obj,
    build,
    config_text,
    find_one,
    object_key,
    pod_container,
    pod_env,
)

HA = DEPLOY / "overlays" / "ha"
PASSWORD_ENV = "GITOPS_BOT_DATABASE_PASSWORD"
CA_CONFIG_MAP = "gitops-bot-db-ca"


@pytest.fixture(scope="module")
def ha() -> list[Obj]:
    return build(HA)


def _raw_config(objects: list[Obj]) -> Any:
    return yaml.safe_load(config_text(objects))


def _pod(objects: list[Obj]) -> Obj:
    pod: Obj = find_one(objects, "Deployment")["spec"]["template"]
    return pod


def _selects_the_pods(selector: Obj, objects: list[Obj]) -> bool:
    # Only matchLabels: a matchExpressions term would need its own evaluation here.
    assert set(selector) == {"matchLabels"}, selector
    labels: dict[str, str] = _pod(objects)["metadata"]["labels"]
    return bool(selector["matchLabels"]) and selector["matchLabels"].items() <= labels.items()


def test_two_replicas_roll_one_at_a_time_and_prefer_different_nodes(ha: list[Obj]) -> None:
    spec = find_one(ha, "Deployment")["spec"]
    assert spec["replicas"] == 2
    # The new pod is ready before an old one goes: Slack always has a ready pod behind the Service.
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pod = _pod(ha)["spec"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    [term] = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert _selects_the_pods(term["podAffinityTerm"]["labelSelector"], ha)
    [spread] = pod["topologySpreadConstraints"]
    assert (spread["topologyKey"], spread["whenUnsatisfiable"]) == (
        "topology.kubernetes.io/zone",
        "ScheduleAnyway",
    )
    assert _selects_the_pods(spread["labelSelector"], ha)


def test_the_disruption_budget_keeps_one_pod_of_the_deployment(ha: list[Obj]) -> None:
    budget = find_one(ha, "PodDisruptionBudget")
    assert budget["metadata"]["namespace"] == find_one(ha, "Deployment")["metadata"]["namespace"]
    assert budget["spec"]["minAvailable"] == 1
    assert "maxUnavailable" not in budget["spec"]
    assert budget["spec"]["minAvailable"] < find_one(ha, "Deployment")["spec"]["replicas"], (
        "drains could never evict"
    )
    assert _selects_the_pods(budget["spec"]["selector"], ha)


def test_the_git_cache_is_an_empty_dir_per_pod_and_no_claim_is_mounted_or_rendered(ha: list[Obj]) -> None:
    pod = _pod(ha)["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert not [v for v in volumes.values() if "persistentVolumeClaim" in v]
    assert not [o for o in ha if o["kind"] == "PersistentVolumeClaim"]
    mounts = {m["mountPath"]: m["name"] for m in pod_container(ha)["volumeMounts"]}
    cache = PurePosixPath(_raw_config(ha)["git"]["cache_dir"])
    [data] = [path for path in mounts if PurePosixPath(path) in (cache, *cache.parents) and path != "/"]
    assert set(volumes[mounts[data]]) == {"name", "emptyDir"}
    assert volumes[mounts[data]]["emptyDir"][
        "sizeLimit"
    ]  # a runaway clone evicts its pod, not the node's others
    assert "audit" not in _raw_config(ha), "no SQLite file: audit.database would point at a per-pod directory"


def test_the_database_password_comes_from_the_secret_and_never_from_the_config_map(ha: list[Obj]) -> None:
    database = _raw_config(ha)["database"]
    assert database["password_env"] == PASSWORD_ENV
    assert pod_env(ha)[PASSWORD_ENV] == {
        "valueFrom": {"secretKeyRef": {"name": "gitops-bot", "key": PASSWORD_ENV}},
        "name": PASSWORD_ENV,
    }
    url = urlsplit(database["url"])
    assert (url.scheme, url.password) == ("postgresql", None)
    assert url.username
    for config_map in (o for o in ha if o["kind"] == "ConfigMap"):
        for text in config_map["data"].values():
            assert not re.search(r"^\s*password\s*:", text, re.MULTILINE | re.IGNORECASE), "a password key"
            assert not re.search(r"://[^/@\s]*:[^/@\s]*@", text), "a password in a URL"


def test_the_server_certificate_is_verified_with_the_mounted_ca(ha: list[Obj]) -> None:
    database = _raw_config(ha)["database"]
    assert database["sslmode"] == "verify-full"
    ca_file = PurePosixPath(database["ssl_root_cert"])
    mounts = {m["mountPath"]: m for m in pod_container(ha)["volumeMounts"]}
    mount = mounts[str(ca_file.parent)]
    assert mount["readOnly"] is True
    [volume] = [v for v in _pod(ha)["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"] == {"name": CA_CONFIG_MAP}  # not generated: the guide says how to create it
    assert ca_file.name == "ca.crt"


def test_egress_to_postgresql_is_allowed_and_documented(ha: list[Obj]) -> None:
    port = urlsplit(_raw_config(ha)["database"]["url"]).port or 5432
    policy = find_one(ha, "NetworkPolicy", "gitops-bot-postgres")
    assert policy["spec"]["policyTypes"] == ["Egress"]  # adds to the base policy, restricts nothing more
    assert _selects_the_pods(policy["spec"]["podSelector"], ha)
    [rule] = policy["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": port}]
    [peer] = rule["to"]
    placeholder = peer["ipBlock"]["cidr"]
    assert re.match(r"(192\.0\.2|198\.51\.100|203\.0\.113)\.", placeholder), "an RFC 5737 placeholder"
    assert placeholder in (ROOT / "docs" / "deploy.md").read_text()
    # The base policy still comes along unchanged.
    assert find_one(ha, "NetworkPolicy", "gitops-bot") == find_one(build(DEPLOY / "overlays" / "http-mode"),
                                                                   "NetworkPolicy", "gitops-bot")  # fmt: skip


def test_leader_election_is_on_with_the_lease_the_base_role_grants(ha: list[Obj]) -> None:
    leader = _raw_config(ha)["leader"]
    assert (leader["enabled"], leader["in_cluster"]) == (True, True)
    role = find_one(ha, "Role", "gitops-bot-leader")
    assert role["metadata"]["namespace"] == leader["namespace"]
    assert [leader["lease_name"]] in [rule.get("resourceNames") for rule in role["rules"]]


def test_the_ha_config_loads_with_the_bots_loader(ha: list[Obj]) -> None:
    loaded = parse_config_text(config_text(ha), environ=ENVIRON)
    settings = loaded.settings
    assert settings.database.url is not None
    assert settings.database.url.startswith("postgresql://")
    assert settings.database.password_env == PASSWORD_ENV
    assert settings.database.sslmode == "verify-full"
    assert settings.leader.enabled
    assert settings.leader.in_cluster
    assert loaded.secrets.database_password is not None  # read from password_env
    assert not [w for w in loaded.warnings if "database" in w], loaded.warnings


def test_the_ha_config_is_the_base_config_plus_the_database() -> None:
    base = yaml.safe_load((DEPLOY / "base" / "gitops-bot.yaml").read_text())
    ours = yaml.safe_load((HA / "gitops-bot.yaml").read_text())
    # The overlay replaces the whole file (kustomize cannot edit inside it): keep the copies in step.
    assert {k: v for k, v in ours.items() if k != "database"} == {
        k: v for k, v in base.items() if k != "audit"
    }
    assert set(ours) - set(base) == {"database"}


def test_ha_builds_on_socket_mode_by_changing_its_first_resource(tmp_path: Path) -> None:
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    kustomization = tmp_path / "deploy" / "overlays" / "ha" / "kustomization.yaml"
    text = kustomization.read_text()
    assert "  - ../http-mode\n" in text
    kustomization.write_text(text.replace("  - ../http-mode\n", "  - ../socket-mode\n"))
    objects = build(kustomization.parent)
    env = pod_env(objects)
    assert ("SLACK_APP_TOKEN" in env, "SLACK_SIGNING_SECRET" in env) == (True, False)
    assert not [o for o in objects if o["kind"] in ("Service", "Ingress", "PersistentVolumeClaim")]
    assert find_one(objects, "Deployment")["spec"]["replicas"] == 2
    assert env[PASSWORD_ENV]["valueFrom"]["secretKeyRef"]["key"] == PASSWORD_ENV
    find_one(objects, "PodDisruptionBudget")
    if shutil.which("kubectl") is not None:
        done = subprocess.run(["kubectl", "kustomize", str(kustomization.parent)], capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
        if "unknown command" not in done.stderr:
            assert done.returncode == 0, done.stderr
            theirs = {object_key(o): o for o in yaml.safe_load_all(done.stdout) if o}
            assert {object_key(o): o for o in objects} == theirs
