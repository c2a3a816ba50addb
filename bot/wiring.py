"""Builds the service objects from config: backends, resolver, stores, the GitOps service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.config import LoadedConfig
from services.access.locks import LockStore
from services.access.ratelimit import Limiter, RateLimiter, SharedRateLimiter
from services.apps import AppResolver
from services.argocd import build_argocd_backends
from services.backend import GitOpsBackend
from services.coalesce import coalescing
from services.drift.store import IncidentStore
from services.flux import build_flux_backends
from services.git import RepoCache
from services.githost import GitHost, WriteGate, build_host
from services.holds import HoldStore
from services.metrics import Metrics
from services.operations import GitOpsService
from services.pending import PendingActions
from services.pipelines import PipelineRuns
from services.promotion.service import PromotionService
from services.promotion.store import PromotionStore
from services.redaction import Redactor
from services.settings.model import Settings
from services.store.db import Database
from services.tekton.client import TektonClient
from services.watcher import Watcher, WatchOptions


@dataclass(frozen=True)
class Services:
    backends: Mapping[str, GitOpsBackend]  # "argocd:<instance>", "flux:<cluster>"
    ops: GitOpsService
    pending: PendingActions
    holds: HoldStore
    locks: LockStore
    repos: RepoCache
    promotions: PromotionService
    promotion_store: PromotionStore
    incidents: IncidentStore
    pipelines: PipelineRuns | None = None  # when `tekton:` is configured
    githosts: Mapping[str, GitHost] = field(default_factory=dict)  # by repository, mode pull_request/auto


def _coalesced(backend: GitOpsBackend, ttl: float, metrics: Metrics) -> GitOpsBackend:
    label = f"{backend.kind}:{backend.instance}"  # as on gitops_bot_backend_request_seconds

    def count(operation: str) -> None:
        metrics.observe_coalesced(label, operation)

    return coalescing(backend, ttl=ttl, on_coalesced=count)


def build_services(
    loaded: LoadedConfig,
    database: Database,
    metrics: Metrics,
    *,
    backends: Mapping[str, GitOpsBackend] | None = None,
) -> Services:
    settings = loaded.settings
    repos = RepoCache(
        settings.git.cache_dir, settings.repositories, loaded.secrets.git_credentials, metrics=metrics
    )
    if backends is None:
        argo = build_argocd_backends(settings, loaded.secrets, metrics)
        flux = build_flux_backends(settings, loaded.secrets, repos, metrics)
        backends = {f"argocd:{name}": backend for name, backend in argo.items()}
        backends.update({f"flux:{name}": backend for name, backend in flux.items()})
    # Every backend, built here or handed in, behind one coalescing layer (identical reads share
    # one request), so the bot's own writes always pass the layer that must forget its cache.
    read_cache = settings.operations.read_cache.total_seconds()
    backends = {key: _coalesced(backend, read_cache, metrics) for key, backend in backends.items()}
    holds = HoldStore(database)
    watcher = Watcher(WatchOptions(max_watches=settings.operations.max_watches))
    metrics.watches_active.set_function(lambda: watcher.active)
    ops = GitOpsService(
        AppResolver(settings, backends),
        holds,
        sync_timeout=settings.operations.sync_timeout,
        batch_concurrency=settings.operations.batch_concurrency,
        watcher=watcher,
        on_coalesced=lambda ref: metrics.observe_coalesced(f"{ref.backend}:{ref.instance}", "status"),
    )
    promotion_store = PromotionStore(database)
    return Services(
        backends=backends,
        ops=ops,
        pending=PendingActions(database),
        holds=holds,
        locks=LockStore(database),
        repos=repos,
        promotions=PromotionService(settings, repos, ops.resolver, promotion_store),
        promotion_store=promotion_store,
        incidents=IncidentStore(database),
        pipelines=build_pipelines(loaded, metrics),
        githosts=build_githosts(loaded, metrics),
    )


def build_githosts(loaded: LoadedConfig, metrics: Metrics) -> dict[str, GitHost]:
    """A host client per repository whose changes go through a pull / merge request; one write
    gate for all of them (writes queue per host, a rate-limit pause covers the whole host)."""
    gate = WriteGate()
    secrets = loaded.secrets
    hosts: dict[str, GitHost] = {}
    for repo in loaded.settings.repositories:
        token = secrets.githost_tokens.get(repo.name)
        if not repo.uses_pull_requests or repo.host is None or repo.project is None or token is None:
            continue  # config validation requires them with a mode other than push
        hosts[repo.name] = build_host(
            repo.host, repo.api_url, repo.project, token, secrets.githost_approve_tokens.get(repo.name),
            metrics=metrics, gate=gate,
        )  # fmt: skip
    return hosts


def build_pipelines(
    loaded: LoadedConfig, metrics: Metrics, *, clients: Mapping[str, TektonClient] | None = None
) -> PipelineRuns | None:
    """One TektonClient per `tekton:` cluster (connections are made on first use)."""
    settings = loaded.settings
    if not settings.tekton:
        return None
    if clients is None:
        clients = {c.name: TektonClient(c, metrics=metrics) for c in settings.tekton}
    return PipelineRuns(settings, clients, redactor=Redactor(loaded.secrets.values()))


def rate_limiter(settings: Settings, database: Database) -> Limiter:
    """In memory for one replica; in the database replicas share, so they count together."""
    limit = settings.access.rate_limit
    if database.dialect == "postgresql":
        return SharedRateLimiter(database, limit.commands, limit.per)
    return RateLimiter(limit.commands, limit.per)
