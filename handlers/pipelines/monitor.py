"""The scheduled pipeline monitor: failed runs of configured pipelines, posted once per run.

Runs only on the leader, like the drift scan. Each scan lists each (cluster, namespace) holding a
configured pipeline once (`PipelineRuns.list_namespace`), keeps the runs of configured pipelines
that failed or timed out (a cancelled run is somebody's decision, not an alert), and posts each
one not yet announced to its app's channel route (`pipeline_monitor.routes`, else drift's) with
the run card every run message shares: task tree, failing task / step / exit code, the step's log
tail scrubbed. The database remembers what was posted (services/store/posted_runs.py), so a
restart or a new leader never posts a run twice, and the first look at a pipeline records its
old failures without posting them. A namespace that does not answer is logged and tried again
next scan; the others go on. Each post is also an audit row of the bot's own (`pipeline.failed`),
so it is in `/gitops audit` and reaches the notifiers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from slack_sdk import WebClient

from handlers.deps import Deps
from handlers.pipelines.views import run_card
from handlers.posting import PacedPoster
from services.audit.trail import AuditEvent
from services.errors import GitOpsBotError
from services.extensions.events import BOT_USER
from services.leader.election import Leadership
from services.pipelines import PipelineRuns, PipelineTarget, RunRef
from services.settings.routes import route_channel
from services.store.posted_runs import PRUNE_AFTER, PostedRuns, RunKey
from services.tekton.model import PipelineRunDetail, PipelineRunSummary
from services.tekton.runs import LABEL_APP, LABEL_ENV

log = logging.getLogger(__name__)

ALERT_KINDS = frozenset({"failed", "timed out"})
ACTION = "pipeline.failed"  # the audit action, and the event type notifiers get
MAX_POSTS = 20  # per scan; the rest stay unclaimed and go out with the next scan


def _key(cluster: str, run: PipelineRunSummary) -> RunKey:
    return RunKey(cluster, run.namespace, run.name, run.uid)


def _finished(run: PipelineRunSummary) -> float:
    when = run.finished_at or run.started_at or run.created_at
    return when.timestamp() if when else 0.0


@dataclass
class PipelineMonitor:
    deps: Deps
    client: WebClient
    leadership: Leadership
    store: PostedRuns | None = None  # default: on the audit trail's database
    pace: float = 1.0  # seconds between posts to one channel (Slack allows ~1 message/s per channel)
    sleep: Callable[[float], None] = time.sleep
    _poster: PacedPoster | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.store is None:
            self.store = PostedRuns(self.deps.audit.database)

    @property
    def poster(self) -> PacedPoster:
        if self._poster is None:
            self._poster = PacedPoster(self.client, sleep=self.sleep, what="pipeline monitor")
        self._poster.pace = self.pace  # tests and the demo set `pace` after construction
        return self._poster

    def run(self) -> int:
        """One scan; returns how many runs it announced (0 when not the leader)."""
        pipelines = self.deps.pipelines
        if pipelines is None or not self.deps.settings.pipeline_monitor_enabled:
            return 0
        if not self.leadership.is_leader():
            return 0
        places: dict[tuple[str, str], list[PipelineTarget]] = {}
        for target in pipelines.targets.all:
            places.setdefault((target.cluster, target.namespace), []).append(target)
        budget = MAX_POSTS
        for (cluster, namespace), targets in places.items():
            if budget <= 0:
                break
            try:
                runs = pipelines.list_namespace(cluster, namespace)
            except GitOpsBotError as exc:
                self._log_unreachable(cluster, namespace, exc)
                continue
            try:
                budget -= self._scan(pipelines, cluster, namespace, targets, runs, budget)
            except GitOpsBotError as exc:
                # Its runs stay unclaimed and are tried again; the other namespaces go on.
                log.warning(
                    "pipeline monitor: scan of a namespace failed",
                    extra={"cluster": cluster, "namespace": namespace, "error": self._said(exc)},
                )
        return MAX_POSTS - budget

    def _scan(
        self,
        pipelines: PipelineRuns,
        cluster: str,
        namespace: str,
        targets: Sequence[PipelineTarget],
        runs: Sequence[PipelineRunSummary],
        budget: int,
    ) -> int:
        assert self.store is not None
        now = self.deps.clock()
        by_pipeline: dict[str, list[PipelineTarget]] = {}
        for target in targets:
            by_pipeline.setdefault(target.pipeline, []).append(target)
        alerts = [r for r in runs if r.pipeline in by_pipeline and r.status.kind in ALERT_KINDS]
        baselined = self.store.baselined(cluster, namespace)
        for pipeline in by_pipeline.keys() - baselined:
            history = [_key(cluster, r) for r in alerts if r.pipeline == pipeline]
            self.store.baseline(pipeline, history, cluster=cluster, namespace=namespace, now=now)
        known = self.store.known(cluster, namespace)
        fresh = [r for r in alerts if r.pipeline in baselined and _key(cluster, r) not in known]
        posted = 0
        for run in sorted(fresh, key=_finished)[:budget]:  # oldest first: the channel reads in order
            posted += self._announce(pipelines, cluster, run, by_pipeline[run.pipeline])
        self.store.forget_missing(
            cluster, namespace, {_key(cluster, r) for r in runs}, older_than=now - PRUNE_AFTER
        )
        return posted

    def _announce(
        self,
        pipelines: PipelineRuns,
        cluster: str,
        run: PipelineRunSummary,
        targets: Sequence[PipelineTarget],
    ) -> int:
        """Read, claim, post, record, audit; 1 when the run was announced (posted or, with no
        channel to post to, audited only)."""
        assert self.store is not None
        key = _key(cluster, run)
        try:
            detail = pipelines.read(RunRef(cluster, run.namespace, run.name))
        except GitOpsBotError as exc:  # deleted meanwhile, or the API hiccuped: next scan decides
            log.warning(
                "pipeline monitor: run not readable",
                extra={
                    "cluster": cluster,
                    "namespace": run.namespace,
                    "run": run.name,
                    "error": self._said(exc),
                },
            )
            return 0
        target = self._target(run, targets)
        settings = self.deps.settings
        channel = route_channel(
            settings.pipeline_monitor_routes,
            settings.pipeline_monitor_channel,
            env=target.env,
            names=(target.app, target.pipeline),
            labels=(f"{k}={v}" for k, v in run.labels),
        )
        now = self.deps.clock()
        if not self.store.claim(key, run.pipeline, now=now):
            return 0  # another scan (a second leader for a moment, a manual run) has it
        ts = None
        if channel is not None:
            tail = pipelines.failure_log(detail, cluster)
            card = run_card(detail, now=now, target=target, log=tail, title=_title(detail))
            ts = self.poster.post(channel, card)
            if ts is None:
                self.store.release(key)  # Slack refused it: the next scan tries again
                return 0
        self.store.mark_posted(key, channel=channel, ts=ts, now=now)
        self._audit(cluster, detail, target, channel)
        return 1

    def _target(self, run: PipelineRunSummary, targets: Sequence[PipelineTarget]) -> PipelineTarget:
        """The app and environment a run is about: the labels the bot puts on runs it starts, else
        the first app configuring the pipeline and the one environment it builds, if only one."""
        chosen = next((t for t in targets if t.app == run.label(LABEL_APP)), targets[0])
        env = run.label(LABEL_ENV)
        if env is None or not chosen.config.applies_to(env):
            app = self.deps.settings.app(chosen.app)
            envs = chosen.config.environments or (app.env_names if app is not None else ())
            env = envs[0] if len(envs) == 1 else None
        return PipelineTarget(
            chosen.app, chosen.pipeline, chosen.namespace, chosen.cluster, chosen.config, env
        )

    def _audit(
        self, cluster: str, detail: PipelineRunDetail, target: PipelineTarget, channel: str | None
    ) -> None:
        row = AuditEvent(
            user_id=BOT_USER,
            user_name=BOT_USER,
            channel=channel or "",
            command="pipeline monitor",
            target=f"{target.app}/{target.env}" if target.env else target.app,
            action=ACTION,
            outcome="ok",
            detail=audit_detail(cluster, detail),
        )
        try:
            self.deps.audit.append(row)
        except GitOpsBotError:  # the alert went out; the log says what the trail lacks
            log.error("pipeline monitor audit row not written", extra={"run": detail.name})

    def _log_unreachable(self, cluster: str, namespace: str, exc: GitOpsBotError) -> None:
        log.warning(
            "pipeline monitor: namespace not answering; tried again next scan",
            extra={"cluster": cluster, "namespace": namespace, "error": self._said(exc)},
        )

    def _said(self, exc: Exception) -> str:
        # Client errors are scrubbed of the token already; the redactor also takes configured secrets.
        text = f"{type(exc).__name__}: {str(exc)[:200]}"
        return self.deps.redact(text) if self.deps.redact is not None else text


def _title(detail: PipelineRunDetail) -> str:
    name = detail.summary.pipeline or detail.pipeline_ref or detail.name
    return f"Pipeline {name} timed out" if detail.status.kind == "timed out" else f"Pipeline {name} failed"


def audit_detail(cluster: str, detail: PipelineRunDetail) -> str:
    """`run ci/ci/web-ci-run-x2k (pipeline web-ci): Failed; task test, step unit, exit code 2` —
    services/extensions/events.py reads the event's data back from it."""
    run = detail.summary
    text = f"run {cluster}/{run.namespace}/{run.name} (pipeline {run.pipeline or '?'}): {run.status.word}"
    failure = detail.failure
    if failure is not None and failure.pipeline_task:
        text += f"; task {failure.pipeline_task}"
        if failure.step:
            text += f", step {failure.step}"
        if failure.exit_code is not None:
            text += f", exit code {failure.exit_code}"
    return text
