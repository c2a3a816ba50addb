"""Frozen records for Tekton PipelineRuns, TaskRuns and steps: what handlers render and the gate reads.

Raw API objects stop in `services.tekton.convert`; only these leave the package. Words follow
`tkn` (docs/tekton-api.md §6) so users see what they know from the CLI: `status_word` is the
STATUS column, `started`/`duration` the STARTED and DURATION columns.

Marks per pipeline task: ✓ succeeded, ✗ failed / cancelled / timed out (the word says which),
⏳ running or not started yet, ⏭ skipped, `?` when the TaskRun could not be read (pruned, or not
fetched). Cancelled and timed-out tasks share ✗ on purpose: the task did not do its job, and
the word next to the mark tells the reader why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.tekton.timefmt import age, go_duration

RunKind = Literal["pending", "running", "succeeded", "failed", "cancelled", "timed out"]
FINAL_KINDS: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "timed out"})

MARK_SUCCEEDED = "✓"
MARK_FAILED = "✗"
MARK_RUNNING = "⏳"
MARK_SKIPPED = "⏭"
MARK_UNKNOWN = "?"
KIND_MARKS: dict[str, str] = {
    "pending": MARK_RUNNING,
    "running": MARK_RUNNING,
    "succeeded": MARK_SUCCEEDED,
    "failed": MARK_FAILED,
    "cancelled": MARK_FAILED,
    "timed out": MARK_FAILED,
}


@dataclass(frozen=True, slots=True)
class RunStatus:
    """The `Succeeded` condition of a PipelineRun or TaskRun, read once.

    `kind` is the coarse state code branches on; `label` the chat word ("cancelling", "failed");
    `word` exactly what `tkn … list` prints in STATUS (`Failed(StepFailed)`, `---`).
    `condition` is the raw condition status: "True", "False", "Unknown", or "" when there is none.
    """

    kind: RunKind
    label: str
    word: str
    condition: str = ""
    reason: str = ""
    message: str = ""

    @property
    def done(self) -> bool:
        return self.kind in FINAL_KINDS

    @property
    def mark(self) -> str:
        return KIND_MARKS[self.kind]


@dataclass(frozen=True, slots=True)
class StepState:
    """One `status.steps[]` entry. `state` is which ContainerState is set: running / waiting /
    terminated, or "" when none is (the pod has not reported yet)."""

    name: str
    container: str
    state: str
    word: str  # `tkn taskrun describe` STEPS column: Running, the waiting or terminated reason, ---
    exit_code: int | None = None
    reason: str = ""  # waiting.reason or terminated.reason
    termination_reason: str = ""  # v1 only: Completed, Error, Skipped, Continued, TimeoutExceeded, …
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def failed(self) -> bool:
        """True for the step that made its task fail (§5): a non-zero exit that was neither a
        skip after an earlier failure nor an `onError: continue`."""
        return (
            self.state == "terminated"
            and self.exit_code not in (None, 0)
            and self.termination_reason not in ("Skipped", "Continued")
        )


@dataclass(frozen=True, slots=True)
class TaskState:
    """One pipeline task (or finally task) of a run, with its TaskRun when one exists."""

    pipeline_task: str
    mark: str
    word: str  # "succeeded", "failed", "running", "waiting", "skipped", "cancelled", "timed out", …
    taskrun: str | None = None
    status: RunStatus | None = None
    steps: tuple[StepState, ...] = ()
    is_finally: bool = False
    skipped_reason: str = ""
    pod_name: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    retries: int = 0  # earlier attempts (status.retriesStatus)
    child_kind: str = "TaskRun"  # or CustomRun / PipelineRun (pipelines in pipelines)

    @property
    def failed_step(self) -> StepState | None:
        return next((s for s in self.steps if s.failed), None)

    @property
    def duration(self) -> str:
        if self.started_at and self.finished_at:
            return go_duration((self.finished_at - self.started_at).total_seconds())
        return "---"


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a run failed: the first failed task in pipeline order, its failing step and exit code.

    For failures before any task ran (`ParameterMissing`, `CouldntGetPipeline`) only `message`
    is set. `pod`/`container` say where the step's log lives (`step-<name>`).
    """

    message: str
    reason: str = ""
    pipeline_task: str | None = None
    taskrun: str | None = None
    step: str | None = None
    exit_code: int | None = None
    pod: str | None = None
    container: str | None = None


@dataclass(frozen=True, slots=True)
class PipelineRunSummary:
    """One row of `tkn pipelinerun list`, plus who started it when the bot did."""

    name: str
    namespace: str
    pipeline: str  # the `tekton.dev/pipeline` label, else pipelineRef.name, else ""
    status: RunStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime | None = None
    started_by: str | None = None  # Slack user id from the gitops-bot.io/started-by label
    started_by_name: str | None = None  # the handle from the annotation, for display only
    uid: str = ""
    params: tuple[tuple[str, str], ...] = ()  # name → value as text (arrays joined by ",")
    labels: tuple[tuple[str, str], ...] = ()
    spec_status: str = ""  # spec.status: Cancelled, CancelledRunFinally, PipelineRunPending, …

    @property
    def status_word(self) -> str:
        return self.status.word

    @property
    def reason(self) -> str:
        return self.status.reason

    @property
    def duration(self) -> str:
        """tkn DURATION: completion − start as a Go duration, `---` while either is missing."""
        if self.started_at and self.finished_at:
            return go_duration((self.finished_at - self.started_at).total_seconds())
        return "---"

    def started(self, now: datetime) -> str:
        """tkn STARTED: `8 minutes ago`, `---` without a startTime."""
        return age(self.started_at, now)

    def elapsed(self, now: datetime) -> str:
        """Go duration since the start (to completion when done): the live counter in a followed run."""
        if self.started_at is None:
            return "---"
        end = self.finished_at or now
        return go_duration(max(0.0, (end - self.started_at).total_seconds()))

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name)

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


@dataclass(frozen=True, slots=True)
class SkippedTask:
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class PipelineRunDetail:
    """A run with its task tree: what a followed run's Slack message shows."""

    summary: PipelineRunSummary
    tasks: tuple[TaskState, ...]
    finally_tasks: tuple[TaskState, ...] = ()
    skipped: tuple[SkippedTask, ...] = ()
    failure: Failure | None = None
    dashboard_url: str | None = None
    pipeline_ref: str = ""  # `deploy-web`, or `resolver git` for remote resolution, or `(inline)`
    service_account: str = ""
    timeouts: tuple[tuple[str, str], ...] = ()  # ("pipeline", "1h0m0s"), …
    api_version: str = "tekton.dev/v1"

    @property
    def name(self) -> str:
        return self.summary.name

    @property
    def namespace(self) -> str:
        return self.summary.namespace

    @property
    def status(self) -> RunStatus:
        return self.summary.status

    @property
    def all_tasks(self) -> tuple[TaskState, ...]:
        return self.tasks + self.finally_tasks

    def task(self, name: str) -> TaskState | None:
        return next((t for t in self.all_tasks if t.pipeline_task == name), None)


__all__ = [
    "FINAL_KINDS",
    "KIND_MARKS",
    "MARK_FAILED",
    "MARK_RUNNING",
    "MARK_SKIPPED",
    "MARK_SUCCEEDED",
    "MARK_UNKNOWN",
    "Failure",
    "PipelineRunDetail",
    "PipelineRunSummary",
    "RunKind",
    "RunStatus",
    "SkippedTask",
    "StepState",
    "TaskState",
]
