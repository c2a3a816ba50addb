"""Argo CD: the REST client, its error family, and the `GitOpsBackend` built on them."""

from __future__ import annotations

from services.argocd.backend import ArgoCDBackend
from services.argocd.client import DEFAULT_LIST_FIELDS, ArgoCDClient
from services.argocd.errors import ArgoCDError
from services.metrics import Metrics
from services.settings.model import Secrets, Settings


def build_argocd_backends(
    settings: Settings, secrets: Secrets, metrics: Metrics | None = None, *, poll_interval: float = 1.0
) -> dict[str, ArgoCDBackend]:
    """One backend per configured instance, by name.

    An instance whose token is not set still gets a backend: its client refuses every call with
    "no token: set <ENV>", which reaches the user as `BackendUnavailable`.
    """
    backends: dict[str, ArgoCDBackend] = {}
    for instance in settings.argocd:
        secret = secrets.argocd_tokens.get(instance.name)
        token = secret.get_secret_value() if secret is not None else ""
        client = ArgoCDClient(instance, token, metrics=metrics)
        backends[instance.name] = ArgoCDBackend(instance, client, poll_interval=poll_interval)
    return backends


__all__ = ["DEFAULT_LIST_FIELDS", "ArgoCDBackend", "ArgoCDClient", "ArgoCDError", "build_argocd_backends"]
