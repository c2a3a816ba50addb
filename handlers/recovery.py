"""Requests that never reported back: cut off by a shutdown, or left by a process that died.

Each gets its result row in the audit trail — naming its user, channel and target, and the
`started` row it finishes — and its Slack message (the public card, or the ephemeral "working…"
note while its response_url still works) is edited to say the bot stopped before the end and
how to check what happened. A request that changed something ends `unknown` (Argo CD may well
have finished the sync); one that only read ends `failed`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from handlers import messages as msg
from handlers.blocks import Block, context, escape, section
from handlers.deps import Deps
from handlers.follow import RENDERERS, RendererFactory
from handlers.resume import Follower, resume, still_running
from services.audit.trail import AuditEvent, Outcome
from services.errors import GitOpsBotError
from services.inflight import Inflight
from services.settings.model import Settings

log = logging.getLogger(__name__)

RESPONSE_URL_LIFETIME = timedelta(minutes=30)  # Slack's limit for response_url
PIPELINE_ACTIONS = frozenset({"pipeline", "pipeline_start", "pipeline_cancel"})
Why = Literal["restart", "shutdown"]


@dataclass(frozen=True)
class Cutoff:
    """How a request of this process ended at shutdown (from the job pool)."""

    ran_for: float | None  # seconds it ran; None when it was still queued


def recover(
    deps: Deps,
    client: WebClient,
    requests: Iterable[Inflight],
    *,
    why: Why,
    cutoffs: Mapping[str, Cutoff] | None = None,
    renderers: Mapping[str, RendererFactory] | None = None,
    followers: Mapping[str, Follower] | None = None,
    now: datetime | None = None,
) -> int:
    """Close every request given; returns how many. Slack failures are logged, never raised.

    An operation the watcher was following is not closed: at shutdown it is recorded as still
    running (and kept), and at the next start it is followed again where that can be done.
    """
    assert deps.inflight is not None
    at = now or datetime.now(UTC)
    done = 0
    for request in requests:
        if request.watch is not None:
            if why == "shutdown":
                still_running(deps, client, request)
                continue
            if resume(deps, client, request, renderers or RENDERERS, followers):
                continue
        cut = (cutoffs or {}).get(request.correlation_id)
        outcome, detail = _outcome(request, why, cut)
        event = AuditEvent(
            user_id=request.user_id, user_name=request.user_name, channel=request.channel,
            command=request.command, target=request.target, action=request.action, outcome=outcome,
            detail=detail, correlation_id=request.correlation_id,
            duration_ms=max(0, int((at - request.accepted_at).total_seconds() * 1000)),
            request_id=request.started_id,
        )  # fmt: skip
        try:
            if not deps.inflight.settle(request.correlation_id, partial(deps.audit.append, event)):
                continue  # it finished (or was recovered) meanwhile
        except GitOpsBotError:
            log.error("audit row could not be written", extra={"action": request.action})
            continue
        done += 1
        _tell_slack(client, request, _notice(deps.settings, request, why, outcome), at)
    if done:
        log.warning("requests cut off", extra={"why": why, "requests": done})
    return done


def _outcome(request: Inflight, why: Why, cut: Cutoff | None) -> tuple[Outcome, str]:
    if why == "shutdown" and cut is not None and cut.ran_for is None:
        return "failed", "interrupted: the bot shut down before this started; nothing was done"
    ran = f" after {cut.ran_for:.0f}s" if cut is not None and cut.ran_for is not None else ""
    stop = (
        f"the bot shut down{ran} before this finished"
        if why == "shutdown"
        else "the bot stopped (killed or crashed) before this finished; found at the next start"
    )
    if request.started_id is None:  # it only read: nothing can have changed
        return "failed", f"interrupted: {stop}"
    return "unknown", f"interrupted: {stop}; whether it completed is unknown"


def _notice(settings: Settings, request: Inflight, why: Why, outcome: Outcome) -> str:
    what = msg.CUTOFF_SHUTDOWN if why == "shutdown" else msg.CUTOFF_RESTART
    if request.action in PIPELINE_ACTIONS:  # a Tekton run: where it shows, not the app's deploys
        check = "`" + " ".join(["/gitops pipelines", *(p for p in request.target.split("/")[:2] if p)]) + "`"
    else:
        check = check_commands(settings, request.target)
    if outcome == "unknown":
        return msg.CUTOFF_UNKNOWN.format(what=what, check=check)
    if request.command.startswith("click "):
        return msg.CUTOFF_NOTHING_CLICK.format(what=what)
    return msg.CUTOFF_NOTHING.format(what=what, command=escape(request.command))


def check_commands(settings: Settings, target: str) -> str:
    """The commands that tell what became of a change to `target` (runnable as written)."""
    app, _, env = target.partition("/")
    configured = settings.app(app)
    if configured is not None and env in configured.environments:
        where = f"{app} {env}" if len(configured.environments) > 1 else app
    elif target and settings.environment(target) is None:
        where = target
    else:
        return "`/gitops status`"
    return f"`/gitops status {where}` and `/gitops history {where}`"


def _tell_slack(client: WebClient, request: Inflight, text: str, at: datetime) -> None:
    if request.message_channel and request.message_ts:
        blocks = [*_kept(request.message), section(text), context(f"ref `{request.correlation_id}`")]
        try:
            client.chat_update(
                channel=request.message_channel, ts=request.message_ts, text=text, blocks=blocks
            )
        except SlackApiError as exc:
            log.warning("could not correct the message", extra={"error": str(exc.response.get("error"))})
        return
    if request.response_url and at - request.accepted_at < RESPONSE_URL_LIFETIME:
        try:
            WebhookClient(request.response_url).send(
                text=text, blocks=[section(text)], replace_original=True, response_type="ephemeral"
            )
        except Exception:  # the response_url may be used up or expired: nothing else can reach it
            log.warning("could not correct the ephemeral message", exc_info=True)


def _kept(message: Mapping[str, Any] | None) -> list[Block]:
    """The message as last shown, without its buttons (they would act on a finished request)."""
    blocks = message.get("blocks") if message else None
    if not isinstance(blocks, list):
        return []
    return [b for b in blocks if isinstance(b, dict) and b.get("type") not in ("actions", "input")][:46]
