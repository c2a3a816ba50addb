"""The `/gitops` listener: ack at once, slow work on the bounded pool, one reply updated in place."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from handlers import messages as msg
from handlers.blocks import Reply, escape, message, section
from handlers.boundary import Result, error_result, guarded
from handlers.commands_spec import SUBCOMMANDS
from handlers.conversation import Conversation
from handlers.deps import Caller, Deps, Executor
from handlers.grammar import CommandRequest, parse_command
from handlers.help import help_reply
from handlers.recording import record
from services.correlation import new_correlation_id
from services.errors import NotAvailable, UserError
from services.settings_types import format_duration

log = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    app.command(deps.settings.slack.command)(_listener(deps))


def _listener(deps: Deps) -> Any:
    def on_command(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        started = time.perf_counter()
        cid = new_correlation_id()
        caller = Caller.from_command(command)
        text = str(command.get("text", "")).strip()
        if deps.redact is not None:
            text = deps.redact(text)
        try:
            request = parse_command(text, now=deps.clock())
        except UserError as exc:
            _finish_inline(
                deps, ack, caller, text, "invalid", "", error_result(exc, correlation_id=cid), cid, started
            )
            return
        target = _target(request)
        filtered_help = deps.authz is not None and deps.authz.policy.configured
        if request.subcommand == "help" and not filtered_help:
            result = Result(help_reply(request.topic), "ok", "")
            _finish_inline(deps, ack, caller, text, "help", target, result, cid, started)
            return
        limited = _rate_limited(deps, request, caller)
        if limited is not None:
            _finish_inline(deps, ack, caller, text, request.subcommand, target, limited, cid, started)
            return
        executor = (
            _help_executor(deps) if request.subcommand == "help" else deps.executors.get(request.subcommand)
        )
        if executor is None:
            needs = msg.NOT_AVAILABLE_NEEDS.get(request.subcommand, "a later release")
            unavailable = NotAvailable(msg.NOT_AVAILABLE.format(subcommand=request.subcommand, needs=needs))
            _finish_inline(
                deps,
                ack,
                caller,
                text,
                request.subcommand,
                target,
                error_result(unavailable, correlation_id=cid),
                cid,
                started,
            )
            return
        if not deps.jobs.has_capacity():
            busy = Result(
                _plain(msg.BUSY.format(command=escape(text))), "failed", "busy: background pool full"
            )
            _finish_inline(deps, ack, caller, text, request.subcommand, target, busy, cid, started)
            return
        _ack(deps, ack, _plain(msg.WORKING.format(command=escape(text))), started)

        def work() -> None:
            conversation = Conversation(respond, client, channel=caller.channel_id, user=caller.user_id)
            result = guarded(
                lambda: _authorized(deps, executor, request, caller, conversation), correlation_id=cid
            )
            conversation.finish(result.reply)
            record(
                deps,
                caller,
                action=request.subcommand,
                command_text=text,
                target=target,
                result=result,
                correlation_id=cid,
                started=started,
            )

        if not deps.jobs.submit(work, name=request.subcommand):
            busy = Result(
                _plain(msg.BUSY.format(command=escape(text))), "failed", "busy: background pool full"
            )
            _respond(respond, busy.reply)
            record(
                deps,
                caller,
                action=request.subcommand,
                command_text=text,
                target=target,
                result=busy,
                correlation_id=cid,
                started=started,
            )

    return on_command


def _finish_inline(
    deps: Deps,
    ack: Ack,
    caller: Caller,
    text: str,
    action: str,
    target: str,
    result: Result,
    cid: str,
    started: float,
) -> None:
    _ack(deps, ack, result.reply, started)
    record(
        deps,
        caller,
        action=action,
        command_text=text,
        target=target,
        result=result,
        correlation_id=cid,
        started=started,
    )


def _ack(deps: Deps, ack: Ack, reply: Reply, started: float) -> None:
    ack(**reply.as_kwargs())
    deps.metrics.observe_ack("command", time.perf_counter() - started)


def _respond(respond: Respond, reply: Reply) -> None:
    try:
        respond(replace_original=True, **reply.as_kwargs())
    except Exception:  # an expired response_url must not take the audit row down with it
        log.warning("could not deliver the reply to Slack", exc_info=True)


def _authorized(
    deps: Deps, executor: Executor, request: CommandRequest, caller: Caller, conversation: Conversation
) -> Reply:
    if deps.authz is not None:
        deps.authz.command(caller, request)  # in the background: it may ask Slack for user groups
    return executor(request, caller, conversation)


def _help_executor(deps: Deps) -> Executor:
    def run(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        allowed = deps.authz.allowed_actions(caller) if deps.authz is not None else None
        return help_reply(request.topic, allowed)

    return run


def _rate_limited(deps: Deps, request: CommandRequest, caller: Caller) -> Result | None:
    spec = SUBCOMMANDS.get(request.subcommand)
    if deps.rate_limiter is None or spec is None or not spec.mutating:
        return None
    wait = deps.rate_limiter.hit(caller.user_id)
    if wait is None:
        return None
    limit = deps.settings.access.rate_limit
    text = msg.RATE_LIMITED.format(
        limit=limit.commands, per=format_duration(limit.per), seconds=max(1.0, wait)
    )
    return Result(_plain(text), "denied", f"rate limited: retry in {wait:.0f}s")


def _plain(text: str) -> Reply:
    return message(text, [section(text)])


def _target(request: CommandRequest) -> str:
    if request.subcommand in ("lock", "unlock"):
        return "/".join(p for p in (request.env, request.lock_app) if p)
    return "/".join(p for p in (request.app, request.env) if p)
