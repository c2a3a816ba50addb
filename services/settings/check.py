"""Validate a raw configuration mapping: field problems, cross-references and warnings.

Cross-references are checked on the raw mapping, not on validated models, so that an unknown
instance is reported in the same run as a bad URL elsewhere in the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from services.settings.errors import Problem, suggest, translate
from services.settings.extensions import PipelineSucceeded
from services.settings.githost import host_warnings
from services.settings.model import BACKEND_LABELS, BUILTIN_ROLES, Settings
from services.settings.types import SLUG_RE

_SECTION_LABELS = (
    ("argocd", "Argo CD instance"),
    ("flux", "Flux cluster"),
    ("tekton", "Tekton cluster"),
    ("repositories", "repository"),
    ("environments", "environment"),
    ("apps", "app"),
)


@dataclass(frozen=True)
class SettingsReport:
    """`settings` is None exactly when there are problems."""

    settings: Settings | None
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...]


def check_settings(raw: object) -> SettingsReport:
    """Validate `raw` (the parsed, env-expanded file) and report every problem at once."""
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(raw)
        field_problems: list[Problem] = []
    except ValidationError as exc:
        field_problems = translate(Settings, exc)
    cross = cross_reference_problems(raw) if isinstance(raw, Mapping) else []
    # A cross-reference message ("required: 2 Argo CD instances are configured") says more than
    # pydantic's bare "required" at the same key.
    cross_paths = {p.path for p in cross}
    kept = [p for p in field_problems if not (p.kind == "missing" and p.path in cross_paths)]
    problems = tuple(kept + cross)
    if problems or settings is None:
        return SettingsReport(None, problems, ())
    return SettingsReport(settings, (), tuple(settings_warnings(settings)))


def plural(label: str) -> str:
    return label[:-1] + "ies" if label.endswith("y") else label + "s"


def _hint(word: object, choices: list[str], label: str) -> str:
    if close := suggest(word, choices):
        return close
    if choices:
        return f" (configured: {', '.join(dict.fromkeys(choices))})"
    return f" (no {plural(label)} are configured)"


def _entries(section: object) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if isinstance(section, list):
        for index, item in enumerate(section):
            if isinstance(item, Mapping):
                yield index, item


def _names(section: object) -> list[tuple[int, str]]:
    return [(i, item["name"]) for i, item in _entries(section) if isinstance(item.get("name"), str)]


def _duplicates(section: object, path: str, label: str) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for index, name in _names(section):
        if name in first:
            yield Problem(
                f"{path}[{index}].name",
                f"duplicate {label} name '{name}' (also {path}[{first[name]}])",
                "duplicate",
            )
        else:
            first.setdefault(name, index)


def cross_reference_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """Duplicate names and references to things that are not configured, best effort on raw data."""
    problems: list[Problem] = []
    for section, label in _SECTION_LABELS:
        problems += _duplicates(raw.get(section), section, label)
    access = raw.get("access")
    access = access if isinstance(access, Mapping) else {}
    problems += _duplicates(access.get("roles"), "access.roles", "role")
    custom_roles = [name for _, name in _names(access.get("roles"))]
    for index, name in _names(access.get("roles")):
        if name in BUILTIN_ROLES:
            problems.append(
                Problem(
                    f"access.roles[{index}].name", f"'{name}' is a built-in role; pick another name", "xref"
                )
            )
    all_roles = [*BUILTIN_ROLES, *custom_roles]
    for index, grant in _entries(access.get("grants")):
        role = grant.get("role")
        if isinstance(role, str) and role not in all_roles:
            problems.append(
                Problem(
                    f"access.grants[{index}].role",
                    f"unknown role '{role}'" + _hint(role, all_roles, "role"),
                    "xref",
                )
            )
    problems += _app_references(raw)
    problems += _pipeline_references(raw)
    problems += _gate_references(raw)
    return problems


def _app_references(raw: Mapping[str, Any]) -> Iterator[Problem]:
    envs = [name for _, name in _names(raw.get("environments"))]
    repos = [name for _, name in _names(raw.get("repositories"))]
    backends = {b: [name for _, name in _names(raw.get(b))] for b in BACKEND_LABELS}
    for index, app in _entries(raw.get("apps")):
        targets = app.get("environments")
        if not isinstance(targets, Mapping):
            continue
        for key, target in targets.items():
            base = f"apps[{index}].environments.{key}"
            if isinstance(key, str) and key not in envs:
                yield Problem(base, f"unknown environment '{key}'" + _hint(key, envs, "environment"), "xref")
            if isinstance(target, Mapping):
                yield from _target_references(base, target, backends, repos)


def _target_references(
    base: str, target: Mapping[str, Any], backends: Mapping[str, list[str]], repos: list[str]
) -> Iterator[Problem]:
    backend = target.get("backend")
    if isinstance(backend, str) and backend in backends:
        label, configured = BACKEND_LABELS[backend], backends[backend]
        instance = target.get("instance")
        if instance is None and len(configured) != 1:
            counted = f"{len(configured)} {plural(label)} are configured ({', '.join(configured)})"
            why = counted if configured else f"no {label} is configured"
            yield Problem(f"{base}.instance", f"required: {why}", "xref")
        elif isinstance(instance, str) and instance not in configured:
            yield Problem(
                f"{base}.instance",
                f"unknown {label} '{instance}'" + _hint(instance, configured, label),
                "xref",
            )
    repo = target.get("repository")
    if isinstance(repo, str) and repo not in repos:
        yield Problem(
            f"{base}.repository", f"unknown repository '{repo}'" + _hint(repo, repos, "repository"), "xref"
        )


def _pipeline_references(raw: Mapping[str, Any]) -> Iterator[Problem]:
    """apps[].pipelines[]: a configured cluster (or the only one), one of its namespaces, the
    app's own environments, and no pipeline listed twice for one app."""
    clusters = {name: item.get("namespaces") for _, item in _entries(raw.get("tekton"))
                if isinstance(name := item.get("name"), str)}  # fmt: skip
    for index, app in _entries(raw.get("apps")):
        targets = app.get("environments")
        envs = [k for k in targets if isinstance(k, str)] if isinstance(targets, Mapping) else []
        seen: dict[tuple[object, ...], int] = {}
        for at, pipeline in _entries(app.get("pipelines")):
            base = f"apps[{index}].pipelines[{at}]"
            yield from _pipeline_problems(base, pipeline, clusters, envs)
            only = next(iter(clusters)) if len(clusters) == 1 else None
            key = (pipeline.get("cluster") or only, pipeline.get("namespace"), pipeline.get("name"))
            if key in seen:
                message = f"duplicate pipeline '{key[2]}' in namespace '{key[1]}'"
                yield Problem(
                    f"{base}.name", f"{message} (also apps[{index}].pipelines[{seen[key]}])", "duplicate"
                )
            seen.setdefault(key, at)


