"""What the bot sends to Tekton: a PipelineRun as `tkn pipeline start` builds it, and the cancel patch.

The create body follows docs/tekton-api.md §2.2: `metadata.generateName` `<pipeline>-run-`,
`spec.pipelineRef.name`, params typed by the Pipeline's declared param types (tkn's
`MergeParam`: a string as given, an array split on `,`, an object from `k:v, k:v`) and sorted by
name, workspaces from config, the service account as `taskRunTemplate.serviceAccountName` (v1) or
`serviceAccountName` (v1beta1), and `timeouts`. Always read the real name from the create response.

Labels and annotations the bot adds (Tekton reserves `*.tekton.dev`, §8.13):
- label `gitops-bot.io/started-by`: the Slack user id (`U123ABC`) of whoever started the run. Its
  presence also marks "runs the bot started" (select with `gitops-bot.io/started-by`).
- label `gitops-bot.io/app`, `gitops-bot.io/env`: the app / environment the run was started for,
  when it was started for one (the gate and the monitor select on them).
- annotation `gitops-bot.io/started-by-name`: the user's handle at start time, for display only.
- annotation `gitops-bot.io/request-id`: the correlation id of the Slack request, for the audit trail.

User-typed `--param k=v` values go through `resolve_params`: the key must be a valid Tekton param
name and, when the Pipeline's spec is known, one it declares; values are one line of printable
text with a bounded length, so nothing beyond the value itself reaches the cluster.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from services.errors import UserError
from services.tekton.timefmt import parse_go_duration
from services.validation import display_value

GROUP = "tekton.dev"
LABEL_STARTED_BY = "gitops-bot.io/started-by"
LABEL_APP = "gitops-bot.io/app"
LABEL_ENV = "gitops-bot.io/env"
ANNOTATION_STARTED_BY_NAME = "gitops-bot.io/started-by-name"
ANNOTATION_REQUEST_ID = "gitops-bot.io/request-id"

CancelMode = Literal["CancelledRunFinally", "Cancelled", "StoppedRunFinally"]
CANCEL_PATCH: dict[str, Any] = {"spec": {"status": "CancelledRunFinally"}}
ParamValue = str | list[str] | dict[str, str]

MAX_PARAM_VALUE = 1000
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}")  # Tekton's validateParameterName
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
_SLACK_ID = re.compile(r"[UWB][A-Z0-9]{2,20}")
_VOLUME_SOURCES = (
    "persistentVolumeClaim",
    "volumeClaimTemplate",
    "emptyDir",
    "configMap",
    "secret",
    "projected",
    "csi",
)
_PARAM_FORM = "`--param name=value` (name: letters, digits, `_`, `-`, `.`; starting with a letter or `_`)"


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """A param the Pipeline declares: its type (string / array / object) and whether it has a default."""

    name: str
    type: str = "string"
    has_default: bool = False


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Go duration strings (`1h0m0s`, `30m`, `0` = none); None leaves the field to the webhook default."""

    pipeline: str | None = None
    tasks: str | None = None
    finally_: str | None = None

    def as_spec(self) -> dict[str, str]:
        out = {"pipeline": self.pipeline, "tasks": self.tasks, "finally": self.finally_}
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True, slots=True)
class StartedBy:
    user_id: str
    handle: str | None = None
    request_id: str | None = None


def declared_params(pipeline: Mapping[str, Any]) -> dict[str, ParamSpec]:
    """The params of a Pipeline object (or of a bare pipeline spec). A missing type is inferred
    the way the Tekton webhook defaults it: from the default's shape, else string."""
    spec = pipeline.get("spec") if isinstance(pipeline.get("spec"), Mapping) else pipeline
    found: dict[str, ParamSpec] = {}
    for p in spec.get("params") or [] if isinstance(spec, Mapping) else []:
        if not isinstance(p, Mapping) or not isinstance(p.get("name"), str):
            continue
        default = p.get("default")
        ptype = p.get("type") if p.get("type") in ("string", "array", "object") else None
        if ptype is None:
            ptype = (
                "array"
                if isinstance(default, list)
                else "object"
                if isinstance(default, Mapping)
                else "string"
            )
        found[p["name"]] = ParamSpec(p["name"], ptype, "default" in p)
    return found


def _check_text(what: str, value: str, *, limit: int = MAX_PARAM_VALUE) -> str:
    if len(value) > limit:
        raise UserError(f"Invalid {what}: it is {len(value)} characters long (at most {limit}).")
    for ch in value:
        if ch in "\n\r\u2028\u2029" or unicodedata.category(ch) in ("Cc", "Cf", "Cs"):
            raise UserError(f"Invalid {what}: it contains a line break or control character.")
    return value


