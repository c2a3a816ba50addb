"""`/gitops drift` and the buttons on a drift alert: Sync now, Show diff, Snooze, Acknowledge."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from handlers.blocks import Reply, message, section
from handlers.caller import Caller
from handlers.clicks import Click, ClickHandler, register_click
from handlers.conversation import Conversation
from handlers.deps import Deps, Executor
from handlers.drift.views import (
    ACTION_ACK,
    ACTION_DIFF,
    ACTION_SNOOZE_1H,
    ACTION_SNOOZE_24H,
    ACTION_SYNC,
    incident_card,
    open_incidents_reply,
)
from handlers.follow import start_and_follow
from handlers.gitops.diff import diff_reply
from handlers.grammar.parser import CommandRequest
from services.backend import SyncRequest
from services.diffing.render import render_changes, render_unified_text
from services.drift.store import Incident, IncidentStore
from services.errors import UserError


def drift_executor(deps: Deps, store: IncidentStore) -> Executor:
    def run(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        incidents = store.open_incidents()
        if request.app:
            incidents = [i for i in incidents if request.app in i.app.split("/") or i.app == request.app]
        return open_incidents_reply(incidents)

    return run


def register(app: App, deps: Deps, store: IncidentStore) -> None:
    def locate(click: Click, deps: Deps) -> str:
        incident = store.get(int(click.value)) if click.value.isdigit() else None
        if incident is None:
            return ""
        return deps.ops.resolver.display_target(incident.app) if deps.ops is not None else incident.app

    register_click(app, deps, ACTION_SYNC, lambda c, d, conv: _sync(d, store, c, conv), slow=True,
                   changes=True, locate=locate)  # fmt: skip
    register_click(app, deps, ACTION_DIFF, lambda c, d, conv: _diff(d, store, c), slow=True, locate=locate)
    for action_id, hours in ((ACTION_SNOOZE_1H, 1), (ACTION_SNOOZE_24H, 24)):
        register_click(app, deps, action_id, _snoozer(store, timedelta(hours=hours)), locate=locate)
    register_click(app, deps, ACTION_ACK, lambda c, d, conv: _ack(d, store, c), locate=locate)


def _incident(store: IncidentStore, click: Click) -> Incident:
    incident = store.get(int(click.value)) if click.value.isdigit() else None
    if incident is None:
        raise UserError("This alert is no longer known to the bot.")
    return incident


def _sync(deps: Deps, store: IncidentStore, click: Click, conversation: Conversation) -> tuple[Reply, str]:
    incident = _incident(store, click)
    assert deps.ops is not None
    ref = deps.ops.resolve(incident.app)
    note = None
    if deps.authz is not None:  # permission-checked for whoever clicked
        note = deps.authz.target(click.caller, "sync", ref, now=deps.clock()).note or None
    request = SyncRequest(initiated_by=click.caller.user_name or click.caller.user_id)
    ops = deps.ops
    # In the alert's thread: the alert stays where it is, and the scans keep editing it.
    reply = start_and_follow(
        deps, conversation, ref, lambda: ops.start_sync(ref, request), request=request,
        user=click.caller.user_id, note=note, thread_ts=incident.thread_ts or incident.message_ts,
    )  # fmt: skip
    return reply, incident.app


def _diff(deps: Deps, store: IncidentStore, click: Click) -> tuple[Reply, str]:
    incident = _incident(store, click)
    assert deps.ops is not None
    ref = deps.ops.resolve(incident.app)
    if deps.authz is not None:
        deps.authz.target(click.caller, "diff", ref, now=deps.clock())
    diff = deps.ops.resolver.backend(ref).diff(ref)
    rendered = render_unified_text(diff.text) if diff.text is not None else render_changes(diff.changes)
    return replace(diff_reply(ref, rendered), replace_original=False), incident.app


def _snoozer(store: IncidentStore, length: timedelta) -> ClickHandler:
    def snooze(click: Click, deps: Deps, conversation: Conversation) -> tuple[Reply, str]:
        incident = _incident(store, click)
        if deps.authz is not None:
            deps.authz.policy.check(click.caller.user_id, "drift")
        until = deps.clock() + length
        updated = store.snooze(incident.id, until, click.caller.user_id)
        _refresh(deps, click, updated)
        text = f"Snoozed `{updated.app}` until {until:%Y-%m-%d %H:%M} UTC."
        return message(text, [section(text)], replace_original=False, detail=text), incident.app

    return snooze


def _ack(deps: Deps, store: IncidentStore, click: Click) -> tuple[Reply, str]:
    incident = _incident(store, click)
    if deps.authz is not None:
        deps.authz.policy.check(click.caller.user_id, "drift")
    updated = store.acknowledge(incident.id, click.caller.user_id, now=deps.clock())
    _refresh(deps, click, updated)
    text = f"Acknowledged `{updated.app}`."
    return message(text, [section(text)], replace_original=False, detail=text), incident.app


def _refresh(deps: Deps, click: Click, incident: Incident) -> None:
    if incident.channel and incident.message_ts:
        card = incident_card(incident, now=deps.clock())
        try:
            click.client.chat_update(
                channel=incident.channel, ts=incident.message_ts, text=card.text, blocks=list(card.blocks)
            )
        except SlackApiError:
            return
