"""Button clicks. Specific buttons (approve, confirm rollback, …) register before the catch-all,
which answers clicks on buttons this process no longer knows (old messages, removed features)."""

from __future__ import annotations

import re
import time
from typing import Any

from slack_bolt import Ack, App, Respond

from handlers import messages as msg
from handlers.blocks import message, section
from handlers.boundary import Result
from handlers.caller import Caller
from handlers.deps import Deps
from handlers.recording import record
from services.correlation import new_correlation_id


def register_fallback(app: App, deps: Deps) -> None:
    app.action(re.compile(".*"))(_fallback(deps))


def _fallback(deps: Deps) -> Any:
    def on_unknown_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        started = time.perf_counter()
        ack()
        deps.metrics.observe_ack("action", time.perf_counter() - started)
        cid = new_correlation_id()
        reply = message(msg.BUTTON_EXPIRED, [section(msg.BUTTON_EXPIRED)])
        respond(replace_original=False, **reply.as_kwargs())
        action_id = str(action.get("action_id", ""))[:100]
        result = Result(reply, "failed", f"unknown or expired button {action_id}")
        record(
            deps,
            Caller.from_action(body),
            action="click",
            command_text=action_id,
            target="",
            result=result,
            correlation_id=cid,
            started=started,
        )

    return on_unknown_click