def param_name(name: str) -> str:
    if not _PARAM_NAME.fullmatch(name):
        raise UserError(f"Invalid param name {display_value(name)}.", hint=f"Expected {_PARAM_FORM}.")
    return name


def typed_value(name: str, raw: str, ptype: str) -> ParamValue:
    """tkn's `parseParam`: the declared type decides how the text is read."""
    what = f"value of param `{name}`"
    _check_text(what, raw)
    if ptype == "array":
        return [] if raw == "" else raw.split(",")
    if ptype == "object":
        obj: dict[str, str] = {}
        for field in raw.split(","):
            key, sep, val = field.partition(":")
            if not sep or not key.strip():
                raise UserError(
                    f"Invalid {what}: object params are written `key:value, key:value`.",
                    hint=f"Got {display_value(raw)}.",
                )
            obj[key.strip()] = val.strip()
        return obj
    return raw


def _config_value(name: str, value: object, ptype: str) -> ParamValue:
    """A param value from config (already typed YAML, or text to read like a user's)."""
    if isinstance(value, str):
        return typed_value(name, value, ptype)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [_check_text(f"param `{name}`", v) for v in value]
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return {k: _check_text(f"param `{name}`", v) for k, v in value.items()}
    raise UserError(f"Configured param `{name}` must be a string, a list of strings or a string map.")


def resolve_params(
    args: Sequence[str],
    *,
    configured: Mapping[str, object] | None = None,
    declared: Mapping[str, ParamSpec] | None = None,
    protected: Collection[str] = (),
) -> dict[str, ParamValue]:
    """Configured params overlaid with the user's `k=v` arguments, typed and checked.

    `declared` (from `declared_params`) is None when the Pipeline's spec is unknown (a resolver
    ref the bot cannot read); then every value is a string. `protected` names params the config
    pins (e.g. the revision the gate matches on) that a user may not override.
    """
    types = {n: p.type for n, p in (declared or {}).items()}
    out: dict[str, ParamValue] = {}
    for name, value in (configured or {}).items():
        out[param_name(name)] = _config_value(name, value, types.get(name, "string"))
    seen: set[str] = set()
    for arg in args:
        name, sep, raw = arg.partition("=")
        if not sep:
            raise UserError(
                f"Invalid param {display_value(arg)}: it has no `=`.", hint=f"Expected {_PARAM_FORM}."
            )
        param_name(name)
        if declared is not None and name not in declared:
            names = ", ".join(f"`{n}`" for n in sorted(declared)) or "none"
            raise UserError(f"Param `{name}` is not declared by the pipeline.", hint=f"Its params: {names}.")
        if name in protected:
            raise UserError(f"Param `{name}` is set by the bot's configuration and cannot be overridden.")
        if name in seen:
            raise UserError(f"Param `{name}` is given twice.")
        seen.add(name)
        out[name] = typed_value(name, raw, types.get(name, "string"))
    if declared is not None:
        missing = sorted(n for n, p in declared.items() if not p.has_default and n not in out)
        if missing:
            needed = ", ".join(f"`{n}`" for n in missing)
            raise UserError(
                f"The pipeline needs a value for {needed}.", hint=f"Pass it with `--param {missing[0]}=…`."
            )
    return out


def _workspace(ws: Mapping[str, Any]) -> dict[str, Any]:
    name = ws.get("name")
    sources = [k for k in _VOLUME_SOURCES if k in ws]
    if not isinstance(name, str) or len(sources) != 1:
        raise UserError(
            f"Configured workspace {name!r} needs a name and exactly one of {', '.join(_VOLUME_SOURCES)}."
        )
    unknown = set(ws) - {"name", "subPath", *_VOLUME_SOURCES}
    if unknown:
        raise UserError(f"Configured workspace `{name}` has unknown keys: {', '.join(sorted(unknown))}.")
    return dict(ws)


def _timeouts(timeouts: Timeouts) -> dict[str, str]:
    spec = timeouts.as_spec()
    seconds: dict[str, float] = {}
    for key, value in spec.items():
        try:
            seconds[key] = parse_go_duration(value)
        except ValueError:
            raise UserError(
                f"Invalid {key} timeout {display_value(value)}: expected a Go duration like `1h0m0s`, `30m`."
            ) from None
        if seconds[key] < 0:
            raise UserError(f"Invalid {key} timeout {display_value(value)}: it is negative.")
    whole = seconds.get("pipeline")
    parts = seconds.get("tasks", 0.0) + seconds.get("finally", 0.0)
    if whole and parts and whole < parts:  # "0" disables a timeout, so only compare set ones
        raise UserError("The pipeline timeout must be at least the tasks timeout plus the finally timeout.")
    return spec


