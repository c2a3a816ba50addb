"""Flux objects as a cluster bootstrapped from Git holds them: schema-checked, defaulted, reconciled once."""

from __future__ import annotations

import gc
from collections.abc import Mapping
from typing import Any

from sandbox import flux_git, k8s_meta
from sandbox.flux_controller import Controller
from sandbox.flux_helm import sync_helm_chart
from sandbox.flux_kinds import KUSTOMIZE
from sandbox.flux_state import World
from sandbox.k8s_status import invalid
from sandbox.k8s_store import Entry

FINALIZER = "finalizers.fluxcd.io"


class FluxObjects:
    def __init__(self, world: World, controller: Controller) -> None:
        self._world = world
        self._controller = controller

    def create(
        self,
        kind: str,
        name: str,
        namespace: str,
        spec: dict[str, Any],
        *,
        labels: Mapping[str, str] | None = None,
        reconcile: bool = True,
    ) -> Entry:
        """Validate and default like the API server, store, then run one reconcile synchronously."""
        world = self._world
        registry = world.cluster.registry
        rtype = registry.by_kind(kind)
        schema = registry.schema(rtype.plural)
        checked = schema.check({"spec": spec}, sections=("spec", "status")) if schema else None
        meta: dict[str, Any] = {"name": name, "namespace": namespace, "finalizers": [FINALIZER]}
        if labels:
            meta["labels"] = dict(labels)
        causes = [*(checked.causes if checked else []), *k8s_meta.validate(meta)]
        if kind == "GitRepository" and flux_git.local_path(str(spec.get("url", ""))) is not None:
            # The CRD only admits http(s)/ssh URLs; a local repository stands in for a Git host here.
            causes = [c for c in causes if c.field != "spec.url"]
        if causes or (checked and checked.unknown):
            detail = (
                invalid(rtype.group, kind, name, causes).message
                if causes
                else f"unknown {checked and checked.unknown}"
            )
            raise ValueError(detail)
        body = checked.value if checked else {"spec": spec}
        with world.store.lock:
            now = world.store.now()
            api_version = rtype.api_version(registry.preferred_version(rtype.plural))
            # The objects came from Git through a parent Kustomization: it owns spec and labels.
            owned = k8s_meta.fields_v1({"metadata": {"labels": meta.get("labels")}, "spec": body.get("spec")})
            meta["managedFields"] = [
                {
                    "manager": "kustomize-controller",
                    "operation": "Apply",
                    "apiVersion": api_version,
                    "time": now,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": owned,
                }
            ]
            entry = world.store.create(rtype, {"metadata": meta, **body}, notify=False)
        if reconcile:
            self._controller.reconcile_now(entry.key)
        return entry

    def suspend(self, entry: Entry) -> None:
        """What `flux suspend` does after the fact: spec.suspend=true, a new generation, no reconcile."""
        with self._world.store.lock:
            spec = {**entry.obj.get("spec", {}), "suspend": True}
            self._world.store.commit(entry, {**entry.obj, "spec": spec}, spec_changed=True, notify=False)

    # -- the kinds -------------------------------------------------------------------------------------

    def git_repository(self, name: str, namespace: str, url: str, branch: str, interval: str) -> Entry:
        spec = {"interval": interval, "url": url, "ref": {"branch": branch}, "timeout": "60s"}
        return self.create("GitRepository", name, namespace, spec)

    def helm_repository(self, name: str, namespace: str, url: str, type_: str | None) -> Entry:
        spec: dict[str, Any] = {"interval": "1h", "url": url}
        if type_:
            spec["type"] = type_
        return self.create("HelmRepository", name, namespace, spec, reconcile=type_ != "oci")

    def oci_repository(self, name: str, namespace: str, url: str, tag: str) -> Entry:
        spec = {"interval": "5m", "url": url, "ref": {"tag": tag}}
        return self.create("OCIRepository", name, namespace, spec)

    def kustomization(
        self,
        name: str,
        namespace: str,
        *,
        path: str,
        source: str,
        source_kind: str = "GitRepository",
        source_namespace: str | None,
        labels: Mapping[str, str] | None,
        suspend: bool,
        interval: str,
        target_namespace: str | None = None,
    ) -> Entry:
        source_ref: dict[str, Any] = {"kind": source_kind, "name": source}
        if source_namespace and source_namespace != namespace:
            source_ref["namespace"] = source_namespace
        spec: dict[str, Any] = {
            "interval": interval,
            "retryInterval": "2m",
            "timeout": "5m",
            "path": path,
            "prune": True,
            "sourceRef": source_ref,
        }
        if target_namespace:
            spec["targetNamespace"] = target_namespace
        entry = self.create("Kustomization", name, namespace, spec, labels=_parent_labels(labels))
        if suspend:
            self.suspend(entry)
        return entry

    def helm_release(
        self,
        name: str,
        namespace: str,
        *,
        chart: str,
        version: str,
        source: str,
        source_namespace: str | None = None,
        labels: Mapping[str, str] | None,
        drift_detection: str | None,
        suspend: bool = False,
    ) -> Entry:
        source_ref: dict[str, Any] = {"kind": "HelmRepository", "name": source}
        if source_namespace and source_namespace != namespace:
            source_ref["namespace"] = source_namespace
        spec: dict[str, Any] = {
            "interval": "10m",
            "chart": {
                "spec": {"chart": chart, "version": version, "sourceRef": source_ref, "interval": "1h"}
            },
            "values": {"replicaCount": 2},
        }
        if drift_detection:
            spec["driftDetection"] = {"mode": drift_detection}
        entry = self.create(
            "HelmRelease", name, namespace, spec, labels=_parent_labels(labels), reconcile=False
        )
        with self._world.store.lock:
            sync_helm_chart(self._world, entry.obj)
        self._controller.reconcile_now(entry.key)
        if suspend:
            self.suspend(entry)
        return entry

    def bulk(self, *, kustomizations: int, helm_releases: int, namespaces: int) -> None:
        """Many reconciled objects in `team-NN` namespaces, sourced from simulated remotes (no Git)."""
        names = [f"team-{index:02d}" for index in range(max(namespaces, 1))]
        tiers = ("frontend", "backend", "data")
        # Full GC passes rescan every stored object while thousands are allocated: quadratic, so pause it.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for namespace in names:
                if self._world.entry("GitRepository", namespace, "fleet") is None:
                    self.git_repository("fleet", namespace, "https://git.example.com/fleet.git", "main", "1m")
                if self._world.entry("HelmRepository", namespace, "charts") is None:
                    self.helm_repository("charts", namespace, "https://charts.example.com", None)
            for index in range(kustomizations):
                namespace = names[index % len(names)]
                labels = {"app.kubernetes.io/part-of": "fleet", "tier": tiers[index % 3]}
                self.kustomization(
                    f"app-{index:04d}", namespace, path=f"./apps/app-{index:04d}", source="fleet",
                    source_namespace=None, labels=labels, suspend=False, interval="10m",
                )  # fmt: skip
            for index in range(helm_releases):
                namespace = names[index % len(names)]
                labels = {"app.kubernetes.io/part-of": "fleet", "tier": tiers[index % 3]}
                self.helm_release(
                    f"release-{index:04d}", namespace, chart="podinfo", version="6.5.0", source="charts",
                    labels=labels, drift_detection=None,
                )  # fmt: skip
        finally:
            if collecting:
                gc.enable()


def _parent_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    """The labels the parent `flux-system` Kustomization stamps on what it applies, plus the caller's."""
    return {
        f"{KUSTOMIZE}/name": "flux-system",
        f"{KUSTOMIZE}/namespace": "flux-system",
        **(labels or {}),
    }
