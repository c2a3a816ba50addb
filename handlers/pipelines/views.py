"""Block Kit for Tekton runs: the list (`/gitops pipelines`), the start confirmation, and the run
card a started run, a monitor alert and a gate finding all share.

Words follow `tkn`: the STATUS word (`Failed`, `Cancelled(CancelledRunFinally)`), STARTED as an
age, DURATION as a Go duration. The task tree marks each pipeline task ✓ ✗ ⏳ ⏭ (services/tekton
model) with its word; a failed run names the failing task, step and exit code and shows the last
lines of that step's log, already scrubbed by services/tekton/logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from handlers.blocks import (
    Block,
    Reply,
    actions,
    button,
    code,
    context,
    escape,
    escape_except_mentions,
    fields_section,
    header,
    link_button,
    message,
    section,
    truncate,
)
from services.pipelines import LatestRuns, PipelineTarget
from services.tekton.logs import LogTail
from services.tekton.model import PipelineRunDetail, PipelineRunSummary, RunStatus, TaskState

ACTION_START = "pipeline_start"  # the confirm card's Start button (value: a pending action id)
ACTION_DISMISS = "pipeline_dismiss"  # the confirm card's Cancel (nothing started)
ACTION_CANCEL = "pipeline_cancel"  # a running run's Cancel (value: a pending action id)
ACTION_DASHBOARD = "pipeline_dashboard"  # the link button (Slack still sends a block_action)

KIND_ICON: dict[str, str] = {
    "pending": ":hourglass_flowing_sand:",
    "running": ":arrows_counterclockwise:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "cancelled": ":no_entry_sign:",
    "timed out": ":alarm_clock:",
}
KIND_TITLE: dict[str, str] = {
    "pending": "Queued",
    "running": "Running",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "timed out": "Timed out",
}
LIST_LIMIT = 25


def status_text(status: RunStatus) -> str:
    """`:x: Failed` with Tekton's reason when it says more than the word (`PipelineRunTimeout`)."""
    shown = KIND_TITLE.get(status.kind, status.label.capitalize())
    if status.label and status.label.lower() not in (shown.lower(), status.kind):
        shown += f" ({status.label})"  # "cancelling", "queued (pending)"
    reason = status.reason
    if reason and reason.lower() not in (status.kind, status.label.lower(), shown.lower()):
        shown += f" · `{escape(truncate(reason, 60))}`"
    return f"{KIND_ICON.get(status.kind, ':grey_question:')} {escape(shown) if '`' not in shown else shown}"


def task_line(task: TaskState) -> str:
    word = task.word
    extra = ""
    if task.status is not None and task.status.done:
        extra = f" · {escape(task.duration)}"
    if task.skipped_reason:
        extra = f" ({escape(truncate(task.skipped_reason, 120))})"
    step = task.failed_step
    if step is not None:
        extra += f" · step `{escape(step.name)}` exited {step.exit_code}"
    if task.retries:
        extra += f" · {task.retries} retr{'y' if task.retries == 1 else 'ies'}"
    return f"{task.mark} `{escape(task.pipeline_task)}` {escape(word)}{extra}"


def task_tree(detail: PipelineRunDetail) -> list[Block]:
    blocks: list[Block] = []
    if detail.tasks:
        blocks.append(section("*Tasks*\n" + "\n".join(task_line(t) for t in detail.tasks[:40])))
    if detail.finally_tasks:
        blocks.append(section("*Finally*\n" + "\n".join(task_line(t) for t in detail.finally_tasks[:20])))
    return blocks


def failure_blocks(detail: PipelineRunDetail, log: LogTail | None) -> list[Block]:
    failure = detail.failure
    if failure is None:
        return []
    where = []
    if failure.pipeline_task:
        where.append(f"task `{escape(failure.pipeline_task)}`")
    if failure.step:
        where.append(f"step `{escape(failure.step)}`")
    if failure.exit_code is not None:
        where.append(f"exit code {failure.exit_code}")
    head = ("Failed at " + ", ".join(where)) if where else "Failed"
    text = f"*{head}*"
    if failure.message:
        text += f"\n{escape(truncate(failure.message, 500))}"
    blocks: list[Block] = [section(text)]
    if log is not None and log.lines:
        older = " (older lines left out)" if log.truncated else ""
        label = f"Last {len(log.lines)} lines of `{escape(log.target.container)}`{older}"
        blocks.append(section(f"{label}\n{code(log.text, limit=2600)}"))
    elif failure.pod:
        blocks.append(context("Its log could not be read (the pod may be gone)."))
    return blocks