def pipelinerun_body(
    pipeline: str,
    namespace: str,
    *,
    params: Mapping[str, ParamValue] | None = None,
    api_version: str = "v1",
    workspaces: Sequence[Mapping[str, Any]] = (),
    service_account: str | None = None,
    timeouts: Timeouts | None = None,
    started_by: StartedBy | None = None,
    labels: Mapping[str, str] | None = None,
    prefix_name: str | None = None,
) -> dict[str, Any]:
    """The create body (POST …/pipelineruns). `api_version` is the served version: v1 or v1beta1."""
    for what, value in (("pipeline", pipeline), ("namespace", namespace)):
        if not _K8S_NAME.fullmatch(value):
            raise UserError(f"Invalid {what} name {display_value(value)}.")
    if api_version not in ("v1", "v1beta1"):
        raise ValueError(f"unsupported Tekton API version {api_version!r}")
    all_labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    for key, value in (labels or {}).items():
        if not _LABEL_VALUE.fullmatch(value):
            raise UserError(f"Invalid label value {display_value(value)} for `{key}`.")
        all_labels[key] = value
    if started_by is not None:
        if not _SLACK_ID.fullmatch(started_by.user_id):
            raise ValueError("started_by.user_id must be a Slack user id")
        all_labels[LABEL_STARTED_BY] = started_by.user_id
        if started_by.handle:
            annotations[ANNOTATION_STARTED_BY_NAME] = _check_text("user name", started_by.handle, limit=80)
        if started_by.request_id:
            annotations[ANNOTATION_REQUEST_ID] = _check_text("request id", started_by.request_id, limit=80)
    prefix = f"{prefix_name}-" if prefix_name else f"{pipeline}-run-"
    metadata: dict[str, Any] = {"generateName": prefix, "namespace": namespace}
    if all_labels:
        metadata["labels"] = all_labels
    if annotations:
        metadata["annotations"] = annotations
    spec: dict[str, Any] = {"pipelineRef": {"name": pipeline}}
    if params:
        spec["params"] = [{"name": param_name(k), "value": params[k]} for k in sorted(params)]
    if workspaces:
        spec["workspaces"] = [_workspace(ws) for ws in workspaces]
    if service_account:
        if not _K8S_NAME.fullmatch(service_account) and "." not in service_account:
            raise UserError(f"Invalid service account {display_value(service_account)}.")
        if api_version == "v1":
            spec["taskRunTemplate"] = {"serviceAccountName": service_account}
        else:
            spec["serviceAccountName"] = service_account
    if timeouts is not None and timeouts.as_spec():
        spec["timeouts"] = _timeouts(timeouts)
    return {"apiVersion": f"{GROUP}/{api_version}", "kind": "PipelineRun", "metadata": metadata, "spec": spec}


def cancel_patch(mode: CancelMode = "CancelledRunFinally") -> dict[str, Any]:
    """The merge patch for `spec.status` (§4). CancelledRunFinally: running tasks are cancelled,
    then `finally` runs; valid whether or not `spec.status` exists yet."""
    return {"spec": {"status": mode}}


def ensure_cancellable(obj: Mapping[str, Any]) -> None:
    """tkn refuses to cancel a run whose condition is no longer Unknown (§4, §8.6)."""
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    first = conditions[0] if isinstance(conditions, list) and conditions else None
    if isinstance(first, Mapping) and first.get("status") in ("True", "False"):
        name = obj.get("metadata", {}).get("name", "?") if isinstance(obj.get("metadata"), Mapping) else "?"
        raise UserError(f"PipelineRun `{name}` has already finished execution.")


__all__ = [
    "ANNOTATION_REQUEST_ID",
    "ANNOTATION_STARTED_BY_NAME",
    "CANCEL_PATCH",
    "GROUP",
    "LABEL_APP",
    "LABEL_ENV",
    "LABEL_STARTED_BY",
    "MAX_PARAM_VALUE",
    "CancelMode",
    "ParamSpec",
    "ParamValue",
    "StartedBy",
    "Timeouts",
    "cancel_patch",
    "declared_params",
    "ensure_cancellable",
    "param_name",
    "pipelinerun_body",
    "resolve_params",
    "typed_value",
]
