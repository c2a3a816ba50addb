"""The Argo CD error family: every failure of an Argo CD call becomes one of these.

`classify` turns an HTTP response (status + raw body) into the matching class; the client wraps
transport errors itself. Third-party text kept here is bounded and never contains the token,
because the client scrubs it before building the error.
"""

from __future__ import annotations

import json

from services.errors import THIRD_PARTY_TEXT, bound

MAX_TEXT = THIRD_PARTY_TEXT

_IN_PROGRESS = "another operation is already in progress"
_AUTO_SYNC_ROLLBACK = "rollback cannot be initiated when auto-sync is enabled"
_BAD_SELECTOR = "error parsing the selector"


class ArgoCDError(Exception):
    """Base: an Argo CD call failed. `message` is the server's (bounded) text or our description."""

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        status: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = bound(message)
        self.operation = operation
        self.status = status
        self.code = code
        self.retry_after = retry_after
        where = f"{operation}: " if operation else ""
        http = f"HTTP {status}: " if status is not None else ""
        super().__init__(f"{where}{http}{self.message}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.operation!r}, status={self.status}, message={self.message!r})"


class ArgoCDNotFound(ArgoCDError):
    """404: the app does not exist (in the project we named)."""


class ArgoCDPermissionDenied(ArgoCDError):
    """403: RBAC denial, a blocking sync window, or a missing app when no project was sent."""


class ArgoCDOperationInProgress(ArgoCDError):
    """400 code 9: another operation is already in progress."""


class ArgoCDAutoSyncRollbackRefused(ArgoCDError):
    """400 code 9: rollback cannot be initiated when auto-sync is enabled."""


class ArgoCDInvalidArgument(ArgoCDError):
    """Any other 400: the request was understood and refused (bad id, bad revision, …)."""


class ArgoCDUnauthenticated(ArgoCDError):
    """401: the token is missing, malformed, expired or revoked."""


class ArgoCDUnavailable(ArgoCDError):
    """5xx, timeouts, refused connections, throttling, or a body that is not Argo CD's JSON."""


def _parse_body(body: str) -> tuple[str | None, int | None]:
    """(message, gRPC code) from the gateway's `{error, code, message}`; (None, None) if not JSON."""
    try:
        data = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    text = data.get("message") or data.get("error")
    code = data.get("code")
    return (
        text if isinstance(text, str) else None,
        code if isinstance(code, int) and not isinstance(code, bool) else None,
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare enough to ignore


def classify(status: int, body: str, *, operation: str, retry_after: str | None = None) -> ArgoCDError:
    """The error for a non-2xx response. `body` must already be free of the token."""
    message, code = _parse_body(body)
    if message is None:
        # Not the gateway's JSON: a proxy page, the 415 plain text, or an empty body.
        shown = bound(body) or "(empty body)"
        if status >= 500 or status in (408, 429):
            return ArgoCDUnavailable(
                f"unexpected response: {shown}",
                operation=operation,
                status=status,
                retry_after=_retry_after(retry_after),
            )
        if status == 401:
            return ArgoCDUnauthenticated(shown, operation=operation, status=status)
        return ArgoCDError(f"unexpected response: {shown}", operation=operation, status=status)
    lowered = message.lower()
    if status == 400:
        if _IN_PROGRESS in lowered:
            return ArgoCDOperationInProgress(message, operation=operation, status=status, code=code)
        if _AUTO_SYNC_ROLLBACK in lowered:
            return ArgoCDAutoSyncRollbackRefused(message, operation=operation, status=status, code=code)
        return ArgoCDInvalidArgument(message, operation=operation, status=status, code=code)
    if status == 401:
        return ArgoCDUnauthenticated(message, operation=operation, status=status, code=code)
    if status == 403:
        return ArgoCDPermissionDenied(message, operation=operation, status=status, code=code)
    if status == 404:
        return ArgoCDNotFound(message, operation=operation, status=status, code=code)
    if status == 500 and lowered.startswith(_BAD_SELECTOR):
        # A plain Go error surfaces as 500, but this one is the caller's selector.
        return ArgoCDInvalidArgument(message, operation=operation, status=status, code=code)
    if status >= 500 or status in (408, 409, 429):
        return ArgoCDUnavailable(
            message, operation=operation, status=status, code=code, retry_after=_retry_after(retry_after)
        )
    return ArgoCDError(message, operation=operation, status=status, code=code)


__all__ = [
    "MAX_TEXT",
    "ArgoCDAutoSyncRollbackRefused",
    "ArgoCDError",
    "ArgoCDInvalidArgument",
    "ArgoCDNotFound",
    "ArgoCDOperationInProgress",
    "ArgoCDPermissionDenied",
    "ArgoCDUnauthenticated",
    "ArgoCDUnavailable",
    "bound",
    "classify",
]
