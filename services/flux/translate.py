"""Flux errors → the product's user-facing errors, at the backend boundary.

The wording names the object (`Kind ns/name`) and the cluster, and says what the user can do;
third-party text appears only where it is the API server's own bounded message.
"""

from __future__ import annotations

from services.backend import AppNotFound, AppRef
from services.errors import BackendUnavailable, GitOpsBotError, PermissionDenied, UserError
from services.flux.errors import (
    FluxConflict,
    FluxError,
    FluxForbidden,
    FluxInvalid,
    FluxNotFound,
    FluxUnavailable,
)
from services.flux.kinds import kind_named


def object_path(ref: AppRef) -> str:
    return f"{ref.kind or 'Kustomization'} {ref.namespace or '?'}/{ref.name}"


def not_found(ref: AppRef) -> AppNotFound:
    return AppNotFound(
        f"No {object_path(ref)} on Flux cluster `{ref.instance}`.",
        hint="Check the name with `/gitops status`; "
        "the bot only sees objects its Kubernetes identity may read.",
    )


def denied(cluster: str, exc: FluxError) -> PermissionDenied:
    verb = exc.verb or "access"
    known = kind_named(exc.kind)
    what = known.plural if known else exc.kind or "objects"
    where = f" in namespace `{exc.namespace}`" if exc.namespace else " across all namespaces"
    return PermissionDenied(
        f"Flux cluster `{cluster}`: Kubernetes RBAC does not allow the bot to {verb} {what}{where}. "
        "Ask a cluster admin to grant it (get, list, patch on the Flux kinds; list on events)."
    )


def translate(exc: FluxError, *, cluster: str, action: str, ref: AppRef | None) -> GitOpsBotError | None:
    """The product error for `exc`, or None to let it propagate as an internal error."""
    label = f"Flux {cluster}"
    if isinstance(exc, FluxNotFound):
        if ref is not None and exc.name == ref.name and exc.kind == (ref.kind or exc.kind):
            return not_found(ref)
        return UserError(f"Flux cluster `{cluster}` has no {exc.path or 'such object'}: {exc.message}")
    if isinstance(exc, FluxForbidden):
        return denied(cluster, exc)
    if isinstance(exc, FluxInvalid):
        target = f" {object_path(ref)}" if ref else ""
        return UserError(f"Flux cluster `{cluster}` refused to {action}{target}: {exc.message}")
    if isinstance(exc, FluxConflict):
        return BackendUnavailable(label, "the object kept changing while the bot patched it; try again")
    if isinstance(exc, FluxUnavailable):
        detail = f"HTTP {exc.status}: {exc.message}" if exc.status else exc.message
        return BackendUnavailable(label, detail, retry_after=exc.retry_after)
    return None


__all__ = ["denied", "not_found", "object_path", "translate"]
