"""Configuration of the extension points: validators, notifiers, batch sync strategies, plugins.

Built-in validators and notifiers are configured here (a list each, one entry per use, told apart by
`kind`). Third-party plugins are named in `plugins` and loaded from the `gitops_bot` entry-point
group only when named; their settings go under `plugin_settings.<name>` and are checked against the
model the plugin declares (services/extensions/manager.py), with key paths like every other key.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from services.settings.base import Section
from services.settings.errors import suggest
from services.settings.types import (
    EnvVarName,
    HttpUrl,
    K8sName,
    Slug,
    WholeNumber,
    shown,
)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Guarded = Literal["promote", "sync", "rollback"]


def _clock_time(value: str) -> str:
    hours, _, minutes = value.partition(":")
    if len(value) != 5 or not (hours.isdigit() and minutes.isdigit()) or int(minutes) > 59:
        raise PydanticCustomError("clock_time", "expected a time of day as HH:MM, like 08:00 or 24:00")
    if int(hours) > 24 or (hours == "24" and minutes != "00"):
        raise PydanticCustomError("clock_time", "expected a time of day from 00:00 to 24:00")
    return value


def _time_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        hint = suggest(value, zoneinfo.available_timezones())
        message = f"{value[:60]!r} is not an IANA time zone (like Europe/Berlin or UTC){hint}"
        raise PydanticCustomError("time_zone", message.replace("{", "(").replace("}", ")")) from None
    return value


ClockTime = Annotated[str, AfterValidator(_clock_time)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]


class Scope(Section):
    """Where a validator applies: environments (empty: all) and apps (empty: all) and actions."""

    environments: tuple[Slug, ...] = ()
    apps: tuple[Slug, ...] = ()
    actions: tuple[Guarded, ...] = ("promote", "sync", "rollback")


class Window(Section):
    """Days and hours in the validator's time zone; `from`/`to` default to the whole day."""

    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    start: ClockTime = Field(default="00:00", alias="from")
    end: ClockTime = Field(default="24:00", alias="to")

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        # from > to runs over midnight into the next day; equal ends would be an empty window.
        if self.start == "24:00":
            raise PydanticCustomError("window", "`from` 24:00 is the next day's 00:00: write 00:00")
        if self.start == self.end:
            message = "`from` and `to` are the same time: the window would be empty"
            raise PydanticCustomError("window", message + " (00:00 to 24:00 is a whole day)")
        return self


class ChangeWindow(Scope):
    """Like Argo CD sync windows: `deny` windows block; with `allow`, only inside them is open."""

    kind: Literal["change_window"]
    timezone: TimeZone = "UTC"
    deny: tuple[Window, ...] = ()
    allow: tuple[Window, ...] = ()


class Soak(Scope):
    """The source environment must have run the version, Synced and Healthy, this long."""

    kind: Literal["soak"]
    minutes: WholeNumber = Field(default=30, ge=1)


def _registry_host(value: str) -> str:
    host, _, port = value.partition(":")
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", host) or (port and not port.isdigit()):
        message = "expected a registry host like registry.example.com or localhost:5000 (no scheme, no path)"
        raise PydanticCustomError("registry_host", message)
    return value


class Registry(Section):
    host: Annotated[str, AfterValidator(_registry_host)]  # registry.example.com[:port]
    username_env: EnvVarName | None = None
    password_env: EnvVarName | None = None
    insecure: bool = False  # plain HTTP (a local registry)
    mirror: Annotated[str, AfterValidator(_registry_host)] | None = None  # host[:port] asked instead


class ImageExists(Scope):
    """Every image tag being promoted exists in its OCI registry (Distribution API, HEAD manifest)."""

    kind: Literal["image_exists"]
    registries: tuple[Registry, ...] = ()
    severity: Literal["block", "warn"] = "block"


class SemverGuard(Scope):
    """A major-version jump or a downgrade needs `--force`."""

    kind: Literal["semver_guard"]


class RequiredChecks(Scope):
    """The commit being promoted passed these CI checks (needs a Git host or Tekton integration)."""

    kind: Literal["required_checks"]
    checks: tuple[str, ...] = ()


