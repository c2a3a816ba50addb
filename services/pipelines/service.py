"""Runs of the configured pipelines, over one TektonClient per `tekton:` cluster.

Every list is one request per (cluster, namespace), filtered here: a channel asking about five
pipelines in one namespace costs one list, and so does the monitor's scan of that namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.errors import GitOpsBotError, UserError
from services.pipelines.targets import PipelineTarget, PipelineTargets
from services.redaction import Redactor
from services.settings.model import Settings
from services.tekton import convert
from services.tekton.client import TektonClient
from services.tekton.logs import LogTail, failing_container, tail
from services.tekton.model import PipelineRunDetail, PipelineRunSummary
from services.tekton.runs import (
    LABEL_APP,
    LABEL_ENV,
    ParamValue,
    StartedBy,
    Timeouts,
    declared_params,
    pipelinerun_body,
    resolve_params,
)
from services.tekton.timefmt import go_duration

Json = Mapping[str, Any]
LOG_LINES = 20


@dataclass(frozen=True)
class RunRef:
    """One PipelineRun: what a Cancel button, a followed message and the monitor store."""

    cluster: str
    namespace: str
    name: str

    @property
    def display(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class LatestRuns:
    runs: tuple[tuple[PipelineTarget, PipelineRunSummary], ...]  # failing first, then newest first
    unreachable: tuple[str, ...] = ()  # "cluster/namespace: why", for namespaces that did not answer


def _failing_first(item: tuple[PipelineTarget, PipelineRunSummary]) -> tuple[int, float]:
    run = item[1]
    when = run.started_at or run.created_at
    return (0 if run.status.kind in ("failed", "timed out") else 1, -(when.timestamp() if when else 0.0))


class PipelineRuns:
    def __init__(
        self,
        settings: Settings,
        clients: Mapping[str, TektonClient],
        *,
        redactor: Redactor | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.targets = PipelineTargets(settings)
        self.clients = dict(clients)
        self._redactor = redactor or Redactor([])
        self.clock = clock

    @property
    def configured(self) -> bool:
        return bool(self.clients) and self.targets.configured

    def client(self, cluster: str) -> TektonClient:
        found = self.clients.get(cluster)
        if found is None:
            raise UserError(f"Tekton cluster `{cluster}` is not configured (`tekton:` in the config).")
        return found

    def dashboard_base(self, cluster: str) -> str | None:
        config = self.settings.tekton_cluster(cluster)
        return str(config.dashboard_url) if config is not None and config.dashboard_url else None

    # -- lists ------------------------------------------------------------------------------------

    def list_namespace(self, cluster: str, namespace: str) -> list[PipelineRunSummary]:
        """Every run of one namespace: one request."""
        return [convert.summary(obj) for obj in self.client(cluster).list_pipelineruns(namespace)]

    def latest(self, targets: Iterable[PipelineTarget], *, per_pipeline: int = 5) -> LatestRuns:
        """The newest runs of each target (at most `per_pipeline`), failing ones first; one list
        per (cluster, namespace). A namespace that does not answer is named, the rest still shown."""
        by_place: dict[tuple[str, str], list[PipelineTarget]] = {}
        for target in targets:
            by_place.setdefault((target.cluster, target.namespace), []).append(target)
        found: list[tuple[PipelineTarget, PipelineRunSummary]] = []
        unreachable: list[str] = []
        for (cluster, namespace), wanted in by_place.items():
            try:
                runs = self.list_namespace(cluster, namespace)
            except GitOpsBotError as exc:
                unreachable.append(f"{cluster}/{namespace}: {str(exc)[:200]}")
                continue
            for target in wanted:
                own = convert.sort_like_tkn(r for r in runs if r.pipeline == target.pipeline)
                found += [(target, run) for run in own[:per_pipeline]]
        found.sort(key=_failing_first)
        return LatestRuns(tuple(found), tuple(unreachable))

    def runs_of(self, target: PipelineTarget) -> list[PipelineRunSummary]:
        """All runs of one pipeline, newest first (tkn's order)."""
        runs = self.list_namespace(target.cluster, target.namespace)
        return convert.sort_like_tkn(r for r in runs if r.pipeline == target.pipeline)

    # -- one run ----------------------------------------------------------------------------------

    def read(self, run: RunRef) -> PipelineRunDetail:
        """The task tree of one run: the run, its TaskRuns (one list), and the Pipeline's spec
        while the run does not carry its resolved spec yet."""
        client = self.client(run.cluster)
        obj = client.get_pipelinerun(run.namespace, run.name)
        taskruns = client.list_taskruns(run.namespace, run.name)
        pipeline = None
        status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
        if not (isinstance(status, Mapping) and status.get("pipelineSpec")):
            ref = (obj.get("spec") or {}).get("pipelineRef") or {}
            if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
                try:
                    pipeline = client.get_pipeline(run.namespace, ref["name"])
                except GitOpsBotError:
                    pipeline = None  # deleted meanwhile: the tree shows what ran
        return convert.detail(
            obj, taskruns, pipeline=pipeline, dashboard_base=self.dashboard_base(run.cluster)
        )

    def params(self, target: PipelineTarget, args: Sequence[str]) -> dict[str, ParamValue]:
        """The params a run would get — configured ones with the user's `k=v` on top — checked
        against what the Pipeline declares (one GET of the Pipeline). The revision param is the
        user's to set unless the config pins it."""
        pipeline = self.client(target.cluster).get_pipeline(target.namespace, target.pipeline)
        return self._params(target, args, pipeline)

    @staticmethod
    def _params(target: PipelineTarget, args: Sequence[str], pipeline: Json) -> dict[str, ParamValue]:
        config = target.config
        pinned = config.revision_param
        protected = (pinned,) if pinned and pinned in config.params else ()
        return resolve_params(
            args, configured=config.param_values(), declared=declared_params(pipeline), protected=protected
        )

    def start(self, target: PipelineTarget, args: Sequence[str], started_by: StartedBy) -> PipelineRunDetail:
        """Create a run as `tkn pipeline start` builds it: configured params overlaid with `k=v`
        args (checked against what the Pipeline declares), workspaces, service account, timeout,
        labels naming the app, environment and Slack user."""
        client = self.client(target.cluster)
        version = client.version()
        pipeline = client.get_pipeline(target.namespace, target.pipeline)
        config = target.config
        params = self._params(target, args, pipeline)
        labels = {LABEL_APP: target.app}
        if target.env:
            labels[LABEL_ENV] = target.env
        timeouts = (
            Timeouts(pipeline=go_duration(config.timeout.total_seconds()))
            if config.timeout is not None
            else None
        )
        body = pipelinerun_body(
            target.pipeline,
            target.namespace,
            params=params,
            api_version=version,
            workspaces=[w.binding() for w in config.workspaces],
            service_account=config.service_account,
            timeouts=timeouts,
            started_by=started_by,
            labels=labels,
        )
        created = client.create_pipelinerun(target.namespace, body)
        return convert.detail(
            created, (), pipeline=pipeline, dashboard_base=self.dashboard_base(target.cluster)
        )

    def cancel(self, run: RunRef) -> PipelineRunDetail:
        """`spec.status: CancelledRunFinally`: running tasks stop, finally tasks still run. A run
        that already finished is refused (UserError), as tkn refuses it."""
        self.client(run.cluster).cancel_pipelinerun(run.namespace, run.name)
        return self.read(run)

    def failure_log(
        self, detail: PipelineRunDetail, cluster: str, *, lines: int = LOG_LINES
    ) -> LogTail | None:
        """The last lines of the failing step's container, scrubbed; None when there is no
        failing step or its pod is gone (a cancel or timeout deletes it)."""
        target = failing_container(detail)
        if target is None:
            return None
        try:  # one line more than shown: that is how the card knows older lines were left out
            text = self.client(cluster).read_log(
                target.namespace, target.pod, target.container, tail_lines=lines + 1
            )
        except GitOpsBotError:
            return None
        return tail(text, target, self._redactor, lines=lines)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
