"""Tekton: the clusters whose PipelineRuns the bot reads, starts and cancels (`tekton:`), and the
pipelines that build or verify each app (`apps[].pipelines`).

The API contract is /work/shared/docs/tekton-api.md. Workspace bindings keep Tekton's own key
names (`persistentVolumeClaim.claimName`, `configMap.name`, `secret.secretName`), so an entry reads
like the PipelineRun it becomes and `WorkspaceBinding.binding()` is the JSON sent as it is.
Cross-references (unknown cluster, namespace outside the cluster's list, duplicates) are checked
on the raw file in services/settings/check.py, like every other reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, PlainSerializer, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from services.settings.base import Section
from services.settings.extensions import FrozenTree
from services.settings.routes import DriftRoute
from services.settings.types import ChannelId, Duration, ExistingFile, HttpUrl, K8sName, Slug, at_least, shown

# Tekton's rule for parameter names (ValidateParameterName): a letter or `_` first, then letters,
# digits, `_`, `-` and `.`.
PARAM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# Workspace names as Pipelines declare them; loose, the Pipeline itself is the judge.
WORKSPACE_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise PydanticCustomError("tekton_name", f"{shown(value)} is not {what}")
        return value

    return AfterValidator(check)


ParamName = Annotated[str, _matching(PARAM_NAME_RE, "a Tekton parameter name (like revision or image.tag)")]
WorkspaceName = Annotated[str, _matching(WORKSPACE_NAME_RE, "a workspace name (like source or shared-data)")]


def _namespaces(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise PydanticCustomError("no_namespaces", "list at least one namespace the bot may use")
    if len(set(value)) != len(value):
        twice = sorted({n for n in value if value.count(n) > 1})
        raise PydanticCustomError("duplicate", f"lists {', '.join(twice)} more than once")
    return value


class TektonCluster(Section):
    """A cluster running Tekton Pipelines, and the namespaces the bot may use there (Roles are
    namespaced: deploy/tekton/rbac.yaml is copied once per namespace)."""

    name: Slug
    kubeconfig: ExistingFile | None = None
    context: str | None = None
    in_cluster: bool = False
    namespaces: Annotated[tuple[Slug, ...], AfterValidator(_namespaces)]
    dashboard_url: HttpUrl | None = None  # the Tekton Dashboard, for links to runs

    @model_validator(mode="after")
    def _one_source(self) -> TektonCluster:
        if (self.kubeconfig is None) == (not self.in_cluster):
            raise PydanticCustomError(
                "tekton_source", "set exactly one of kubeconfig or in_cluster: true (they are alternatives)"
            )
        if self.in_cluster and self.context is not None:
            raise PydanticCustomError("tekton_context", "context applies only with kubeconfig")
        return self


# -- workspaces: Tekton's WorkspaceBinding shapes (300-pipelinerun.yaml, spec.workspaces[]) ----------


class PersistentVolumeClaimSource(Section):
    claimName: K8sName  # noqa: N815 - Tekton's key, written as in a PipelineRun
    readOnly: bool = False  # noqa: N815


class EmptyDirSource(Section):
    medium: Literal["", "Memory"] = ""


class ConfigMapSource(Section):
    name: K8sName


class SecretSource(Section):
    secretName: K8sName  # noqa: N815


_SOURCES = ("persistentVolumeClaim", "emptyDir", "configMap", "secret")


class WorkspaceBinding(Section):
    """One workspace of the Pipeline and the volume behind it: exactly one source."""

    name: WorkspaceName
    subPath: str | None = None  # noqa: N815
    persistentVolumeClaim: PersistentVolumeClaimSource | None = None  # noqa: N815
    emptyDir: EmptyDirSource | None = None  # noqa: N815
    configMap: ConfigMapSource | None = None  # noqa: N815
    secret: SecretSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> WorkspaceBinding:
        given = [key for key in _SOURCES if getattr(self, key) is not None]
        if len(given) != 1:
            choices = ", ".join(_SOURCES)
            what = f"{len(given)} are given ({', '.join(given)})" if given else "none is given"
            raise PydanticCustomError("workspace_source", f"set exactly one of {choices}; {what}")
        if self.subPath is not None and (self.subPath.startswith("/") or ".." in self.subPath.split("/")):
            raise PydanticCustomError("sub_path", "subPath must be relative, without '..'")
        return self

    def binding(self) -> dict[str, Any]:
        """The `spec.workspaces[]` entry of a PipelineRun (an emptyDir stays `{}` when unset)."""
        out: dict[str, Any] = {"name": self.name}
        if self.subPath is not None:
            out["subPath"] = self.subPath
        for key in _SOURCES:
            source = getattr(self, key)
            if source is not None:
                out[key] = source.model_dump(exclude_defaults=True)
        return out


# -- params: Tekton's ParamValue is a string, a list of strings or a string→string object -------------

ParamValue = str | tuple[str, ...] | FrozenTree


def _param_value(key: str, value: Any) -> ParamValue:
    def text(item: Any) -> bool:
        return isinstance(item, str)

    if text(value):
        return str(value)
    if isinstance(value, list | tuple) and all(text(v) for v in value):
        return tuple(value)
    if isinstance(value, Mapping) and all(text(k) and text(v) for k, v in value.items()):
        return FrozenTree(value)
    # YAML reads 1.10 as a number (1.1) and yes as true: a param is text, so it must be quoted.
    raise PydanticCustomError(
        "param_value",
        f"'{key}': expected text (quote numbers and booleans, like '3'), a list of text "
        f"or a mapping of text to text; got {shown(value)}",
    )


def _params(value: Any) -> FrozenTree:
    if isinstance(value, FrozenTree):
        return value
    if value is None:
        return FrozenTree({})
    if not isinstance(value, Mapping):
        raise PydanticCustomError("params", "expected a mapping of parameter name to value")
    checked: dict[str, ParamValue] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not PARAM_NAME_RE.fullmatch(key):
            what = "a Tekton parameter name (a letter or _ first, then letters, digits, _ - .)"
            raise PydanticCustomError("param_name", f"{shown(key)} is not {what}")
        checked[key] = _param_value(key, item)
    return FrozenTree(checked)


def _dump_params(tree: Mapping[str, Any]) -> dict[str, str | list[str] | dict[str, str]]:
    return {
        k: dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v
        for k, v in tree.items()
    }


Params = Annotated[
    FrozenTree,
    PlainValidator(_params),
    PlainSerializer(_dump_params),
    WithJsonSchema({"type": "object"}),
]


class AppPipeline(Section):
    """A Pipeline that builds or verifies an app: what `/gitops pipeline APP` starts, what the
    monitor watches, and what the `pipeline_succeeded` validator asks about."""

    name: K8sName  # the Pipeline object (pipelineRef.name)
    namespace: Slug
    cluster: str  # a tekton[].name; filled with the only one when omitted (fill_default_clusters)
    params: Params = FrozenTree({})
    workspaces: tuple[WorkspaceBinding, ...] = ()
    service_account: K8sName | None = None  # taskRunTemplate.serviceAccountName; else Tekton's default
    timeout: Duration | None = None  # timeouts.pipeline; 0s: no timeout; else Tekton's default (1h)
    revision_param: ParamName | None = None  # the param carrying the Git revision being built
    environments: tuple[Slug, ...] = ()  # the app's environments it builds or verifies; empty: all

    @model_validator(mode="after")
    def _unique_workspaces(self) -> AppPipeline:
        names = [w.name for w in self.workspaces]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise PydanticCustomError("duplicate", f"workspace {', '.join(twice)} is bound more than once")
        return self

    def param_values(self) -> dict[str, str | list[str] | dict[str, str]]:
        """`params` as plain JSON values (lists and dicts), as a PipelineRun body carries them."""
        return _dump_params(self.params)

    def applies_to(self, env: str | None) -> bool:
        """Whether this pipeline builds or verifies `env` (None: any environment)."""
        return env is None or not self.environments or env in self.environments


class PipelineMonitorSettings(Section):
    """The scheduled scan that posts failed runs of configured pipelines (leader only, once per
    run). Unset keys follow drift: `Settings.pipeline_monitor_enabled` / `_channel` / `_routes`
    say what is in force."""

    enabled: bool | None = None  # None: on when any app has pipelines
    interval: Annotated[Duration, at_least(timedelta(seconds=10))] = timedelta(minutes=2)
    jitter: Duration = timedelta(seconds=20)
    channel: ChannelId | None = None  # None: drift.channel, else slack.alerts_channel
    routes: tuple[DriftRoute, ...] | None = None  # None: drift.routes (unless `channel` is set)


def pipelines_for(pipelines: Iterable[AppPipeline], env: str | None) -> tuple[AppPipeline, ...]:
    """The pipelines of an app that apply to `env`, in file order."""
    return tuple(p for p in pipelines if p.applies_to(env))


def fill_default_clusters(data: Any) -> Any:
    """Give each `apps[].pipelines[]` entry without `cluster` the only configured Tekton cluster.

    Works on the raw mapping and leaves anything malformed alone for validation to report.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("apps"), list):
        return data
    clusters = data.get("tekton")
    clusters = clusters if isinstance(clusters, list) else []
    # Names deduplicated: two entries named alike are one duplicate problem, not also "required".
    names = list(dict.fromkeys(c.get("name") for c in clusters if isinstance(c, Mapping)))
    if len(names) != 1:
        return data
    apps: list[Any] = []
    for app in data["apps"]:
        pipelines = app.get("pipelines") if isinstance(app, Mapping) else None
        if isinstance(pipelines, list):
            filled = [
                {**p, "cluster": names[0]} if isinstance(p, Mapping) and p.get("cluster") is None else p
                for p in pipelines
            ]
            app = {**app, "pipelines": filled}
        apps.append(app)
    return {**data, "apps": apps}
