"""Executors for the subcommands that need no backend: `whoami` (and `help`, rendered inline)."""

from __future__ import annotations

from collections.abc import Sequence

from handlers import messages as msg
from handlers.blocks import Reply, context, escape, fields_section, header, message
from handlers.caller import Caller
from handlers.conversation import Conversation
from handlers.deps import Executor
from handlers.grammar.parser import CommandRequest
from services.access.policy import AccessPolicy
from services.extensions.manager import LoadedPlugin
from services.operations import GitOpsService
from services.settings.model import Settings


def _roles(policy: AccessPolicy | None, user_id: str) -> str:
    if policy is None or not policy.configured:
        return msg.WHOAMI_ROLES_DEFAULT
    grants = policy.roles_for(user_id)
    if not grants:
        return msg.WHOAMI_NO_ROLES
    lines = []
    for grant in grants[:10]:
        where = "everywhere" if "*" in grant.environments else "in " + ", ".join(grant.environments)
        scope = ""
        if grant.apps:
            scope += " for apps " + ", ".join(grant.apps)
        if grant.projects:
            scope += " in projects " + ", ".join(grant.projects)
        lines.append(f"• *{escape(grant.role)}* {escape(where)}{escape(scope)} ({escape(grant.via)})")
    return "\n".join(lines)


def whoami_executor(
    settings: Settings,
    version: str,
    ops: GitOpsService | None = None,
    policy: AccessPolicy | None = None,
    plugins: Sequence[LoadedPlugin] = (),
) -> Executor:
    def run(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        versions = ops.versions() if ops is not None else {}

        def shown(kind: str, label: str, name: str) -> str:
            found = versions.get(f"{kind}:{name}")
            return f"{label} `{escape(name)}`" + (f" ({escape(found)})" if found else "")

        backends = [shown("argocd", "Argo CD", i.name) for i in settings.argocd]
        backends += [shown("flux", "Flux", c.name) for c in settings.flux]
        blocks = [
            header(msg.WHOAMI_TITLE),
            fields_section(
                [
                    msg.WHOAMI_USER.format(user_id=escape(caller.user_id)),
                    msg.WHOAMI_ROLES.format(roles=_roles(policy, caller.user_id)),
                    msg.WHOAMI_BACKENDS.format(backends=", ".join(backends) or msg.WHOAMI_NO_BACKENDS),
                ]
            ),
            context(
                msg.WHOAMI_VERSION.format(version=escape(version))
                + "".join(f" · plugin {escape(p.label)}" for p in plugins if not p.builtin)
            ),
        ]
        return message(f"{msg.WHOAMI_TITLE}: {caller.user_id}", blocks)

    return run


def builtin_executors(
    settings: Settings,
    version: str,
    ops: GitOpsService | None = None,
    policy: AccessPolicy | None = None,
    plugins: Sequence[LoadedPlugin] = (),
) -> dict[str, Executor]:
    return {"whoami": whoami_executor(settings, version, ops, policy, plugins)}
