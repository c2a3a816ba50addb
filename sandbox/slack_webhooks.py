"""The fake's non-API endpoints: response_url posts, the slash-command ack body, file uploads."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sandbox.blockkit import message_errors
from sandbox.slack_http import multipart_parts
from sandbox.slack_models import Message, RecordedCall
from sandbox.slack_state import (
    RESPONSE_URL_MAX_USES,
    RESPONSE_URL_TTL_SECONDS,
    Grant,
    SlackState,
)


def post_to_response_url(state: SlackState, grant_id: str, body: bytes) -> tuple[int, str]:
    """Apply one POST to a response_url; returns (HTTP status, plain-text body) as Slack does."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        status, text = 400, "invalid_payload"
        state.record(_call("response_url", {}, status, text))
        return status, text
    with state.lock:
        grant = state.grants.get(grant_id)
        if grant is None:
            status, text = 404, "no_service"
        elif grant.uses >= RESPONSE_URL_MAX_USES or _expired(state, grant):
            status, text = 404, "expired_url"
        else:
            status, text = _apply(state, grant, payload)
            if status == 200:
                grant.uses += 1
        state.record(_call("response_url", payload, status, text))
    return status, text


def record_ack(state: SlackState, grant_id: str, payload: Mapping[str, Any]) -> Message | None:
    """Show a slash command's HTTP ack body the way Slack would: a reply tied to its response_url.

    It does not count as one of the response_url's five uses."""
    with state.lock:
        grant = state.grants.get(grant_id)
        if grant is None:
            raise ValueError(f"unknown response_url id {grant_id!r}")
        code, details = message_errors(payload)
        if code is not None:
            state.record(_call("ack", dict(payload), 400, code, details))
            return None
        message = _post_new(state, grant, dict(payload))
        state.record(_call("ack", dict(payload), 200, "ok"))
        return message


def store_upload(state: SlackState, file_id: str, content_type: str, body: bytes) -> tuple[int, str]:
    """The upload URL from files.getUploadURLExternal: raw bytes, or the first multipart file part."""
    content = body
    if content_type.startswith("multipart/form-data"):
        parts = multipart_parts(content_type, body)
        files = [data for _name, filename, data in parts if filename is not None]
        content = files[0] if files else (parts[0][2] if parts else b"")
    with state.lock:
        pending = state.pending_files.get(file_id)
        if pending is None:
            status, text = 404, "file_not_found"
        else:
            pending.content = content
            status, text = 200, f"OK - {len(content)}"
        args = {"file_id": file_id, "length": len(content)}
        state.record(_call("file_upload", args, status, text))
    return status, text


def _expired(state: SlackState, grant: Grant) -> bool:
    return state.clock() - grant.created_at > RESPONSE_URL_TTL_SECONDS


def _apply(state: SlackState, grant: Grant, payload: dict[str, Any]) -> tuple[int, str]:
    target = _target(state, grant)
    if is_flag(payload.get("delete_original")):
        if target is None:
            return 404, "message_not_found"
        state.delete(target)
        return 200, "ok"
    code, _details = message_errors(payload)
    if code is not None:
        return 400, code
    if is_flag(payload.get("replace_original")) and target is not None:
        # A replacement keeps the original's visibility (ephemeral stays ephemeral).
        state.replace(target, payload)
    else:
        _post_new(state, grant, payload)
    return 200, "ok"


def _post_new(state: SlackState, grant: Grant, payload: dict[str, Any]) -> Message:
    if payload.get("blocks") and not payload.get("text"):
        state.warn("response_url: blocks without a top-level text fallback")
    if payload.get("response_type") == "in_channel":
        message = state.post(grant.channel, payload, ephemeral=False)
    else:
        message = state.post(grant.channel, payload, ephemeral=True, visible_to=grant.user)
    if grant.message_ts is None:
        grant.last_posted_ts = message.ts
    return message


def _target(state: SlackState, grant: Grant) -> Message | None:
    ts = grant.message_ts or grant.last_posted_ts
    return state.find(grant.channel, ts) if ts is not None else None


def is_flag(value: object) -> bool:
    return value is True or value == "true"


def _call(method: str, args: dict[str, Any], status: int, text: str, details: Any = None) -> RecordedCall:
    response: dict[str, Any] = {"ok": status == 200, "body": text}
    if details:
        response["errors"] = details
    return RecordedCall(method=method, args=args, status=status, response=response)
