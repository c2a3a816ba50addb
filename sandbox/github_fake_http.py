"""HTTP plumbing for the fake Git hosts (GitHub here, GitLab in gitlab_fake.py): their `Reply`, the
request log, injected trouble (canned answers with headers, latency) and pagination. The server is
`http_server`'s with the path kept raw: GitLab addresses a project by its URL-encoded path
(`group%2Fsub%2Fproject`), a branch with `/` in it too; `Request.segments` splits first, then unquotes.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.http_server import HttpServer, Request

__all__ = ["JSON", "Faults", "Handler", "RecordedRequest", "Reply", "Request", "Server", "paginate"]

JSON = "application/json; charset=utf-8"
_HIDDEN_HEADERS = ("authorization", "private-token", "cookie")


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = JSON
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: Any, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(data).encode(), headers=dict(headers or {}))

    @classmethod
    def text(cls, status: int, text: str, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, text.encode(), "text/plain; charset=utf-8", dict(headers or {}))

    def with_headers(self, headers: Mapping[str, str]) -> Reply:
        return Reply(self.status, self.body, self.content_type, {**headers, **self.headers})


Handler = Callable[[Request], Reply]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any | None  # parsed JSON, the raw text when it is not JSON, None when empty
    headers: dict[str, str]  # lower-cased names; credentials removed
    status: int
    user: str | None  # who the token belongs to, when it was a valid one


@dataclass
class _Rule:
    path: str
    method: str | None
    times: int
    reply: Reply


class Faults:
    """Wraps a handler: latency, canned answers first (matched by path prefix and method), and a log."""

    def __init__(self, handler: Handler, who: Callable[[Request], str | None]) -> None:
        self._handler = handler
        self._who = who
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._rules: list[_Rule] = []
        self._latency = 0.0

    def requests(self, path_prefix: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if path_prefix is None or r.path.startswith(path_prefix)]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def fail_next(self, reply: Reply, *, path: str = "", method: str | None = None, times: int = 1) -> None:
        if times > 0:
            with self._lock:
                self._rules.append(_Rule(path, method.upper() if method else None, times, reply))

    def set_latency(self, seconds: float) -> None:
        with self._lock:
            self._latency = seconds

    def _injected(self, request: Request) -> Reply | None:
        with self._lock:
            for rule in self._rules:
                if request.path.startswith(rule.path) and rule.method in (None, request.method):
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                    return rule.reply
        return None

    def __call__(self, request: Request) -> Reply:
        with self._lock:
            latency = self._latency
        if latency > 0:
            time.sleep(latency)
        reply = self._injected(request) or self._handler(request)
        try:
            body: Any = request.json()
        except ValueError:
            body = request.body.decode("utf-8", "replace")
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query={k: list(v) for k, v in request.query.items()},
            body=body,
            headers={k: v for k, v in request.headers.items() if k not in _HIDDEN_HEADERS},
            status=reply.status,
            user=self._who(request),
        )
        with self._lock:
            self._requests.append(recorded)
        return reply


def _crashed(exc: Exception) -> Reply:
    return Reply.json(500, {"message": f"fake crashed: {type(exc).__name__}: {exc}"})


class Server(HttpServer):
    """Serves `handler` on 127.0.0.1 with the path as sent; `down()` / `up()` close and reopen
    the same port."""

    def __init__(self, handler: Handler, name: str) -> None:
        super().__init__(handler, name, crashed=_crashed, raw_path=True)


def paginate(
    items: list[Any], request: Request, base_url: str, *, default: int, maximum: int = 100
) -> tuple[list[Any], dict[str, str]]:
    """One page of `items` per `page` / `per_page`, and the `link` header both hosts send
    (rel next/prev/first/last; none when everything fits on one page)."""
    try:
        per_page = max(1, min(int(request.first("per_page") or default), maximum))
        page = max(1, int(request.first("page") or 1))
    except ValueError:
        per_page, page = default, 1
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    if last == 1:
        return chunk, {}

    def url(number: int) -> str:
        params = {k: v[0] for k, v in request.query.items()} | {
            "per_page": str(per_page),
            "page": str(number),
        }
        return f"{base_url}{request.path}?{urllib.parse.urlencode(params)}"

    rels = {"first": 1, "prev": page - 1, "next": page + 1, "last": last}
    shown = [f'<{url(n)}>; rel="{rel}"' for rel, n in rels.items() if 1 <= n <= last and n != page]
    return chunk, {"link": ", ".join(shown)} if shown else {}
