"""A webhook receiver like a team's own endpoint: it checks gitops-bot's HMAC signature the way
docs/events.md tells receivers to, and keeps every delivery (the demo shows them in its feed)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.slack_http import HttpReply, HttpRequest, LocalHttpServer

SIGNATURE = "x-gitops-bot-signature"
TIMESTAMP = "x-gitops-bot-timestamp"
TOLERANCE = 300  # seconds: older timestamps are refused as replays


@dataclass(frozen=True)
class Delivery:
    event: dict[str, Any]
    headers: dict[str, str]
    signed: bool  # the signature checked out against the shared secret


class WebhookReceiver:
    def __init__(
        self, secret: str | None = None, *, on_event: Callable[[Delivery], None] | None = None
    ) -> None:
        self._secret = secret
        self._on_event = on_event
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self.failing = False  # answer 503, as an endpoint being deployed would
        self._server = LocalHttpServer(self._serve)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}/hooks/gitops"

    def start(self) -> WebhookReceiver:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def _serve(self, request: HttpRequest) -> HttpReply:
        if request.verb != "POST" or request.path != "/hooks/gitops":
            return HttpReply.json(404, {"error": "not found"})
        if self.failing:
            return HttpReply.json(503, {"error": "unavailable"}, {"Retry-After": "1"})
        signed = self._verified(request)
        if self._secret is not None and not signed:
            return HttpReply.json(401, {"error": "bad signature"})
        try:
            event = json.loads(request.body)
        except ValueError:
            return HttpReply.json(400, {"error": "not JSON"})
        delivery = Delivery(event, dict(request.headers), signed)
        with self._lock:
            self._deliveries.append(delivery)
        if self._on_event is not None:
            self._on_event(delivery)
        return HttpReply.json(200, {"ok": True})

    def _verified(self, request: HttpRequest) -> bool:
        if self._secret is None:
            return False
        stamp, given = request.headers.get(TIMESTAMP, ""), request.headers.get(SIGNATURE, "")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > TOLERANCE:
            return False
        mac = hmac.new(self._secret.encode(), stamp.encode() + b"." + request.body, hashlib.sha256)
        return hmac.compare_digest(given, "sha256=" + mac.hexdigest())
