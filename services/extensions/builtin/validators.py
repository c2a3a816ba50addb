"""Built-in validators (a plugin like any other; see services/extensions/hookspecs.py).

Config `validators:` lists them, told apart by `kind`: change_window (windows.py), soak (soak.py),
image_exists (images.py), semver_guard (semver.py), required_checks (checks.py), pipeline_succeeded
(pipelines.py). Each one applies to
the changes its scope matches (environments, apps, actions) and returns findings; this module only
holds the hooks and the configured set, swapped whole on every configure.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.extensions.builtin.checks import required_checks_findings
from services.extensions.builtin.images import image_findings, registry_client
from services.extensions.builtin.pipelines import pipeline_findings
from services.extensions.builtin.semver import semver_findings
from services.extensions.builtin.soak import soak_findings
from services.extensions.builtin.verdicts import applies
from services.extensions.builtin.windows import change_window_findings
from services.extensions.context import PluginContext
from services.extensions.hookspecs import hookimpl
from services.extensions.model import Finding, PlannedChange
from services.pipelines import PipelineRuns
from services.registry import RegistryClient
from services.settings.extensions import (
    ChangeWindow,
    ImageExists,
    PipelineSucceeded,
    RequiredChecks,
    SemverGuard,
    Soak,
    ValidatorSpec,
)
from services.settings.model import Settings


@dataclass(frozen=True)
class Validators:
    """The configured validators and what they need (one registry client per `image_exists`,
    by its index in `specs`; the bot's Tekton runs for `pipeline_succeeded`, owned by the bot)."""

    specs: tuple[ValidatorSpec, ...] = ()
    registries: Mapping[int, RegistryClient] = field(default_factory=dict)
    pipelines: PipelineRuns | None = None

    def validate(self, change: PlannedChange) -> list[Finding]:
        findings: list[Finding] = []
        for index, spec in enumerate(self.specs):
            if applies(spec, change):
                findings += self._one(index, spec, change)
        return findings

    def _one(self, index: int, spec: ValidatorSpec, change: PlannedChange) -> list[Finding]:
        if isinstance(spec, ChangeWindow):
            return change_window_findings(spec, change)
        if isinstance(spec, Soak):
            return soak_findings(spec, change)
        if isinstance(spec, ImageExists):
            return image_findings(spec, self.registries[index], change)
        if isinstance(spec, SemverGuard):
            return semver_findings(spec, change)
        if isinstance(spec, RequiredChecks):
            return required_checks_findings(spec, change)
        if isinstance(spec, PipelineSucceeded):
            return pipeline_findings(spec, self.pipelines, change)
        raise TypeError(f"unknown validator kind: {type(spec).__name__}")

    def close(self) -> None:
        for client in self.registries.values():
            client.close()


def build(specs: Sequence[ValidatorSpec], context: PluginContext) -> Validators:
    registries = {
        index: registry_client(spec, context.secret)
        for index, spec in enumerate(specs)
        if isinstance(spec, ImageExists)
    }
    return Validators(tuple(specs), registries, context.pipelines)


_lock = threading.Lock()
_active = Validators()  # replaced whole by every configure; read without a lock (one reference)


def active() -> Validators:
    """The validators configured last (for tests and diagnostics)."""
    return _active


@hookimpl
def gitops_bot_configure(settings: Settings, context: PluginContext) -> None:
    global _active
    fresh = build(settings.validators, context)
    with _lock:
        previous, _active = _active, fresh
    previous.close()


@hookimpl
def gitops_bot_validate(change: PlannedChange) -> Sequence[Finding] | None:
    return _active.validate(change)


@hookimpl
def gitops_bot_shutdown() -> None:
    _active.close()
