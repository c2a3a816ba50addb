"""The bot's configuration: one frozen, typed `Settings` object, plus the `Secrets` kept apart.

The YAML file maps one-to-one onto these models (see docs/configuration.md). Loading, `${VAR}`
expansion and problem reporting live in `bot/config.py`; cross-reference checks in
`services/settings/check.py`. Every model is frozen and rejects unknown keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    field_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from services.settings.base import Section as _Section
from services.settings.database import DatabaseSettings
from services.settings.extensions import FrozenTree, NotifierSpec, PluginSettings, SyncSettings, ValidatorSpec
from services.settings.feed import FeedSettings
from services.settings.githost import GitHostKeys
from services.settings.routes import DriftRoute
from services.settings.tekton import (
    AppPipeline,
    PipelineMonitorSettings,
    TektonCluster,
    fill_default_clusters,
)
from services.settings.types import (
    ChannelId,
    ConfigPath,
    Duration,
    Email,
    EnvVarName,
    ExistingFile,
    GitRef,
    GitUrl,
    Host,
    HttpUrl,
    K8sName,
    Number,
    PositiveDuration,
    RepoPath,
    SlackGroupId,
    SlackUserId,
    SlashCommand,
    Slug,
    WholeNumber,
    at_least,
)

Action = Literal[
    "help", "status", "diff", "history", "drift", "audit", "whoami", "sync", "rollback", "promote",
    "suspend", "resume", "lock", "unlock", "approve", "pipelines", "pipeline_run", "pipeline_cancel", "stats",
]  # fmt: skip
ACTIONS: tuple[str, ...] = get_args(Action)
BUILTIN_ROLES: tuple[str, ...] = ("viewer", "deployer", "approver", "admin")
Backend = Literal["argocd", "flux"]
BACKEND_LABELS: Mapping[str, str] = MappingProxyType({"argocd": "Argo CD instance", "flux": "Flux cluster"})


class SlackSettings(_Section):
    alerts_channel: ChannelId | None = None
    command: SlashCommand = "/gitops"


class ServerSettings(_Section):
    host: Host = "0.0.0.0"  # noqa: S104 - the bot serves Slack's HTTP requests on all interfaces
    port: WholeNumber = Field(default=3000, ge=1, le=65535)
    threads: WholeNumber = Field(default=8, ge=1, le=64)
    workers: WholeNumber = Field(default=4, ge=1, le=64)
    queue_limit: WholeNumber = Field(default=64, ge=1)
    shutdown_timeout: Duration = timedelta(seconds=30)


class Timeouts(_Section):
    connect: Number = Field(default=5.0, gt=0)
    read: Number = Field(default=30.0, gt=0)


class ArgoCDInstance(_Section):
    name: Slug
    url: HttpUrl
    token_env: EnvVarName
    verify_tls: bool = True
    ca_file: ExistingFile | None = None
    timeouts: Timeouts = Field(default_factory=Timeouts)
    ui_url: HttpUrl | None = None

    @property
    def browser_url(self) -> str:
        """Where links in Slack messages point: the UI if it lives elsewhere, else the API URL."""
        return self.ui_url or self.url


class FluxCluster(_Section):
    name: Slug
    kubeconfig: ExistingFile | None = None
    context: str | None = None
    in_cluster: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> FluxCluster:
        if (self.kubeconfig is None) == (not self.in_cluster):
            raise PydanticCustomError(
                "flux_source", "set exactly one of kubeconfig or in_cluster: true (they are alternatives)"
            )
        if self.in_cluster and self.context is not None:
            raise PydanticCustomError("flux_context", "context applies only with kubeconfig")
        return self


class CommitIdentity(_Section):
    name: str = Field(default="gitops-bot", min_length=1)
    email: Email = "gitops-bot@localhost"


class GitRepository(GitHostKeys):
    """A deploy repository; GitHostKeys adds how changes reach it (push, or a pull/merge request)."""

    name: Slug
    url: GitUrl
    branch: GitRef = "main"
    credentials_env: EnvVarName | None = None
    ssh_key_path: ExistingFile | None = None
    commit_identity: CommitIdentity = Field(default_factory=CommitIdentity)


class Approvers(_Section):
    users: tuple[SlackUserId, ...] = ()
    groups: tuple[SlackGroupId, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.users and not self.groups


class Environment(_Section):
    name: Slug
    approvals_required: WholeNumber = Field(default=0, ge=0)
    approvers: Approvers = Field(default_factory=Approvers)
    approval_timeout: PositiveDuration = timedelta(minutes=60)
    approvals_channel: ChannelId | None = None  # where approval cards go (else slack.alerts_channel)


class AppTarget(_Section):
    backend: Backend
    instance: str
    name: K8sName
    namespace: Slug | None = None
    kind: Literal["Kustomization", "HelmRelease"] = "Kustomization"
    project: K8sName | None = None
    repository: str | None = None
    path: RepoPath | None = None

    @model_validator(mode="after")
    def _backend_specific(self) -> AppTarget:
        if self.backend == "argocd" and self.kind != "Kustomization":
            raise PydanticCustomError("flux_only", "kind applies only to Flux targets (backend: flux)")
        if self.backend == "flux" and self.project is not None:
            raise PydanticCustomError("argocd_only", "project applies only to Argo CD targets")
        return self


def _freeze_targets(value: Mapping[str, AppTarget]) -> Mapping[str, AppTarget]:
    if not value:
        raise PydanticCustomError("no_targets", "an app needs at least one environment")
    return MappingProxyType(dict(value))


class PromotionSpec(_Section):
    """What "the version" of an app is, inside each environment's directory."""

    file: RepoPath = "kustomization.yaml"  # relative to the environment's `path`
    images: tuple[str, ...] = ()  # kustomize `images:` entries by name; empty = every entry
    chart: bool = False  # a HelmRelease's spec.chart.spec.version
    yaml_paths: tuple[str, ...] = ()  # dotted paths, e.g. spec.values.image.tag


