"""The button pipeline: ack at once, check the click against the stored action, run, audit.

Buttons carry only an opaque id; `services.pending` (or the promotion / incident store) says what
it does and makes it single-use. Each registration names how to `locate` its target from that
stored state, so every row of a click — refusals included — carries the app's one audit target.
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
from handlers.caller import Caller
from handlers.conversation import ClickedMessage, Conversation
from handlers.deps import Deps
from handlers.recording import accept, finish, record, run_tracked
from services.correlation import new_correlation_id
from services.errors import BackendUnavailable, GitOpsBotError


@dataclass(frozen=True)
class Click:
    action_id: str
    value: str
    caller: Caller
    body: dict[str, Any]
    respond: Respond
    client: WebClient

    @property
    def message(self) -> ClickedMessage:
        container = self.body.get("container") or {}
        ts = container.get("message_ts") or (self.body.get("message") or {}).get("ts") or ""
        return ClickedMessage(str(ts), bool(container.get("is_ephemeral")))

    def conversation(
        self,
        on_shown: Callable[[str, str, Reply], None] | None = None,
        later: Callable[[float, Callable[[], None]], None] | None = None,
    ) -> Conversation:
        return Conversation(
            self.respond,
            self.client,
            channel=self.caller.channel_id,
            user=self.caller.user_id,
            clicked=self.message,
            on_shown=on_shown,
            later=later,
        )


# Returns the final reply and the audit target. Slow handlers may `announce` / `update` on the
# conversation first; the pipeline delivers the final reply.
ClickHandler = Callable[[Click, Deps, Conversation], tuple[Reply, str]]
# The click's audit target from the state its value points at ("" when that is gone); cheap.
Locator = Callable[[Click, Deps], str]


def register_click(
    app: App,
    deps: Deps,
    action_id: str,
    handler: ClickHandler,
    *,
    slow: bool = False,
    changes: bool = False,
    locate: Locator | None = None,
) -> None:
    """`slow` clicks run on the background pool; `changes` ones are audited as `started` first."""

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
        target = _located(locate, click, deps)
        if not slow:
            conversation = click.conversation()
            result, where = _run(handler, click, deps, conversation, cid, target)
            _deliver(respond, conversation, result)
            record(deps, click.caller, action=action_id, command_text=f"click {action_id}", target=where,
                   result=result, correlation_id=cid, started=started)  # fmt: skip
            return
        # An ephemeral card can only be corrected through its response_url (after a restart).
        response_url = str(body.get("response_url") or "") if click.message.ephemeral else ""
        accepted = accept(
            deps, click.caller, action=action_id, command_text=f"click {action_id}", target=target,
            correlation_id=cid, started=started, changes=changes, response_url=response_url or None,
        )  # fmt: skip

        def work() -> None:
            conversation = click.conversation(
                on_shown=lambda ch, ts, r: accepted.shown(deps, ch, ts, r),
                later=deps.ops.watcher.call_later if deps.ops is not None else None,
            )
            where = [target]

            def run() -> Reply:
                reply, returned = handler(click, deps, conversation)
                where[0] = target or returned
                return reply

            run_tracked(deps, accepted, conversation, run,
                        deliver=lambda result: _deliver(respond, conversation, result),
                        target=lambda: where[0])  # fmt: skip

        if not deps.jobs.submit(work, name=action_id):
            refused = error_result(JobsFull(), correlation_id=cid)
            finish(deps, accepted, refused)
            _deliver(respond, click.conversation(), refused)

    app.action(action_id)(on_click)


class JobsFull(BackendUnavailable):
    def __init__(self) -> None:
        super().__init__("gitops-bot", "too busy to start this now; the button still works in a minute")


def _located(locate: Locator | None, click: Click, deps: Deps) -> str:
    if locate is None:
        return ""
    try:
        return locate(click, deps)
    except (GitOpsBotError, KeyError, TypeError, ValueError):  # unknown button: the handler says so
        return ""


def _run(
    handler: ClickHandler, click: Click, deps: Deps, conversation: Conversation, cid: str, target: str
) -> tuple[Result, str]:
    where = [target]

    def run() -> Reply:
        reply, returned = handler(click, deps, conversation)
        where[0] = target or returned
        return reply

    return guarded(run, correlation_id=cid), where[0]


def _deliver(respond: Respond, conversation: Conversation, result: Result) -> None:
    if result.outcome == "ok" or conversation.message_ts is not None:
        conversation.finish(result.reply)
        return
    try:
        # A refusal goes to the clicker alone and leaves the card for the right person.
        respond(replace_original=False, **result.reply.as_kwargs())
    except Exception:  # the response_url may be used up; the audit row still lands
        return
