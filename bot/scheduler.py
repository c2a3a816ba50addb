"""Scheduler wiring: APScheduler in the background of the same process.

Jobs: hold reminders, lock and promotion expiry, audit retention, the drift scan, the
pipeline monitor, the refresh of promotion cards waiting on a pull request, the deployment
feed's supervisor and its weekly digest (leader-only inside their own `run` / `tick`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from slack_sdk import WebClient

from handlers.admin.reminders import expire_locks
from handlers.deps import Deps
from handlers.drift.job import DriftJob
from handlers.feed.job import FeedJob
from handlers.feed.stats import post_digest
from handlers.pipelines.monitor import PipelineMonitor
from handlers.promote.executor import Promoter, expire_promotions
from handlers.promote.refresh import PullRequestRefresh
from handlers.rollback.reminders import remind_holds
from services.leader.election import Leadership

log = logging.getLogger(__name__)
FEED_TICK_SECONDS = 5.0  # how soon a new leader starts following


def build_scheduler(
    deps: Deps,
    client: WebClient,
    *,
    drift: DriftJob | None = None,
    promoter: Promoter | None = None,
    pipeline_monitor: PipelineMonitor | None = None,
    pr_refresh: PullRequestRefresh | None = None,
    feed: FeedJob | None = None,
    tick: timedelta = timedelta(minutes=1),
    leadership: Leadership | None = None,
) -> BackgroundScheduler:
    """`leadership`: the housekeeping jobs (reminders, expiries, retention) run only on the leader,
    so replicas sharing one database never announce the same expiry twice."""
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})

    def leading(job: Callable[[], object]) -> Callable[[], object]:
        return job if leadership is None else (lambda: job() if leadership.is_leader() else None)

    scheduler.add_job(
        _safe(leading(lambda: remind_holds(deps, client)), "hold reminders"),
        "interval",
        seconds=tick.total_seconds(),
        id="hold-reminders",
        jitter=min(10, int(tick.total_seconds() / 4)) or None,
    )
    scheduler.add_job(
        _safe(leading(lambda: expire_locks(deps, client)), "lock expiry"),
        "interval",
        seconds=min(60.0, tick.total_seconds()),
        id="lock-expiry",
    )
    settings = deps.settings.drift
    if drift is not None and settings.enabled:
        scheduler.add_job(
            _safe(drift.run, "drift scan"),
            "interval",
            seconds=settings.interval.total_seconds(),
            jitter=int(settings.jitter.total_seconds()) or None,
            id="drift-scan",
        )
    monitor = deps.settings.pipeline_monitor
    if pipeline_monitor is not None and deps.pipelines is not None and deps.settings.pipeline_monitor_enabled:
        scheduler.add_job(
            _safe(pipeline_monitor.run, "pipeline monitor"),
            "interval",
            seconds=monitor.interval.total_seconds(),
            jitter=int(monitor.jitter.total_seconds()) or None,
            id="pipeline-monitor",
        )
    if promoter is not None:
        scheduler.add_job(
            _safe(leading(lambda: expire_promotions(promoter, client)), "promotion expiry"),
            "interval",
            seconds=min(60.0, tick.total_seconds()),
            id="promotion-expiry",
        )
    if pr_refresh is not None and deps.githosts:
        scheduler.add_job(
            _safe(pr_refresh.run, "pull request refresh"),
            "interval",
            seconds=deps.settings.git.pull_request_refresh.total_seconds(),
            id="promotion-pr-refresh",
        )
    if feed is not None:
        # Follows while this replica leads, stops when it does not; the first look is at once.
        scheduler.add_job(
            _safe(feed.tick, "deployment feed"), "interval", seconds=FEED_TICK_SECONDS, id="feed",
            next_run_time=datetime.now(UTC),
        )  # fmt: skip
    schedule = deps.settings.feed.digest_schedule
    if feed is not None and schedule is not None:
        scheduler.add_job(
            _safe(lambda: post_digest(deps, client, leadership=feed.leadership), "weekly digest"),
            CronTrigger(day_of_week=schedule.day, hour=schedule.hour, minute=schedule.minute,
                        timezone=ZoneInfo(schedule.timezone)),
            id="feed-digest",
        )  # fmt: skip
    days = deps.settings.audit.retention_days
    if days is not None:
        scheduler.add_job(
            _safe(leading(lambda: deps.audit.apply_retention(days)), "audit retention"),
            "interval",
            hours=24,
            id="audit-retention",
        )
    return scheduler


def _safe(job: Callable[[], object], name: str) -> Callable[[], None]:
    def run() -> None:
        try:
            job()
        except Exception:  # a failing job must not kill the scheduler thread
            log.exception("scheduled job failed", extra={"job": name})

    return run
