"""Errors grouped by what the user can do about them.

One boundary in `handlers/` turns these into Slack replies: `UserError` text is shown as
written, `PermissionDenied` with its reason, `BackendUnavailable` as "try again", and anything
else as an internal error with a correlation id only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

THIRD_PARTY_TEXT = 300  # how much of another system's error text we keep and show


def bound(text: str, limit: int = THIRD_PARTY_TEXT) -> str:
    """Third-party text as one line of at most `limit` characters (proxies answer with HTML pages)."""
    flat = re.sub(r"\s+", " ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class GitOpsBotError(Exception):
    """Base of every error the product raises on purpose."""


class UserError(GitOpsBotError):
    """The request itself is wrong; the message tells the user how to fix it.

    `hint` is an optional second line (usage, nearest valid names). `mentions` are the Slack user
    ids the bot itself wrote into the text as `<@U…>`: the reply renders those as mentions while
    escaping everything else (user text must never ping or link).
    """

    def __init__(self, message: str, *, hint: str | None = None, mentions: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.mentions = tuple(mentions)


class NotAvailable(UserError):
    """The subcommand exists in the grammar but its backend is not configured or not built yet."""


class PermissionDenied(GitOpsBotError):
    """The caller may not do this; `reason` says why (shown to the user)."""

    def __init__(self, reason: str, *, mentions: Iterable[str] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mentions = tuple(mentions)  # as for UserError


class BackendUnavailable(GitOpsBotError):
    """An external system (Argo CD, Kubernetes, Git, Slack) is down, slow or refusing.

    `backend` names it for the user; `retry_after` (seconds) when the system said so.
    """

    def __init__(self, backend: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{backend}: {message}")
        self.backend = backend
        self.message = message
        self.retry_after = retry_after
