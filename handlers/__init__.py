"""Slack listeners: slash commands, buttons, Block Kit rendering. Registered by `register`."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App

from handlers import actions, commands, exec_audit, exec_rollback
from handlers.deps import Deps

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    commands.register(app, deps)
    if deps.pending is not None:
        exec_audit.register(app, deps)
    if deps.ops is not None:
        exec_rollback.register(app, deps)
    actions.register_fallback(app, deps)  # last: specific buttons must register before it

    @app.error
    def on_unhandled(error: Exception, body: dict[str, Any]) -> None:
        # Reaches here only if a listener itself failed outside our boundary; never echo the body.
        log.error("unhandled error in a Slack listener", exc_info=error)