class App(_Section):
    name: Slug
    environments: Annotated[Mapping[str, AppTarget], AfterValidator(_freeze_targets)]
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)
    pipelines: tuple[AppPipeline, ...] = ()  # Tekton pipelines that build or verify it

    @field_serializer("environments")
    def _dump_environments(self, value: Mapping[str, AppTarget]) -> dict[str, AppTarget]:
        return dict(value)

    def __hash__(self) -> int:  # the default would hash the mapping proxy, which is unhashable
        return hash((self.name, tuple(self.environments.items()), self.promotion))

    def target(self, env: str) -> AppTarget | None:
        return self.environments.get(env)

    @property
    def env_names(self) -> tuple[str, ...]:
        """Environments this app is deployed to, in the order the file lists them."""
        return tuple(self.environments)


class Role(_Section):
    name: Slug
    actions: tuple[Action, ...] = ()


class Grant(_Section):
    role: str
    users: tuple[SlackUserId, ...] = ()
    groups: tuple[SlackGroupId, ...] = ()
    environments: tuple[str, ...] = ("*",)
    apps: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()


class RateLimit(_Section):
    commands: WholeNumber = Field(default=10, ge=1)
    per: PositiveDuration = timedelta(minutes=1)


class AccessSettings(_Section):
    roles: tuple[Role, ...] = ()
    grants: tuple[Grant, ...] = ()
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    group_cache: PositiveDuration = timedelta(minutes=5)


class DriftSettings(_Section):
    enabled: bool = True
    interval: Annotated[Duration, at_least(timedelta(seconds=10))] = timedelta(minutes=2)
    jitter: Duration = timedelta(seconds=20)
    channel: ChannelId | None = None
    routes: tuple[DriftRoute, ...] = ()  # first match wins; else `channel`
    digest_threshold: WholeNumber = Field(default=10, ge=1)  # more new incidents in one scan → one digest
    flap_window: PositiveDuration = timedelta(minutes=30)
    git_grace: PositiveDuration = timedelta(minutes=10)  # Git ahead of the cluster for longer than this
    suspended_after: PositiveDuration = timedelta(hours=1)  # Flux object suspended for longer than this