# Tekton's parameter-name rule, as services/settings/tekton.PARAM_NAME_RE (that module imports this
# one, so the pattern is repeated rather than imported).
_PARAM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# A Kubernetes label key: an optional DNS-subdomain prefix and `/`, then a name of up to 63
# characters (alphanumerics, `-`, `_`, `.`, alphanumeric at both ends).
_LABEL_KEY_RE = re.compile(
    r"^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def _param_name(value: str) -> str:
    if not _PARAM_NAME_RE.fullmatch(value):
        what = "a Tekton parameter name (like revision or image.tag)"
        raise PydanticCustomError("param_name", f"{shown(value)} is not {what}")
    return value


def _label_key(value: str) -> str:
    prefix = value.rpartition("/")[0]
    if not _LABEL_KEY_RE.fullmatch(value) or len(prefix) > 253:
        what = "a Kubernetes label key (like app.kubernetes.io/version or revision)"
        raise PydanticCustomError("label_key", f"{shown(value)} is not {what}")
    return value


class PipelineSucceeded(Scope):
    """The newest Tekton run of the app's pipeline for the revision being promoted Succeeded.

    Runs are matched by a param (`param`, else each pipeline's `revision_param`, else `revision`)
    or by a PipelineRun label (`label`); see docs/extensions.md for the matching rule.
    """

    kind: Literal["pipeline_succeeded"]
    # Only a promotion carries the revision a pipeline built (a sync or rollback does not).
    actions: tuple[Literal["promote"], ...] = ("promote",)
    pipelines: tuple[K8sName, ...] = ()  # empty: every pipeline of the app that applies to the target
    param: Annotated[str, AfterValidator(_param_name)] | None = None
    label: Annotated[str, AfterValidator(_label_key)] | None = None
    severity: Literal["block", "warn"] = "block"

    @field_validator("label")
    @classmethod
    def _param_or_label(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field validator (not a model one) so the problem is reported at `validators[i].label`.
        if value is not None and info.data.get("param") is not None:
            message = "set param or label, not both: a run is matched by one of them"
            raise PydanticCustomError("param_or_label", message)
        return value


ValidatorSpec = Annotated[
    ChangeWindow | Soak | ImageExists | SemverGuard | RequiredChecks | PipelineSucceeded,
    Field(discriminator="kind"),
]


class WebhookNotifier(Section):
    """A JSON POST of each event, signed with HMAC-SHA256 over timestamp + body (the secret from env)."""

    kind: Literal["webhook"]
    name: Slug
    url: HttpUrl
    secret_env: EnvVarName | None = None
    events: tuple[str, ...] = ("*",)  # patterns: "promotion.*", "drift.opened"
    max_attempts: WholeNumber = Field(default=8, ge=1, le=50)


NotifierSpec = Annotated[WebhookNotifier, Field(discriminator="kind")]


class FrozenTree(Mapping[str, Any]):
    """Plugin settings as given (checked later, against each plugin's own model): read-only and
    hashable like the rest of the frozen configuration."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = {str(k): v for k, v in data.items()}
        self._hash = hash(json.dumps(self._data, sort_keys=True, default=str))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    def __repr__(self) -> str:
        return f"FrozenTree({sorted(self._data)})"  # names only: values may hold what users typed


def _frozen(value: Any) -> FrozenTree:
    if isinstance(value, FrozenTree):
        return value
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        raise PydanticCustomError("plugin_settings", "must map each plugin's name to its settings")
    return FrozenTree(value)


PluginSettings = Annotated[
    FrozenTree,
    PlainValidator(_frozen),
    PlainSerializer(lambda tree: dict(tree.items())),
    WithJsonSchema({"type": "object"}),
]


class SyncSettings(Section):
    """How `sync --selector` orders its targets (`--strategy` overrides per command)."""

    # parallel, waves, canary, or a plugin's strategy (checked once plugins are loaded)
    strategy: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$")] = "parallel"
    stop_on_failure: bool = False
    wave_label: str | None = None  # a label key; default: Argo CD's sync-wave annotation
