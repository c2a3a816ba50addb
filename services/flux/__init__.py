"""Flux: a client for its custom resources, its error family, and the `GitOpsBackend` built on them."""

from __future__ import annotations

from services.flux.backend import FluxBackend
from services.flux.client import FluxClient
from services.flux.errors import FluxError
from services.git import RepoCache
from services.metrics import Metrics
from services.settings.model import Secrets, Settings


def build_flux_backends(
    settings: Settings,
    secrets: Secrets,
    repos: RepoCache | None,
    metrics: Metrics | None = None,
    *,
    poll_interval: float = 2.0,
) -> dict[str, FluxBackend]:
    """One backend per configured cluster, by name.

    Clients connect lazily: a kubeconfig that cannot be loaded surfaces on first use as
    `BackendUnavailable`, not at start-up. `secrets` is unused (credentials live in the
    kubeconfig or the pod's service account) and accepted for symmetry with Argo CD.
    """
    del secrets
    backends: dict[str, FluxBackend] = {}
    for cluster in settings.flux:
        client = FluxClient(cluster, metrics=metrics)
        backends[cluster.name] = FluxBackend(cluster, client, repos, settings, poll_interval=poll_interval)
    return backends


__all__ = ["FluxBackend", "FluxClient", "FluxError", "build_flux_backends"]
