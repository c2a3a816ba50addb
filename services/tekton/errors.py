"""Tekton API failures as the product's errors (services.errors), so handlers need no translation.

Like `services.flux.errors.classify` plus `services.flux.translate` in one step: 404 → a
`TektonNotFound` (a `UserError` naming the object), 400 / 422 (schema or admission webhook
refusals) → `TektonRefused` with the API server's bounded message, 403 → `TektonForbidden` (a
`PermissionDenied` naming the missing RBAC verb), 409 / 5xx / 401 / 429 / transport →
`TektonUnavailable` (a `BackendUnavailable`). Text reaching here is already scrubbed of the token.
"""

from __future__ import annotations

from services.errors import BackendUnavailable, PermissionDenied, UserError, bound
from services.kube import parse_status
from services.kube import retry_after as retry_after_seconds


class TektonNotFound(UserError):
    """404: the run, TaskRun, Pipeline or pod does not exist (or Tekton is not installed)."""

    def __init__(self, message: str, *, kind: str = "", name: str = "", namespace: str = "") -> None:
        super().__init__(message)
        self.kind, self.name, self.namespace = kind, name, namespace


class TektonRefused(UserError):
    """400 / 422: the API server or Tekton's admission webhook refused the request."""

    def __init__(self, message: str, *, status: int, reason: str = "") -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class TektonForbidden(PermissionDenied):
    """403: Kubernetes RBAC does not give the bot this verb."""


class TektonUnavailable(BackendUnavailable):
    """The cluster is unreachable, slow, overloaded, rejected the credentials, or answered nonsense."""

    def __init__(
        self, cluster: str, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(f"Tekton {cluster}", message, retry_after=retry_after)
        self.status = status


def classify(
    status: int,
    body: str | None,
    *,
    cluster: str,
    verb: str,
    kind: str,
    name: str = "",
    namespace: str = "",
    retry_after: str | None = None,
) -> Exception:
    """The product error for a non-2xx answer to `verb` on `kind` (`pipelineruns`, `pods/log`, …)."""
    message, reason = parse_status(body)
    text = bound(message) if message else f"unexpected response: {bound(body or '') or '(empty body)'}"
    where = f" in namespace `{namespace}`" if namespace else ""
    if status == 404:
        what = f"`{namespace}/{name}`" if name else kind
        return TektonNotFound(
            f"Tekton cluster `{cluster}` has no {kind} {what}."
            if name
            else f"Tekton cluster `{cluster}`: {text}",
            kind=kind,
            name=name,
            namespace=namespace,
        )
    if status == 403:
        return TektonForbidden(
            f"Tekton cluster `{cluster}`: Kubernetes RBAC does not allow the bot to {verb} {kind}{where}. "
            "Ask a cluster admin to grant it (see docs/deploy.md)."
        )
    if status in (400, 422):
        return TektonRefused(
            f"Tekton cluster `{cluster}` refused to {verb} {kind}: {text}", status=status, reason=reason
        )
    if status == 401:
        return TektonUnavailable(cluster, "the cluster rejected the bot's credentials (401)", status=401)
    if status == 409:
        return TektonUnavailable(
            cluster, f"the object changed while the bot wrote it; try again ({text})", status=409
        )
    return TektonUnavailable(
        cluster, f"HTTP {status}: {text}", status=status, retry_after=retry_after_seconds(retry_after)
    )


__all__ = [
    "TektonForbidden",
    "TektonNotFound",
    "TektonRefused",
    "TektonUnavailable",
    "classify",
    "parse_status",
]
