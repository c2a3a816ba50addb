"""What the hooks receive and return. Frozen records; plugins never see raw payloads or Slack."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from services.backend import AppRef, AppStatus

Severity = Literal["block", "warn", "info"]
Action = Literal["promote", "sync", "rollback"]


@dataclass(frozen=True)
class VersionChange:
    """One value a promotion changes: an image, a chart version, a configured YAML path."""

    kind: Literal["image", "chart", "value"]
    name: str  # the image as deployed ("registry.example.com/team/api"), "chart", a YAML path
    old: str | None  # the version before: a tag, a chart version, the value (None: added)
    new: str  # the version after
    image: str | None = None  # images: the full reference deployed ("registry.example.com/api:1.4.3",
    # or "…/api@sha256:…" when pinned by digest); None for charts and values


@dataclass(frozen=True)
class PlannedChange:
    """A change about to be made, as validators see it: at request time (the card) and again right
    before it is made (the commit, the sync, the rollback)."""

    action: Action
    ref: AppRef
    app: str | None  # the configured app, when the target is one
    env: str | None  # its environment
    user: str  # the Slack user asking (or approving, at commit time)
    at: datetime  # now, aware
    force: bool = False  # an admin's --force on the request
    source_env: str | None = None  # promotions: where the version comes from
    source: AppStatus | None = None  # promotions: the source's status now
    source_since: datetime | None = None  # promotions: since when the source runs what it runs
    changes: tuple[VersionChange, ...] = ()  # promotions: what the commit changes
    revision: str | None = None  # the commit / revision being deployed, when known
    stage: Literal["request", "commit"] = "request"
    # CI results for `revision`, by check name ("success", "failure", "pending", …), gathered from
    # the plugins that implement gitops_bot_commit_checks; None when no plugin knows.
    checks: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Finding:
    """One validator's verdict: `block` stops the change, `warn` is shown; `info` is shown as a
    plain line and never stops anything (what a check looked at and found fine, e.g. the pipeline
    run that vouches for a promotion). `url`: a link shown with the message (the run, a report)."""

    validator: str
    severity: Severity
    message: str
    url: str | None = None

    @property
    def blocks(self) -> bool:
        return self.severity == "block"


@dataclass(frozen=True)
class Event:
    """Something the audit trail records, typed (`promotion.committed`, `drift.opened`, …).

    The JSON shape notifiers send is documented in docs/events.md and events.schema.json."""

    id: str
    type: str
    at: datetime
    actor: str  # a Slack user id, or "gitops-bot"
    target: str  # the app's audit target (`web/prod`), or "" for none
    summary: str
    data: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1


@dataclass(frozen=True)
class BatchTarget:
    """One app of `sync --selector`, with what strategies order by."""

    ref: AppRef
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BatchPlan:
    """Waves of targets, run one after another; `gate` says whether a finished wave lets the next
    start (canary: the first must end Healthy). `stop_on_failure`: a failure stops the rest."""

    waves: tuple[tuple[AppRef, ...], ...]
    strategy: str
    stop_on_failure: bool = False
    # Every target of a wave must end Succeeded and Healthy for the next wave to start.
    gate_on_health: bool = False
    # What the card calls each wave ("-1", "0", "5"; "canary", "rest"); empty: 1, 2, 3…
    wave_names: tuple[str, ...] = ()

    def wave_name(self, index: int) -> str:
        return self.wave_names[index] if index < len(self.wave_names) else str(index + 1)
