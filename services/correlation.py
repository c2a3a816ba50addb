"""The correlation id of the request being handled, for logs, audit rows and error replies."""

from __future__ import annotations

import contextvars
import secrets

_current: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="-")


def new_correlation_id() -> str:
    """Short enough to read out over a call, long enough not to collide in one day's logs."""
    cid = secrets.token_hex(4)
    _current.set(cid)
    return cid


def current_correlation_id() -> str:
    return _current.get()
