"""HTTP plumbing for the fake Argo CD: a keep-alive server that can go down and come back on its port.

`slack_http.LocalHttpServer` does not fit here: it always binds port 0, flattens repeated query
parameters (Argo CD uses `projects=a&projects=b`) and only routes GET and POST.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    def first(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Reply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # go_down() must not wait for keep-alive threads; it closes their sockets
    allow_reuse_address = True  # come_up() rebinds the same port while old sockets sit in TIME_WAIT

    def __init__(self, port: int, handler: Handler) -> None:
        self.handler = handler
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished (or go_down() cutting a socket) is routine for a fake."""


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as behind a real ingress
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

    def do_HEAD(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request stderr lines; the fake records requests instead."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urllib.parse.urlsplit(self.path)
        query: dict[str, list[str]] = {}
        for key, value in urllib.parse.parse_qsl(split.query, keep_blank_values=True):
            query.setdefault(key, []).append(value)
        request = Request(
            method=self.command,
            path=urllib.parse.unquote(split.path),
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            reply = self.server.handler(request)
        except Exception as exc:  # a fake must answer, never hang the client
            text = f'{{"error":"fake crashed: {type(exc).__name__}","code":13}}'
            reply = Reply(500, text.encode())
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)


class RebindableServer:
    """Serves `handler` on 127.0.0.1; `down()`/`up()` close and reopen the same port."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def running(self) -> bool:
        return self._server is not None

    def up(self) -> None:
        if self._server is not None:
            return
        server = _Server(self._port, self._handler)
        self._port = int(server.server_address[1])
        # A short poll interval keeps down() (and every test teardown) fast.
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-argocd", daemon=True
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
            open_connections = list(server.connections)
        for connection in open_connections:  # keep-alive clients must notice, as with a dead pod
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        thread.join(timeout=5)
