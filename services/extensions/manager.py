"""Loading plugins and calling their hooks, one plugin at a time.

pluggy calls every implementation of a hook in one go and lets the first exception through; here
each plugin's implementation is called on its own, so a plugin that raises is named: a validator
that fails stops the change it was asked about (PluginFailed: nothing half-runs), a notifier that
fails is logged and the others still get the event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from services.errors import GitOpsBotError
from services.extensions import hookspecs
from services.extensions.context import PluginContext
from services.extensions.model import BatchPlan, BatchTarget, Event, Finding, PlannedChange
from services.settings.errors import Problem, format_path, suggest, translate
from services.settings.model import Settings

log = logging.getLogger(__name__)


class PluginFailed(GitOpsBotError):
    """A plugin raised: shown with its name (and the correlation id); the operation did not run."""

    def __init__(self, plugin: str, hook: str) -> None:
        super().__init__(f"plugin `{plugin}` failed in {hook}")
        self.plugin = plugin
        self.hook = hook


@dataclass(frozen=True)
class LoadedPlugin:
    name: str
    version: str
    builtin: bool

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}" + (" (built in)" if self.builtin else "")


def installed(group: str = hookspecs.PROJECT) -> dict[str, metadata.EntryPoint]:
    """The plugins installed in this Python environment, by entry-point name."""
    return {ep.name: ep for ep in metadata.entry_points(group=group)}


class Extensions:
    def __init__(self, pm: pluggy.PluginManager, plugins: Sequence[LoadedPlugin]) -> None:
        self._pm = pm
        self.plugins = tuple(plugins)
        self._models: dict[str, BaseModel | None] = {}

    # -- loading ------------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        settings: Settings,
        *,
        builtins: Mapping[str, object] | None = None,
        available: Mapping[str, metadata.EntryPoint] | None = None,
    ) -> tuple[Extensions, list[Problem]]:
        """The built-ins, plus the plugins `settings.plugins` names (and only those), with every
        problem found: a plugin not installed, one that fails to import, settings that do not fit."""
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs.Specs)
        loaded: list[LoadedPlugin] = []
        problems: list[Problem] = []
        for name, plugin in (builtins if builtins is not None else _builtins()).items():
            pm.register(plugin, name=name)
            loaded.append(LoadedPlugin(name, _own_version(), builtin=True))
        found = dict(available) if available is not None else installed() if settings.plugins else {}
        for index, name in enumerate(settings.plugins):
            path = f"plugins[{index}]"
            entry = found.get(name)
            if entry is None:
                listed = ", ".join(f"`{n}`" for n in sorted(found)) or "none"
                group = hookspecs.PROJECT
                message = f"no installed plugin is called `{name}` (entry-point group `{group}`; "
                message += f"installed: {listed})"
                problems.append(Problem(path, message + suggest(name, found)))
                continue
            try:
                plugin = entry.load()
                plugin = plugin() if isinstance(plugin, type) else plugin
                pm.register(plugin, name=name)
            except Exception as exc:  # the plugin's own bug: name it, start nothing with it
                problems.append(Problem(path, f"plugin `{name}` could not be loaded: {type(exc).__name__}"))
                continue
            version = entry.dist.version if entry.dist is not None else "unknown"
            loaded.append(LoadedPlugin(name, version, builtin=False))
        extensions = cls(pm, loaded)
        problems += extensions._check_settings(settings)
        problems += extensions._check_strategy(settings)
        for name in sorted(set(settings.plugin_settings) - set(settings.plugins)):
            problems.append(
                Problem(f"plugin_settings.{name}", "settings for a plugin not named in `plugins`")
            )
        return extensions, problems

    def _check_settings(self, settings: Settings) -> list[Problem]:
        problems: list[Problem] = []
        for plugin in self.plugins:
            if plugin.builtin:
                continue
            models = self._call_one(plugin.name, "gitops_bot_settings_model", {})
            model = next((m for m in models if m is not None), None)
            raw = settings.plugin_settings.get(plugin.name, {})
            if model is None:
                self._models[plugin.name] = None
                if raw:
                    problems.append(
                        Problem(f"plugin_settings.{plugin.name}", "this plugin takes no settings")
                    )
                continue
            try:
                self._models[plugin.name] = model.model_validate(raw)
            except ValidationError as exc:
                prefix = format_path(("plugin_settings", plugin.name))
                problems += [
                    Problem(f"{prefix}.{p.path}" if p.path else prefix, p.message, p.kind)
                    for p in translate(model, exc)
                ]
        return problems

    def _check_strategy(self, settings: Settings) -> list[Problem]:
        """`sync.strategy` names a strategy some plugin knows (asked with no targets)."""
        name = settings.sync.strategy
        builtin = ("parallel", "waves", "canary")
        if name in builtin:
            return []
        try:
            known = self.batch_plan(name, (), stop_on_failure=False, concurrency=1) is not None
        except PluginFailed:
            known = True  # the plugin that failed is reported when a batch asks it
        if known:
            return []
        return [Problem("sync.strategy", f"no strategy called `{name}` ({', '.join(builtin)}, or a plugin's)"
                        + suggest(name, builtin))]  # fmt: skip

    def configure(self, settings: Settings, context: PluginContext) -> None:
        """Hand every plugin its settings; a plugin that fails here is a start-up problem."""
        caller: pluggy.HookCaller = self._pm.hook.gitops_bot_configure
        for impl in reversed(caller.get_hookimpls()):
            name = self._pm.get_name(impl.plugin) or "?"
            given = {"settings": settings, "plugin_settings": self._models.get(name), "context": context}
            try:
                impl.function(**{k: given[k] for k in impl.argnames})
            except Exception as exc:
                log.exception("plugin failed", extra={"plugin": name, "hook": "gitops_bot_configure"})
                raise PluginFailed(name, "gitops_bot_configure") from exc

    # -- the hooks ----------------------------------------------------------------------------------

    def validate(self, change: PlannedChange) -> list[Finding]:
        """Every validator's findings; PluginFailed (naming it) when one raises. CI results the
        plugins know for the revision are gathered first and handed over in `change.checks`."""
        if change.checks is None and change.revision:
            known: dict[str, str] = {}
            for _, result in self._each("gitops_bot_commit_checks", {"change": change}, raising=True):
                known.update(result or {})
            change = replace(change, checks=known or None)
        findings: list[Finding] = []
        for _, result in self._each("gitops_bot_validate", {"change": change}, raising=True):
            findings.extend(result or ())
        return findings

    def notify(self, event: Event) -> None:
        """Every notifier gets the event; one that raises is logged, never the caller's problem."""
        for _ in self._each("gitops_bot_notify", {"event": event}, raising=False):
            pass

    def shutdown(self) -> None:
        """Tell every plugin the bot stops; one that raises is logged, the others still hear it."""
        for _ in self._each("gitops_bot_shutdown", {}, raising=False):
            pass

    def batch_plan(
        self,
        strategy: str,
        targets: Sequence[BatchTarget],
        *,
        stop_on_failure: bool,
        concurrency: int,
        wave_label: str | None = None,
    ) -> BatchPlan | None:
        kwargs = {"strategy": strategy, "targets": targets, "stop_on_failure": stop_on_failure,
                  "concurrency": concurrency, "wave_label": wave_label}  # fmt: skip
        for _, plan in self._each("gitops_bot_batch_plan", kwargs, raising=True):
            if plan is not None:
                return plan  # type: ignore[no-any-return]
        return None

    # -- one plugin at a time -----------------------------------------------------------------------

    def _each(self, hook: str, kwargs: Mapping[str, Any], *, raising: bool) -> Iterable[tuple[str, Any]]:
        caller: pluggy.HookCaller = getattr(self._pm.hook, hook)
        for impl in reversed(caller.get_hookimpls()):  # registration order
            name = self._pm.get_name(impl.plugin) or "?"
            try:
                yield name, impl.function(**{k: kwargs[k] for k in impl.argnames})
            except GitOpsBotError:
                raise  # a plugin's own, worded refusal (a UserError) is shown as it is
            except Exception as exc:
                log.exception("plugin failed", extra={"plugin": name, "hook": hook})
                if raising:
                    raise PluginFailed(name, hook) from exc

    def _call_one(
        self, plugin: str, hook: str, kwargs: Mapping[str, Any], *, raising: bool = False
    ) -> list[Any]:
        return [r for n, r in self._each(hook, kwargs, raising=raising) if n == plugin]


def _own_version() -> str:
    try:
        return metadata.version("gitops-bot")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _builtins() -> dict[str, object]:
    from services.extensions.builtin import BUILTINS  # the built-in plugins; imported late: they are many

    return dict(BUILTINS)