class LeaderSettings(_Section):
    """Leader election: with several replicas, only the Lease holder scans for drift and alerts."""

    enabled: bool = False  # off: this replica is always the leader (no Kubernetes needed)
    namespace: Slug = "gitops-bot"
    lease_name: K8sName = "gitops-bot-drift"
    kubeconfig: ExistingFile | None = None
    context: str | None = None
    in_cluster: bool = False
    lease_duration: PositiveDuration = timedelta(seconds=15)
    renew_deadline: PositiveDuration = timedelta(seconds=10)
    retry_period: PositiveDuration = timedelta(seconds=2)

    @model_validator(mode="after")
    def _consistent(self) -> LeaderSettings:
        if self.kubeconfig is not None and self.in_cluster:
            raise PydanticCustomError(
                "leader_source", "set only one of kubeconfig or in_cluster: true (they are alternatives)"
            )
        if self.enabled and self.kubeconfig is None and not self.in_cluster:
            raise PydanticCustomError(
                "leader_source", "leader election needs kubeconfig or in_cluster: true to reach the Lease"
            )
        if self.in_cluster and self.context is not None:
            raise PydanticCustomError("leader_context", "context applies only with kubeconfig")
        # client-go's rules: a leader gives up (renew_deadline) before anyone may take over
        # (lease_duration), and gets more than one try (retry_period) in between.
        if not self.lease_duration > self.renew_deadline > self.retry_period:
            raise PydanticCustomError("leader_timing", "needs lease_duration > renew_deadline > retry_period")
        return self


class OperationsSettings(_Section):
    sync_timeout: PositiveDuration = timedelta(minutes=10)
    batch_concurrency: WholeNumber = Field(default=5, ge=1, le=50)
    confirm_ttl: PositiveDuration = timedelta(minutes=15)
    hold_reminder: Annotated[Duration, at_least(timedelta(minutes=1))] = timedelta(hours=4)
    # How long a status list (status --all, --selector) may be reused; 0s: never, though
    # identical reads in flight are still shared. The bot's own writes clear it at once.
    read_cache: Duration = timedelta(seconds=5)
    max_watches: WholeNumber = Field(default=500, ge=1)  # running operations followed at once


class GitSettings(_Section):
    cache_dir: ConfigPath = Path("data/git")
    # How often open promotion cards re-read their pull / merge request (leader only).
    pull_request_refresh: Annotated[Duration, at_least(timedelta(seconds=10))] = timedelta(seconds=60)


class AuditSettings(_Section):
    database: ConfigPath = Path("data/gitops-bot.db")
    retention_days: WholeNumber | None = Field(default=None, ge=1)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


def _backend_names(data: Mapping[str, Any], backend: str) -> list[object]:
    section = data.get(backend)
    if not isinstance(section, list):
        return []
    return [item.get("name") for item in section if isinstance(item, Mapping)]


