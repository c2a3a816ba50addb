"""The Flux kinds the bot reads or annotates, with their API group, plural and known versions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
HELM_GROUP = "helm.toolkit.fluxcd.io"
SOURCE_GROUP = "source.toolkit.fluxcd.io"


@dataclass(frozen=True)
class FluxKind:
    kind: str
    group: str
    plural: str
    versions: tuple[str, ...]  # most preferred first; the first one the cluster serves is used


KUSTOMIZATION = FluxKind("Kustomization", KUSTOMIZE_GROUP, "kustomizations", ("v1", "v1beta2"))
HELM_RELEASE = FluxKind("HelmRelease", HELM_GROUP, "helmreleases", ("v2", "v2beta2"))
GIT_REPOSITORY = FluxKind("GitRepository", SOURCE_GROUP, "gitrepositories", ("v1", "v1beta2"))
OCI_REPOSITORY = FluxKind("OCIRepository", SOURCE_GROUP, "ocirepositories", ("v1", "v1beta2"))
HELM_REPOSITORY = FluxKind("HelmRepository", SOURCE_GROUP, "helmrepositories", ("v1", "v1beta2"))
HELM_CHART = FluxKind("HelmChart", SOURCE_GROUP, "helmcharts", ("v1", "v1beta2"))
BUCKET = FluxKind("Bucket", SOURCE_GROUP, "buckets", ("v1", "v1beta2"))

APP_KINDS: tuple[FluxKind, ...] = (KUSTOMIZATION, HELM_RELEASE)
# Sources listed for `list_apps` (their artifact revision decides Synced / OutOfSync).
LISTED_SOURCES: tuple[FluxKind, ...] = (GIT_REPOSITORY, OCI_REPOSITORY, HELM_REPOSITORY)
ALL_KINDS: Mapping[str, FluxKind] = MappingProxyType(
    {
        k.kind: k
        for k in (
            KUSTOMIZATION,
            HELM_RELEASE,
            GIT_REPOSITORY,
            OCI_REPOSITORY,
            HELM_REPOSITORY,
            HELM_CHART,
            BUCKET,
        )
    }
)


# The Kubernetes access the Flux client needs, as (API group, resource, verbs): FluxClient.get, list and
# patch on every kind above, watch on the app kinds (the deployment feed), and list on core events
# (`status`). deploy/base/rbac.yaml must grant each, or a command on that kind answers "forbidden"
# (tests/test_ops_rbac.py holds them together).
OBJECT_VERBS: tuple[str, ...] = ("get", "list", "patch")
WATCHED_VERBS: tuple[str, ...] = (*OBJECT_VERBS, "watch")  # the deployment feed watches the app kinds
API_ACCESS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    *((k.group, k.plural, WATCHED_VERBS if k in APP_KINDS else OBJECT_VERBS) for k in ALL_KINDS.values()),
    ("", "events", ("list",)),
)


def kind_named(name: str) -> FluxKind | None:
    """The kind called `name`, case-insensitively (users type `helmrelease`)."""
    lowered = name.lower()
    return next((k for k in ALL_KINDS.values() if k.kind.lower() == lowered), None)


__all__ = [
    "ALL_KINDS",
    "API_ACCESS",
    "APP_KINDS",
    "BUCKET",
    "GIT_REPOSITORY",
    "HELM_CHART",
    "HELM_GROUP",
    "HELM_RELEASE",
    "HELM_REPOSITORY",
    "KUSTOMIZATION",
    "KUSTOMIZE_GROUP",
    "LISTED_SOURCES",
    "OBJECT_VERBS",
    "OCI_REPOSITORY",
    "SOURCE_GROUP",
    "FluxKind",
    "kind_named",
]
