"""The `/gitops` listener: ack at once, slow work on the bounded pool, one reply updated in place.

What can be answered without I/O (errors, `help`, refusals) is answered inside the ack. The rest
is acknowledged with a "working…" note, noted as accepted (audited as `started` when it changes
something), and handed to the pool, whose result replaces the note.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from handlers import messages as msg
from handlers.authz import pipeline_env
from handlers.blocks import Reply, escape, message, section
from handlers.boundary import Result, error_result
from handlers.caller import Caller
from handlers.conversation import Conversation
from handlers.deps import Deps, Executor
from handlers.grammar.parser import CommandRequest, parse_command
from handlers.grammar.spec import SUBCOMMANDS
from handlers.help import help_reply
from handlers.recording import accept, finish, record, run_tracked
from services.correlation import new_correlation_id
from services.errors import NotAvailable, UserError
from services.pipelines import PipelineRuns
from services.settings.types import format_duration

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

        def inline(action: str, target: str, result: Result) -> None:
            _ack(deps, ack, result.reply, started)
            record(deps, caller, action=action, command_text=text, target=target, result=result,
                   correlation_id=cid, started=started)  # fmt: skip

        try:
            request = parse_command(text, now=deps.clock())
        except UserError as exc:
            inline("invalid", "", error_result(exc, correlation_id=cid))
            return
        target = _target(deps, request)
        if request.subcommand == "help":
            known, allowed = _help_scope(deps, caller)
            if known:
                inline("help", target, Result(help_reply(request.topic, allowed), "ok", ""))
                return
        limited = _rate_limited(deps, request, caller)
        if limited is not None:
            inline(request.subcommand, target, limited)
            return
        executor = (
            _help_executor(deps) if request.subcommand == "help" else deps.executors.get(request.subcommand)
        )
        if executor is None:
            needs = msg.NOT_AVAILABLE_NEEDS.get(request.subcommand, "a later release")
            unavailable = NotAvailable(msg.NOT_AVAILABLE.format(subcommand=request.subcommand, needs=needs))
            inline(request.subcommand, target, error_result(unavailable, correlation_id=cid))
            return
        busy = Result(_plain(msg.BUSY.format(command=escape(text))), "failed", "busy: background pool full")
        if not deps.jobs.has_capacity():
            inline(request.subcommand, target, busy)
            return
        # `help` waiting on Slack user groups answers in a moment: no "working…" flash before it.
        _ack(deps, ack, None if request.subcommand == "help" else _working(text), started)
        spec = SUBCOMMANDS.get(request.subcommand)
        accepted = accept(
            deps, caller, action=request.subcommand, command_text=text, target=target, correlation_id=cid,
            started=started, changes=bool(spec and spec.mutating),
            response_url=str(command.get("response_url") or "") or None,
        )  # fmt: skip

        def work() -> None:
            conversation = Conversation(
                respond, client, channel=caller.channel_id, user=caller.user_id,
                on_shown=lambda channel, ts, reply: accepted.shown(deps, channel, ts, reply),
                later=deps.ops.watcher.call_later if deps.ops is not None else None,
            )  # fmt: skip
            run_tracked(
                deps, accepted, conversation,
                lambda: _authorized(deps, executor, request, caller, conversation),
                deliver=lambda result: conversation.finish(result.reply),
            )  # fmt: skip

        if not deps.jobs.submit(work, name=request.subcommand):
            finish(deps, accepted, busy)
            _respond(respond, busy.reply)

    return on_command


def _ack(deps: Deps, ack: Ack, reply: Reply | None, started: float) -> None:
    if reply is None:
        ack()
    else:
        ack(**reply.as_kwargs())
    deps.metrics.observe_ack("command", time.perf_counter() - started)


def _working(text: str) -> Reply:
    return _plain(msg.WORKING.format(command=escape(text)))


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


def _help_scope(deps: Deps, caller: Caller) -> tuple[bool, frozenset[str] | None]:
    """(known without I/O, what `help` may list: None for everything). Not known when a Slack
    user group that grants something has not been fetched yet."""
    if deps.authz is None or not deps.authz.policy.configured:
        return True, None
    allowed = deps.authz.policy.allowed_actions_now(caller.user_id)
    return allowed is not None, allowed


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


def _target(deps: Deps, request: CommandRequest) -> str:
    """The app's one audit target (`app/env`), as far as the configuration tells without I/O."""
    if request.subcommand in ("lock", "unlock"):
        if request.lock_app and request.env:
            return _typed(deps, request.lock_app, request.env)
        return request.env or ""
    if request.app is None:
        return ""
    if request.subcommand in ("pipeline", "pipelines") and deps.pipelines is not None:
        return _pipeline_target(deps, deps.pipelines, request, request.app)
    env = request.to if request.subcommand == "promote" else request.env
    return _typed(deps, request.app, env)


def _pipeline_target(deps: Deps, pipelines: PipelineRuns, request: CommandRequest, name: str) -> str:
    """A pipeline's name stands for its app (the same target its buttons' rows carry)."""
    try:
        target = pipelines.targets.resolve(name, request.env, request.namespace)
    except UserError:  # a list over several pipelines, or a name the executor will refuse
        owners = {t.app for t in pipelines.targets.all if t.pipeline == name}
        return _typed(deps, owners.pop() if len(owners) == 1 else name, request.env)
    return _typed(deps, target.app, pipeline_env(target))


def _typed(deps: Deps, app: str, env: str | None) -> str:
    if deps.ops is not None:
        return deps.ops.resolver.typed_target(app, env)
    return "/".join(p for p in (app, env) if p)
