"""Tekton's admission webhook for PipelineRuns: defaults on create, the spec rules, denials as 400.

Defaults (`pipelinerun_defaults.go`, `config-defaults.yaml`): `timeouts.pipeline: 1h0m0s`,
`taskRunTemplate.serviceAccountName: default`. Rules (`pipelinerun_validation.go`): exactly one of
`pipelineRef` / `pipelineSpec`; `spec.status` one of the four values; Pending only before the start;
`managedBy` immutable; once started only `spec.status` may change; once done nothing may. A denial is
`apierrors.NewBadRequest` with the API server's prefix, worded as knative's FieldError prints it.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.k8s_registry import ResourceType
from sandbox.k8s_status import ApiError

WEBHOOK = "validation.webhook.pipeline.tekton.dev"
SPEC_STATUSES = ("Cancelled", "CancelledRunFinally", "StoppedRunFinally", "PipelineRunPending")
DEFAULT_TIMEOUT = "1h0m0s"
DEFAULT_SERVICE_ACCOUNT = "default"
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float | None:
    """Go's time.ParseDuration in seconds; None when it is not one ("0" is 0)."""
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    if not body or _DURATION.sub("", body):
        return None
    seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(body))
    return -seconds if text.startswith("-") else seconds


def format_duration(seconds: float) -> str:
    """Go's Duration.String for whole seconds and more: `1h0m0s`, `10m0s`, `45s`; `0s` for zero."""
    if seconds < 1:
        return "0s" if seconds <= 0 else f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    frac = seconds - whole
    tail = f"{secs}" + (f"{frac:.9f}".rstrip("0")[1:] if frac else "") + "s"
    if hours:
        return f"{hours}h{minutes}m{tail}"
    return f"{minutes}m{tail}" if minutes else tail


def denied(message: str) -> ApiError:
    return ApiError(
        400, "BadRequest", f'admission webhook "{WEBHOOK}" denied the request: validation failed: {message}'
    )


def is_done(obj: dict[str, Any]) -> bool:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Succeeded":
            return bool(condition.get("status") in ("True", "False"))
    return False


def has_started(obj: dict[str, Any]) -> bool:
    return bool((obj.get("status") or {}).get("startTime"))


class PipelineRunWebhook:
    """`Cluster.admission` for pipelineruns; `defaults=False` models a cluster whose webhook skips them."""

    def __init__(self, *, defaults: bool = True) -> None:
        self.defaults = defaults

    def __call__(
        self, rtype: ResourceType, version: str, old: dict[str, Any] | None, new: dict[str, Any]
    ) -> dict[str, Any]:
        spec = dict(new.get("spec") or {})
        if old is None and self.defaults:
            timeouts = dict(spec.get("timeouts") or {})
            timeouts.setdefault("pipeline", DEFAULT_TIMEOUT)
            spec["timeouts"] = timeouts
            template = dict(spec.get("taskRunTemplate") or {})
            template.setdefault("serviceAccountName", DEFAULT_SERVICE_ACCOUNT)
            spec["taskRunTemplate"] = template
            new = {**new, "spec": spec}
        self._validate(spec, new)
        if old is not None:
            self._validate_update(old, spec)
        return new

    def _validate(self, spec: dict[str, Any], obj: dict[str, Any]) -> None:
        refs = [k for k in ("pipelineRef", "pipelineSpec") if spec.get(k)]
        if not refs:
            raise denied("expected exactly one, got neither: spec.pipelineRef, spec.pipelineSpec")
        if len(refs) == 2:
            raise denied("expected exactly one, got both: spec.pipelineRef, spec.pipelineSpec")
        value = spec.get("status", "")
        if value and value not in SPEC_STATUSES:
            allowed = ", ".join(SPEC_STATUSES[:3]) + f" or {SPEC_STATUSES[3]}"
            raise denied(f"invalid value: {value} should be {allowed}: spec.status")
        if value == "PipelineRunPending" and has_started(obj):
            raise denied("invalid value: PipelineRun cannot be Pending after it is started: spec.status")
        for key in ("pipeline", "tasks", "finally"):
            text = (spec.get("timeouts") or {}).get(key)
            if text is not None and parse_duration(str(text)) is None:
                raise denied(f'invalid value: {text}: spec.timeouts.{key}: time: invalid duration "{text}"')

    def _validate_update(self, old: dict[str, Any], spec: dict[str, Any]) -> None:
        before = dict(old.get("spec") or {})
        if before.get("managedBy") != spec.get("managedBy"):
            raise denied("invalid value: managedBy is immutable: spec.managedBy")
        if is_done(old):
            if before != spec:
                raise denied("invalid value: Once the PipelineRun is complete, no updates are allowed: spec")
            return
        if has_started(old):
            rest = {k: v for k, v in spec.items() if k != "status"}
            if {k: v for k, v in before.items() if k != "status"} != rest:
                raise denied(
                    "invalid value: Once the PipelineRun has started, only status updates are allowed: spec"
                )