def _pipeline_problems(
    base: str, pipeline: Mapping[str, Any], clusters: Mapping[str, object], envs: list[str]
) -> Iterator[Problem]:
    label, configured = "Tekton cluster", list(clusters)
    cluster = pipeline.get("cluster")
    if cluster is None and len(configured) == 1:
        cluster = configured[0]
    if cluster is None:
        why = f"{len(configured)} {plural(label)} are configured ({', '.join(configured)})"
        yield Problem(
            f"{base}.cluster", f"required: {why if configured else f'no {label} is configured'}", "xref"
        )
    elif isinstance(cluster, str) and cluster not in clusters:
        yield Problem(
            f"{base}.cluster", f"unknown {label} '{cluster}'" + _hint(cluster, configured, label), "xref"
        )
    namespace = pipeline.get("namespace")
    listed = clusters.get(cluster) if isinstance(cluster, str) else None
    listed = listed if isinstance(listed, list) else []
    # Only against a valid list: an empty or malformed one is already a problem at its own key.
    names = [n for n in listed if isinstance(n, str) and SLUG_RE.fullmatch(n)]
    if isinstance(namespace, str) and names and len(names) == len(listed) and namespace not in names:
        message = f"'{namespace}' is not a namespace of Tekton cluster '{cluster}'"
        yield Problem(f"{base}.namespace", message + _hint(namespace, names, "namespace"), "xref")
    wanted = pipeline.get("environments")
    for i, env in enumerate(wanted if isinstance(wanted, list) else []):
        if isinstance(env, str) and env not in envs:
            message = f"'{env}' is not an environment of this app" + _hint(env, envs, "environment")
            yield Problem(f"{base}.environments[{i}]", message, "xref")


def _gate_references(raw: Mapping[str, Any]) -> Iterator[Problem]:
    """`pipeline_succeeded` validators: a Tekton cluster to ask, and pipelines their apps configure."""
    clusters = _names(raw.get("tekton"))
    for index, spec in _entries(raw.get("validators")):
        if spec.get("kind") != "pipeline_succeeded":
            continue
        base = f"validators[{index}]"
        if not clusters:
            message = (
                "pipeline_succeeded asks Tekton, but no Tekton cluster is configured (add one under tekton)"
            )
            yield Problem(f"{base}.kind", message, "xref")
        scope = spec.get("apps")
        apps = {a for a in scope if isinstance(a, str)} if isinstance(scope, list) and scope else None
        known = [
            pipeline["name"]
            for _, app in _entries(raw.get("apps"))
            if apps is None or app.get("name") in apps
            for _, pipeline in _entries(app.get("pipelines"))
            if isinstance(pipeline.get("name"), str)
        ]
        wanted = spec.get("pipelines")
        for at, name in enumerate(wanted if isinstance(wanted, list) else []):
            if isinstance(name, str) and name not in known:
                message = f"unknown pipeline '{name}'" + _hint(name, known, "pipeline")
                yield Problem(f"{base}.pipelines[{at}]", message, "xref")


