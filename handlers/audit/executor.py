"""`/gitops audit`: the trail answered in a thread, newest first, a "More" button per page."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime, timedelta

from slack_bolt import App

from handlers import messages as msg
from handlers.audit.views import ACTION_AUDIT_MORE, audit_page
from handlers.blocks import Reply, escape, message, section
from handlers.caller import Caller
from handlers.clicks import Click, register_click
from handlers.conversation import Conversation
from handlers.deps import Deps, Executor
from handlers.grammar.parser import CommandRequest
from services.audit.query import AuditQuery
from services.errors import UserError

KIND = "audit_page"
PAGE_TTL = timedelta(hours=4)


def audit_executor(deps: Deps) -> Executor:
    def run(request: CommandRequest, caller: Caller, conversation: Conversation) -> Reply:
        query = AuditQuery(
            app=request.app,
            env=request.env,
            user_id=_user_id(deps, request),
            action=request.action,
            since=request.since,
        )
        filters = _describe(request)
        title = msg.AUDIT_TITLE.format(filters=f" {escape(filters)}" if filters else "")
        parent = message(title, [section(f"{title}\nAsked by <@{escape(caller.user_id)}>")], in_channel=True)
        conversation.announce(parent)
        page = _page(deps, query, filters, caller, thread_ts=conversation.message_ts)
        if conversation.message_ts is None:
            return page  # not in the channel (bot not a member): the page replaces the ephemeral reply
        _post_in_thread(conversation, page)
        return replace(parent, detail=filters)

    return run


def register(app: App, deps: Deps) -> None:
    register_click(app, deps, ACTION_AUDIT_MORE, _more, slow=True)


def _more(click: Click, deps: Deps, conversation: Conversation) -> tuple[Reply, str]:
    assert deps.pending is not None
    if deps.authz is not None:
        deps.authz.policy.check(click.caller.user_id, "audit")
    stored = deps.pending.claim(click.value, kind=KIND, by=click.caller.user_id)
    payload = dict(stored.payload)
    since = payload.pop("since")
    filters = payload.pop("filters")
    thread_ts = payload.pop("thread_ts")
    query = AuditQuery(**payload, since=datetime.fromisoformat(since) if since else None)
    page = _page(deps, query, filters, click.caller, thread_ts=thread_ts)
    if thread_ts:
        _post_in_thread(conversation, page, thread_ts=thread_ts)
        done = message("Next page posted in the thread.", [section("Next page posted in the thread.")])
        return done, filters
    return page, filters


def _page(deps: Deps, query: AuditQuery, filters: str, caller: Caller, *, thread_ts: str | None) -> Reply:
    page = deps.audit.search(query)
    cursor = None
    if page.next_before_id is not None and deps.pending is not None:
        payload = {k: v for k, v in asdict(query).items() if k != "since"}
        payload.update(
            before_id=page.next_before_id,
            since=query.since.isoformat() if query.since else None,
            filters=filters,
            thread_ts=thread_ts,
        )
        cursor = deps.pending.create(
            KIND, payload, requester=caller.user_id, channel=caller.channel_id, ttl=PAGE_TTL
        ).id
    return audit_page(page.events, filters=filters, next_cursor=cursor)


def _post_in_thread(conversation: Conversation, page: Reply, *, thread_ts: str | None = None) -> None:
    conversation.client.chat_postMessage(
        channel=conversation.channel,
        thread_ts=thread_ts or conversation.message_ts,
        text=page.text,
        blocks=list(page.blocks),
    )


def _user_id(deps: Deps, request: CommandRequest) -> str | None:
    if request.user is None:
        return None
    if request.user.user_id:
        return request.user.user_id
    handle = request.user.handle
    for event in deps.audit.recent(limit=500):  # handles are mutable: map through what the trail saw
        if event.user_name == handle:
            return event.user_id
    raise UserError(
        f"No audit rows from `@{handle}`.", hint="Mention the user (`@name` from the picker) instead."
    )


def _describe(request: CommandRequest) -> str:
    parts = [request.app or ""]
    for flag, value in (("--env", request.env), ("--action", request.action)):
        if value:
            parts.append(f"{flag} {value}")
    if request.user is not None:
        parts.append(f"--user {request.user.user_id or '@' + (request.user.handle or '')}")
    if request.since is not None:
        parts.append(f"--since {request.since:%Y-%m-%d %H:%M}")
    return " ".join(p for p in parts if p)
