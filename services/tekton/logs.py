"""The log tail of a failed step, as chat may show it (docs/tekton-api.md §5).

`failing_container` picks where to read: the TaskRun's pod (`status.podName`) and the container
`step-<name>` of the first failed step. `tail` keeps the last N lines of what
`read_namespaced_pod_log(…, tail_lines=N)` returned and scrubs them: the process's own secrets
and credential shapes (`services.redaction.Redactor`), plus shapes common in CI output (key=value
secrets, private-key blocks, cloud access keys, basic-auth headers). Terminal colour codes and
control characters are dropped and long lines cut, so a log can neither break a Slack message
nor smuggle mentions or links through it (the renderer still escapes the text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.redaction import REDACTED, Redactor
from services.tekton.model import PipelineRunDetail, TaskState

DEFAULT_LINES = 20
MAX_LINE = 300

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_CI_SECRETS: tuple[re.Pattern[str], ...] = (
    # Header first: the key=value rule below would otherwise take "Basic" as the value.
    re.compile(r"(?i)(authorization:\s*(?:basic|bearer|token)\s+)\S+"),
    # password=…, api_key: …, "token": "…", SECRET_KEY=… (keeps the key, drops the value)
    re.compile(
        r"(?i)((?:[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|"
        r"private[_-]?key|credentials?|auth)[A-Za-z0-9_.-]*)\"?\s*[:=]\s*\"?)"
        r"(?!\[REDACTED\]|(?:basic|bearer|token)\s)([^\s\"',;]{4,})"
    ),
    re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"),  # AWS access key ids
    re.compile(r"AIza[0-9A-Za-z_-]{35}"),  # Google API keys
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
)


@dataclass(frozen=True, slots=True)
class LogTarget:
    """Where a step's log lives: a pod and one container of it."""

    namespace: str
    pod: str
    container: str
    pipeline_task: str
    step: str


@dataclass(frozen=True, slots=True)
class LogTail:
    target: LogTarget
    lines: tuple[str, ...]
    truncated: bool  # older lines were left out

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def failing_container(run: PipelineRunDetail) -> LogTarget | None:
    """The pod and `step-<name>` container of the run's failing step; None without one (a run
    that failed before any pod, a TaskRun that failed at pod creation, no pod name yet)."""
    failure = run.failure
    if failure is None or not failure.pod or not failure.container or not failure.pipeline_task:
        return None
    return LogTarget(run.namespace, failure.pod, failure.container, failure.pipeline_task, failure.step or "")


def step_container(task: TaskState, namespace: str, step: str | None = None) -> LogTarget | None:
    """A given step (default: the task's failed step) of one task, for a "show log" button."""
    chosen = next((s for s in task.steps if s.name == step), None) if step else task.failed_step
    if chosen is None or not task.pod_name:
        return None
    return LogTarget(namespace, task.pod_name, chosen.container, task.pipeline_task, chosen.name)


def _scrub_ci(line: str) -> str:
    for pattern in _CI_SECRETS:
        # Patterns with a group keep it (the key, the header name) so the line still reads.
        line = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + REDACTED, line)
    return line


def clean_line(line: str, redactor: Redactor) -> str:
    line = _CONTROL.sub("", _ANSI.sub("", line.rstrip("\r")))
    line = _scrub_ci(redactor(line))
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def tail(text: str, target: LogTarget, redactor: Redactor, *, lines: int = DEFAULT_LINES) -> LogTail:
    """The last `lines` lines of `text`, scrubbed. Private-key blocks are removed whole."""
    kept: list[str] = []
    in_key = False
    for raw in text.splitlines():
        if "PRIVATE KEY-----" in raw:
            in_key = "-----BEGIN" in raw and "-----END" not in raw
            kept.append(REDACTED)
            continue
        if in_key:
            continue
        kept.append(clean_line(raw, redactor))
    while kept and not kept[-1].strip():
        kept.pop()
    return LogTail(target, tuple(kept[-lines:]), truncated=len(kept) > lines)


__all__ = [
    "DEFAULT_LINES",
    "LogTail",
    "LogTarget",
    "clean_line",
    "failing_container",
    "step_container",
    "tail",
]
