"""SlackSender: the Slack side that talks TO the bot with correctly signed HTTP requests.

Slash commands are form-encoded fields; clicks are form-encoded `payload=<JSON>` built from a
button the bot really posted (contracts/slack/examples/). Each request gets a fresh
response_url minted by the FakeSlack, so replies land in the fake workspace.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.slack_api import FakeSlack
from sandbox.slack_methods import APP_ID, message_json
from sandbox.slack_models import Message

TIMEOUT_SECONDS = 10.0
VERIFICATION_TOKEN = "sandbox-verification-token"  # deprecated field; bots must ignore it


@dataclass(frozen=True)
class SentRequest:
    status: int
    body: str
    json_body: dict[str, Any] | None
    elapsed: float  # seconds from sending to the full response (the 3-second ack budget)
    response_url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-cased names


class SlackSender:
    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        fake: FakeSlack,
        *,
        team_id: str = "T0SANDBOX",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot_url = bot_url
        self._secret = signing_secret.encode("utf-8")
        self.fake = fake
        self.team_id = team_id
        self._clock = clock

    def sign(self, body: bytes, timestamp: int) -> str:
        """`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}`, keyed with the signing secret."""
        base = b"v0:" + str(timestamp).encode("ascii") + b":" + body
        return "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()

    def slash(
        self,
        text: str,
        *,
        user_id: str = "U0ALICE",
        user_name: str = "alice",
        channel_id: str = "C0DEPLOYS",
        command: str = "/gitops",
    ) -> SentRequest:
        """Type `{command} {text}`. A JSON ack body is shown as the first reply, as Slack does."""
        response_url = self.fake.response_url(channel_id, user_id)
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": self.team_id,
            "team_domain": "sandbox",
            "channel_id": channel_id,
            "channel_name": self.fake.channel_name(channel_id),
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": _trigger_id(),
        }
        sent = self._post_signed(urllib.parse.urlencode(fields).encode("utf-8"), response_url)
        ack = sent.json_body
        if sent.status == 200 and ack is not None and (ack.get("text") or ack.get("blocks")):
            self.fake.record_ack(response_url, ack)
        return sent

    def click(
        self,
        message: Message,
        action_id: str,
        *,
        user_id: str = "U0BOB",
        user_name: str = "bob",
        inputs: Mapping[str, str] | None = None,
    ) -> SentRequest:
        """Press the button `action_id` of `message`; ValueError if the message has no such button."""
        block, button = _find_button(message, action_id)
        if message.ephemeral and message.visible_to != user_id:
            raise ValueError(f"{user_id} cannot see the ephemeral message {message.ts}")
        response_url = self.fake.response_url(message.channel, user_id, message_ts=message.ts)
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": block.get("block_id", ""),
            "text": button.get("text"),
            "type": "button",
            "action_ts": f"{self._clock():.6f}",
        }
        for key in ("value", "style", "url"):
            if key in button:
                action[key] = button[key]
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": self.team_id},
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": message.ephemeral,
            },
            "trigger_id": _trigger_id(),
            "team": {"id": self.team_id, "domain": "sandbox"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": message.channel, "name": self.fake.channel_name(message.channel)},
            "state": {"values": _state(message, inputs or {})},
            "response_url": response_url,
            "actions": [action],
        }
        if not message.ephemeral:
            # Slack leaves `message` out of block_actions from ephemeral messages.
            payload["message"] = message_json(message, self.team_id)
        body = ("payload=" + urllib.parse.quote(json.dumps(payload))).encode("utf-8")
        return self._post_signed(body, response_url)

    def send_raw(self, body: bytes, headers: Mapping[str, str]) -> SentRequest:
        """POST exactly these bytes and headers (for forged or stale signatures)."""
        return self._send(body, headers, None)

    def _post_signed(self, body: bytes, response_url: str) -> SentRequest:
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": self.sign(body, timestamp),
        }
        return self._send(body, headers, response_url)

    def _send(self, body: bytes, headers: Mapping[str, str], response_url: str | None) -> SentRequest:
        split = urllib.parse.urlsplit(self.bot_url)
        path = split.path or "/"
        if split.query:
            path += "?" + split.query
        conn_type = http.client.HTTPSConnection if split.scheme == "https" else http.client.HTTPConnection
        conn = conn_type(split.hostname or "127.0.0.1", split.port, timeout=TIMEOUT_SECONDS)
        started = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=dict(headers))
            response = conn.getresponse()
            raw = response.read()
            elapsed = time.perf_counter() - started
            reply_headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
        text = raw.decode("utf-8", errors="replace")
        return SentRequest(response.status, text, _json_or_none(text), elapsed, response_url, reply_headers)


def _find_button(message: Message, action_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    for block in message.blocks:
        candidates = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if isinstance(block.get("accessory"), dict):
            candidates.append(block["accessory"])
        for element in candidates:
            is_button = isinstance(element, dict) and element.get("type") == "button"
            if is_button and element.get("action_id") == action_id:
                return block, element
    raise ValueError(f"message {message.ts} in {message.channel} has no button with action_id {action_id!r}")


def _json_or_none(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _trigger_id() -> str:
    return f"{secrets.randbelow(10**13)}.{secrets.randbelow(10**13)}.{secrets.token_hex(16)}"


def _state(message: Message, inputs: Mapping[str, str]) -> dict[str, Any]:
    """`state.values` as Slack sends it: the text typed into the message's input blocks, by action_id."""
    values: dict[str, Any] = {}
    for block in message.blocks:
        element = block.get("element") if block.get("type") == "input" else None
        if isinstance(element, dict) and element.get("action_id") in inputs:
            action_id = str(element["action_id"])
            values[str(block.get("block_id", ""))] = {
                action_id: {"type": element.get("type", "plain_text_input"), "value": inputs[action_id]}
            }
    return values
