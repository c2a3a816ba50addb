"""The Flux kinds: CRD schemas (flux_schemas.json), served versions, version conversion, reconcile wiring."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from sandbox.k8s_registry import Registry, ResourceType
from sandbox.k8s_schema import StructuralSchema

KUSTOMIZE = "kustomize.toolkit.fluxcd.io"
HELM = "helm.toolkit.fluxcd.io"
SOURCE = "source.toolkit.fluxcd.io"
DEFAULT_SERVED: Mapping[str, Sequence[str]] = {KUSTOMIZE: ("v1",), HELM: ("v2",), SOURCE: ("v1",)}
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FORCE_AT = "reconcile.fluxcd.io/forceAt"
RESET_AT = "reconcile.fluxcd.io/resetAt"
# kind -> the controller that owns it (Event source, field manager)
CONTROLLERS = {
    "Kustomization": "kustomize-controller",
    "HelmRelease": "helm-controller",
    "GitRepository": "source-controller",
    "OCIRepository": "source-controller",
    "HelmRepository": "source-controller",
    "HelmChart": "source-controller",
}
PLURALS = {
    "Kustomization": "kustomizations",
    "HelmRelease": "helmreleases",
    "GitRepository": "gitrepositories",
    "OCIRepository": "ocirepositories",
    "HelmRepository": "helmrepositories",
    "HelmChart": "helmcharts",
}


def load_schemas() -> dict[str, dict[str, Any]]:
    """kind -> {group, version, plural, singular, shortNames, categories, schema} from the package data."""
    text = resources.files("sandbox").joinpath("flux_schemas.json").read_text(encoding="utf-8")
    kinds: dict[str, dict[str, Any]] = json.loads(text)["kinds"]
    return kinds


def build_registry(served: Mapping[str, Sequence[str]] | None = None) -> Registry:
    """Every Flux kind, served in its group's versions from `served` (default: the current ones)."""
    chosen = {**DEFAULT_SERVED, **(served or {})}
    registry = Registry()
    for kind, info in load_schemas().items():
        versions = chosen.get(info["group"], ())
        if not versions:
            continue  # the group is not installed on this cluster
        rtype = ResourceType(
            group=info["group"],
            kind=kind,
            plural=info["plural"],
            singular=info["singular"],
            short_names=tuple(info.get("shortNames", ())),
            categories=tuple(info.get("categories", ())),
        )
        # Every served version is validated with the current schema: the contract has only that one.
        registry.register(rtype, versions, StructuralSchema(info["schema"]))
    return registry


def convert(rtype: ResourceType, obj: dict[str, Any], version: str) -> dict[str, Any]:
    """The stored (current-version) object as an older API version shows it: only what the bot reads."""
    if rtype.kind != "HelmRelease" or version != "v2beta1" or "status" not in obj:
        return obj
    # v2beta1 has no release history: it reports lastAppliedRevision / lastReleaseRevision instead.
    status = {k: v for k, v in obj["status"].items() if k != "history"}
    history = obj["status"].get("history") or []
    deployed = next((h for h in history if h.get("status") == "deployed"), None)
    if deployed is not None:
        status["lastAppliedRevision"] = deployed.get("chartVersion", "")
        status["lastReleaseRevision"] = deployed.get("version", 0)
    return {**obj, "status": status}
