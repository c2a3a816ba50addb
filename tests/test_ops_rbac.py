"""The deploy RBAC and its guide cover every Kubernetes kind the Flux client reads or patches.

The list comes from the code's own table (services/flux/kinds.py), so a kind added there without
a ClusterRole rule fails here instead of answering "forbidden" in a real cluster.
"""

from __future__ import annotations

import re
from pathlib import Path

from services.flux.kinds import ALL_KINDS, API_ACCESS, OBJECT_VERBS
from tests.test_deploy import DEPLOY, OVERLAYS, build

ROOT = Path(__file__).resolve().parent.parent


def _granted(objects: list[dict[str, object]]) -> dict[tuple[str, str], set[str]]:
    [role] = [o for o in objects if o["kind"] == "ClusterRole"]
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:  # type: ignore[index]
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def test_the_cluster_role_grants_every_kind_and_verb_the_code_uses() -> None:
    assert ("source.toolkit.fluxcd.io", "buckets", OBJECT_VERBS) in API_ACCESS  # Bucket-sourced apps
    for target in (DEPLOY / "base", *(DEPLOY / "overlays" / o for o in OVERLAYS)):
        granted = _granted(build(target))
        for group, plural, verbs in API_ACCESS:
            missing = set(verbs) - granted.get((group, plural), set())
            assert not missing, (
                f"{target.name}: ClusterRole lacks {sorted(missing)} on {group or 'core'}/{plural}"
            )


def test_the_table_names_every_verb_the_flux_client_sends() -> None:
    # FluxClient tags each Kubernetes call with its RBAC verb; discovery (GET /apis) needs no grant.
    source = (ROOT / "services" / "flux" / "client.py").read_text()
    used = set(re.findall(r'verb="(\w+)"', source)) - {"discover"}
    assert used, "FluxClient no longer names its verbs; update this test"
    assert used <= {v for _, _, verbs in API_ACCESS for v in verbs}
    assert {k.plural for k in ALL_KINDS.values()} <= {plural for _, plural, _ in API_ACCESS}


def _guide_rows() -> list[tuple[str, set[str], set[str]]]:
    """(group, resources, verbs) of each row of the RBAC table in docs/deploy.md."""
    guide = (ROOT / "docs" / "deploy.md").read_text()
    section = guide.split("## 5. Flux: Kubernetes RBAC", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[1].startswith("`"):
            continue
        group = "" if cells[0].startswith("core") else cells[0].strip("`")
        resources = set(re.findall(r"`([a-z]+)`", cells[1]))
        verbs = {v.strip() for v in cells[2].split(",")}
        rows.append((group, resources, verbs))
    return rows


def test_the_guide_lists_every_kind_and_verb_the_code_uses() -> None:
    rows = _guide_rows()
    assert rows, "docs/deploy.md section 5 has no RBAC table"
    for group, plural, verbs in API_ACCESS:
        listed = [row_verbs for g, resources, row_verbs in rows if g == group and plural in resources]
        assert listed, f"docs/deploy.md does not list {group or 'core'}/{plural}"
        assert set(verbs) <= listed[0], f"docs/deploy.md: {plural} needs {verbs}"
