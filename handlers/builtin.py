"""Executors for the subcommands that need no backend: `whoami` (and `help`, rendered inline)."""

from __future__ import annotations

from handlers import messages as msg
from handlers.blocks import Reply, context, escape, fields_section, header, message
from handlers.conversation import Conversation
from handlers.deps import Caller, Executor
from handlers.grammar import CommandRequest
from services.operations import GitOpsService
from services.settings import Settings


def whoami_executor(settings: Settings, version: str, ops: GitOpsService | None = None) -> Executor:
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
                    msg.WHOAMI_ROLES.format(roles=msg.WHOAMI_ROLES_DEFAULT),
                    msg.WHOAMI_BACKENDS.format(backends=", ".join(backends) or msg.WHOAMI_NO_BACKENDS),
                ]
            ),
            context(msg.WHOAMI_VERSION.format(version=escape(version))),
        ]
        return message(f"{msg.WHOAMI_TITLE}: {caller.user_id}", blocks)

    return run


def builtin_executors(
    settings: Settings, version: str, ops: GitOpsService | None = None
) -> dict[str, Executor]:
    return {"whoami": whoami_executor(settings, version, ops)}
