"""Tekton objects → records: every contract example (v1 and v1beta1 shapes), every documented reason,
tkn's words and times, the task tree and the failing step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.tekton import convert
from services.tekton.dashboard import pipelinerun_url, pipelineruns_url, taskrun_url
from services.tekton.model import PipelineRunDetail
from services.tekton.reasons import PIPELINERUN_REASONS, TASKRUN_REASONS, tkn_word
from services.tekton.timefmt import age, go_duration, parse_go_duration
from tests.tekton_fixtures import (
    EXAMPLE_FILES,
    doc_reasons,
    example,
    schema_problems,
    split,
    to_legacy_v1beta1,
    to_v1beta1,
)

DASH = "https://tekton.example.com/"

# file → (kind, chat label, tkn STATUS, reason, DURATION, tasks as (name, mark, word))
PIPELINERUNS: dict[str, tuple[str, str, str, str, str, list[tuple[str, str, str]]]] = {
    "failed.ASSEMBLED.yaml": (
        "failed", "failed", "Failed", "Failed", "2m10s",
        [("fetch", "?", "unknown"), ("test", "✗", "failed"), ("deploy", "⏭", "skipped")],
    ),
    "cancelled.ASSEMBLED.yaml": (
        "cancelled", "cancelled", "Cancelled", "Cancelled", "1m30s",
        [("fetch", "?", "unknown"), ("test", "✗", "cancelled"), ("deploy", "⏭", "not run")],
    ),
    "timedout.ASSEMBLED.yaml": (
        "timed out", "timed out", "Failed(PipelineRunTimeout)", "PipelineRunTimeout", "10m0s",
        [("fetch", "?", "unknown"), ("test", "✗", "timed out (pipeline timeout)"),
         ("deploy", "⏭", "skipped")],
    ),
    "pipelinerun-running.REAL.json": (
        "running", "running", "Running", "Running", "---",
        [("gke-deploy", "⏳", "waiting"), ("kaniko", "?", "unknown")],
    ),
    "pipelinerun-succeeded.REAL.json": (
        "succeeded", "succeeded", "Succeeded", "Succeeded", "15s",
        [("git-clone", "?", "unknown"), ("build", "?", "unknown")],
    ),
}  # fmt: skip
# file → (kind, tkn STATUS, steps as (name, word, exit code))
TASKRUNS: dict[str, tuple[str, str, list[tuple[str, str, int | None]]]] = {
    "taskrun-running.ASSEMBLED.yaml": (
        "running",
        "Running",
        [("lint", "Completed", 0), ("unit", "Running", None), ("report", "Running", None)],
    ),
    "taskrun-succeeded.REAL.json": ("succeeded", "Succeeded", [("gcloud", "Completed", 0)]),
    "failed.ASSEMBLED.yaml": (
        "failed",
        "Failed(StepFailed)",
        [("lint", "Completed", 0), ("unit", "Error", 1), ("report", "Error", 1)],
    ),
    "cancelled.ASSEMBLED.yaml": (
        "cancelled",
        "Cancelled(TaskRunCancelled)",
        [("lint", "Completed", 0), ("unit", "TaskRunCancelled", 1), ("report", "TaskRunCancelled", 1)],
    ),
    "timedout.ASSEMBLED.yaml": (
        "timed out",
        "Cancelled(TaskRunCancelled)",
        [("lint", "Completed", 0), ("unit", "TaskRunCancelled", 1), ("report", "TaskRunCancelled", 1)],
    ),
}


def tree(d: PipelineRunDetail) -> list[tuple[str, str, str]]:
    return [(t.pipeline_task, t.mark, t.word) for t in d.all_tasks]


def test_every_example_file_is_covered() -> None:
    covered = set(PIPELINERUNS) | set(TASKRUNS)
    assert covered == set(EXAMPLE_FILES)


@pytest.mark.parametrize("name", sorted(PIPELINERUNS))
@pytest.mark.parametrize("shape", ["v1", "v1beta1", "v1beta1-legacy"])
def test_pipelinerun_examples(name: str, shape: str) -> None:
    run, taskruns = split(name)
    if shape == "v1beta1":
        run, taskruns = to_v1beta1(run), [to_v1beta1(t) for t in taskruns]
    elif shape == "v1beta1-legacy":
        run, taskruns = to_legacy_v1beta1(run, taskruns), []
        if not run["status"]["taskRuns"]:
            # No TaskRun of this example to embed: the map is empty, as on any controller since v0.45.
            run["status"]["childReferences"] = split(name)[0]["status"]["childReferences"]
    kind, label, word, reason, duration, tasks = PIPELINERUNS[name]
    d = convert.detail(run, taskruns, dashboard_base=DASH)
    assert (d.status.kind, d.status.label, d.status.word, d.status.reason) == (kind, label, word, reason)
    assert d.summary.status_word == word
    assert d.summary.duration == duration
    assert d.status.done == (kind != "running")
    expected = tasks
    if shape == "v1beta1-legacy" and run["status"].get("taskRuns"):
        # Only the embedded TaskRuns are children: fetch has no entry in the legacy map.
        expected = [t for t in tasks if t[0] != "fetch"]
        expected = [("fetch", "⏭", "not run"), *expected] if d.status.done else expected
    assert tree(d) == expected
    assert d.dashboard_url == f"https://tekton.example.com/#/namespaces/ci/pipelineruns/{d.name}"
    assert d.api_version == run["apiVersion"]


@pytest.mark.parametrize("name", sorted(TASKRUNS))
@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_taskrun_examples(name: str, version: str) -> None:
    tr = next(o for o in example(name) if o["kind"] == "TaskRun")
    if version == "v1beta1":
        tr = to_v1beta1(tr)
    kind, word, steps = TASKRUNS[name]
    status = convert.taskrun_status(tr)
    assert (status.kind, status.word) == (kind, word)
    got = [convert.step_state(s) for s in tr["status"]["steps"]]
    assert [(s.name, s.word, s.exit_code) for s in got] == steps
    assert all(s.container == f"step-{s.name}" for s in got)


def test_examples_are_valid_v1_objects() -> None:
    for name in EXAMPLE_FILES:
        for obj in example(name):
            plural = "pipelineruns" if obj["kind"] == "PipelineRun" else "taskruns"
            problems = [p for p in schema_problems(obj, plural, "v1") if "featureFlags" not in p]
            assert problems == [], (name, problems)


def test_failed_run_names_task_step_exit_code_and_log_location() -> None:
    run, taskruns = split("failed.ASSEMBLED.yaml")
    d = convert.detail(run, taskruns)
    f = d.failure
    assert f is not None
    assert (f.pipeline_task, f.taskrun, f.step, f.exit_code) == (
        "test",
        "deploy-web-run-x7k2p-test",
        "unit",
        1,
    )
    assert (f.pod, f.container, f.reason) == ("deploy-web-run-x7k2p-test-pod", "step-unit", "StepFailed")
    assert f.message == '"step-unit" exited with code 1: Error'
    assert d.skipped[0].name == "deploy"
    assert d.skipped[0].reason == "PipelineRun was stopping"
    test = d.task("test")
    assert test is not None
    assert test.duration == "1m28s"
    assert test.failed_step is not None
    # v1beta1 has no terminationReason: the first non-zero exit is still the failing step.
    d1 = convert.detail(to_v1beta1(run), [to_v1beta1(t) for t in taskruns])
    assert d1.failure == f


def test_cancelled_and_timed_out_runs_have_no_failure_but_differ() -> None:
    c = convert.detail(*split("cancelled.ASSEMBLED.yaml"))
    t = convert.detail(*split("timedout.ASSEMBLED.yaml"))
    assert c.failure is None
    assert t.failure is None
    assert c.task("test").status.kind == "cancelled"  # type: ignore[union-attr]
    assert t.task("test").status.kind == "timed out"  # type: ignore[union-attr]
    assert t.timeouts == (("pipeline", "10m0s"),)


def test_summary_fields_and_started_by() -> None:
    run, _ = split("failed.ASSEMBLED.yaml")
    run["metadata"]["labels"]["gitops-bot.io/started-by"] = "U123ABC"
    run["metadata"]["annotations"] = {"gitops-bot.io/started-by-name": "alice"}
    s = convert.summary(run)
    assert (s.name, s.namespace, s.pipeline, s.started_by, s.started_by_name) == (
        "deploy-web-run-x7k2p", "ci", "deploy-web", "U123ABC", "alice",
    )  # fmt: skip
    assert s.param("revision") == "main"
    assert s.label("tekton.dev/pipeline") == "deploy-web"
    now = datetime(2026, 8, 20, 10, 8, 30, tzinfo=UTC)
    assert s.started(now) == "8 minutes ago"
    assert s.elapsed(now) == "2m10s"


# -- status without a condition, spec.status, odd reasons -------------------------------------


def _run(spec_status: str | None = None, cond: tuple[str, str] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "r", "namespace": "ci"},
        "spec": {"pipelineRef": {"name": "p"}},
    }
    if spec_status:
        obj["spec"]["status"] = spec_status
    if cond:
        obj["status"] = {"conditions": [{"type": "Succeeded", "status": cond[0], "reason": cond[1]}]}
    return obj


@pytest.mark.parametrize(
    ("spec_status", "cond", "expected"),
    [
        (None, None, ("pending", "queued", "---")),
        ("PipelineRunPending", None, ("pending", "pending", "---")),
        ("PipelineRunPending", ("Unknown", "PipelineRunPending"), ("pending", "pending", "Pending")),
        ("CancelledRunFinally", ("Unknown", "CancelledRunningFinally"),
         ("running", "cancelling", "Running(CancelledRunningFinally)")),
        ("StoppedRunFinally", ("Unknown", "StoppedRunningFinally"),
         ("running", "stopping", "Running(StoppedRunningFinally)")),
        ("Cancelled", ("Unknown", "Running"), ("running", "cancelling", "Running")),
        (None, ("Unknown", "PipelineRunStopping"),
         ("running", "stopping after a failure", "Failed(PipelineRunStopping)")),
        (None, ("Unknown", "Cancelled"), ("running", "cancelling", "Cancelled")),
        (None, ("True", "Completed"), ("succeeded", "succeeded (some tasks skipped)", "Succeeded")),
        (None, ("False", "ParameterMissing"),
         ("failed", "failed: parameter missing", "Failed(ParameterMissing)")),
        (None, ("False", "SomethingNew"), ("failed", "failed", "Failed(SomethingNew)")),
        (None, ("Unknown", "SomethingNew"), ("running", "running", "Running(SomethingNew)")),
    ],
)  # fmt: skip
def test_pipelinerun_status_cases(
    spec_status: str | None, cond: tuple[str, str] | None, expected: tuple[str, str, str]
) -> None:
    st = convert.pipelinerun_status(_run(spec_status, cond))
    assert (st.kind, st.label, st.word) == expected


def test_user_error_prefix_is_dropped_from_messages() -> None:
    obj = _run(None, ("False", "ParameterMissing"))
    obj["status"]["conditions"][0]["message"] = "[User error] pipelinerun ci/r is missing param revision"
    d = convert.detail(obj)
    assert d.failure is not None
    assert d.failure.message == "pipelinerun ci/r is missing param revision"
    assert d.failure.pipeline_task is None


_KIND_FOR_STATUS = {
    "Unknown": {"running", "pending"},
    "True": {"succeeded"},
    "False": {"failed", "cancelled", "timed out"},
}


@pytest.mark.parametrize(("reason", "status"), doc_reasons("3.2"))
def test_every_pipelinerun_reason_of_the_doc_is_mapped(reason: str, status: str) -> None:
    assert reason in PIPELINERUN_REASONS
    st = convert.pipelinerun_status(_run(None, (status, reason)))
    assert st.kind in _KIND_FOR_STATUS[status]
    assert st.label == PIPELINERUN_REASONS[reason][1]


@pytest.mark.parametrize(("reason", "status"), doc_reasons("3.3"))
def test_every_taskrun_reason_of_the_doc_is_mapped(reason: str, status: str) -> None:
    assert reason in TASKRUN_REASONS
    tr = {"spec": {}, "status": {"conditions": [{"type": "Succeeded", "status": status, "reason": reason}]}}
    st = convert.taskrun_status(tr)
    assert st.kind in _KIND_FOR_STATUS[status]
    assert st.label == TASKRUN_REASONS[reason][1]


def test_doc_tables_were_read() -> None:
    assert len(doc_reasons("3.2")) >= 35
    assert len(doc_reasons("3.3")) >= 30


@pytest.mark.parametrize(
    ("status", "reason", "word"),
    [
        ("", "", "---"), ("True", "Succeeded", "Succeeded"), ("True", "Completed", "Succeeded"),
        ("False", "Failed", "Failed"), ("False", "Cancelled", "Cancelled"),
        ("False", "TaskRunCancelled", "Cancelled(TaskRunCancelled)"),
        ("False", "PipelineRunCancelled", "Cancelled(PipelineRunCancelled)"),
        ("Unknown", "TaskRunStopping", "Failed(TaskRunStopping)"),
        ("False", "CreateContainerConfigError", "Pending(CreateContainerConfigError)"),
        ("Unknown", "ExceededNodeResources", "Pending(ExceededNodeResources)"),
        ("Unknown", "Pending", "Running(Pending)"),
        ("Unknown", "ResolvingPipelineRef", "Running(ResolvingPipelineRef)"),
        ("False", "StepFailed", "Failed(StepFailed)"), ("Unknown", "", "Running"),
    ],
)  # fmt: skip
def test_tkn_status_word(status: str, reason: str, word: str) -> None:
    assert tkn_word(status, reason) == word


def test_step_rules_skipped_continued_waiting() -> None:
    steps = [
        {"name": "a", "terminated": {"exitCode": 2, "reason": "Completed"}, "terminationReason": "Continued"},
        {"name": "b", "terminated": {"exitCode": 1, "reason": "Error"}, "terminationReason": "Skipped"},
        {"name": "c", "waiting": {"reason": "PodInitializing"}},
        {"name": "d"},
    ]
    got = [convert.step_state(s) for s in steps]
    assert [s.failed for s in got] == [False, False, False, False]
    assert [(s.state, s.word) for s in got] == [
        ("terminated", "Completed"), ("terminated", "Error"), ("waiting", "PodInitializing"), ("", "---"),
    ]  # fmt: skip


def test_tasks_not_in_the_spec_and_finally_and_matrix() -> None:
    run, taskruns = split("failed.ASSEMBLED.yaml")
    run["status"]["pipelineSpec"]["finally"] = [{"name": "notify", "taskRef": {"name": "slack"}}]
    notify = {
        "metadata": {"name": "deploy-web-run-x7k2p-notify", "labels": {
            "tekton.dev/pipelineTask": "notify", "tekton.dev/memberOf": "finally"}},
        "status": {"conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded"}]},
    }  # fmt: skip
    d = convert.detail(run, [*taskruns, notify])  # notify is listed before childReferences catch up
    assert [(t.pipeline_task, t.mark) for t in d.finally_tasks] == [("notify", "✓")]
    assert d.finally_tasks[0].is_finally
    assert d.failure is not None
    assert d.failure.pipeline_task == "test"


def test_sort_like_tkn() -> None:
    runs = []
    for name, start in (("a", "2026-08-20T10:00:00Z"), ("b", None), ("c", "2026-08-20T11:00:00Z")):
        obj = _run(None, ("Unknown", "Running"))
        obj["metadata"]["name"] = name
        if start:
            obj["status"]["startTime"] = start
        runs.append(convert.summary(obj))
    assert [r.name for r in convert.sort_like_tkn(runs)] == ["b", "c", "a"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 seconds ago"), (0.4, "0 seconds ago"), (1, "1 second ago"), (59, "59 seconds ago"),
     (8 * 60 + 59, "8 minutes ago"), (3600, "1 hour ago"), (2 * 3600 + 5, "2 hours ago"),
     (86400 * 3, "3 days ago"), (86400 * 15, "2 weeks ago"), (86400 * 400, "1 year ago"),
     (-5, "0 seconds ago")],
)  # fmt: skip
def test_age_like_tkn(seconds: float, text: str) -> None:
    now = datetime(2026, 8, 20, 12, 0, tzinfo=UTC)
    assert age(now - timedelta(seconds=seconds), now) == text
    assert age(None, now) == "---"


def test_go_durations() -> None:
    assert [go_duration(s) for s in (0, 15, 60, 300, 3600, 3723)] == [
        "0s",
        "15s",
        "1m0s",
        "5m0s",
        "1h0m0s",
        "1h2m3s",
    ]
    assert [parse_go_duration(t) for t in ("1h0m0s", "30m", "0", "1.5h", "300ms", "2h45m")] == [
        3600, 1800, 0, 5400, 0.3, 9900,
    ]  # fmt: skip
    for bad in ("", "1x", "h", "1h 2m", "10"):
        with pytest.raises(ValueError):
            parse_go_duration(bad)


def test_dashboard_urls() -> None:
    assert pipelineruns_url(DASH, "ci") == "https://tekton.example.com/#/namespaces/ci/pipelineruns"
    assert (
        pipelinerun_url(DASH, "ci", "r-1", pipeline_task="test", step="step-unit", retry=1)
        == "https://tekton.example.com/#/namespaces/ci/pipelineruns/r-1?pipelineTask=test&step=unit&retry=1"
    )
    assert (
        pipelinerun_url(DASH, "ci", "r-1", step="unit")
        == "https://tekton.example.com/#/namespaces/ci/pipelineruns/r-1"
    )
    assert taskrun_url("https://d/", "ci", "t") == "https://d/#/namespaces/ci/taskruns/t"