def fill_default_instances(data: Any) -> Any:
    """Give each app target without `instance` the only configured instance of its backend.

    Works on the raw mapping and leaves anything malformed alone for validation to report.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("apps"), list):
        return data
    only = {b: names[0] for b in BACKEND_LABELS if len(names := _backend_names(data, b)) == 1}
    apps: list[Any] = []
    for app in data["apps"]:
        envs = app.get("environments") if isinstance(app, Mapping) else None
        if isinstance(envs, Mapping):
            filled = {
                key: {**t, "instance": only[t["backend"]]}
                if isinstance(t, Mapping) and t.get("instance") is None and t.get("backend") in only
                else t
                for key, t in envs.items()
            }
            app = {**app, "environments": filled}
        apps.append(app)
    return {**data, "apps": apps}


class Settings(_Section):
    slack: SlackSettings = Field(default_factory=SlackSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    argocd: tuple[ArgoCDInstance, ...] = ()
    flux: tuple[FluxCluster, ...] = ()
    tekton: tuple[TektonCluster, ...] = ()
    repositories: tuple[GitRepository, ...] = ()
    environments: tuple[Environment, ...] = ()  # in promotion order
    apps: tuple[App, ...] = ()
    access: AccessSettings = Field(default_factory=AccessSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    pipeline_monitor: PipelineMonitorSettings = Field(default_factory=PipelineMonitorSettings)
    feed: FeedSettings = Field(default_factory=FeedSettings)
    leader: LeaderSettings = Field(default_factory=LeaderSettings)
    operations: OperationsSettings = Field(default_factory=OperationsSettings)
    git: GitSettings = Field(default_factory=GitSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    validators: tuple[ValidatorSpec, ...] = ()
    notifiers: tuple[NotifierSpec, ...] = ()
    plugins: tuple[str, ...] = ()  # third-party plugins (entry-point group gitops_bot), by name
    plugin_settings: PluginSettings = Field(default_factory=lambda: FrozenTree({}))

    @model_validator(mode="before")
    @classmethod
    def _default_instances(cls, data: Any) -> Any:
        return fill_default_clusters(fill_default_instances(data))

    @property
    def environment_names(self) -> tuple[str, ...]:
        """Environment names in promotion order."""
        return tuple(env.name for env in self.environments)

    def approvals_channel(self, env: str) -> str | None:
        """Where a promotion into `env` asks for approval: the environment's channel, else the
        alerts channel; None means the requester's own channel."""
        found = self.environment(env)
        return (found.approvals_channel if found is not None else None) or self.slack.alerts_channel

    @property
    def drift_channel(self) -> str | None:
        return self.drift.channel or self.slack.alerts_channel

    @property
    def pipeline_monitor_enabled(self) -> bool:
        """`pipeline_monitor.enabled`, else on exactly when some app has pipelines."""
        wanted = self.pipeline_monitor.enabled
        return any(a.pipelines for a in self.apps) if wanted is None else wanted

    @property
    def pipeline_monitor_channel(self) -> str | None:
        return self.pipeline_monitor.channel or self.drift_channel

    @property
    def pipeline_monitor_routes(self) -> tuple[DriftRoute, ...]:
        """Its own routes; else drift's, unless it names its own channel (which then takes all)."""
        monitor = self.pipeline_monitor
        if monitor.routes is not None:
            return monitor.routes
        return () if monitor.channel is not None else self.drift.routes

    @property
    def database_url(self) -> str:
        """Where state lives: `database.url`, else the SQLite file at `audit.database`."""
        return self.database.url or str(self.audit.database)

    def environment(self, name: str) -> Environment | None:
        return next((e for e in self.environments if e.name == name), None)

    def next_environment(self, name: str) -> Environment | None:
        """The environment after `name` in promotion order (None for the last or an unknown one)."""
        names = self.environment_names
        if name not in names or names.index(name) + 1 >= len(names):
            return None
        return self.environments[names.index(name) + 1]

    def app(self, name: str) -> App | None:
        return next((a for a in self.apps if a.name == name), None)

    def argocd_instance(self, name: str) -> ArgoCDInstance | None:
        return next((i for i in self.argocd if i.name == name), None)

    def flux_cluster(self, name: str) -> FluxCluster | None:
        return next((c for c in self.flux if c.name == name), None)

    def tekton_cluster(self, name: str) -> TektonCluster | None:
        return next((c for c in self.tekton if c.name == name), None)

    def repository(self, name: str) -> GitRepository | None:
        return next((r for r in self.repositories if r.name == name), None)

    def role(self, name: str) -> Role | None:
        return next((r for r in self.access.roles if r.name == name), None)


def _empty_secrets() -> Mapping[str, SecretStr]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Secrets:
    """Secret values, read from the environment only. Never part of `Settings`, never in a repr."""

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    argocd_tokens: Mapping[str, SecretStr] = field(default_factory=_empty_secrets)  # instance -> token
    git_credentials: Mapping[str, SecretStr] = field(default_factory=_empty_secrets)  # repository -> token
    # Git host API tokens (repositories[].token_env / approve_token_env): repository -> token.
    githost_tokens: Mapping[str, SecretStr] = field(default_factory=_empty_secrets)
    githost_approve_tokens: Mapping[str, SecretStr] = field(default_factory=_empty_secrets)
    # Secrets extensions name by environment variable (`secret_env`, `password_env`, …): name -> value.
    named: Mapping[str, SecretStr] = field(default_factory=_empty_secrets)
    database_password: SecretStr | None = None  # database.password_env (PostgreSQL)

    def values(self) -> tuple[str, ...]:
        """Every non-empty secret value, for log redaction."""
        singles = (
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.database_password,
        )
        every = [
            *singles, *self.argocd_tokens.values(), *self.git_credentials.values(),
            *self.githost_tokens.values(), *self.githost_approve_tokens.values(), *self.named.values(),
        ]  # fmt: skip
        return tuple(v for s in every if s is not None and (v := s.get_secret_value()))

    def __repr__(self) -> str:
        def mark(secret: SecretStr | None) -> str:
            return "set" if secret is not None else "unset"

        return (
            f"Secrets(slack_bot_token={mark(self.slack_bot_token)}, "
            f"slack_signing_secret={mark(self.slack_signing_secret)}, "
            f"slack_app_token={mark(self.slack_app_token)}, "
            f"argocd_tokens={sorted(self.argocd_tokens)}, git_credentials={sorted(self.git_credentials)}, "
            f"githost_tokens={sorted(self.githost_tokens)}, "
            f"githost_approve_tokens={sorted(self.githost_approve_tokens)}, "
            f"named={sorted(self.named)}, database_password={mark(self.database_password)})"
        )

    __str__ = __repr__
