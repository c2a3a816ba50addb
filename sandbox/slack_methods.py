"""Web API method handlers of the fake Slack: `args -> response dict`, or SlackError."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sandbox.blockkit import message_errors
from sandbox.slack_models import Channel, Message, SlackContract, UploadedFile
from sandbox.slack_state import PendingFile, SlackError, SlackState

BOT_ID = "B0GITOPSBOT"
APP_ID = "A0GITOPSBOT"
SCOPES = "commands,chat:write,usergroups:read,users:read,users:read.email,files:write,channels:read"
PERMALINK_BASE = "https://sandbox.slack.com/archives"

# Slack answers a missing argument with the specific error when it has one.
_MISSING_ERRORS: Mapping[str, str] = MappingProxyType(
    {
        "channel": "channel_not_found",
        "ts": "message_not_found",
        "message_ts": "message_not_found",
        "user": "user_not_found",
    }
)


@dataclass(frozen=True)
class ApiContext:
    state: SlackState
    contract: SlackContract
    team_id: str
    upload_base: str  # "http://127.0.0.1:PORT/upload/"
    socket_base: str = ""  # "ws://127.0.0.1:PORT/link/": where apps.connections.open points


Handler = Callable[[ApiContext, dict[str, Any]], dict[str, Any]]


def call_method(ctx: ApiContext, method: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run one method after the auth and contract checks; raises SlackError."""
    handler = HANDLERS.get(method)
    if handler is None:
        raise SlackError("unknown_method")
    contract = ctx.contract.methods.get(method)
    if contract is not None:
        for name in contract.required:
            if args.get(name) in (None, ""):
                code = _MISSING_ERRORS.get(name, "invalid_arguments")
                raise SlackError(
                    code, response_metadata={"messages": [f"[ERROR] missing required field: {name}"]}
                )
    return handler(ctx, args)


def is_true(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in {"1", "true"}) or value == 1


