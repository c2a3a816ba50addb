"""JSON-lines logging on stdout, every line carrying the correlation id, secrets scrubbed.

Redaction runs on the fully formatted line (message, extras and traceback together), so a
token cannot slip through an exception's text or a third-party library's log call.
"""

from __future__ import annotations

import logging
import sys
from typing import IO

from pythonjsonlogger.json import JsonFormatter

from services.correlation import current_correlation_id
from services.redaction import Redactor

_HANDLER_NAME = "gitops-bot-json"


class _CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = current_correlation_id()
        return True


class RedactingJsonFormatter(JsonFormatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


def configure_logging(level: str, redact: Redactor, *, stream: IO[str] | None = None) -> logging.Handler:
    """Install one JSON handler on the root logger (replacing ours from an earlier call)."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(RedactingJsonFormatter(redact))
    handler.addFilter(_CorrelationFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # Bolt logs whole request bodies (response_url capabilities) at DEBUG/INFO: keep it quieter.
    if level != "DEBUG":
        for noisy in ("slack_bolt", "slack_sdk", "waitress", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
