"""Argo CD errors → the product's user-facing errors, at the backend boundary.

The wording names the app and the instance, and says what the user can do; third-party text
appears only where it is Argo CD's own (bounded) message about the request.
"""

from __future__ import annotations

from services.argocd.errors import (
    ArgoCDAutoSyncRollbackRefused,
    ArgoCDError,
    ArgoCDInvalidArgument,
    ArgoCDNotFound,
    ArgoCDOperationInProgress,
    ArgoCDPermissionDenied,
    ArgoCDUnauthenticated,
    ArgoCDUnavailable,
)
from services.backend import AppNotFound, AppRef, AutoSyncBlocksRollback, OperationInProgress
from services.errors import BackendUnavailable, GitOpsBotError, PermissionDenied, UserError

REJECTED_401 = "the bot's token was rejected (401); ask an admin to rotate it"
_PLAIN_DENIAL = "permission denied"


def not_found(ref: AppRef) -> AppNotFound:
    where = f" in project `{ref.project}`" if ref.project else ""
    return AppNotFound(
        f"No app `{ref.name}` on Argo CD instance `{ref.instance}`{where}.",
        hint="Check the name with `/gitops status`; the bot only sees apps its Argo CD account may read.",
    )


def denied(instance: str, action: str, ref: AppRef | None, exc: ArgoCDError) -> PermissionDenied:
    what = f"app `{ref.name}`" if ref else "apps"
    reason = f"Argo CD instance `{instance}` does not allow the bot to {action} {what}"
    if exc.message and exc.message.lower() != _PLAIN_DENIAL:
        reason += f" ({exc.message})"  # e.g. "cannot sync: blocked by sync window"
    elif ref is not None and ref.project is None:
        # Without a project Argo CD answers 403 for a missing app too (anti-enumeration).
        reason += ", or has no such app (Argo CD does not say which)"
    return PermissionDenied(reason + ".")


def unavailable_text(exc: ArgoCDError) -> str:
    if exc.status is None:
        return exc.message  # our own wording (connection refused, timeout, no token)
    if exc.code is not None:
        return f"HTTP {exc.status}: {exc.message}"  # Argo CD's own gRPC message
    if 200 <= exc.status < 300:
        return "answered with a page that is not Argo CD's API (a login page or proxy in the way?)"
    return f"HTTP {exc.status}"


def translate(exc: ArgoCDError, *, instance: str, action: str, ref: AppRef | None) -> GitOpsBotError | None:
    """The product error for `exc`, or None to let it propagate as an internal error."""
    label = f"Argo CD {instance}"
    if isinstance(exc, ArgoCDNotFound) and ref is not None:
        return not_found(ref)
    if isinstance(exc, ArgoCDPermissionDenied):
        return denied(instance, action, ref, exc)
    if isinstance(exc, ArgoCDOperationInProgress):
        name = f"`{ref.name}`" if ref else "the app"
        return OperationInProgress(
            f"Argo CD instance `{instance}` refused to {action} {name}: "
            "another operation is already in progress.",
            hint="Wait for it to finish, or terminate it first.",
        )
    if isinstance(exc, ArgoCDAutoSyncRollbackRefused):
        name = f"`{ref.name}`" if ref else "the app"
        return AutoSyncBlocksRollback(
            f"Argo CD refuses to roll back {name} while automated sync is on: auto-sync would "
            "immediately move the app forward to the latest Git revision again.",
            hint="Turn auto-sync off for this app first, then roll back.",
        )
    if isinstance(exc, ArgoCDInvalidArgument):
        target = f" `{ref.name}`" if ref else ""
        return UserError(f"Argo CD refused to {action}{target}: {exc.message}")
    if isinstance(exc, ArgoCDUnauthenticated):
        return BackendUnavailable(label, REJECTED_401)
    if isinstance(exc, ArgoCDUnavailable):
        return BackendUnavailable(label, unavailable_text(exc), retry_after=exc.retry_after)
    if isinstance(exc, ArgoCDNotFound):
        return UserError(f"Argo CD instance `{instance}` has no such resource: {exc.message}")
    return None
