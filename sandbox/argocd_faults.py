"""The fake's request log and the trouble tests inject: canned failures and latency."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from sandbox.argocd_errors import code_for_status
from sandbox.argocd_http import Handler, Reply, Request

_HIDDEN_HEADERS = ("authorization", "cookie")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any | None  # parsed JSON, the raw text when it is not JSON, None when empty
    headers: dict[str, str]  # lower-cased names; Authorization and Cookie removed
    status: int
    bytes_sent: int


@dataclass
class _FailRule:
    path: str
    method: str | None
    status: int
    times: int
    body: str | None
    content_type: str

    def reply(self) -> Reply:
        if self.body is not None:
            return Reply(self.status, self.body.encode(), content_type=self.content_type)
        try:
            text = HTTPStatus(self.status).phrase
        except ValueError:
            text = "error"
        payload = {"error": text, "code": code_for_status(self.status), "message": text}
        return Reply(self.status, json.dumps(payload).encode(), content_type=self.content_type)


def _parse_body(raw: bytes) -> Any | None:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class Faults:
    """Wraps a handler: delays, answers from the fail rules first, and records every exchange."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._rules: list[_FailRule] = []
        self._latency = 0.0
        self._path_latency: dict[str, float] = {}  # exact paths (one app) answering slowly

    def requests(self, path_prefix: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if path_prefix is None or r.path.startswith(path_prefix)]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def fail_next(
        self, *, path: str, method: str | None, status: int, times: int, body: str | None, content_type: str
    ) -> None:
        if times <= 0:
            return
        with self._lock:
            rule = _FailRule(path, method.upper() if method else None, status, times, body, content_type)
            self._rules.append(rule)

    def set_latency(self, seconds: float, *, path: str | None = None) -> None:
        with self._lock:
            if path is None:
                self._latency = seconds
            else:
                self._path_latency[path] = seconds

    def _injected(self, request: Request) -> Reply | None:
        with self._lock:
            for rule in self._rules:
                if request.path.startswith(rule.path) and rule.method in (None, request.method):
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                    return rule.reply()
            return None

    def __call__(self, request: Request) -> Reply:
        with self._lock:
            latency = self._latency + max(
                (v for p, v in self._path_latency.items() if request.path == p), default=0.0
            )
        if latency > 0:
            time.sleep(latency)
        reply = self._injected(request) or self._handler(request)
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query={key: list(values) for key, values in request.query.items()},
            body=_parse_body(request.body),
            headers={k: v for k, v in request.headers.items() if k not in _HIDDEN_HEADERS},
            status=reply.status,
            bytes_sent=len(reply.body),
        )
        with self._lock:
            self._requests.append(recorded)
        return reply
