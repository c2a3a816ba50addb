"""Slack listeners: slash commands, buttons, Block Kit rendering. Registered by `register`."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App

from handlers import actions, commands, exec_audit, exec_drift, exec_promote, exec_rollback
from handlers.deps import Deps
from handlers.exec_promote import Promoter
from services.drift_store import IncidentStore

log = logging.getLogger(__name__)


def register(
    app: App, deps: Deps, *, promoter: Promoter | None = None, incidents: IncidentStore | None = None
) -> None:
    commands.register(app, deps)
    if promoter is not None:
        exec_promote.register(app, promoter)
    if incidents is not None:
        exec_drift.register(app, deps, incidents)
    if deps.pending is not None:
        exec_audit.register(app, deps)
    if deps.ops is not None:
        exec_rollback.register(app, deps)
    actions.register_fallback(app, deps)  # last: specific buttons must register before it

    @app.error
    def on_unhandled(error: Exception, body: dict[str, Any]) -> None:
        # Reaches here only if a listener itself failed outside our boundary; never echo the body.
        log.error("unhandled error in a Slack listener", exc_info=error)
