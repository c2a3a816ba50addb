"""Which pipeline a `/gitops pipeline APP|PIPELINE [ENV]` names, from `apps[].pipelines`."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from services.errors import UserError
from services.settings.model import Settings
from services.settings.tekton import AppPipeline
from services.validation import display_value


@dataclass(frozen=True)
class PipelineTarget:
    """One configured pipeline of one app: where it runs and how it is started."""

    app: str
    pipeline: str  # the Pipeline object's name
    namespace: str
    cluster: str
    config: AppPipeline
    env: str | None = None  # the environment asked about (None: not named)

    @property
    def display(self) -> str:
        return f"{self.pipeline} ({self.cluster}/{self.namespace})"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.cluster, self.namespace, self.pipeline)


class PipelineTargets:
    """`apps[].pipelines` as targets, looked up by app or by pipeline name."""

    def __init__(self, settings: Settings) -> None:
        self._all = tuple(
            PipelineTarget(app.name, p.name, p.namespace, p.cluster, p)
            for app in settings.apps
            for p in app.pipelines
        )
        self._apps = tuple(app.name for app in settings.apps)
        self._envs = settings.environment_names

    @property
    def all(self) -> tuple[PipelineTarget, ...]:
        return self._all

    @property
    def configured(self) -> bool:
        return bool(self._all)

    def of(self, app: str | None, env: str | None) -> tuple[PipelineTarget, ...]:
        """The pipelines of `app` (every app when None) that apply to `env` (any when None)."""
        if app is not None and app not in self._apps and not any(t.pipeline == app for t in self._all):
            raise self._unknown(app)
        if env is not None and env not in self._envs:
            raise _unknown_env(env, self._envs)
        found = tuple(
            PipelineTarget(t.app, t.pipeline, t.namespace, t.cluster, t.config, env)
            for t in self._all
            if (app is None or t.app == app or t.pipeline == app) and t.config.applies_to(env)
        )
        return found

    def resolve(self, name: str, env: str | None = None, namespace: str | None = None) -> PipelineTarget:
        """`name` is an app (its one pipeline for `env`) or a configured pipeline's name."""
        if env is not None and env not in self._envs:
            raise _unknown_env(env, self._envs)
        by_pipeline = [t for t in self._all if t.pipeline == name]
        by_app = [t for t in self._all if t.app == name] if not by_pipeline else []
        if not by_pipeline and not by_app:
            if name in self._apps:
                raise UserError(
                    f"App `{name}` has no Tekton pipeline configured.",
                    hint="Add one under `apps[].pipelines` in the config (docs/configuration.md).",
                )
            raise self._unknown(name)
        found = [t for t in by_pipeline or by_app if t.config.applies_to(env)]
        if namespace is not None:
            found = [t for t in found if t.namespace == namespace]
        if not found:
            where = f" for `{env}`" if env else ""
            where += f" in namespace `{namespace}`" if namespace else ""
            choices = _choices(by_pipeline or by_app)
            raise UserError(f"No pipeline of `{name}` applies{where}.", hint=f"Configured: {choices}.")
        if len({t.key for t in found}) > 1:
            choices = _choices(found)
            raise UserError(
                f"`{name}` has several pipelines{' for ' + env if env else ''}: say which.",
                hint=f"Name the pipeline (or add --namespace): {choices}.",
            )
        first = found[0]
        return PipelineTarget(first.app, first.pipeline, first.namespace, first.cluster, first.config, env)

    def _unknown(self, name: str) -> UserError:
        names = sorted({*self._apps, *(t.pipeline for t in self._all)})
        close = difflib.get_close_matches(name, names, n=1)
        hint = (
            f"Did you mean `{close[0]}`?"
            if close
            else "Apps and pipelines: " + ", ".join(f"`{n}`" for n in names[:20])
        )
        return UserError(f"Unknown app or pipeline {display_value(name)}.", hint=hint)


def _choices(targets: Sequence[PipelineTarget]) -> str:
    return ", ".join(f"`{t.pipeline}` ({t.namespace})" for t in targets)


def _unknown_env(env: str, envs: Sequence[str]) -> UserError:
    close = difflib.get_close_matches(env, list(envs), n=1)
    hint = f"Did you mean `{close[0]}`?" if close else "Environments: " + ", ".join(f"`{e}`" for e in envs)
    return UserError(f"Unknown environment {display_value(env)}.", hint=hint)