def run_card(
    detail: PipelineRunDetail,
    *,
    now: datetime,
    title: str | None = None,
    target: PipelineTarget | None = None,
    log: LogTail | None = None,
    started_by: str | None = None,
    cancel_value: str | None = None,
    note: str | None = None,
    mentions: Sequence[str] = (),
) -> Reply:
    """One run: state, who started it, elapsed or duration, the task tree, and at the end what
    failed (with its log tail). `cancel_value` adds the Cancel button while the run is not done;
    `mentions` are the user ids the bot itself put in `note` (they stay mentions)."""
    run = detail.summary
    status = run.status
    pipeline = run.pipeline or detail.pipeline_ref or "pipeline"
    title = title or f"Pipeline {pipeline}: {KIND_TITLE.get(status.kind, status.label)}"
    who = started_by or run.started_by
    by = f"<@{escape(who)}>" if who else escape(run.started_by_name or "someone outside Slack")
    took = ("Took", run.duration) if status.done else ("Elapsed", run.elapsed(now))
    fields = [
        f"*Status*\n{status_text(status)}",
        f"*Run*\n`{escape(run.name)}`",
        f"*Started by*\n{by}",
        f"*{took[0]}*\n{escape(took[1])}",
    ]
    if target is not None:
        env = f" · {escape(target.env)}" if target.env else ""
        fields.append(f"*App*\n`{escape(target.app)}`{env}")
    blocks: list[Block] = [header(title), fields_section(fields)]
    blocks += task_tree(detail)
    if status.kind == "timed out" and status.message:
        blocks.append(section(escape(truncate(status.message, 500))))
    blocks += failure_blocks(detail, log)
    if status.kind == "cancelled" and status.message:
        blocks.append(context(escape(truncate(status.message, 300))))
    if note:
        blocks.append(section(escape_except_mentions(note, mentions)))
    buttons: list[Block] = []
    if cancel_value and not status.done:
        buttons.append(
            button(
                "Cancel run",
                ACTION_CANCEL,
                cancel_value,
                style="danger",
                confirm=(
                    "Cancel this run?",
                    f"`{escape(run.name)}` stops its running tasks; its finally tasks still run.",
                    "Cancel run",
                ),
            )
        )
    if detail.dashboard_url:
        buttons.append(link_button("Open in Tekton Dashboard", detail.dashboard_url, ACTION_DASHBOARD))
    if buttons:
        blocks.append(actions(*buttons))
    params = ", ".join(f"{k}={v}" for k, v in run.params[:6])
    blocks.append(
        context(
            f"`{escape(run.namespace)}/{escape(run.name)}`"
            + (f" · {escape(truncate(params, 200))}" if params else "")
        )
    )
    failed = status.done and status.kind != "succeeded"
    detail_text = f"{run.namespace}/{run.name}: {status.word}"
    if detail.failure and detail.failure.pipeline_task:
        detail_text += f"; failed at {detail.failure.pipeline_task}/{detail.failure.step or '?'}"
    return message(f"{title}", blocks, in_channel=True, detail=detail_text, failed=failed)


def run_line(target: PipelineTarget, run: PipelineRunSummary, now: datetime, dashboard: str | None) -> str:
    """`tkn pipelinerun list`: NAME STARTED DURATION STATUS, one line, the name linked when a
    Dashboard is configured."""
    name = f"<{dashboard}|{escape(run.name)}>" if dashboard else f"`{escape(run.name)}`"
    who = f" · by <@{escape(run.started_by)}>" if run.started_by else ""
    return (
        f"{KIND_ICON.get(run.status.kind, ':grey_question:')} {name} · {escape(run.status_word)}"
        f" · started {escape(run.started(now))} · {escape(run.duration)}{who}"
    )


def runs_list(
    latest: LatestRuns,
    *,
    now: datetime,
    title: str,
    links: Mapping[tuple[str, str, str], str] | None = None,
) -> Reply:
    """The newest runs, failing ones first. `links` maps (cluster, namespace, run) to its
    Dashboard URL."""
    blocks: list[Block] = [header(title)]
    shown = latest.runs[:LIST_LIMIT]
    if not shown:
        blocks.append(section("No runs yet."))
    by_pipeline: dict[str, list[str]] = {}
    for target, run in shown:
        url = (links or {}).get((target.cluster, run.namespace, run.name))
        where = f"{escape(target.cluster)}/{escape(target.namespace)}"
        key = f"*{escape(target.pipeline)}* · `{escape(target.app)}` · {where}"
        by_pipeline.setdefault(key, []).append(run_line(target, run, now, url))
    for key, lines in by_pipeline.items():
        blocks.append(section(key + "\n" + "\n".join(lines)))
    if len(latest.runs) > LIST_LIMIT:
        blocks.append(context(f"… {len(latest.runs) - LIST_LIMIT} more runs not shown"))
    if latest.unreachable:
        blocks.append(context(":electric_plug: Not answering: " + escape("; ".join(latest.unreachable))))
    failing = sum(1 for _, r in latest.runs if r.status.kind in ("failed", "timed out"))
    return message(title, blocks, in_channel=False, detail=f"{len(latest.runs)} runs, {failing} failing")


def start_confirm(target: PipelineTarget, params: Sequence[tuple[str, str]], pending_id: str) -> Reply:
    """The ephemeral card before a run starts: what will run, with which params."""
    title = f"Start pipeline {target.pipeline}?"
    lines = "\n".join(f"• `{escape(k)}` = `{escape(truncate(v, 200))}`" for k, v in params[:20]) or "none"
    fields = [
        f"*Pipeline*\n`{escape(target.pipeline)}`",
        f"*Where*\n{escape(target.cluster)}/{escape(target.namespace)}",
        f"*App*\n`{escape(target.app)}`" + (f" · {escape(target.env)}" if target.env else ""),
    ]
    blocks: list[Block] = [
        header(title),
        fields_section(fields),
        section(f"*Params*\n{lines}"),
        actions(
            button("Start run", ACTION_START, pending_id, style="primary"),
            button("Cancel", ACTION_DISMISS, pending_id),
        ),
    ]
    return message(title, blocks, detail=f"confirm {target.pipeline}")
