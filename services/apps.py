"""App addressing: turn what a user typed into an `AppRef` on one backend.

Accepted forms: a configured app (+ ENV), an Argo CD application name (`name` or
`instance/name`), a Flux object (`name`, `namespace/name`, `cluster/namespace/name`).
Unknown names get the nearest known names; ambiguous ones list the candidates.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping

from services.backend import AmbiguousApp, AppNotFound, AppRef, GitOpsBackend
from services.errors import UserError
from services.settings.model import AppTarget, Settings

log = logging.getLogger(__name__)


class AppResolver:
    def __init__(self, settings: Settings, backends: Mapping[str, GitOpsBackend]) -> None:
        """`backends` keyed by "<kind>:<instance>" (e.g. "argocd:main", "flux:prod")."""
        self._settings = settings
        self._backends = dict(backends)

    @property
    def backends(self) -> list[GitOpsBackend]:
        return list(self._backends.values())

    def backend(self, ref: AppRef) -> GitOpsBackend:
        backend = self._backends.get(f"{ref.backend}:{ref.instance}")
        if backend is None:
            raise UserError(f"No {ref.backend} instance called `{ref.instance}` is configured.")
        return backend

    def is_configured(self, name: str) -> bool:
        return self._settings.app(name) is not None

    def scope_of(self, ref: AppRef) -> tuple[str | None, str | None]:
        """(environment, configured app name) that this ref is, when it is a configured app's target.

        Access control scopes grants by environment: a ref no configured app points at has no
        environment, and only grants for every environment ("*") apply to it.
        """
        for app in self._settings.apps:
            for env, target in app.environments.items():
                instance = target.instance or self._only_instance(target.backend)
                if (target.backend, instance, target.name) == (ref.backend, ref.instance, ref.name) and (
                    target.namespace in (None, ref.namespace)
                ):
                    return env, app.name
        return None, None

    def audit_target(self, ref: AppRef) -> str:
        """The one audit target of an app, whatever the entry point: `app/env` for a configured
        app's target, else the backend's own name (`instance/name`, `cluster/namespace/name`)."""
        env, app = self.scope_of(ref)
        return f"{app}/{env}" if app and env else ref.display

    def command_args(self, ref: AppRef) -> str:
        """How to name this app in a command so that it runs as written: `api prod` for a configured
        app in several environments, `api` when it has one, else the backend's own name."""
        env, app = self.scope_of(ref)
        found = self._settings.app(app) if app else None
        if found is None or env is None:
            return ref.display
        return found.name if len(found.environments) == 1 else f"{found.name} {env}"

    def display_target(self, display: str) -> str:
        """`audit_target` of a ref known only by its display name (a drift incident's app)."""
        for app in self._settings.apps:
            for env in app.environments:
                if self._configured(app.name, env, dict(app.environments)).display == display:
                    return f"{app.name}/{env}"
        return display

    def typed_target(self, name: str, env: str | None = None) -> str:
        """`audit_target` of what a user typed, from the configuration alone (no backend call, so
        it can run as a request is accepted). A name only a backend knows stays as typed."""
        app = self._settings.app(name)
        if app is not None:
            envs = list(app.environments)
            if env is None and len(envs) == 1:
                env = envs[0]
            return f"{name}/{env}" if env else name
        parts = name.split("/")
        found = {
            f"{a.name}/{e}"
            for a in self._settings.apps
            for e, target in a.environments.items()
            if target.name == parts[-1]
            and (env is None or env == e)
            and (len(parts) < 3 or target.namespace in (None, parts[1]))
        }
        if len(found) == 1:
            return found.pop()
        return "/".join(p for p in (name, env) if p)

    def resolve(self, name: str, env: str | None = None) -> AppRef:
        app = self._settings.app(name)
        if app is not None:
            return self._configured(name, env, dict(app.environments))
        if env is not None and self._settings.environment(env) is None:
            raise UserError(
                f"Unknown environment `{env}`.",
                hint=_nearest_hint(env, self._settings.environment_names, "environments"),
            )
        parts = name.split("/")
        if len(parts) >= 2 and parts[0] in self._instances("argocd") and len(parts) == 2:
            return self._find_on(f"argocd:{parts[0]}", parts[1], None, name)
        if len(parts) == 3:
            return self._find_on(f"flux:{parts[0]}", parts[2], parts[1], name)
        namespace = parts[0] if len(parts) == 2 else None
        bare = parts[-1]
        found: list[AppRef] = []
        for backend in self._backends.values():
            if namespace is not None and backend.kind != "flux":
                continue
            found.extend(backend.find(bare, namespace=namespace))
        if len(found) == 1:
            return found[0]
        if found:
            raise AmbiguousApp(name, sorted(found))
        raise AppNotFound(f"No app called `{name}`.", hint=self._nearest(bare))

    def _configured(self, name: str, env: str | None, targets: Mapping[str, AppTarget]) -> AppRef:
        if env is None:
            if len(targets) != 1:
                envs = ", ".join(f"`{e}`" for e in targets)
                raise UserError(f"`{name}` runs in several environments: say which ({envs}).")
            env = next(iter(targets))
        target = targets.get(env)
        if target is None:
            known = list(targets)
            raise UserError(
                f"`{name}` has no environment `{env}`.",
                hint=_nearest_hint(env, known, "environments of " + name),
            )
        instance = target.instance or self._only_instance(target.backend)
        return AppRef(
            backend=target.backend,
            instance=instance,
            name=target.name,
            namespace=target.namespace,
            kind=target.kind if target.backend == "flux" else None,
            project=target.project,
        )

    def _find_on(self, key: str, name: str, namespace: str | None, typed: str) -> AppRef:
        backend = self._backends.get(key)
        if backend is None:
            raise AppNotFound(f"No app called `{typed}`.", hint=self._nearest(name))
        found = backend.find(name, namespace=namespace)
        if len(found) == 1:
            return found[0]
        if found:
            raise AmbiguousApp(typed, sorted(found))
        raise AppNotFound(f"No app called `{typed}` on {backend.instance}.", hint=self._nearest(name))

    def _instances(self, kind: str) -> set[str]:
        return {k.split(":", 1)[1] for k in self._backends if k.startswith(kind + ":")}

    def _only_instance(self, kind: str) -> str:
        instances = sorted(self._instances(kind))
        return instances[0] if instances else ""

    def _nearest(self, name: str) -> str | None:
        names: set[str] = {a.name for a in self._settings.apps}
        for backend in self._backends.values():
            try:
                names.update(backend.names())
            except Exception:  # suggestions are best effort; the real error is "not found"
                log.debug("no names from %s for suggestions", backend.instance, exc_info=True)
        return _nearest_hint(name, names, "apps")


def _nearest_hint(name: str, candidates: Iterable[str], what: str) -> str | None:
    pool = sorted(set(candidates))
    close = difflib.get_close_matches(name, pool, n=3, cutoff=0.5)
    if close:
        return "Did you mean " + " or ".join(f"`{c}`" for c in close) + "?"
    if pool and len(pool) <= 12:
        return f"Known {what}: " + ", ".join(f"`{c}`" for c in pool)
    return None
