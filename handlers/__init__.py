"""Slack listeners: slash commands, buttons, Block Kit rendering. Registered by `register`.

The shared parts sit here: `commands` (the `/gitops` listener) and `clicks` (the button pipeline),
`grammar/`, `boundary` (errors → replies), `conversation` (one message updated in place),
`recording` / `recovery` (audit rows, cut-off requests), `authz`, `deps`, `caller`, `blocks` and
`cards` (Block Kit pieces), `messages` (every string), `help`, `builtin` (`whoami`), `actions`
(expired buttons). Each subcommand family has a package with its `executor` and `views`:
`gitops/` (status, sync, diff, history, suspend, resume), `rollback/`, `promote/`, `drift/`,
`admin/` (lock, unlock), `audit/`, `pipelines/` (Tekton runs).
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App

from handlers import actions, commands
from handlers.audit import executor as audit
from handlers.deps import Deps
from handlers.drift import executor as drift
from handlers.pipelines import executor as pipelines
from handlers.promote import executor as promote
from handlers.promote.promoter import Promoter
from handlers.rollback import executor as rollback
from services.drift.store import IncidentStore

log = logging.getLogger(__name__)


def register(
    app: App, deps: Deps, *, promoter: Promoter | None = None, incidents: IncidentStore | None = None
) -> None:
    commands.register(app, deps)
    if promoter is not None:
        promote.register(app, promoter)
    if incidents is not None:
        drift.register(app, deps, incidents)
    if deps.pending is not None:
        audit.register(app, deps)
    if deps.ops is not None:
        rollback.register(app, deps)
    if deps.pipelines is not None:
        pipelines.register(app, deps)
    actions.register_fallback(app, deps)  # last: specific buttons must register before it

    @app.error
    def on_unhandled(error: Exception, body: dict[str, Any]) -> None:
        # Reaches here only if a listener itself failed outside our boundary; never echo the body.
        log.error("unhandled error in a Slack listener", exc_info=error)
