"""The hooks, in one place. A plugin is any object (a module, an instance) with `@hookimpl`
functions named like these; it implements the ones it needs.

Third-party plugins are found through the `gitops_bot` entry-point group and loaded only when
named in config (`plugins: [name]`); the built-ins (services/extensions/builtin/) are plugins of the
same kind, always loaded, each doing nothing until configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pluggy
from pydantic import BaseModel

from services.extensions.context import PluginContext
from services.extensions.model import BatchPlan, BatchTarget, Event, Finding, PlannedChange
from services.settings.model import Settings

PROJECT = "gitops_bot"  # the pluggy project name and the entry-point group
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Specs:
    @hookspec
    def gitops_bot_settings_model(self) -> type[BaseModel] | None:
        """The pydantic model of this plugin's settings (`plugin_settings.<name>` in config);
        `check-config` validates them with key paths. None: the plugin takes no settings."""

    @hookspec
    def gitops_bot_configure(
        self, settings: Settings, plugin_settings: BaseModel | None, context: PluginContext
    ) -> None:
        """Called once at start, before any other hook, with the checked settings."""

    @hookspec
    def gitops_bot_validate(self, change: PlannedChange) -> Sequence[Finding] | None:
        """Findings about a change about to be made (promote, sync, rollback): `block` stops it,
        `warn` is shown. Called when a promotion card is built, again right before the commit, and
        before a sync or rollback starts. Return None or [] when the change is fine."""

    @hookspec
    def gitops_bot_commit_checks(self, change: PlannedChange) -> Mapping[str, str] | None:
        """CI results for `change.revision` by check name ("success", "failure", "pending", …),
        from a Git host or pipeline integration; the `required_checks` validator reads them from
        `change.checks`. None: this plugin does not know the commit."""

    @hookspec
    def gitops_bot_notify(self, event: Event) -> None:
        """An audited event happened. Must return quickly (queue the work); never raises on
        purpose — a failing notifier is logged and contained."""

    @hookspec
    def gitops_bot_shutdown(self) -> None:
        """The bot is stopping: flush or persist queued work quickly (seconds), stop threads."""

    @hookspec(firstresult=True)
    def gitops_bot_batch_plan(
        self,
        strategy: str,
        targets: Sequence[BatchTarget],
        stop_on_failure: bool,
        concurrency: int,
        wave_label: str | None,
    ) -> BatchPlan | None:
        """Order and gate the targets of `sync --selector` for `strategy` (parallel, waves, canary,
        or a plugin's own name). The first plugin that knows the strategy answers; None: not mine.
        `wave_label`: `sync.wave_label` from config (None: Argo CD's sync-wave annotation)."""


__all__ = ["PROJECT", "Specs", "hookimpl", "hookspec"]