def settings_warnings(settings: Settings) -> Iterator[Problem]:
    """Things that load fine but are probably not what was meant."""
    env_names = list(settings.environment_names)
    app_names = [a.name for a in settings.apps]
    for index, grant in enumerate(settings.access.grants):
        base = f"access.grants[{index}]"
        if not grant.users and not grant.groups:
            yield Problem(base, f"grants role '{grant.role}' to no users and no groups", "warning")
        yield from _unknown_names(f"{base}.environments", grant.environments, env_names, "environment")
        yield from _unknown_names(f"{base}.apps", grant.apps, app_names, "app")
    for index, role in enumerate(settings.access.roles):
        if not role.actions:
            yield Problem(
                f"access.roles[{index}].actions", f"role '{role.name}' allows no actions", "warning"
            )
    for index, env in enumerate(settings.environments):
        path = f"environments[{index}].approvers"
        needed = env.approvals_required
        if needed and env.approvers.empty:
            yield Problem(
                path, f"'{env.name}' requires {needed} approval(s) but lists no approvers", "warning"
            )
        elif not env.approvers.groups and 0 < len(env.approvers.users) < needed:
            count = len(env.approvers.users)
            yield Problem(
                path,
                f"'{env.name}' requires {needed} approvals but lists only {count} approver(s)",
                "warning",
            )
    for index, repo in enumerate(settings.repositories):
        yield from (Problem(path, message, "warning") for path, message in host_warnings(index, repo))
    drift = settings.drift
    if drift.enabled and settings.drift_channel is None:
        message = "drift detection is on but neither drift.channel nor slack.alerts_channel is set"
        yield Problem("drift.channel", message, "warning")
    if drift.enabled and drift.jitter >= drift.interval:
        yield Problem("drift.jitter", "is not shorter than drift.interval; checks may bunch up", "warning")
    yield from _monitor_warnings(settings)
    yield from _gate_warnings(settings)
    yield from _feed_warnings(settings)


def _feed_warnings(settings: Settings) -> Iterator[Problem]:
    feed = settings.feed
    if feed.enabled and not (feed.channel or feed.routes):
        message = (
            "the deployment feed is on but has neither feed.channel nor feed.routes; "
            "deploys are only recorded"
        )
        yield Problem("feed.channel", message, "warning")
    if feed.digest and not (feed.digest_channel or feed.channel):
        yield Problem(
            "feed.digest", "is set but neither feed.digest_channel nor feed.channel says where", "warning"
        )


def _monitor_warnings(settings: Settings) -> Iterator[Problem]:
    monitor = settings.pipeline_monitor
    if not settings.pipeline_monitor_enabled:
        return
    if not any(app.pipelines for app in settings.apps):
        yield Problem("pipeline_monitor.enabled", "is true but no app lists pipelines to watch", "warning")
        return
    if settings.pipeline_monitor_channel is None:
        message = (
            "the pipeline monitor is on but neither pipeline_monitor.channel, drift.channel nor "
            "slack.alerts_channel is set; failed runs no route matches are only audited"
        )
        yield Problem("pipeline_monitor.channel", message, "warning")
    if monitor.jitter >= monitor.interval:
        yield Problem(
            "pipeline_monitor.jitter",
            "is not shorter than pipeline_monitor.interval; scans may bunch up",
            "warning",
        )


def _unknown_names(path: str, given: Iterable[str], known: list[str], label: str) -> Iterator[Problem]:
    for index, name in enumerate(given):
        if name != "*" and name not in known:
            yield Problem(
                f"{path}[{index}]", f"unknown {label} '{name}'" + _hint(name, known, label), "warning"
            )


def _gate_warnings(settings: Settings) -> Iterator[Problem]:
    """A `pipeline_succeeded` gate whose apps and environments have no pipeline checks nothing."""
    for index, spec in enumerate(settings.validators):
        if not isinstance(spec, PipelineSucceeded):
            continue
        apps = [a for a in settings.apps if not spec.apps or a.name in spec.apps]
        envs = spec.environments or settings.environment_names
        covered = any(
            p.applies_to(env) and (not spec.pipelines or p.name in spec.pipelines)
            for app in apps
            for p in app.pipelines
            for env in envs
        )
        if not covered:
            message = (
                "no app it applies to has a pipeline for its environments, so it checks nothing; "
                "add apps[].pipelines or narrow its apps / environments"
            )
            yield Problem(f"validators[{index}]", message, "warning")
