"""The plain-text report of `gitops-bot check-config`. Names and counts only, never a secret."""

from __future__ import annotations

from bot.config import LoadedConfig
from services.settings.model import App, Environment, Settings
from services.settings.types import format_duration


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _approval(env: Environment) -> str:
    if not env.approvals_required:
        return f"{env.name}: no approval needed"
    who = [
        _plural(len(env.approvers.users), "user") if env.approvers.users else "",
        _plural(len(env.approvers.groups), "group") if env.approvers.groups else "",
    ]
    listed = " and ".join(w for w in who if w) or "nobody listed"
    return (
        f"{env.name}: {_plural(env.approvals_required, 'approval')} from {listed}, "
        f"expires after {format_duration(env.approval_timeout)}"
    )


def _app_line(app: App) -> str:
    targets = []
    for env, t in app.environments.items():
        kind = f" {t.kind}" if t.backend == "flux" else ""
        namespace = f"{t.namespace}/" if t.namespace else ""
        targets.append(f"{env}→{t.backend}:{t.instance}{kind} {namespace}{t.name}")
    return f"{app.name}: {', '.join(targets)}"


def _backends(settings: Settings) -> list[str]:
    argocd = [f"{i.name} ({i.url})" for i in settings.argocd]
    flux = [f"{c.name} ({'in-cluster' if c.in_cluster else c.kubeconfig})" for c in settings.flux]
    repos = [f"{r.name} ({r.url}, branch {r.branch})" for r in settings.repositories]
    return [
        f"Argo CD instances ({len(argocd)}): {', '.join(argocd) or 'none'}",
        f"Flux clusters ({len(flux)}): {', '.join(flux) or 'none'}",
        f"Repositories ({len(repos)}): {', '.join(repos) or 'none'}",
    ]


def format_summary(loaded: LoadedConfig) -> str:
    """What the loaded configuration amounts to, for a human checking it before deploying."""
    s = loaded.settings
    source = str(loaded.source) if loaded.source is not None else "(no config file read)"
    if loaded.secrets.slack_app_token is not None:
        mode = "Socket Mode (SLACK_APP_TOKEN is set)"
    else:
        mode = f"HTTP mode on port {s.server.port} (host {s.server.host})"
    lines = [f"Config OK: {source}", f"Slack: {mode}, command {s.slack.command}"]
    if loaded.slack_api_url:
        lines.append(f"Slack Web API: {loaded.slack_api_url}")
    lines += _backends(s)
    lines.append(f"Environments in promotion order: {' → '.join(s.environment_names) or 'none'}")
    lines += [f"  {_approval(env)}" for env in s.environments]
    lines.append(f"Apps ({len(s.apps)}):" if s.apps else "Apps: none")
    lines += [f"  {_app_line(app)}" for app in s.apps]
    lines.append(
        f"Access: {_plural(len(s.access.roles), 'custom role')}, {_plural(len(s.access.grants), 'grant')}"
    )
    if s.drift.enabled:
        where = s.drift_channel or "no channel"
        every, jitter = format_duration(s.drift.interval), format_duration(s.drift.jitter)
        lines.append(f"Drift: every {every} (±{jitter} jitter), alerts to {where}")
    else:
        lines.append("Drift: off")
    kept = f"{s.audit.retention_days} days" if s.audit.retention_days else "forever"
    if s.database.postgres:
        tls = f", sslmode {s.database.sslmode}" if s.database.sslmode else ""
        lines.append(f"Database: PostgreSQL {s.database_url} (pool {s.database.pool_size}{tls})")
    else:
        lines.append(f"Database: SQLite {s.database_url}")
    lines.append(f"Audit: kept {kept}")
    lines.append(f"Logging: {s.logging.level}")
    plugins = [p.label for p in loaded.extensions.plugins if not p.builtin]
    lines.append("Plugins: " + (", ".join(plugins) if plugins else "none (built-in extensions only)"))
    if s.validators:
        lines.append("Validators: " + ", ".join(v.kind for v in s.validators))
    if s.notifiers:
        lines.append("Notifiers: " + ", ".join(f"{n.kind} {n.name}" for n in s.notifiers))
    for title, items in (("Notes", loaded.notes), ("Warnings", loaded.warnings)):
        if items:
            lines.append(f"{title} ({len(items)}):")
            lines += [f"  - {item}" for item in items]
    return "\n".join(lines)
