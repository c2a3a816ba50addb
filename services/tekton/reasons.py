"""Every `Succeeded` condition reason of docs/tekton-api.md §3.2 / §3.3, mapped to a kind and a chat word.

`kind` is what code branches on (pending / running / succeeded / failed / cancelled / timed out);
the word is what the chat shows next to the mark. Decisions:
- Unknown reasons that say the run is winding down (`PipelineRunStopping`, `CancelledRunningFinally`,
  `StoppedRunningFinally`, `PipelineRunTimeoutRunningFinally`, the `Couldnt*` retries) stay
  *running*: the run is not done and its final reason is still to come.
- `PipelineRunPending`, `TaskRunPending` and a TaskRun whose pod is `Pending` or stuck on node
  resources / quota / an image pull are *pending*: nothing is executing yet.
- `FailureIgnored` is *failed* (the task failed) even though its PipelineRun may succeed.
- `TaskRunCancelled` is *cancelled*; `convert` turns it into *timed out* when the TaskRun was
  cancelled because its PipelineRun timed out (§8.3).
- A reason this table does not know falls back on the condition status (True → succeeded,
  False → failed, Unknown → running), so a newer Tekton never breaks the bot.

`tkn_word` reproduces tkn's `formatted.Condition` (§6) for the STATUS column.
"""

from __future__ import annotations

from typing import Final

from services.tekton.model import RunKind

Reason = tuple[RunKind, str]

PIPELINERUN_REASONS: Final[dict[str, Reason]] = {
    # Unknown
    "Started": ("running", "starting"),
    "Running": ("running", "running"),
    "PipelineRunPending": ("pending", "pending"),
    "ResolvingPipelineRef": ("running", "resolving the pipeline"),
    "ResolvingTaskRef": ("running", "resolving tasks"),
    "PipelineRunStopping": ("running", "stopping after a failure"),
    "CancelledRunningFinally": ("running", "cancelling (finally tasks running)"),
    "StoppedRunningFinally": ("running", "stopping (finally tasks running)"),
    "PipelineRunTimeoutRunningFinally": ("running", "timing out (finally tasks running)"),
    "PipelineRunCouldntCancel": ("running", "cancelling (retrying)"),
    "PipelineRunCouldntTimeOut": ("running", "timing out (retrying)"),
    # True
    "Succeeded": ("succeeded", "succeeded"),
    "Completed": ("succeeded", "succeeded (some tasks skipped)"),
    # False
    "Failed": ("failed", "failed"),
    "Cancelled": ("cancelled", "cancelled"),
    "PipelineRunTimeout": ("timed out", "timed out"),
    "CouldntGetPipeline": ("failed", "failed: pipeline not found"),
    "CouldntGetTask": ("failed", "failed: task not found"),
    "ParameterMissing": ("failed", "failed: parameter missing"),
    "ParameterTypeMismatch": ("failed", "failed: parameter type mismatch"),
    "ObjectParameterMissKeys": ("failed", "failed: object parameter missing keys"),
    "ParamArrayIndexingInvalid": ("failed", "failed: invalid array parameter index"),
    "InvalidParamValue": ("failed", "failed: invalid parameter value"),
    "InvalidWorkspaceBindings": ("failed", "failed: invalid workspace bindings"),
    "RequiredWorkspaceMarkedOptional": ("failed", "failed: required workspace marked optional"),
    "InvalidTaskRunSpecs": ("failed", "failed: invalid taskRunSpecs"),
    "PipelineInvalidGraph": ("failed", "failed: invalid task graph"),
    "PipelineValidationFailed": ("failed", "failed: pipeline validation"),
    "InvalidMatrixParameterTypes": ("failed", "failed: invalid matrix parameter types"),
    "InvalidTaskResultReference": ("failed", "failed: invalid task result reference"),
    "InvalidPipelineResultReference": ("failed", "failed: invalid pipeline result reference"),
    "CouldntGetPipelineResult": ("failed", "failed: pipeline result unavailable"),
    "CELEvaluationFailed": ("failed", "failed: CEL evaluation"),
    "ResourceVerificationFailed": ("failed", "failed: resource verification"),
    "CreateRunFailed": ("failed", "failed: could not create a run"),
    "CouldntCreateWorkspacePVC": ("failed", "failed: could not create the workspace PVC"),
    "ReasonCouldntCreateOrUpdateAffinityAssistantStatefulSet": ("failed", "failed: affinity assistant"),
    "InvalidPipelineResourceBindings": ("failed", "failed: invalid resource bindings"),
}

