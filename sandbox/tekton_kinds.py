"""Tekton's kinds on the fake API server: CRD schemas (tekton_schemas.json), served versions, v1 <-> v1beta1.

Objects are stored in the v1 shape (Tekton's storage version since v0.50). A v1beta1 client sees them
through `to_served` and writes through `to_stored`, which follow the field map of docs/tekton-api.md §9:
`taskRunTemplate.serviceAccountName` <-> `serviceAccountName`, `status.results` <-> `pipelineResults` /
`taskResults`, `steps[].terminationReason` dropped, `computeResources` <-> `resources` on Task steps,
`stepSpecs` <-> `stepOverrides`, `spec.timeout` -> `spec.timeouts.pipeline`. `childReferences` stay as they
are (their apiVersion remains `tekton.dev/v1`). The `status.taskRuns` map of controllers before v0.45 is
kept under `LEGACY_TASK_RUNS` in the stored status and only a v1beta1 read shows it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from sandbox.k8s_registry import Registry, ResourceType
from sandbox.k8s_schema import StructuralSchema

GROUP = "tekton.dev"
VERSIONS = ("v1", "v1beta1")
PLURALS = {"PipelineRun": "pipelineruns", "TaskRun": "taskruns", "Pipeline": "pipelines", "Task": "tasks"}
LEGACY_TASK_RUNS = "x-sandbox-taskRuns"  # never served as is: v1beta1 shows it as `taskRuns`, v1 drops it
POD = ResourceType(
    group="", kind="Pod", plural="pods", singular="pod", short_names=("po",), categories=("all",)
)


def load_schemas() -> dict[str, dict[str, Any]]:
    """kind -> {group, plural, singular, shortNames, categories, storage, versions: {name: schema}}."""
    text = resources.files("sandbox").joinpath("tekton_schemas.json").read_text(encoding="utf-8")
    kinds: dict[str, dict[str, Any]] = json.loads(text)["kinds"]
    return kinds


def register(registry: Registry, served: Sequence[str] = VERSIONS) -> dict[str, ResourceType]:
    """Every Tekton kind in the `served` versions (stored objects validated with v1's schema); by plural."""
    types: dict[str, ResourceType] = {}
    for kind, info in load_schemas().items():
        rtype = ResourceType(
            group=info["group"],
            kind=kind,
            plural=info["plural"],
            singular=info["singular"],
            short_names=tuple(info.get("shortNames", ())),
            categories=tuple(info.get("categories", ())),
        )
        schemas = {v: StructuralSchema(s) for v, s in info["versions"].items() if v in served}
        registry.register(rtype, served, StructuralSchema(info["versions"]["v1"]), schemas)
        types[rtype.plural] = rtype
    if registry.find("", "v1", "pods") is None:
        registry.register(POD, ["v1"], None)  # the bot reads only pods/log; pods are stored minimally
    return types


def _renamed(obj: dict[str, Any], pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    out = dict(obj)
    for old, new in pairs:
        if old in out:
            out[new] = out.pop(old)
    return out


def _steps(spec: Any, old: str, new: str) -> Any:
    """A Task spec whose steps (and stepTemplate) have `old` renamed to `new` (computeResources/resources)."""
    if not isinstance(spec, dict):
        return spec
    out = dict(spec)
    if isinstance(out.get("steps"), list):
        out["steps"] = [_renamed(s, [(old, new)]) if isinstance(s, dict) else s for s in out["steps"]]
    if isinstance(out.get("stepTemplate"), dict):
        out["stepTemplate"] = _renamed(out["stepTemplate"], [(old, new)])
    return out


def to_served(rtype: ResourceType, obj: dict[str, Any], version: str) -> dict[str, Any]:
    """The stored (v1) object as `version` shows it."""
    status = obj.get("status")
    if version == "v1":
        if isinstance(status, dict) and LEGACY_TASK_RUNS in status:
            return {**obj, "status": {k: v for k, v in status.items() if k != LEGACY_TASK_RUNS}}
        return obj
    spec = dict(obj.get("spec") or {})
    out = dict(obj)
    if rtype.kind == "PipelineRun":
        template = spec.pop("taskRunTemplate", None) or {}
        for key in ("serviceAccountName", "podTemplate"):
            if key in template:
                spec[key] = template[key]
        if isinstance(spec.get("taskRunSpecs"), list):
            pairs = [("serviceAccountName", "taskServiceAccountName"), ("podTemplate", "taskPodTemplate")]
            spec["taskRunSpecs"] = [_renamed(t, pairs) for t in spec["taskRunSpecs"]]
        if isinstance(status, dict):
            status = _renamed(status, [("results", "pipelineResults")])
            legacy = status.pop(LEGACY_TASK_RUNS, None)
            if legacy is not None:  # a controller before v0.45: the full map, no childReferences
                status.pop("childReferences", None)
                status["taskRuns"] = legacy
    elif rtype.kind == "TaskRun":
        spec = _renamed(spec, [("stepSpecs", "stepOverrides"), ("sidecarSpecs", "sidecarOverrides")])
        if isinstance(status, dict):
            status = taskrun_status_v1beta1(status)
    elif rtype.kind == "Task":
        spec = _steps(spec, "computeResources", "resources")
    out["spec"] = spec
    if status is not None:
        out["status"] = status
    return out


def taskrun_status_v1beta1(status: dict[str, Any]) -> dict[str, Any]:
    out = _renamed(status, [("results", "taskResults")])
    if isinstance(out.get("steps"), list):
        out["steps"] = [{k: v for k, v in s.items() if k != "terminationReason"} for s in out["steps"]]
    if "taskSpec" in out:
        out["taskSpec"] = _steps(out["taskSpec"], "computeResources", "resources")
    return out


def to_stored(rtype: ResourceType, obj: dict[str, Any], version: str) -> dict[str, Any]:
    """A v1beta1 request body (already schema-checked) in the stored v1 shape."""
    if version == "v1":
        return obj
    spec = dict(obj.get("spec") or {})
    if rtype.kind == "PipelineRun":
        template = dict(spec.get("taskRunTemplate") or {})
        for key in ("serviceAccountName", "podTemplate"):
            if key in spec:
                template[key] = spec.pop(key)
        if template:
            spec["taskRunTemplate"] = template
        timeout = spec.pop("timeout", None)
        if timeout is not None and not (spec.get("timeouts") or {}).get("pipeline"):
            spec["timeouts"] = {**(spec.get("timeouts") or {}), "pipeline": timeout}
        if isinstance(spec.get("taskRunSpecs"), list):
            pairs = [("taskServiceAccountName", "serviceAccountName"), ("taskPodTemplate", "podTemplate")]
            spec["taskRunSpecs"] = [_renamed(t, pairs) for t in spec["taskRunSpecs"]]
        spec.pop("resources", None)  # PipelineResources: removed in v1
    elif rtype.kind == "TaskRun":
        spec = _renamed(spec, [("stepOverrides", "stepSpecs"), ("sidecarOverrides", "sidecarSpecs")])
        spec.pop("resources", None)
    elif rtype.kind == "Task":
        spec = _steps(spec, "resources", "computeResources")
        spec.pop("resources", None)
    elif rtype.kind == "Pipeline":
        spec.pop("resources", None)
    return {**obj, "spec": spec}
