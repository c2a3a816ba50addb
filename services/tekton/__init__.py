"""Tekton Pipelines: the client over the Kubernetes API, request bodies, and the records handlers render.

Raw objects stop in `convert`; handlers, the monitor and the promotion gate see the frozen records
of `model`. Nothing here imports another feature package (only the kernel).
"""

from __future__ import annotations

from services.tekton.client import TektonClient, TektonCluster
from services.tekton.convert import detail, pipelinerun_status, sort_like_tkn, summary, taskrun_status
from services.tekton.model import (
    Failure,
    PipelineRunDetail,
    PipelineRunSummary,
    RunStatus,
    SkippedTask,
    StepState,
    TaskState,
)
from services.tekton.runs import StartedBy, Timeouts, cancel_patch, pipelinerun_body, resolve_params

__all__ = [
    "Failure",
    "PipelineRunDetail",
    "PipelineRunSummary",
    "RunStatus",
    "SkippedTask",
    "StartedBy",
    "StepState",
    "TaskState",
    "TektonClient",
    "TektonCluster",
    "Timeouts",
    "cancel_patch",
    "detail",
    "pipelinerun_body",
    "pipelinerun_status",
    "resolve_params",
    "sort_like_tkn",
    "summary",
    "taskrun_status",
]
