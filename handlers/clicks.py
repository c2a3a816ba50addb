"""The button pipeline: ack at once, check the click against the stored action, run, audit.

Buttons carry only an opaque id; `services.pending` says what it does and makes it single-use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from handlers.blocks import Reply
from handlers.boundary import Result, error_result, guarded
from handlers.conversation import Conversation
from handlers.deps import Caller, Deps
from handlers.recording import record
from services.correlation import new_correlation_id
from services.errors import BackendUnavailable


@dataclass(frozen=True)
class Click:
    action_id: str
    value: str
    caller: Caller
    body: dict[str, Any]
    respond: Respond
    client: WebClient

    def conversation(self) -> Conversation:
        return Conversation(
            self.respond, self.client, channel=self.caller.channel_id, user=self.caller.user_id
        )


# Returns the final reply and the audit target. Slow handlers may `announce` / `update` on the
# conversation first; the pipeline delivers the final reply.
ClickHandler = Callable[[Click, Deps, Conversation], tuple[Reply, str]]


def register_click(
    app: App, deps: Deps, action_id: str, handler: ClickHandler, *, slow: bool = False
) -> None:
    def on_click(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient
    ) -> None:
        started = time.perf_counter()
        ack()
        deps.metrics.observe_ack("action", time.perf_counter() - started)
        cid = new_correlation_id()
        click = Click(
            action_id, str(action.get("value", ""))[:200], Caller.from_action(body), body, respond, client
        )
        target: list[str] = [click.value]

        def work() -> None:
            conversation = click.conversation()

            def run() -> Reply:
                reply, target[0] = handler(click, deps, conversation)
                return reply

            result = guarded(run, correlation_id=cid)
            _deliver(respond, conversation, result)
            record(deps, click.caller, action=action_id, command_text=f"click {action_id}", target=target[0],
                   result=result, correlation_id=cid, started=started)  # fmt: skip

        if not slow:
            work()
        elif not deps.jobs.submit(work, name=action_id):
            _deliver(respond, click.conversation(), error_result(JobsFull(), correlation_id=cid))

    app.action(action_id)(on_click)


class JobsFull(BackendUnavailable):
    def __init__(self) -> None:
        super().__init__("gitops-bot", "too busy to start this now; the button still works in a minute")


def _deliver(respond: Respond, conversation: Conversation, result: Result) -> None:
    if result.outcome == "ok" or conversation.message_ts is not None:
        conversation.finish(result.reply)
        return
    try:
        # A refusal goes to the clicker alone and leaves the card for the right person.
        respond(replace_original=False, **result.reply.as_kwargs())
    except Exception:  # the response_url may be used up; the audit row still lands
        return
