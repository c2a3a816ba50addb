"""Load the one YAML config file and the secrets from the environment, reporting all problems at once.

This is the only module that reads the process environment (`process_environ`); everything
else receives an `environ` mapping, which keeps tests free of monkeypatched globals.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import SecretStr, TypeAdapter, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from bot.config_expand import expand_env
from services.extensions.manager import Extensions
from services.settings.check import check_settings
from services.settings.errors import Problem
from services.settings.model import Secrets, Settings
from services.settings.types import HttpUrl

__all__ = [
    "CONFIG_PATH_ENV",
    "DEFAULT_CONFIG_PATH",
    "ConfigError",
    "LoadedConfig",
    "load_config",
    "load_from_process",
    "parse_config_text",
    "process_environ",
    "resolve_config_path",
]

DEFAULT_CONFIG_PATH = Path("gitops-bot.yaml")
CONFIG_PATH_ENV = "GITOPS_BOT_CONFIG"
SLACK_BOT_TOKEN = "SLACK_BOT_TOKEN"  # noqa: S105 - variable names, not values
SLACK_SIGNING_SECRET = "SLACK_SIGNING_SECRET"  # noqa: S105
SLACK_APP_TOKEN = "SLACK_APP_TOKEN"  # noqa: S105
SLACK_API_URL = "SLACK_API_URL"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason, one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    secrets: Secrets
    source: Path | None  # None when no file was read
    slack_api_url: str | None  # SLACK_API_URL: where the Slack Web API lives (a local fake in tests)
    warnings: tuple[str, ...]
    notes: tuple[str, ...]
    extensions: Extensions  # built-in and configured plugins, their settings checked


def process_environ() -> Mapping[str, str]:
    """A snapshot of the process environment: the one place the product reads it."""
    return MappingProxyType(dict(os.environ))


def resolve_config_path(flag: str | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The config path and whether it was named explicitly (flag, then GITOPS_BOT_CONFIG)."""
    if flag:
        return Path(flag), True
    if named := environ.get(CONFIG_PATH_ENV):
        return Path(named), True
    return DEFAULT_CONFIG_PATH, False


def load_from_process(flag: str | None) -> LoadedConfig:
    """What `main()` calls: resolve the path from `--config` / the environment and load it."""
    environ = process_environ()
    path, explicit = resolve_config_path(flag, environ)
    return load_config(path, explicit=explicit, environ=environ)


def load_config(path: Path, *, explicit: bool, environ: Mapping[str, str]) -> LoadedConfig:
    """Read and validate `path`. Raises `ConfigError` listing every problem found."""
    if not path.exists():
        if explicit:
            raise ConfigError([f"{path}: config file not found"])
        note = (
            f"no config file at {path} and none named by --config or {CONFIG_PATH_ENV}; "
            "using built-in defaults (no Argo CD, Flux, repositories or apps)"
        )
        return _build({}, environ, label=str(path), source=None, notes=(note,))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([f"{path}: cannot read the config file: {reason}"]) from None
    return _build(_parse_yaml(text, str(path)), environ, label=str(path), source=path, notes=())


def parse_config_text(text: str, *, environ: Mapping[str, str], source: str = "<string>") -> LoadedConfig:
    """Validate YAML text; `source` names it in messages. The result's `source` is None."""
    return _build(_parse_yaml(text, source), environ, label=source, source=None, notes=())


def _parse_yaml(text: str, label: str) -> Any:
    try:
        data = YAML(typ="safe").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = exc.problem or exc.context or "invalid YAML"
        raise ConfigError([f"{label}: YAML syntax error at {where}{what}"]) from None
    except YAMLError as exc:
        raise ConfigError([f"{label}: YAML syntax error: {exc}"]) from None
    return {} if data is None else data  # an empty file is an empty config


def _build(
    raw: Any, environ: Mapping[str, str], *, label: str, source: Path | None, notes: tuple[str, ...]
) -> LoadedConfig:
    expanded, env_problems = expand_env(raw, environ)
    report = check_settings(expanded)
    # An unset variable explains whatever else is wrong with the value it left empty.
    env_paths = {p.path for p in env_problems}
    problems = [*env_problems, *(p for p in report.problems if p.path not in env_paths)]
    slack_api_url = environ.get(SLACK_API_URL) or None
    if slack_api_url is not None:
        try:
            slack_api_url = TypeAdapter(HttpUrl).validate_python(slack_api_url)
        except ValidationError as exc:
            problems.append(Problem(SLACK_API_URL, exc.errors(include_url=False)[0]["msg"]))
    extensions = None
    if report.settings is not None:
        # Plugins named in the file are loaded now, so their own settings are checked with the rest.
        extensions, plugin_problems = Extensions.load(report.settings)
        problems += plugin_problems
    if problems or report.settings is None or extensions is None:
        raise ConfigError(str(p) if p.path else f"{label}: {p.message}" for p in problems)
    settings = report.settings
    warnings = [*(str(w) for w in report.warnings), *_environment_warnings(settings, environ)]
    return LoadedConfig(
        settings=settings,
        secrets=read_secrets(settings, environ),
        source=source,
        slack_api_url=slack_api_url,
        warnings=tuple(warnings),
        notes=notes,
        extensions=extensions,
    )


