"""The one error boundary: every failure becomes a Block Kit reply and an audit outcome.

User errors are shown as written; denials with their reason; unavailable backends as
"try again"; anything else as an internal error carrying only a correlation id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from handlers import messages as msg
from handlers.blocks import Reply, context, escape, escape_except_mentions, message, section
from services.audit.trail import Outcome
from services.errors import BackendUnavailable, PermissionDenied, UserError
from services.extensions.manager import PluginFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    reply: Reply
    outcome: Outcome
    detail: str


def guarded(fn: Callable[[], Reply], *, correlation_id: str) -> Result:
    try:
        reply = fn()
    except Exception as exc:  # the boundary: nothing escapes as a traceback to Slack
        return error_result(exc, correlation_id=correlation_id)
    return Result(reply=reply, outcome="failed" if reply.failed else "ok", detail=reply.detail)


def error_result(exc: BaseException, *, correlation_id: str) -> Result:
    ref = context(msg.REF.format(correlation_id=correlation_id))
    if isinstance(exc, UserError):
        text = msg.ERROR_USER.format(message=escape_except_mentions(exc.message, exc.mentions))
        blocks = [section(text)]
        if exc.hint:
            blocks.append(section(escape(exc.hint)))
        return Result(message(text, [*blocks, ref]), "failed", exc.message)
    if isinstance(exc, PermissionDenied):
        text = msg.ERROR_DENIED.format(reason=escape_except_mentions(exc.reason, exc.mentions))
        return Result(message(text, [section(text), ref]), "denied", exc.reason)
    if isinstance(exc, BackendUnavailable):
        text = msg.ERROR_BACKEND.format(backend=escape(exc.backend), message=escape(exc.message))
        if exc.retry_after:
            text += msg.ERROR_BACKEND_RETRY.format(seconds=exc.retry_after)
        return Result(message(text, [section(text), ref]), "failed", f"{exc.backend}: {exc.message}")
    if isinstance(exc, PluginFailed):
        text = msg.ERROR_PLUGIN.format(plugin=escape(exc.plugin), correlation_id=correlation_id)
        return Result(message(text, [section(text)]), "error", f"plugin {exc.plugin} failed in {exc.hook}")
    log.error("internal error", exc_info=(type(exc), exc, exc.__traceback__))
    text = msg.ERROR_INTERNAL.format(correlation_id=correlation_id)
    return Result(message(text, [section(text)]), "error", f"internal error: {type(exc).__name__}")
