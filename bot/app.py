"""The app factory: builds services, the Bolt app and the HTTP server from loaded config.

Nothing here runs at import time; `build_runtime` is called once by the CLI (or a test).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Literal

from apscheduler.schedulers.background import BackgroundScheduler
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

import handlers
from bot.config import LoadedConfig
from bot.scheduler import build_scheduler
from bot.server import SLACK_PATH, HttpServer, Router
from bot.slack_client import build_web_client, group_members
from bot.wiring import build_services
from handlers.authz import Authorizer
from handlers.builtin import builtin_executors
from handlers.deps import Deps, Executor
from handlers.drift_job import DriftJob
from handlers.exec_admin import admin_executors
from handlers.exec_audit import audit_executor
from handlers.exec_drift import drift_executor
from handlers.exec_gitops import gitops_executors
from handlers.exec_promote import Promoter, promote_executor
from services.access import AccessPolicy, CachedGroupDirectory
from services.audit import AuditEvent, AuditStore
from services.backend import GitOpsBackend
from services.db import Database
from services.drift_store import IncidentStore
from services.errors import GitOpsBotError
from services.jobs import JobRunner
from services.leader import Leadership, build_leadership, default_identity
from services.metrics import Metrics
from services.ratelimit import RateLimiter
from services.redaction import Redactor
from services.replay import ReplayGuard

log = logging.getLogger(__name__)

Mode = Literal["socket", "http"]
SYSTEM_USER = "gitops-bot"  # audit rows the bot writes on its own behalf (shutdown)


class StartupError(Exception):
    """A problem that stops the bot from starting, worded for the operator (no traceback)."""


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
    leadership: Leadership | None = None
    _stopped: bool = field(default=False, repr=False)

    def start(self) -> Runtime:
        self.server.start()
        if self.leadership is not None:
            self.leadership.start()
        self.scheduler.start()
        ops = self.deps.ops
        if ops is not None:
            # GET /api/version of each backend, off the start path: a slow Argo CD must not delay Slack.
            threading.Thread(target=ops.versions, name="backend-versions", daemon=True).start()
        if self.socket_handler is not None:
            self.socket_handler.connect()  # type: ignore[no-untyped-call]
            log.info("connected to Slack in Socket Mode")
        return self

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
        finished = self.deps.jobs.close(timeout=timeout)
        if self.leadership is not None:
            self.leadership.stop()
        self.server.stop()
        # Held from the snapshot of unfinished jobs to the close: a job that ends meanwhile cannot
        # add its own row after its interrupted one (it finds the database closed instead).
        with self.database.lock:
            if not finished:
                self._record_interrupted(timeout)
            self.database.close()
        log.info("stopped")

    def _record_interrupted(self, timeout: float) -> None:
        """One `shutdown` row (outcome `error`) per job unfinished at the deadline."""
        now = time.monotonic()
        jobs = self.deps.jobs.unfinished()
        log.warning("shutdown timeout: jobs interrupted", extra={"jobs": [j.name for j in jobs]})
        for job in jobs:
            if job.started is None:
                state = "was queued and never started"
            else:
                state = f"was still running after {now - job.started:.0f}s"
            event = AuditEvent(
                user_id=SYSTEM_USER,
                user_name=SYSTEM_USER,
                command=job.name,
                action="shutdown",
                outcome="error",
                detail=f"interrupted: {job.name} {state} when the shutdown timeout ({timeout:g}s) ran out",
                # The request's correlation id: its log lines say who asked for what.
                correlation_id=job.correlation_id,
                duration_ms=int((now - job.accepted) * 1000),
            )
            try:
                self.deps.audit.append(event)
            except GitOpsBotError:
                log.error("audit row could not be written", extra={"action": "shutdown"})


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
    database = Database(settings.audit.database)
    audit = AuditStore(database, redact=redact)
    services = build_services(loaded, database, metrics, backends=backends)
    jobs = JobRunner(workers=settings.server.workers, queue_limit=settings.server.queue_limit)
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
        pending=services.pending,
        ops=services.ops,
        locks=services.locks,
        redact=redact,
        authz=Authorizer(policy, locks=services.locks, resolver=services.ops.resolver),
        rate_limiter=RateLimiter(settings.access.rate_limit.commands, settings.access.rate_limit.per),
    )
    # Executors need deps (pending buttons, settings); the mapping is filled once, before serving.
    ops_or_none = services.ops if services.backends else None
    executors.update(builtin_executors(settings, deps.version, ops_or_none, policy))
    if services.backends:
        executors.update(gitops_executors(deps, services.ops))
    executors.update(admin_executors(deps, services.locks))
    executors["audit"] = audit_executor(deps)
    promoter = Promoter(deps, services.promotions, services.promotion_store)
    if services.backends:
        executors["promote"] = promote_executor(promoter)
    executors["drift"] = drift_executor(deps, services.incidents)
    executors.update(extra_executors or {})
    mode = slack_mode(loaded)
    try:
        app = create_slack_app(loaded, deps, mode, client, promoter=promoter, incidents=services.incidents)
    except Exception as exc:
        database.close()
        jobs.close(timeout=0)
        raise StartupError(f"Slack did not accept the bot's credentials: {redact(str(exc))}") from None
    socket_handler = None
    slack_wsgi = None
    if mode == "socket":
        token = loaded.secrets.slack_app_token
        assert token is not None
        socket_handler = SocketModeHandler(app, token.get_secret_value(), web_client=app.client)
    else:
        slack_wsgi = SlackRequestHandler(app, path=SLACK_PATH)

    def readiness() -> dict[str, bool]:
        checks = {"config": True, "database": database.is_writable()}
        if socket_handler is not None:
            checks["slack_socket"] = bool(socket_handler.client.is_connected())
        metrics.jobs_active.set(jobs.active)
        return checks

    router = Router(
        slack=slack_wsgi,
        readiness=readiness,
        metrics=lambda: (metrics.render(), metrics.content_type),
        info=lambda: {"version": deps.version, "mode": mode, "backends": services.ops.known_versions()},
        first_seen=ReplayGuard(database).first_seen,
    )
    server = HttpServer(
        router,
        host=host or settings.server.host,
        port=settings.server.port if port is None else port,
        threads=settings.server.threads,
    )
    leadership = build_leadership(settings, leader_identity or default_identity())
    drift_job = DriftJob(deps, app.client, services.incidents, leadership)
    scheduler = build_scheduler(deps, app.client, drift=drift_job, promoter=promoter)
    runtime = Runtime(loaded, mode, deps, app, router, server, database, scheduler, socket_handler)
    runtime.promoter, runtime.drift, runtime.leadership = promoter, drift_job, leadership
    return runtime


def create_slack_app(
    loaded: LoadedConfig,
    deps: Deps,
    mode: Mode,
    client: WebClient,
    *,
    promoter: Promoter | None = None,
    incidents: IncidentStore | None = None,
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
    handlers.register(app, deps, promoter=promoter, incidents=incidents)
    return app
