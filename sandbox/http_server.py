"""The HTTP plumbing every fake shares: a keep-alive server on 127.0.0.1 that can go down and come
back on its port, and the `Request` it hands to a fake's handler.

Two settings differ between fakes. `raw_path`: the Git host fakes need the path as sent (GitLab
addresses a project by its URL-encoded path, `group%2Fsub%2Fproject`, a branch with `/` in it too;
`Request.segments` splits first and then unquotes), Argo CD and Kubernetes want it unquoted.
`head`: only the Argo CD side answers HEAD (without a body); elsewhere HEAD gets the stdlib's 501.
Each fake keeps its own `Reply` (content type, crash answer), read through the `Answer` protocol; a
reply with `chunks` (an iterator of bytes) is streamed with chunked encoding (watches, event streams).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as sent with `raw_path`, else unquoted
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


class Answer(Protocol):
    """What the server needs of a fake's reply."""

    @property
    def status(self) -> int: ...

    @property
    def body(self) -> bytes: ...

    @property
    def content_type(self) -> str: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


Serve = Callable[[Request], Answer]
Crashed = Callable[[Exception], Answer]  # the 500 a fake gives when its handler raises


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # down() must not wait for keep-alive threads; it closes their sockets
    allow_reuse_address = True  # up() rebinds the same port while old sockets sit in TIME_WAIT

    def __init__(self, port: int, server: HttpServer, handler_class: type[_RequestHandler]) -> None:
        self.owner = server
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), handler_class)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished (or down() cutting a socket) is routine for a fake."""


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

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request stderr lines; the fakes record requests instead."""

    def _serve(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urllib.parse.urlsplit(self.path)
        query: dict[str, list[str]] = {}
        for key, value in urllib.parse.parse_qsl(split.query, keep_blank_values=True):
            query.setdefault(key, []).append(value)
        path = split.path if owner.raw_path else urllib.parse.unquote(split.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, path, query, headers, body)
        try:
            reply = owner.handler(request)
        except Exception as exc:  # a fake must answer, never hang the client
            reply = owner.crashed(exc)
        chunks: Iterator[bytes] | None = getattr(reply, "chunks", None)
        if chunks is not None:
            self._stream(reply, chunks)
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _stream(self, reply: Answer, chunks: Iterator[bytes]) -> None:
        """A reply that goes on (a watch, an event stream): chunked, each chunk flushed as it comes,
        until the fake's iterator ends or the client goes away (down() cuts the socket too)."""
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True  # the client left, or the fake was taken down
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # a generator's `finally` unregisters its stream


class _HeadRequestHandler(_RequestHandler):
    def do_HEAD(self) -> None:
        self._serve()


class HttpServer:
    """Serves `handler` on 127.0.0.1; `down()` / `up()` close and reopen the same port."""

    def __init__(
        self, handler: Serve, name: str, *, crashed: Crashed, raw_path: bool = False, head: bool = False
    ) -> None:
        self.handler = handler
        self.crashed = crashed
        self.raw_path = raw_path
        self._handler_class = _HeadRequestHandler if head else _RequestHandler
        self._name = name
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
        server = _Server(self._port, self, self._handler_class)
        self._port = int(server.server_address[1])
        # A short poll interval keeps down() (and every test teardown) fast.
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
            open_connections = list(server.connections)
        for connection in open_connections:  # keep-alive clients must notice, as with a dead pod
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        thread.join(timeout=5)