def _auth_test(ctx: ApiContext, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "ok": True,
        "url": "https://sandbox.slack.com/",
        "team": "Sandbox",
        "user": "gitops-bot",
        "team_id": ctx.team_id,
        "user_id": ctx.state.bot_user_id,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


def _connections_open(ctx: ApiContext, args: dict[str, Any]) -> dict[str, Any]:
    # Slack answers with a one-time WebSocket URL. The fake speaks no WebSocket: its /link/ refuses
    # the upgrade, so a client sees a failed handshake (as behind a proxy that blocks wss).
    return {"ok": True, "url": f"{ctx.socket_base}?ticket={secrets.token_hex(16)}&app_id={APP_ID}"}


def message_payload(ctx: ApiContext, args: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Decoded text/blocks/thread_ts, validated like Slack validates them."""
    payload = {k: args[k] for k in ("text", "blocks", "thread_ts") if args.get(k) is not None}
    if isinstance(payload.get("blocks"), str):
        try:
            payload["blocks"] = json.loads(payload["blocks"])
        except ValueError:
            raise SlackError("invalid_blocks_format") from None
    code, details = message_errors(payload)
    if code in {"invalid_blocks", "msg_blocks_too_long"}:
        raise SlackError(code, errors=details)
    if code is not None:
        raise SlackError(code)
    if payload.get("blocks") and not payload.get("text"):
        ctx.state.warn(f"{where}: blocks without a top-level text fallback")
    return payload


def _writable_channel(ctx: ApiContext, channel_id: str) -> Channel:
    channel = ctx.state.channel(channel_id)
    if channel is None:
        raise SlackError("channel_not_found")
    if not channel.is_member:
        raise SlackError("not_in_channel")
    return channel


def message_json(message: Message, team_id: str) -> dict[str, Any]:
    """A message object as Slack returns it (and embeds it in block_actions)."""
    data: dict[str, Any] = {
        "type": "message",
        "user": message.user,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "text": message.text,
        "ts": message.ts,
        "team": team_id,
        "blocks": message.blocks,
    }
    if message.thread_ts:
        data["thread_ts"] = message.thread_ts
    if message.files:
        data["files"] = [{"id": file_id} for file_id in message.files]
    return data


def _post_message(ctx: ApiContext, args: dict[str, Any]) -> dict[str, Any]:
    channel = _writable_channel(ctx, str(args["channel"]))
    payload = message_payload(ctx, args, "chat.postMessage")
    message = ctx.state.post(channel.id, payload, ephemeral=False)
    return {
        "ok": True,
        "channel": channel.id,
        "ts": message.ts,
        "message": message_json(message, ctx.team_id),
    }


def _update(ctx: ApiContext, args: dict[str, Any]) -> dict[str, Any]:
    channel = _writable_channel(ctx, str(args["channel"]))
    with ctx.state.lock:
        old = ctx.state.find(channel.id, str(args["ts"]))
        if old is None:
            raise SlackError("message_not_found")
        if old.ephemeral or old.user != ctx.state.bot_user_id:
            raise SlackError("cant_update_message")
        payload = message_payload(ctx, args, "chat.update")
        # Slack keeps the previous blocks when an update leaves `blocks` out.
        new = ctx.state.replace(old, payload, keep_blocks=True)
    return {
        "ok": True,
        "channel": channel.id,
        "ts": new.ts,
        "text": new.text,
        "message": message_json(new, ctx.team_id),
    }


def _post_ephemeral(ctx: ApiContext, args: dict[str, Any]) -> dict[str, Any]:
    channel = ctx.state.channel(str(args["channel"]))
    if channel is None:
        raise SlackError("channel_not_found")
    user = str(args["user"])
    if user[:1] not in {"U", "W"}:
        raise SlackError("user_not_in_channel")
    payload = message_payload(ctx, args, "chat.postEphemeral")
    message = ctx.state.post(channel.id, payload, ephemeral=True, visible_to=user)
    return {"ok": True, "message_ts": message.ts}


def _permalink(ctx: ApiContext, args: dict[str, Any]) -> dict[str, Any]:
    channel = str(args["channel"])
    ts = str(args["message_ts"])
    message = ctx.state.find(channel, ts)
    if message is None or message.ephemeral:
        raise SlackError("message_not_found")
    return {"ok": True, "channel": channel, "permalink": f"{PERMALINK_BASE}/{channel}/p{ts.replace('.', '')}"}


def _users_info(ctx: ApiContext, args: dict[str, Any]) -> dict[str, Any]:
    user = ctx.state.users.get(str(args.get("user") or ""))
    if user is None:
        raise SlackError("user_not_found")
    return {"ok": True, "user": user.to_api(ctx.team_id)}


def _usergroups_list(ctx: ApiContext, args: dict[str, Any]) -> dict[str, Any]:
    include_users = is_true(args.get("include_users"))
    include_disabled = is_true(args.get("include_disabled"))
    with ctx.state.lock:
        groups = list(ctx.state.usergroups.values())
    return {
        "ok": True,
        "usergroups": [
            g.to_api(ctx.team_id, include_users=include_users)
            for g in groups
            if include_disabled or not g.disabled
        ],
    }


def _usergroups_users(ctx: ApiContext, args: dict[str, Any]) -> dict[str, Any]:
    group = ctx.state.usergroups.get(str(args["usergroup"]))
    if group is None or (group.disabled and not is_true(args.get("include_disabled"))):
        raise SlackError("no_such_subteam")
    return {"ok": True, "users": list(group.members)}


def _conversations_info(ctx: ApiContext, args: dict[str, Any]) -> dict[str, Any]:
    channel = ctx.state.channel(str(args.get("channel") or ""))
    if channel is None:
        raise SlackError("channel_not_found")
    return {"ok": True, "channel": channel.to_api()}


def _get_upload_url(ctx: ApiContext, args: dict[str, Any]) -> dict[str, Any]:
    try:
        length = int(args["length"])
    except (TypeError, ValueError):
        raise SlackError("invalid_arguments") from None
    file_id = ctx.state.new_id("F")
    with ctx.state.lock:
        ctx.state.pending_files[file_id] = PendingFile(id=file_id, name=str(args["filename"]), length=length)
    return {"ok": True, "upload_url": f"{ctx.upload_base}{file_id}", "file_id": file_id}


def _complete_upload(ctx: ApiContext, args: dict[str, Any]) -> dict[str, Any]:
    items = args["files"]
    if isinstance(items, str):
        try:
            items = json.loads(items)
        except ValueError:
            raise SlackError("invalid_arguments") from None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise SlackError("invalid_arguments")
    targets = [str(args["channel_id"])] if args.get("channel_id") else []
    if args.get("channels"):
        targets += [c for c in str(args["channels"]).split(",") if c]
    channels = [_writable_channel(ctx, c).id for c in targets]
    thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
    comment = str(args["initial_comment"]) if args.get("initial_comment") else None
    with ctx.state.lock:
        pending = [ctx.state.pending_files.get(str(i.get("id"))) for i in items]
        ready = [p for p in pending if p is not None and p.content is not None]
        if len(ready) != len(items):
            raise SlackError("file_not_found")
        done = [
            UploadedFile(
                id=p.id,
                name=p.name,
                title=str(i.get("title") or p.name),
                content=p.content or b"",
                channel=channels[0] if channels else None,
                thread_ts=thread_ts,
                initial_comment=comment,
            )
            for p, i in zip(ready, items, strict=True)
        ]
        for f in done:
            ctx.state.files[f.id] = f
            del ctx.state.pending_files[f.id]
        ids = tuple(f.id for f in done)
        for channel in channels:
            post = {"text": comment or "", "thread_ts": thread_ts}
            ctx.state.post(channel, post, ephemeral=False, files=ids)
    return {
        "ok": True,
        "files": [
            {"id": f.id, "name": f.name, "title": f.title, "size": len(f.content), "channels": channels}
            for f in done
        ],
    }


HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {
        "auth.test": _auth_test,
        "apps.connections.open": _connections_open,
        "chat.postMessage": _post_message,
        "chat.update": _update,
        "chat.postEphemeral": _post_ephemeral,
        "chat.getPermalink": _permalink,
        "users.info": _users_info,
        "usergroups.list": _usergroups_list,
        "usergroups.users.list": _usergroups_users,
        "conversations.info": _conversations_info,
        "files.getUploadURLExternal": _get_upload_url,
        "files.completeUploadExternal": _complete_upload,
    }
)
