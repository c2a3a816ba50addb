"""One webhook notifier: which events it wants, and one signed POST of an event's JSON.

The shape of Argo CD Notifications' webhook service, signed like GitHub's and Stripe's webhooks:
`X-Gitops-Bot-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with the
timestamp in `X-Gitops-Bot-Timestamp`, so a receiver can refuse old replays (docs/events.md).
What a failed attempt says never carries the URL (it may hold a token) or the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from fnmatch import fnmatchcase
from importlib import metadata
from urllib.parse import urlsplit

import httpx

TIMEOUT = 5.0  # seconds per attempt: a slow receiver must not hold up the others for long
_RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})  # and every other 5xx


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of `<timestamp>.<body>` with the secret."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def safe_url(url: str) -> str:
    """The URL as logs may show it: scheme, host, port and path; no userinfo, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def user_agent() -> str:
    try:
        version = metadata.version("gitops-bot")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    return f"gitops-bot/{version}"


@dataclass(frozen=True)
class Attempt:
    """How one POST went: delivered, or why not and whether trying again can help."""

    delivered: bool
    error: str = ""
    permanent: bool = False  # a 4xx other than 408/425/429: the same request will fail again
    retry_after: float | None = None  # seconds the receiver asked for (429 / 503 Retry-After)


class WebhookSender:
    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: str | None,
        events: Sequence[str] = ("*",),
        max_attempts: int = 8,
        client: httpx.Client,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.url = url
        self._secret = secret
        self.events = tuple(events)
        self.max_attempts = max_attempts
        self._client = client
        self._clock = clock
        self._agent = user_agent()

    def __repr__(self) -> str:  # never the secret, nor what the URL may carry
        return f"WebhookSender({self.name!r}, {safe_url(self.url)!r})"

    def wants(self, event_type: str) -> bool:
        """Whether one of the notifier's `events` patterns (fnmatch: `promotion.*`, `*`) matches."""
        return any(fnmatchcase(event_type, pattern) for pattern in self.events)

    def send(self, event_id: str, event_type: str, body: str) -> Attempt:
        """POST the body once; never raises for what the network or the receiver does."""
        payload = body.encode("utf-8")
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self._agent,
            "X-Gitops-Bot-Event": event_type,
            "X-Gitops-Bot-Delivery": event_id,
            "X-Gitops-Bot-Timestamp": timestamp,
        }
        if self._secret:
            headers["X-Gitops-Bot-Signature"] = signature(self._secret, timestamp, payload)
        try:
            response = self._client.post(self.url, content=payload, headers=headers, timeout=TIMEOUT)
        except httpx.TimeoutException:
            return Attempt(False, f"no answer within {TIMEOUT:g} s")
        except httpx.HTTPError as exc:  # str(exc) may name the URL: the class says enough
            return Attempt(False, f"connection failed ({type(exc).__name__})")
        status = response.status_code
        if 200 <= status < 300:
            return Attempt(True)
        error = f"HTTP {status}"
        if status in _RETRYABLE or status >= 500:
            wait = _retry_after(response.headers.get("Retry-After"), self._clock())
            return Attempt(False, error, retry_after=wait if status in (429, 503) else None)
        if 300 <= status < 400:
            error += " (redirects are not followed)"
        return Attempt(False, error, permanent=True)


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - datetime.fromtimestamp(now, UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None
