"""deploy/tekton: the optional Role and RoleBinding that let the bot's ServiceAccount use Tekton in
one namespace (copied per `tekton[].namespaces`). Rendered and schema-checked with the rest of deploy/
in tests/test_deploy.py; here: exactly the grants the bot's Tekton calls need, and the guide says so."""

from __future__ import annotations

import re
from pathlib import Path

from bot.config import parse_config_text
from tests.test_deploy import DEPLOY, TEKTON, Obj, _one, build

ROOT = Path(__file__).resolve().parent.parent

# tekton-api.md §1 and §5: start, list, follow and cancel runs; read the task tree, the Pipeline,
# and the failed step's pod and log. Nothing more (no update, no delete, no Secrets).
TEKTON_GRANTS = {
    ("tekton.dev", "pipelineruns"): {"create", "get", "list", "watch", "patch"},
    ("tekton.dev", "taskruns"): {"get", "list", "watch"},
    ("tekton.dev", "pipelines"): {"get"},
    ("", "pods"): {"get"},
    ("", "pods/log"): {"get"},
}


def _granted(role: Obj) -> dict[tuple[str, str], set[str]]:
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], f"{role['metadata']['name']}: wildcard in {field}"
        assert "resourceNames" not in rule  # run names are generated: nothing to pin
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def test_tekton_rbac_is_a_namespaced_role_per_namespace_with_exactly_what_the_bot_uses() -> None:
    objects, base = build(DEPLOY / TEKTON), build(DEPLOY / "base")
    assert sorted(o["kind"] for o in objects) == ["Role", "RoleBinding"]  # nothing cluster-wide
    role, binding = _one(objects, "Role"), _one(objects, "RoleBinding")
    assert _granted(role) == TEKTON_GRANTS
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "ci"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    account = _one(base, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    namespace = _one(base, "Namespace")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
    # The example configuration's pipelines live where the example Role is.
    example = parse_config_text((ROOT / "examples" / "gitops-bot.yaml").read_text(), environ={}).settings
    assert "ci" in {p.namespace for app in example.apps for p in app.pipelines}
    # The guide's table is the same grant, row by row.
    guide = (ROOT / "docs" / "deploy.md").read_text()
    section = guide.split("## Tekton: Kubernetes RBAC (optional)", 1)[1].split("\n## ", 1)[0]
    rows: dict[tuple[str, str], set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`"):
            group = "" if cells[0].startswith("core") else cells[0].strip("`")
            for resource in re.findall(r"`([a-z/]+)`", cells[1]):
                rows[group, resource] = {v.strip() for v in cells[2].split(",")}
    assert rows == TEKTON_GRANTS
    assert "kubectl apply -k deploy/tekton" in section
