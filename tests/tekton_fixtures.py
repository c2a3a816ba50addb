"""Tekton contract data for tests: the example objects, their v1beta1 shapes, and the CRD schemas.

`example(file)` loads one file of `contracts/tekton/examples/` as a list of objects. The REAL
chains fixtures are trimmed upstream (no apiVersion, kind or namespace); like a fake API server
would before serving them, `example` adds those. `to_v1beta1` / `to_legacy_v1beta1` give the
shapes a v1beta1 read returns (docs/tekton-api.md §9): the same conditions and childReferences
with the v1beta1 field names, or, from a v0.44-or-older controller, the `status.taskRuns` map.
`schema_problems` checks an object against a CRD's openAPIV3Schema with jsonschema and also
reports fields the schema does not declare (the API server would prune them silently).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CONTRACT = Path("/work/shared/contracts/tekton")
EXAMPLES = CONTRACT / "examples"
DOC = Path("/work/shared/docs/tekton-api.md")
EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".json", ".yaml"))
NAMESPACE = "ci"


def example(name: str) -> list[dict[str, Any]]:
    path = EXAMPLES / name
    data = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    items = data["items"] if data.get("kind") == "List" else [data]
    out = []
    for obj in items:
        obj = copy.deepcopy(obj)
        kind = obj.get("kind") or ("TaskRun" if name.startswith("taskrun") else "PipelineRun")
        obj.setdefault("apiVersion", "tekton.dev/v1")
        obj.setdefault("kind", kind)
        obj.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
        obj["metadata"].setdefault("name", "chains-" + name.split(".")[0])
        out.append(obj)
    return out


def split(name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the PipelineRun, its TaskRuns) of an example file."""
    objs = example(name)
    runs = [o for o in objs if o["kind"] == "PipelineRun"]
    return runs[0], [o for o in objs if o["kind"] == "TaskRun"]


def to_v1beta1(obj: dict[str, Any]) -> dict[str, Any]:
    """What a v1beta1 GET of a v1-stored object returns (conversion webhook, §9)."""
    out = copy.deepcopy(obj)
    out["apiVersion"] = "tekton.dev/v1beta1"
    spec, status = out.get("spec", {}), out.get("status", {})
    if out["kind"] == "PipelineRun":
        template = spec.pop("taskRunTemplate", {})
        if "serviceAccountName" in template:
            spec["serviceAccountName"] = template["serviceAccountName"]
        if "podTemplate" in template:
            spec["podTemplate"] = template["podTemplate"]
        if "results" in status:
            status["pipelineResults"] = status.pop("results")
    else:
        if "results" in status:
            status["taskResults"] = status.pop("results")
        for step in status.get("steps", []):
            step.pop("terminationReason", None)
    return out


def to_legacy_v1beta1(run: dict[str, Any], taskruns: list[dict[str, Any]]) -> dict[str, Any]:
    """A v1beta1 run as controllers up to v0.44 wrote it: child status in `status.taskRuns`."""
    out = to_v1beta1(run)
    refs = out.get("status", {}).pop("childReferences", [])
    by_name = {t["metadata"]["name"]: to_v1beta1(t) for t in taskruns}
    out.setdefault("status", {})["taskRuns"] = {
        ref["name"]: {"pipelineTaskName": ref["pipelineTaskName"], "status": by_name[ref["name"]]["status"]}
        for ref in refs
        if ref["name"] in by_name
    }
    return out


@cache
def crd_schema(plural: str, version: str) -> dict[str, Any]:
    crd = yaml.safe_load((CONTRACT / f"300-{plural.removesuffix('s')}.yaml").read_text())
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            schema: dict[str, Any] = v["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(version)


def _unknown(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    if schema.get("x-kubernetes-preserve-unknown-fields") or not isinstance(value, (dict, list)):
        return []
    if isinstance(value, list):
        items = schema.get("items", {})
        return [p for i, v in enumerate(value) for p in _unknown(v, items, f"{path}[{i}]")]
    props = schema.get("properties")
    if props is None:
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return [p for k, v in value.items() for p in _unknown(v, extra, f"{path}.{k}")]
        return []
    found = []
    for key, val in value.items():
        if key not in props:
            found.append(f"{path}.{key}")
        else:
            found += _unknown(val, props[key], f"{path}.{key}")
    return found


def schema_problems(obj: dict[str, Any], plural: str, version: str) -> list[str]:
    """jsonschema errors plus undeclared fields, as readable strings (empty when valid)."""
    schema = crd_schema(plural, version)
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    return errors + [f"unknown field {p}" for p in _unknown(obj, schema, "")]


def doc_reasons(section: str) -> list[tuple[str, str]]:
    """(reason, condition status) of every row of a reason table in the contract doc (§3.2 / §3.3)."""
    text = DOC.read_text()
    start = text.index(f"### {section}")
    end = text.index("\n### ", start + 4)
    rows: list[tuple[str, str]] = []
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        for name in cells[0].split("`")[1::2]:
            rows.append((name, cells[1]))
    return rows
