"""The resource types the fake API server knows, the versions it serves, and its discovery documents."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.k8s_schema import StructuralSchema

_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")
_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    namespaced: bool = True

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def resource(self) -> str:
        """`kustomizations.kustomize.toolkit.fluxcd.io`: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key giving Kubernetes' version order: GA before beta before alpha, higher numbers first."""
    match = _VERSION.fullmatch(version)
    if match is None:
        return (3, 0, 0, version)  # non-Kubernetes-style names come last, alphabetically
    major, stage, minor = int(match.group(1)), match.group(2), int(match.group(3) or 0)
    return ({None: 0, "beta": 1, "alpha": 2}[stage], -major, -minor, "")


@dataclass
class _Registered:
    rtype: ResourceType
    versions: tuple[str, ...]  # served, preferred first
    schema: StructuralSchema | None
    version_schemas: dict[str, StructuralSchema]  # a version whose schema differs from `schema`'s


class Registry:
    """Types by plural; each served in some versions of its group (the object is stored once)."""

    def __init__(self) -> None:
        self._types: dict[str, _Registered] = {}

    def register(
        self,
        rtype: ResourceType,
        versions: Iterable[str],
        schema: StructuralSchema | None,
        version_schemas: Mapping[str, StructuralSchema] | None = None,
    ) -> None:
        ordered = tuple(sorted(set(versions), key=version_priority))
        self._types[rtype.plural] = _Registered(rtype, ordered, schema, dict(version_schemas or {}))

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        entry = self._types.get(plural)
        if entry is None or entry.rtype.group != group or version not in entry.versions:
            return None
        return entry.rtype

    def by_kind(self, kind: str) -> ResourceType:
        for entry in self._types.values():
            if entry.rtype.kind == kind:
                return entry.rtype
        raise KeyError(f"unknown kind {kind!r}")

    def schema(self, plural: str, version: str | None = None) -> StructuralSchema | None:
        """The stored shape's schema, or that of the request `version` when it has its own."""
        entry = self._types[plural]
        return entry.version_schemas.get(version or "", entry.schema)

    def preferred_version(self, plural: str) -> str:
        return self._types[plural].versions[0]

    def group_versions(self, group: str) -> list[str]:
        versions = {v for e in self._types.values() if e.rtype.group == group for v in e.versions}
        return sorted(versions, key=version_priority)

    def groups(self) -> list[str]:
        return sorted({e.rtype.group for e in self._types.values() if e.rtype.group})

    # -- discovery documents -------------------------------------------------------------------------

    def api_group(self, group: str) -> dict[str, Any]:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in self.group_versions(group)]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    def api_group_list(self) -> dict[str, Any]:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self.api_group(g) for g in self.groups()],
        }

    def resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for entry in sorted(self._types.values(), key=lambda e: e.rtype.plural):
            rtype = entry.rtype
            if rtype.group != group or version not in entry.versions:
                continue
            resource: dict[str, Any] = {
                "name": rtype.plural,
                "singularName": rtype.singular,
                "namespaced": rtype.namespaced,
                "kind": rtype.kind,
                "verbs": list(_VERBS),
                "storageVersionHash": _storage_hash(rtype, entry.versions[0]),
            }
            if rtype.short_names:
                resource["shortNames"] = list(rtype.short_names)
            if rtype.categories:
                resource["categories"] = list(rtype.categories)
            resources.append(resource)
            if entry.schema is not None:  # every Flux CRD has the status subresource
                resources.append(
                    {
                        "name": f"{rtype.plural}/status",
                        "singularName": "",
                        "namespaced": rtype.namespaced,
                        "kind": rtype.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }


def _storage_hash(rtype: ResourceType, version: str) -> str:
    digest = hashlib.sha256(f"{rtype.group}/{version}/{rtype.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()
