"""What the operator is told at start, worded for them (bot-level operator messages, not Slack's).

Problems that stop the bot name the environment variable to fix; warnings do not stop it but say
why it is less useful than it looks: nobody granted a role, a backend not answering.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from services.settings.model import Settings

APP_LEVEL_SHAPE = (
    "SLACK_APP_TOKEN: not an app-level token (those start with xapp-){hint}; create one with the "
    "connections:write scope under Basic Information → App-Level Tokens"
)
_APP_LEVEL_REFUSED = {
    "not_allowed_token_type": (
        "SLACK_APP_TOKEN is not an app-level token (Slack answered not_allowed_token_type): use the "
        "xapp-… token from Basic Information → App-Level Tokens, not the bot token"
    ),
    "missing_scope": (
        "SLACK_APP_TOKEN lacks the connections:write scope (Slack answered missing_scope): create an "
        "app-level token with that scope under Basic Information → App-Level Tokens"
    ),
}
_APP_LEVEL_INVALID = (
    "SLACK_APP_TOKEN was refused by Slack ({code}): it is wrong, revoked or belongs to another app; "
    "create a new app-level token (connections:write) under Basic Information → App-Level Tokens"
)
SOCKET_UNREACHABLE = (
    "Slack could not be reached to open the Socket Mode connection ({reason}); check egress to "
    "slack.com:443 and any proxy"
)
SOCKET_NOT_UP = (
    "Socket Mode: Slack issued a connection URL but the WebSocket did not open; retrying in the "
    "background (check egress to wss-primary.slack.com:443)"
)
BOT_REFUSED = (
    "SLACK_BOT_TOKEN was refused by Slack (auth.test: {code}): it is wrong or revoked; copy the Bot User "
    "OAuth Token (xoxb-…) from OAuth & Permissions"
)
NO_GRANTS = (
    "access.grants is empty, so everyone is a viewer: status, diff and history answer, but nobody can "
    "sync, roll back, promote, suspend, resume or lock; grant roles in the configuration "
    "(docs/configuration.md, access)"
)
BACKEND_UNREACHABLE = (
    "{backend} did not answer at start: {detail}; its commands and drift scans fail until it does "
    "(in Kubernetes, check the NetworkPolicy placeholders: docs/deploy.md, step 8)"
)
_UNREACHABLE = "unreachable"  # how GitOpsService.versions() marks a backend that did not answer


def app_token_problem(token: str) -> str | None:
    """The token's shape, checked before anything connects: a pasted bot token is the usual slip."""
    if token.startswith("xapp-"):
        return None
    hint = ", and this one looks like a bot or user token (xox…)" if token.startswith("xox") else ""
    return APP_LEVEL_SHAPE.format(hint=hint)


def app_token_refused(code: str) -> str:
    """Slack's answer to apps.connections.open, as what to do about SLACK_APP_TOKEN."""
    return _APP_LEVEL_REFUSED.get(code, _APP_LEVEL_INVALID.format(code=code or "no error code"))


def bot_token_refused(detail: str) -> str:
    """Bolt's auth.test failure text, as what to do about SLACK_BOT_TOKEN (the error code only)."""
    found = re.search(r"'error': '([a-z_]+)'", detail)
    return BOT_REFUSED.format(code=found.group(1) if found else "refused")


def access_warnings(settings: Settings) -> list[str]:
    return [] if settings.access.grants else [NO_GRANTS]


def backend_warnings(versions: Mapping[str, str]) -> list[str]:
    """Backends whose version request failed (GitOpsService.versions marks them `unreachable (…)`)."""
    found = []
    for backend, answer in sorted(versions.items()):
        if answer.startswith(_UNREACHABLE):
            detail = answer[len(_UNREACHABLE) :].strip().removeprefix("(").removesuffix(")") or _UNREACHABLE
            found.append(BACKEND_UNREACHABLE.format(backend=backend, detail=detail))
    return found
