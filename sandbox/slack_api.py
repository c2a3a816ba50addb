"""FakeSlack: a stateful stand-in for the Slack Web API on 127.0.0.1.

Point slack_sdk at it with `WebClient(token=fake.bot_token, base_url=fake.base_url)`.
It records every call, enforces Block Kit limits and answers with Slack's error codes;
response_url and file-upload endpoints live on the same server. `apps.connections.open` takes only
the app-level token (`xapp-…`), as Slack does; every other method only the bot token.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from sandbox.slack_http import HttpReply, HttpRequest, LocalHttpServer, form_fields, multipart_parts
from sandbox.slack_methods import HANDLERS, SCOPES, ApiContext, call_method
from sandbox.slack_models import (
    Channel,
    Message,
    RecordedCall,
    SlackContract,
    SlackUser,
    UploadedFile,
    Usergroup,
)
from sandbox.slack_state import Fault, Grant, SlackError, SlackState
from sandbox.slack_webhooks import post_to_response_url, record_ack, store_upload

__all__ = ["FakeSlack", "Message", "RecordedCall", "UploadedFile"]

APP_LEVEL_METHODS = frozenset({"apps.connections.open"})  # Socket Mode: called with the xapp- token


class FakeSlack:
    def __init__(
        self,
        *,
        bot_token: str = "xoxb-sandbox-token",  # noqa: S107 - a fake token for a fake server
        app_token: str = "xapp-1-A0GITOPSBOT-1-sandbox",  # noqa: S107 - Socket Mode's app-level token
        bot_user_id: str = "U0GITOPSBOT",
        team_id: str = "T0SANDBOX",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.bot_user_id = bot_user_id
        self.team_id = team_id
        self._state = SlackState(bot_user_id=bot_user_id, team_id=team_id, clock=clock)
        self._contract = SlackContract.load()
        self._server: LocalHttpServer | None = None
        self.add_user(bot_user_id, "gitops-bot", "GitOps Bot", is_bot=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        if self._server is not None:
            raise RuntimeError("FakeSlack already started")
        self._server = LocalHttpServer(self._route)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FakeSlack:
        return self.start() if self._server is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        return f"http://127.0.0.1:{self._server.port}/"

    @property
    def base_url(self) -> str:
        """What slack_sdk's WebClient(base_url=...) takes."""
        return f"{self.root_url}api/"

    # -- setup -------------------------------------------------------------------------------

    def add_user(
        self,
        id: str,
        name: str,
        real_name: str,
        email: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        *,
        is_restricted: bool = False,
    ) -> None:
        user = SlackUser(id, name, real_name, email, is_bot, deleted, is_restricted)
        with self._state.lock:
            self._state.users[id] = user

    def add_usergroup(
        self,
        id: str,
        handle: str,
        members: Iterable[str],
        *,
        name: str = "",
        disabled: bool = False,
    ) -> None:
        group = Usergroup(id, handle, tuple(members), name, disabled)
        with self._state.lock:
            self._state.usergroups[id] = group

    def add_channel(self, id: str, name: str, *, is_private: bool = False, is_member: bool = True) -> None:
        """Name a channel; `is_member=False` makes chat.postMessage answer `not_in_channel`."""
        with self._state.lock:
            self._state.channels[id] = Channel(id, name, is_private, is_member)

    def channel_name(self, channel_id: str) -> str:
        channel = self._state.channel(channel_id)
        return channel.name if channel is not None else channel_id.lower()

    def fail_next(self, method: str, *, status: int = 429, retry_after: int = 1, times: int = 1) -> None:
        """The next `times` calls of `method` (or `response_url`, `file_upload`) fail with `status`."""
        with self._state.lock:
            self._state.faults.setdefault(method, []).extend([Fault(status, retry_after)] * times)

    def response_url(self, channel: str, user: str, *, message_ts: str | None = None) -> str:
        """Mint a response_url: for a slash command (no message_ts) or a click on `message_ts`."""
        grant = Grant(
            id=secrets.token_urlsafe(12),
            channel=channel,
            user=user,
            message_ts=message_ts,
            created_at=self._state.clock(),
        )
        with self._state.lock:
            self._state.grants[grant.id] = grant
        return f"{self.root_url}response/{grant.id}"

    def record_ack(self, response_url: str, payload: Mapping[str, Any]) -> Message | None:
        """Show a slash command's HTTP ack body as its first reply (None if Slack would refuse it)."""
        return record_ack(self._state, _grant_id(response_url), payload)

    # -- observation -------------------------------------------------------------------------

    def recorded(self, method: str | None = None) -> list[RecordedCall]:
        with self._state.lock:
            return [c for c in self._state.calls if method is None or c.method == method]

    def messages(self, channel: str) -> list[Message]:
        return self._state.snapshot(lambda m: m.channel == channel and not m.ephemeral)

    def ephemeral(self, user: str | None = None) -> list[Message]:
        return self._state.snapshot(lambda m: m.ephemeral and (user is None or m.visible_to == user))

    def find_message(self, channel: str, ts: str) -> Message | None:
        found = self._state.snapshot(lambda m: m.channel == channel and m.ts == ts)
        return found[0] if found else None

    def files(self) -> list[UploadedFile]:
        with self._state.lock:
            return list(self._state.files.values())

    @property
    def missing_text_warnings(self) -> list[str]:
        with self._state.lock:
            return list(self._state.warnings)

    def wait_for(self, predicate: Callable[[FakeSlack], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._state.lock:
                version = self._state.version
            if predicate(self):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s; {self.describe()}")
            with self._state.lock:
                if self._state.version == version:
                    self._state.lock.wait(min(remaining, 0.1))

    def describe(self) -> str:
        """A short transcript of what the fake saw, for assertion messages."""
        calls = self.recorded()
        lines = [f"{len(calls)} call(s) recorded:"]
        for call in calls[-30:]:
            error = call.response.get("error") or ("" if call.ok else call.response.get("body", ""))
            lines.append(f"  {call.method} -> {call.status} {error}".rstrip())
        with self._state.lock:
            lines.append(f"{len(self._state.messages)} message(s) stored")
        return "\n".join(lines)

    # -- HTTP --------------------------------------------------------------------------------

    def _route(self, request: HttpRequest) -> HttpReply:
        path = request.path
        if path.startswith("/api/"):
            return self._api(request, path[len("/api/") :])
        if request.verb == "POST" and path.startswith("/response/"):
            fault = self._fault_reply("response_url", {})
            if fault is not None:
                return fault
            status, text = post_to_response_url(self._state, path[len("/response/") :], request.body)
            return HttpReply.text(status, text)
        if request.verb == "POST" and path.startswith("/upload/"):
            file_id = path[len("/upload/") :]
            status, text = store_upload(
                self._state, file_id, request.headers.get("content-type", ""), request.body
            )
            return HttpReply.text(status, text)
        return HttpReply.text(404, "not_found")

    def _api(self, request: HttpRequest, method: str) -> HttpReply:
        try:
            args = _parse_args(request)
        except SlackError as exc:
            return self._answer(method, {}, {"ok": False, "error": exc.code})
        token = _bearer(request.headers) or args.pop("token", None)
        args.pop("token", None)
        fault = self._fault_reply(method, args)
        if fault is not None:
            return fault
        if method not in HANDLERS:
            error = "method_deprecated" if method == "files.upload" else "unknown_method"
            return self._answer(method, args, {"ok": False, "error": error})
        if not token:
            return self._answer(method, args, {"ok": False, "error": "not_authed"})
        refused = self._token_error(method, token)
        if refused is not None:
            return self._answer(method, args, {"ok": False, "error": refused})
        ctx = ApiContext(
            self._state,
            self._contract,
            self.team_id,
            f"{self.root_url}upload/",
            socket_base=f"ws{self.root_url.removeprefix('http')}link/",
        )
        try:
            body = call_method(ctx, method, args)
        except SlackError as exc:
            body = {"ok": False, "error": exc.code, **exc.extra}
        return self._answer(method, args, body)

    def _token_error(self, method: str, token: str) -> str | None:
        """Slack's answer to the wrong kind of token (a bot token for an app-level method and back),
        then to an unknown one."""
        wanted, other = (
            (self.app_token, self.bot_token)
            if method in APP_LEVEL_METHODS
            else (self.bot_token, self.app_token)
        )
        if token == wanted:
            return None
        return "not_allowed_token_type" if token == other else "invalid_auth"

    def _answer(self, method: str, args: dict[str, Any], body: dict[str, Any]) -> HttpReply:
        self._state.record(RecordedCall(method, _readable(args), 200, body))
        return HttpReply.json(200, body, {"x-oauth-scopes": SCOPES, "x-accepted-oauth-scopes": ""})

    def _fault_reply(self, method: str, args: dict[str, Any]) -> HttpReply | None:
        fault = self._state.take_fault(method)
        if fault is None:
            return None
        error = "ratelimited" if fault.status == 429 else "fatal_error"
        body = {"ok": False, "error": error}
        self._state.record(RecordedCall(method, _readable(args), fault.status, body))
        headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
        return HttpReply.json(fault.status, body, headers)


def _grant_id(response_url: str) -> str:
    path = urllib.parse.urlsplit(response_url).path
    if not path.startswith("/response/"):
        raise ValueError(f"not a response_url of this fake: {response_url!r}")
    return path[len("/response/") :]


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    return value[len("Bearer ") :].strip() if value.startswith("Bearer ") else None


def _parse_args(request: HttpRequest) -> dict[str, Any]:
    """Query args merged with a form, multipart or JSON body, like Slack accepts them."""
    args: dict[str, Any] = dict(request.query)
    kind = request.content_type
    if not request.body:
        return args
    if kind == "application/json":
        try:
            data = json.loads(request.body.decode("utf-8"))
        except ValueError:
            raise SlackError("invalid_json") from None
        if not isinstance(data, dict):
            raise SlackError("json_not_object")
        args.update(data)
    elif kind == "application/x-www-form-urlencoded":
        try:
            args.update(form_fields(request.body))
        except UnicodeDecodeError:
            raise SlackError("invalid_form_data") from None
    elif kind == "multipart/form-data":
        ctype = request.headers.get("content-type", "")
        for name, _filename, data in multipart_parts(ctype, request.body):
            args[name] = data.decode("utf-8", errors="replace")
    else:
        raise SlackError("invalid_post_type")
    return args


def _readable(args: dict[str, Any]) -> dict[str, Any]:
    """Recorded args with JSON-string `blocks`/`files` decoded so tests can inspect them."""
    out = dict(args)
    for key in ("blocks", "files", "attachments"):
        if isinstance(out.get(key), str):
            with contextlib.suppress(ValueError):
                out[key] = json.loads(out[key])
    return out
