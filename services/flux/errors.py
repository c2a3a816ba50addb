"""The Flux error family: every failed Kubernetes API call made for Flux becomes one of these.

`classify` turns an HTTP status and a `kind: Status` body into the matching class; the client
wraps transport errors itself. Text kept here is bounded and scrubbed of the bearer token by the
client before it gets here.
"""

from __future__ import annotations

from services.errors import THIRD_PARTY_TEXT, bound
from services.kube import parse_status
from services.kube import retry_after as retry_after_seconds

MAX_TEXT = THIRD_PARTY_TEXT


class FluxError(Exception):
    """Base: a call to the Kubernetes API failed. `verb`, `kind` and `namespace` say what was tried."""

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        status: int | None = None,
        reason: str = "",
        verb: str = "",
        kind: str = "",
        name: str = "",
        namespace: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = bound(message)
        self.operation = operation
        self.status = status
        self.reason = reason
        self.verb = verb
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.retry_after = retry_after
        where = f"{operation}: " if operation else ""
        http = f"HTTP {status}: " if status is not None else ""
        super().__init__(f"{where}{http}{self.message}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.operation!r}, status={self.status}, message={self.message!r})"

    @property
    def path(self) -> str:
        """`Kind ns/name` (or just the kind) for messages."""
        obj = "/".join(p for p in (self.namespace, self.name) if p)
        return f"{self.kind} {obj}".strip()


class FluxNotFound(FluxError):
    """404: the object (or its kind, when the CRD is not installed) does not exist."""


class FluxForbidden(FluxError):
    """403: Kubernetes RBAC does not allow the bot's identity this verb."""


class FluxConflict(FluxError):
    """409: the object changed under us (the client retries a patch once)."""


class FluxInvalid(FluxError):
    """400 / 422: the request was refused as malformed (a bad selector, a rejected patch)."""


class FluxUnavailable(FluxError):
    """5xx, 401, 429, timeouts, refused connections, or an answer that is not the API's JSON."""


def classify(
    status: int,
    body: str | None,
    *,
    operation: str,
    verb: str = "",
    kind: str = "",
    name: str = "",
    namespace: str | None = None,
    retry_after: str | None = None,
) -> FluxError:
    """The error for a non-2xx answer. `body` must already be free of the token."""
    message, reason = parse_status(body)
    if not message:
        message = f"unexpected response: {bound(body or '') or '(empty body)'}"

    def make(cls: type[FluxError], text: str, wait: float | None = None) -> FluxError:
        return cls(
            text,
            operation=operation,
            status=status,
            reason=reason,
            verb=verb,
            kind=kind,
            name=name,
            namespace=namespace,
            retry_after=wait,
        )

    if status == 404:
        return make(FluxNotFound, message)
    if status == 403:
        return make(FluxForbidden, message)
    if status == 409:
        return make(FluxConflict, message)
    if status in (400, 422):
        return make(FluxInvalid, message)
    if status == 401:
        return make(FluxUnavailable, "the cluster rejected the bot's credentials (401)")
    if status >= 500 or status in (408, 429):
        return make(FluxUnavailable, message, retry_after_seconds(retry_after))
    return make(FluxError, message)


__all__ = [
    "MAX_TEXT",
    "FluxConflict",
    "FluxError",
    "FluxForbidden",
    "FluxInvalid",
    "FluxNotFound",
    "FluxUnavailable",
    "bound",
    "classify",
    "parse_status",
]
