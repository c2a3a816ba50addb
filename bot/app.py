"""The app factory: builds services, the Bolt app and the HTTP server from loaded config.

Nothing here runs at import time; `build_runtime` is called once by the CLI (or a test).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Literal

from apscheduler.schedulers.background import BackgroundScheduler
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

import handlers
from bot import startup_checks
from bot.config import LoadedConfig
from bot.database import database_info, open_state
from bot.deliveries import DeliveryGuard, DuplicateFilter, OnceSocketModeHandler
from bot.replicas import HEARTBEAT_SECONDS, REPLICA_SILENCE, heartbeat
from bot.scheduler import build_scheduler
from bot.server import SLACK_PATH, HttpServer, Router
from bot.slack_client import build_web_client, group_members
from bot.wiring import build_services, rate_limiter
from handlers.admin.executor import admin_executors
from handlers.audit.executor import audit_executor
from handlers.authz import Authorizer
from handlers.builtin import builtin_executors
from handlers.deps import Deps, Executor
from handlers.drift.executor import drift_executor
from handlers.drift.job import DriftJob
from handlers.feed.stats import stats_executor
from handlers.feed.wiring import FeedJob, build_feed
from handlers.follow import RENDERERS, RendererFactory
from handlers.gitops.executor import gitops_executors
from handlers.pipelines import follow as pipeline_follow
from handlers.pipelines.executor import pipeline_executor, pipelines_executor
from handlers.pipelines.monitor import PipelineMonitor
from handlers.promote.executor import Promoter, promote_executor
from handlers.promote.promoter import promotion_renderer
from handlers.promote.pull_request import SPEC_KIND as PR_SPEC_KIND
from handlers.promote.pull_request import PullRequests
from handlers.promote.refresh import PullRequestRefresh
from handlers.recovery import Cutoff, recover
from handlers.resume import Follower
from handlers.rollback import pull_request as rollback_pr
from handlers.rollback.executor import rollback_executor
from services.access.policy import AccessPolicy, CachedGroupDirectory
from services.access.replay import ReplayGuard
from services.audit.trail import AuditStore
from services.backend import GitOpsBackend
from services.drift.store import IncidentStore
from services.errors import BackendUnavailable
from services.extensions.context import PluginContext
from services.extensions.events import audit_listener
from services.extensions.manager import PluginFailed
from services.feed.store import FeedStore
from services.git import RepoCache
from services.inflight import InflightRequests
from services.jobs import JobRunner
from services.leader.election import Leadership, build_leadership, default_identity
from services.metrics import Metrics
from services.operations import GitOpsService
from services.redaction import Redactor
from services.store.db import Database, Health

log = logging.getLogger(__name__)
HELPER_JOIN_SECONDS = 10.0

Mode = Literal["socket", "http"]


class StartupError(Exception):
    """A problem that stops the bot from starting, worded for the operator (no traceback)."""


class SlackCredentialsRefused(StartupError):
    """Slack refused SLACK_BOT_TOKEN or SLACK_APP_TOKEN: a setting to fix, like a missing one."""


def process_identity() -> str:
    """This runtime among every one that ever used the database (host, pid, start time, and a
    random part: two runtimes started in one process within a second must not pass for one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{time.time():.0f}:{uuid.uuid4().hex[:8]}"


def version() -> str:
    try:
        return metadata.version("gitops-bot")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def slack_mode(loaded: LoadedConfig) -> Mode:
    return "socket" if loaded.secrets.slack_app_token else "http"


def missing_slack_settings(loaded: LoadedConfig) -> list[str]:
    """What the operator must still set, one line each, worded as instructions."""
    secrets = loaded.secrets
    missing = []
    if not secrets.slack_bot_token:
        missing.append("SLACK_BOT_TOKEN: the bot token (xoxb-…) from OAuth & Permissions")
    if slack_mode(loaded) == "http" and not secrets.slack_signing_secret:
        missing.append(
            "SLACK_SIGNING_SECRET: the signing secret from Basic Information (HTTP mode), "
            "or set SLACK_APP_TOKEN (xapp-…, connections:write) to use Socket Mode instead"
        )
    app_token = secrets.slack_app_token
    shape = startup_checks.app_token_problem(app_token.get_secret_value()) if app_token else None
    if shape:
        missing.append(shape)
    return missing


@dataclass
class Runtime:
    loaded: LoadedConfig
    mode: Mode
    deps: Deps
    app: App
    router: Router
    server: HttpServer
    database: Database
    scheduler: BackgroundScheduler
    socket_handler: SocketModeHandler | None = None
    promoter: Promoter | None = None
    drift: DriftJob | None = None
    pipeline_monitor: PipelineMonitor | None = None
    feed: FeedJob | None = None
    leadership: Leadership | None = None
    repos: RepoCache | None = None  # its kept-open git processes end at stop
    renderers: Mapping[str, RendererFactory] = field(default_factory=lambda: dict(RENDERERS))
    # Followed operations that are not an app's (a Tekton run), picked up again after a restart.
    followers: Mapping[str, Follower] = field(
        default_factory=lambda: {pipeline_follow.SPEC_KIND: pipeline_follow.resume}
    )
    _stopped: bool = field(default=False, repr=False)
    # Start-up work off the start path; joined at stop, so none outlives the database or is cut
    # off by the interpreter's exit (a daemon thread waking then aborts the process).
    _helpers: list[threading.Thread] = field(default_factory=list, repr=False)

    def start(self) -> Runtime:
        inflight = self.deps.inflight
        if inflight is not None:
            # Requests an earlier process accepted and never finished (kill -9, OOM, node loss):
            # read now, before anything new is accepted; closed off the start path (Slack calls).
            # On a shared database only those of replicas that stopped saying they are alive.
            silence = self._silence()
            if silence is not None:
                inflight.alive()
                self.scheduler.add_job(
                    self._heartbeat, "interval", seconds=HEARTBEAT_SECONDS, id="replica-heartbeat"
                )
            left = inflight.left_behind(silent_for=silence)
            if left:
                self._helper(
                    "recover-requests",
                    lambda: recover(
                        self.deps,
                        self.app.client,
                        left,
                        why="restart",
                        renderers=self.renderers,
                        followers=self.followers,
                    ),
                )
        self.server.start()
        if self.leadership is not None:
            self.leadership.start()
        self.scheduler.start()
        for warning in startup_checks.access_warnings(self.loaded.settings):
            log.warning(warning)
        ops = self.deps.ops
        if ops is not None:
            # GET /api/version of each backend, off the start path: a slow Argo CD must not delay Slack.
            self._helper("backend-versions", lambda: self._check_backends(ops))
        if self.socket_handler is not None:
            self._connect_socket(self.socket_handler)
        return self

    def _silence(self) -> timedelta | None:
        # SQLite: one process per file, so every other owner is gone.
        return REPLICA_SILENCE if self.database.dialect == "postgresql" else None

    def _heartbeat(self) -> None:
        inflight, silence = self.deps.inflight, self._silence()
        if inflight is not None:
            leading = self.leadership is None or self.leadership.is_leader()
            heartbeat(inflight, silence if leading else None, lambda left: recover(
                self.deps, self.app.client, left, why="restart", renderers=self.renderers,
                followers=self.followers))  # fmt: skip

    def _helper(self, name: str, work: Callable[[], object]) -> None:
        thread = threading.Thread(target=work, name=name, daemon=True)
        self._helpers.append(thread)
        thread.start()

    def warnings(self) -> list[str]:
        """For /readyz: no access grants, backends that did not answer (readiness is unaffected)."""
        ops = self.deps.ops
        versions = ops.known_versions() if ops is not None else {}
        found = startup_checks.access_warnings(self.loaded.settings)
        return found + startup_checks.backend_warnings(versions)

    def _check_backends(self, ops: GitOpsService) -> None:
        for warning in startup_checks.backend_warnings(ops.versions()):
            log.warning(warning)

    def _connect_socket(self, handler: SocketModeHandler) -> None:
        try:
            handler.connect()  # type: ignore[no-untyped-call]
        except SlackApiError as exc:
            # apps.connections.open refused the app token: nothing could ever arrive.
            code = str(exc.response.get("error") or "") if exc.response is not None else ""
            self.stop()
            raise SlackCredentialsRefused(startup_checks.app_token_refused(code)) from None
        except OSError as exc:
            self.stop()
            reason = str(getattr(exc, "reason", exc))[:200]
            raise StartupError(startup_checks.SOCKET_UNREACHABLE.format(reason=reason)) from None
        # The client logs a failed WebSocket handshake and retries; it does not raise.
        if handler.client.is_connected():
            log.info("connected to Slack in Socket Mode")
        else:
            log.warning(startup_checks.SOCKET_NOT_UP)

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM): take no new work, let running jobs finish, close cleanly.

        New Slack requests get 503 at once (and /readyz turns 503, so Kubernetes stops routing);
        /healthz keeps answering while running jobs get up to `server.shutdown_timeout`. A job
        still unfinished at that deadline is recorded in the audit trail as interrupted, then
        the database is closed (its WAL checkpointed) and the process may exit.
        """
        if self._stopped:
            return
        self._stopped = True
        self.router.accepting = False
        if self.socket_handler is not None:
            self.socket_handler.close()  # type: ignore[no-untyped-call]
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)  # no new drift scans or reminders while draining
        timeout = self.loaded.settings.server.shutdown_timeout.total_seconds()
        log.info("shutting down", extra={"jobs": self.deps.jobs.running(), "timeout_s": timeout})
        began = time.monotonic()
        finished = self.deps.jobs.close(timeout=timeout)
        if self.deps.ops is not None:
            # A status whose read is in flight is a running request too: it gets the rest of the time.
            left = max(0.0, timeout - (time.monotonic() - began))
            finished = self.deps.ops.watcher.settle_reads(left) and finished
            self.deps.ops.watcher.stop()  # the operations go on; their requests are noted below
        if self.feed is not None:
            self.feed.stop()  # the cursors are in the database: the next leader resumes from them
        if self.leadership is not None:
            self.leadership.stop()
        self.server.stop()
        for helper in self._helpers:  # bounded: each waits on one request with its own timeout
            helper.join(timeout=HELPER_JOIN_SECONDS)
        if self.repos is not None:
            self.repos.close()
        for host in self.deps.githosts.values():
            host.shutdown()  # the Git host clients' connection pools
        if self.deps.pipelines is not None:
            self.deps.pipelines.close()  # the Tekton clients' connection pools
        if self.deps.extensions is not None:
            self.deps.extensions.shutdown()  # notifiers stop delivering; their outboxes stay in the database
        # Held from the snapshot of unfinished jobs to the close: a job that ends meanwhile cannot
        # add its own row after its interrupted one (it finds the database closed instead).
        with self.database.exclusive():
            self._record_interrupted(finished)
            if self.deps.inflight is not None:
                try:
                    self.deps.inflight.gone()
                except BackendUnavailable:
                    log.warning("could not record that this replica stopped")
            self.database.close()
        log.info("stopped")

    def _record_interrupted(self, finished: bool) -> None:
        """Each request unfinished at the deadline gets its result row (its user and target, the
        `started` row it ends) and its Slack message says the bot shut down before the end; an
        operation the watcher followed is noted as still running, to be followed again."""
        now = time.monotonic()
        jobs = self.deps.jobs.unfinished()
        if not finished:
            log.warning("shutdown timeout: jobs interrupted", extra={"jobs": [j.name for j in jobs]})
        cutoffs = {j.correlation_id: Cutoff(None if j.started is None else now - j.started) for j in jobs}
        inflight = self.deps.inflight
        if inflight is not None:
            mine = inflight.mine()
            if mine:
                recover(self.deps, self.app.client, mine, why="shutdown", cutoffs=cutoffs)


def build_runtime(
    loaded: LoadedConfig,
    *,
    port: int | None = None,
    host: str | None = None,
    extra_executors: Mapping[str, Executor] | None = None,
    clock: Callable[[], datetime] | None = None,
    backends: Mapping[str, GitOpsBackend] | None = None,
    leader_identity: str | None = None,
) -> Runtime:
    settings = loaded.settings
    missing = missing_slack_settings(loaded)
    if missing:
        raise StartupError("Slack settings missing:\n  " + "\n  ".join(missing))
    redact = Redactor(loaded.secrets.values())
    metrics = Metrics()
    database = open_state(loaded)
    audit = AuditStore(database, redact=redact)
    built = build_services(loaded, database, metrics, backends=backends)
    jobs = JobRunner(
        workers=settings.server.workers,
        queue_limit=settings.server.queue_limit,
        on_wait=metrics.observe_queue_wait,
    )
    client = build_web_client(loaded)
    policy = AccessPolicy(
        settings, CachedGroupDirectory(group_members(client), ttl=settings.access.group_cache)
    )
    executors: dict[str, Executor] = {}
    deps = Deps(
        settings=settings,
        audit=audit,
        metrics=metrics,
        jobs=jobs,
        version=version(),
        executors=executors,
        clock=clock or (lambda: datetime.now(UTC)),
        pending=built.pending,
        ops=built.ops,
        locks=built.locks,
        redact=redact,
        inflight=InflightRequests(database, owner=process_identity()),
        extensions=loaded.extensions,
        authz=Authorizer(
            policy, locks=built.locks, resolver=built.ops.resolver, extensions=loaded.extensions
        ),
        rate_limiter=rate_limiter(settings, database),
        pipelines=built.pipelines,
        githosts=built.githosts,
        feed=FeedStore(database),
    )
    try:
        loaded.extensions.configure(
            settings, PluginContext(database, deps.clock, loaded.secrets.named, pipelines=built.pipelines)
        )
    except PluginFailed as exc:
        database.close()
        jobs.close(timeout=0)
        # A built-in's own words are safe to show (a secret_env that is not set, say); a third
        # party's are only logged: they could hold anything.
        said = f": {exc.__cause__}" if exc.plugin.startswith("builtin-") and exc.__cause__ else ""
        raise StartupError(f"{exc}{said}; see the log line above for what it said") from None
    audit.subscribe(audit_listener(loaded.extensions))  # every audited event, typed, to the notifiers
    # Executors need deps (pending buttons, settings); the mapping is filled once, before serving.
    ops_or_none = built.ops if built.backends else None
    executors.update(
        builtin_executors(settings, deps.version, ops_or_none, policy, loaded.extensions.plugins)
    )
    if built.backends:
        executors.update(gitops_executors(deps, built.ops))
        executors["rollback"] = rollback_executor(deps, built.ops)
    executors.update(admin_executors(deps, built.locks))
    executors["audit"] = audit_executor(deps)
    pull_requests = PullRequests() if any(r.uses_pull_requests for r in settings.repositories) else None
    promoter = Promoter(deps, built.promotions, built.promotion_store, pull_requests=pull_requests)
    if built.backends:
        executors["promote"] = promote_executor(promoter)
    executors["drift"] = drift_executor(deps, built.incidents)
    if built.backends:
        executors["stats"] = stats_executor(deps)
    if built.pipelines is not None:
        executors["pipelines"] = pipelines_executor(deps, built.pipelines)
        executors["pipeline"] = pipeline_executor(deps, built.pipelines)
    executors.update(extra_executors or {})
    mode = slack_mode(loaded)
    replay = ReplayGuard(database)
    deliveries = DeliveryGuard(replay, audit)
    try:
        app = create_slack_app(
            loaded, deps, mode, client, promoter=promoter, incidents=built.incidents, deliveries=deliveries
        )
    except Exception as exc:
        database.close()
        jobs.close(timeout=0)
        if isinstance(exc, BoltError):  # auth.test refused the bot token
            raise SlackCredentialsRefused(startup_checks.bot_token_refused(redact(str(exc)))) from None
        raise StartupError(f"Slack did not accept the bot's credentials: {redact(str(exc))}") from None
    socket_handler = None
    slack_wsgi = None
    if mode == "socket":
        token = loaded.secrets.slack_app_token
        assert token is not None
        socket_handler = OnceSocketModeHandler(
            app, token.get_secret_value(), web_client=app.client, guard=deliveries
        )
    else:
        slack_wsgi = SlackRequestHandler(app, path=SLACK_PATH)

    seen: dict[str, Health] = {}  # the last readiness check's database health, for the same reply

    def readiness() -> dict[str, bool]:
        seen["database"] = health = database.health()
        # Ready only at the schema this release needs: an old replica must not serve a newer schema.
        checks = {"config": True, "database": health.current}
        if socket_handler is not None:
            checks["slack_socket"] = bool(socket_handler.client.is_connected())
        metrics.jobs_active.set(jobs.active)
        return checks

    router = Router(
        slack=slack_wsgi,
        readiness=readiness,
        metrics=lambda: (metrics.render(), metrics.content_type),
        info=lambda: {
            "version": deps.version,
            "mode": mode,
            "backends": built.ops.known_versions(),
            "plugins": {p.name: p.version for p in loaded.extensions.plugins if not p.builtin},
            "warnings": runtime.warnings(),
            "database": database_info(seen.get("database") or database.health()),
            "leader": runtime.leadership.is_leader() if runtime.leadership is not None else True,
        },
    )
    server = HttpServer(
        router,
        host=host or settings.server.host,
        port=settings.server.port if port is None else port,
        threads=settings.server.threads,
    )
    leadership = build_leadership(settings, leader_identity or default_identity())
    drift_job = DriftJob(deps, app.client, built.incidents, leadership)
    monitor = PipelineMonitor(deps, app.client, leadership) if built.pipelines is not None else None
    pr_refresh = PullRequestRefresh(promoter, app.client, leadership) if pull_requests is not None else None
    feed_job = build_feed(deps, app.client, leadership, built.ops) if built.backends else None
    scheduler = build_scheduler(
        deps, app.client, drift=drift_job, promoter=promoter, pipeline_monitor=monitor, pr_refresh=pr_refresh,
        feed=feed_job, leadership=leadership,
    )  # fmt: skip
    runtime = Runtime(loaded, mode, deps, app, router, server, database, scheduler, socket_handler)
    runtime.promoter, runtime.drift, runtime.leadership = promoter, drift_job, leadership
    runtime.pipeline_monitor = monitor
    runtime.feed = feed_job
    runtime.repos = built.repos
    runtime.renderers = {**RENDERERS, "promotion": promotion_renderer(promoter)}
    if pull_requests is not None:  # promotions waiting for their pull request, after a restart
        runtime.followers = {**runtime.followers, PR_SPEC_KIND: pull_requests.follower(promoter)}
    runtime.followers = {**runtime.followers, rollback_pr.SPEC_KIND: rollback_pr.resume}  # rollbacks' PRs
    return runtime


def create_slack_app(
    loaded: LoadedConfig,
    deps: Deps,
    mode: Mode,
    client: WebClient,
    *,
    promoter: Promoter | None = None,
    incidents: IncidentStore | None = None,
    deliveries: DeliveryGuard | None = None,
) -> App:
    secrets = loaded.secrets
    signing = secrets.slack_signing_secret.get_secret_value() if secrets.slack_signing_secret else None
    app = App(
        client=client,
        signing_secret=signing,
        # Socket Mode traffic is authenticated by the app token; Bolt skips the check there anyway.
        request_verification_enabled=mode == "http",
        logger=logging.getLogger("slack_bolt.gitops"),
    )
    if deliveries is not None:
        app.use(DuplicateFilter(deliveries))  # after Bolt's own middleware: only signed requests count
    handlers.register(app, deps, promoter=promoter, incidents=incidents)
    return app