TASKRUN_REASONS: Final[dict[str, Reason]] = {
    # Unknown
    "Started": ("running", "starting"),
    "Pending": ("pending", "pod pending"),
    "Running": ("running", "running"),
    "TaskRunPending": ("pending", "pending"),
    "ToBeRetried": ("running", "retrying"),
    "ResolvingTaskRef": ("running", "resolving the task"),
    "ResolvingStepActionRef": ("running", "resolving step actions"),
    "ExceededNodeResources": ("pending", "waiting for node resources"),
    "ExceededResourceQuota": ("pending", "waiting for resource quota"),
    "PullImageFailed": ("pending", "image pull failing"),
    # True
    "Succeeded": ("succeeded", "succeeded"),
    # False
    "StepFailed": ("failed", "failed"),
    "StepOOM": ("failed", "failed: step out of memory"),
    "SidecarFailed": ("failed", "failed: sidecar"),
    "SidecarOOM": ("failed", "failed: sidecar out of memory"),
    "InitContainerFailed": ("failed", "failed: init container"),
    "InitContainerOOM": ("failed", "failed: init container out of memory"),
    "PodEvicted": ("failed", "failed: pod evicted"),
    "Failed": ("failed", "failed"),
    "FailureIgnored": ("failed", "failed (ignored)"),
    "TaskRunCancelled": ("cancelled", "cancelled"),
    "TaskRunTimeout": ("timed out", "timed out"),
    "TaskRunImagePullFailed": ("failed", "failed: image pull"),
    "CreateContainerConfigError": ("failed", "failed: container config error"),
    "PodCreationFailed": ("failed", "failed: pod creation"),
    "PodAdmissionFailed": ("failed", "failed: pod admission"),
    "TaskRunResultLargerThanAllowedLimit": ("failed", "failed: results too large"),
    "TaskRunStopSidecarFailed": ("failed", "failed: could not stop sidecars"),
    "InvalidParamValue": ("failed", "failed: invalid parameter value"),
    "TaskRunResolutionFailed": ("failed", "failed: task resolution"),
    "TaskRunValidationFailed": ("failed", "failed: invalid TaskRun"),
    "TaskValidationFailed": ("failed", "failed: invalid Task"),
    "ResourceVerificationFailed": ("failed", "failed: resource verification"),
    "CouldntCreateWorkspacePVC": ("failed", "failed: could not create the workspace PVC"),
}

_BY_STATUS: Final[dict[str, Reason]] = {
    "True": ("succeeded", "succeeded"),
    "False": ("failed", "failed"),
    "Unknown": ("running", "running"),
}
_TKN_WORD: Final[dict[str, str]] = {"False": "Failed", "True": "Succeeded", "Unknown": "Running"}


def classify(table: dict[str, Reason], status: str, reason: str) -> Reason:
    """(kind, word) for a condition; the table decides unless it contradicts the status."""
    fallback = _BY_STATUS.get(status, ("running", "running"))
    known = table.get(reason)
    if known is None:
        return fallback
    kind = known[0]
    final = kind in ("succeeded", "failed", "cancelled", "timed out")
    if status == "Unknown" and final:
        # docs/pipelineruns.md's "cancellation requested" row: Unknown/Cancelled.
        return ("running", {"cancelled": "cancelling", "timed out": "timing out"}.get(kind, "running"))
    if status == "True" and kind != "succeeded":
        return fallback
    if status == "False" and not final:
        return fallback
    return known


def tkn_word(status: str, reason: str) -> str:
    """tkn's STATUS column (`formatted.Condition`, docs/tekton-api.md §6)."""
    if not status:
        return "---"
    word = _TKN_WORD.get(status, "")
    if not reason or reason == word or (reason == "Completed" and status == "True"):
        return word
    if reason == "Cancelled":
        return "Cancelled"
    if reason in ("PipelineRunCancelled", "TaskRunCancelled"):
        return f"Cancelled({reason})"
    if reason in ("PipelineRunStopping", "TaskRunStopping"):
        return f"Failed({reason})"
    if reason in ("CreateContainerConfigError", "ExceededNodeResources", "ExceededResourceQuota"):
        return f"Pending({reason})"
    if reason == "PipelineRunPending":
        return "Pending"
    return f"{word}({reason})"


__all__ = ["PIPELINERUN_REASONS", "TASKRUN_REASONS", "Reason", "classify", "tkn_word"]
