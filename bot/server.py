"""The HTTP side of the process: Slack's `/slack/events` (HTTP mode), `/healthz`, `/readyz`, `/metrics`.

Served by waitress, a production WSGI server that runs in-process with a thread pool, so the
scheduler, the background pool and the SQLite connection live beside it in one process.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from waitress.server import BaseWSGIServer, MultiSocketServer, create_server

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
ReadinessCheck = Callable[[], Mapping[str, bool]]


class Router:
    """A tiny WSGI dispatcher; the Slack adapter is only mounted in HTTP mode."""

    def __init__(
        self,
        *,
        slack: WSGIApplication | None,
        readiness: ReadinessCheck,
        metrics: Callable[[], tuple[bytes, str]],
        info: Callable[[], Mapping[str, object]],
    ) -> None:
        self._slack = slack
        self._readiness = readiness
        self._metrics = metrics
        self._info = info
        self.accepting = True  # cleared on shutdown: new Slack requests get 503

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == SLACK_PATH and self._slack is not None:
            if not self.accepting:
                return _reply(start_response, "503 Service Unavailable", {"error": "shutting down"})
            # Replays and redeliveries are refused after Bolt's signature check (bot/deliveries.py).
            return self._slack(environ, start_response)
        if method not in ("GET", "HEAD"):
            return _reply(start_response, "405 Method Not Allowed", {"error": "method not allowed"})
        if path == "/healthz":
            return _reply(start_response, "200 OK", {"status": "ok"})
        if path == "/readyz":
            checks = dict(self._readiness())
            ready = all(checks.values()) and self.accepting
            status = "200 OK" if ready else "503 Service Unavailable"
            body = {"status": "ready" if ready else "not ready", "checks": checks, **self._info()}
            return _reply(start_response, status, body)
        if path == "/metrics":
            payload, content_type = self._metrics()
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(payload)))])
            return [payload]
        return _reply(start_response, "404 Not Found", {"error": "not found"})


def _reply(start_response: StartResponse, status: str, body: Mapping[str, Any]) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


class HttpServer:
    """waitress in a background thread, with a clean stop."""

    def __init__(self, app: WSGIApplication, *, host: str, port: int, threads: int) -> None:
        self._server: BaseWSGIServer | MultiSocketServer = create_server(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="gitops-bot",
            # Slack retries nothing for commands; a slow client must not hold a thread forever.
            channel_timeout=30,
            clear_untrusted_proxy_headers=True,
        )
        self._thread = threading.Thread(target=self._serve, name="http-server", daemon=True)
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        server = self._server
        if isinstance(server, MultiSocketServer):
            return int(server.effective_listen[0][1])
        return int(server.getsockname()[1])

    def start(self) -> HttpServer:
        self._thread.start()
        log.info("http server listening", extra={"port": self.port})
        return self

    def _serve(self) -> None:
        try:
            self._server.run()
        except (OSError, ValueError):
            # stop() closes the sockets under the loop's select(): EBADF (or a closed fd) is how
            # the loop learns it is over. Anything else while serving is a real failure.
            if not self._stopping.is_set():
                raise

    def stop(self) -> None:
        self._stopping.set()
        self._server.close()
        self._server.task_dispatcher.shutdown()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