def _secret(environ: Mapping[str, str], name: str | None) -> SecretStr | None:
    value = environ.get(name) if name else None
    return SecretStr(value) if value else None


def read_secrets(settings: Settings, environ: Mapping[str, str]) -> Secrets:
    """Slack secrets by fixed names; Argo CD and Git tokens by the names the file gives."""
    argocd = {i.name: s for i in settings.argocd if (s := _secret(environ, i.token_env))}
    git = {r.name: s for r in settings.repositories if (s := _secret(environ, r.credentials_env))}
    host = {r.name: s for r in settings.repositories if (s := _secret(environ, r.token_env))}
    approve = {r.name: s for r in settings.repositories if (s := _secret(environ, r.approve_token_env))}
    named = {n: s for n in extension_env_names(settings) if (s := _secret(environ, n))}
    return Secrets(
        slack_bot_token=_secret(environ, SLACK_BOT_TOKEN),
        slack_signing_secret=_secret(environ, SLACK_SIGNING_SECRET),
        slack_app_token=_secret(environ, SLACK_APP_TOKEN),
        argocd_tokens=MappingProxyType(argocd),
        git_credentials=MappingProxyType(git),
        githost_tokens=MappingProxyType(host),
        githost_approve_tokens=MappingProxyType(approve),
        named=MappingProxyType(named),
        database_password=_secret(environ, settings.database.password_env),
    )


def extension_env_names(settings: Settings) -> set[str]:
    """Every environment variable a validator, notifier or plugin names with a `*_env` key: their
    secrets are read here, like every other, and scrubbed from logs."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if str(key).endswith("_env") and isinstance(item, str) and item:
                    found.add(item)
                else:
                    walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk([v.model_dump() for v in settings.validators])
    walk([n.model_dump() for n in settings.notifiers])
    walk(settings.plugin_settings)
    return found


def _environment_warnings(settings: Settings, environ: Mapping[str, str]) -> Iterator[str]:
    if not environ.get(SLACK_BOT_TOKEN):
        yield f"{SLACK_BOT_TOKEN} is not set; the bot cannot talk to Slack"
    if not environ.get(SLACK_APP_TOKEN) and not environ.get(SLACK_SIGNING_SECRET):
        yield (
            f"{SLACK_SIGNING_SECRET} is not set (and no {SLACK_APP_TOKEN} for Socket Mode); "
            "HTTP mode cannot verify Slack's requests"
        )
    if settings.database.postgres and not settings.leader.enabled:
        yield (
            "database.url is PostgreSQL, which several replicas share, but leader.enabled is false: "
            "with more than one replica each would run the drift scan and the other leader-only jobs"
        )
    if settings.database.postgres and not settings.database.password_env:
        yield (
            "database.password_env is not set: connecting to PostgreSQL without a password "
            "(trust, peer or a client certificate)"
        )
    elif settings.database.password_env and not environ.get(settings.database.password_env):
        name = settings.database.password_env
        yield f"database.password_env: {name} is not set; PostgreSQL will ask for a password"
    for index, instance in enumerate(settings.argocd):
        if not environ.get(instance.token_env):
            yield (
                f"argocd[{index}].token_env: {instance.token_env} is not set; "
                f"requests to Argo CD '{instance.name}' will not be authenticated"
            )
    for index, repo in enumerate(settings.repositories):
        if repo.credentials_env and not environ.get(repo.credentials_env):
            yield (
                f"repositories[{index}].credentials_env: {repo.credentials_env} is not set; "
                f"Git access to '{repo.name}' will not be authenticated"
            )
    for index, repo in enumerate(settings.repositories):
        for key in ("token_env", "approve_token_env"):
            name = getattr(repo, key)
            if repo.uses_pull_requests and name and not environ.get(name):
                yield (
                    f"repositories[{index}].{key}: {name} is not set; the bot cannot "
                    f"{'open or merge' if key == 'token_env' else 'approve'} pull requests for '{repo.name}'"
                )
        opener, approver = environ.get(repo.token_env or ""), environ.get(repo.approve_token_env or "")
        if repo.host == "github" and opener and opener == approver:
            yield (
                f"repositories[{index}].approve_token_env: {repo.approve_token_env} holds the same token as "
                f"{repo.token_env}; GitHub refuses an approval from the pull request's author"
            )
    for index, notifier in enumerate(settings.notifiers):
        if notifier.secret_env and not environ.get(notifier.secret_env):
            yield (
                f"notifiers[{index}].secret_env: {notifier.secret_env} is not set; the bot will not start "
                f"(webhook '{notifier.name}' must sign what it sends)"
            )
    for index, validator in enumerate(settings.validators):
        for at, registry in enumerate(getattr(validator, "registries", ())):
            for key in ("username_env", "password_env"):
                name = getattr(registry, key)
                if name and not environ.get(name):
                    yield (
                        f"validators[{index}].registries[{at}].{key}: {name} is not set; "
                        f"registry {registry.host} will be asked anonymously"
                    )
