"""HTTP plumbing for the fake Git hosts (GitHub here, GitLab in gitlab_fake.py): a keep-alive server on
127.0.0.1, the request log, and injected trouble (canned answers with headers, latency).

`argocd_http` does not fit: it unquotes the path, and GitLab addresses a project by its URL-encoded
path (`group%2Fsub%2Fproject`), a branch with `/` in it too. Here `Request.path` stays raw and
`Request.segments` splits it first and unquotes each part.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JSON = "application/json; charset=utf-8"
_HIDDEN_HEADERS = ("authorization", "private-token", "cookie")


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as sent: percent-encoding kept
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    @property
    def segments(self) -> list[str]:
        """The path's segments, each unquoted (so `group%2Fproject` stays one segment)."""
        return [urllib.parse.unquote(s) for s in self.path.strip("/").split("/") if s]

    def first(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The body as JSON; None when empty; ValueError when it is not JSON."""
        return json.loads(self.body) if self.body.strip() else None


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, port: int, handler: Handler) -> None:
        self.handler = handler
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished is routine for a fake."""


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Without TCP_NODELAY keep-alive clients stall ~40 ms per request (Nagle + delayed ACK).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the fake records requests instead."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urllib.parse.urlsplit(self.path)
        query: dict[str, list[str]] = {}
        for key, value in urllib.parse.parse_qsl(split.query, keep_blank_values=True):
            query.setdefault(key, []).append(value)
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, split.path, query, headers, body)
        try:
            reply = self.server.handler(request)
        except Exception as exc:  # a fake must answer, never hang the client
            reply = Reply.json(500, {"message": f"fake crashed: {type(exc).__name__}: {exc}"})
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)


class Server:
    """Serves `handler` on 127.0.0.1; `down()` / `up()` close and reopen the same port."""

    def __init__(self, handler: Handler, name: str) -> None:
        self._handler = handler
        self._name = name
        self._port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._port

    def up(self) -> None:
        if self._server is not None:
            return
        server = _Server(self._port, self._handler)
        self._port = int(server.server_address[1])
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=self._name, daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread

    def down(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        with server.connections_lock:
            connections = list(server.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        thread.join(timeout=5)


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
