"""The HTTP layer under `ArgoCDClient`: auth headers, timeouts, retries, metrics, error wrapping.

Only idempotent GETs are retried (refused connections and 502/503/504, at most `max_tries`
tries with jittered exponential backoff); a POST, PATCH or DELETE is sent exactly once.
"""

from __future__ import annotations

import io
import json
import random
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from importlib import metadata
from typing import TypeVar

import httpx
import msgspec

from services.argocd.errors import ArgoCDUnavailable, bound, classify
from services.metrics import Metrics
from services.settings.model import ArgoCDInstance

try:
    _VERSION = metadata.version("gitops-bot")
except metadata.PackageNotFoundError:  # running from a plain checkout
    _VERSION = "0+unknown"
USER_AGENT = f"gitops-bot/{_VERSION}"

# Refresh GETs block until the controller reconciles; managed-resources may refresh on a cache miss.
SLOW_READ_SECONDS = 120.0
_RETRY_STATUSES = frozenset({502, 503, 504})
# Failures where the request cannot have been processed, so a GET is safe to repeat.
_RETRY_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)

Params = list[tuple[str, str]]
T = TypeVar("T")


def _verify(instance: ArgoCDInstance) -> ssl.SSLContext | bool:
    if instance.ca_file is not None:
        return ssl.create_default_context(cafile=str(instance.ca_file))
    return instance.verify_tls


class Transport:
    def __init__(
        self,
        instance: ArgoCDInstance,
        token: str,
        *,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        metrics: Metrics | None = None,
        max_tries: int = 3,
        backoff: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        slow_read_seconds: float = SLOW_READ_SECONDS,
    ) -> None:
        self.instance = instance
        self.base = instance.url.rstrip("/")
        self._token = token
        self._metrics = metrics
        self._metric_name = f"argocd:{instance.name}"
        self._max_tries = max(1, max_tries)
        self._backoff = backoff
        self._sleep = sleep
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not cryptography
        connect, read = instance.timeouts.connect, instance.timeouts.read
        self._timeout = httpx.Timeout(read, connect=connect)
        self._slow_timeout = httpx.Timeout(max(read, slow_read_seconds), connect=connect)
        self._headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        self._owns_http = http is None
        self._http = http or httpx.Client(
            transport=transport, verify=_verify(instance), timeout=self._timeout, follow_redirects=False
        )

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    @contextmanager
    def _timed(self, operation: str) -> Iterator[None]:
        timer = self._metrics.backend_call(self._metric_name, operation) if self._metrics else nullcontext()
        with timer:
            yield

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[token]") if self._token else text

    def call(
        self,
        operation: str,
        method: str,
        path: str,
        params: Params | None = None,
        *,
        body: Mapping[str, object] | None = None,
        slow: bool = False,
    ) -> dict[str, object]:
        """One API call, timed as `operation`; the decoded JSON object, or an ArgoCDError."""
        with self._timed(operation):
            if not self._token:
                raise ArgoCDUnavailable(f"no token: set {self.instance.token_env}", operation=operation)
            response, content = self._send(operation, method, path, params or [], body, slow)
            return self._decode(operation, response, content, _object)

    def get(self, operation: str, path: str, params: Params, decode: Callable[[bytes], T]) -> T:
        """A GET whose successful body `decode` reads straight from the bytes (large lists: no
        text copy, no generic tree); `decode` raises `ValueError` for a body it cannot read."""
        with self._timed(operation):
            if not self._token:
                raise ArgoCDUnavailable(f"no token: set {self.instance.token_env}", operation=operation)
            response, content = self._send(operation, "GET", path, params, None, False)
            return self._decode(operation, response, content, decode)

    def _send(
        self,
        operation: str,
        method: str,
        path: str,
        params: Params,
        body: Mapping[str, object] | None,
        slow: bool,
    ) -> tuple[httpx.Response, bytes]:
        """The response and its whole body, read here (see `_read`) so that a GET cut off half
        way through its body is retried like one that never connected."""
        headers = dict(self._headers)
        content: bytes | None = None
        if method != "GET":
            # Argo CD rejects any non-GET without exactly this header, body or not (HTTP 415).
            headers["Content-Type"] = "application/json"
            content = None if body is None else json.dumps(body).encode()
        tries = self._max_tries if method == "GET" else 1
        for attempt in range(1, tries + 1):
            request = self._http.build_request(
                method,
                self.base + path,
                params=tuple(params),
                content=content,
                headers=headers,
                timeout=self._slow_timeout if slow else self._timeout,
            )
            try:
                response = self._http.send(request, stream=True)
                try:
                    if response.status_code not in _RETRY_STATUSES or attempt == tries:
                        return response, _read(response)
                finally:
                    response.close()
            except _RETRY_ERRORS as exc:
                if attempt < tries:
                    self._pause(attempt)
                    continue
                raise self._transport_error(operation, exc) from exc
            except httpx.HTTPError as exc:
                raise self._transport_error(operation, exc) from exc
            self._pause(attempt)
        raise AssertionError("unreachable: the last try returns or raises")  # pragma: no cover

    @contextmanager
    def stream(self, operation: str, path: str, params: Params, *, idle: float) -> Iterator[Iterator[str]]:
        """A server-sent event stream's lines (`Accept: text/event-stream`, so keep-alives arrive);
        `idle`: the longest silence before the connection counts as dead. Errors as for `call`."""
        if not self._token:
            raise ArgoCDUnavailable(f"no token: set {self.instance.token_env}", operation=operation)
        headers = {**self._headers, "Accept": "text/event-stream"}
        timeout = httpx.Timeout(idle, connect=self._timeout.connect)
        try:
            with self._http.stream(
                "GET", self.base + path, params=tuple(params), headers=headers, timeout=timeout
            ) as response:
                if not response.is_success:  # raises the classified error
                    self._decode(operation, response, response.read(), _object)
                yield response.iter_lines()
        except httpx.HTTPError as exc:
            raise self._transport_error(operation, exc) from exc

    def _pause(self, attempt: int) -> None:
        # Exponential backoff with jitter: about 0.25 s, then 0.5 s, each scaled by 0.5-1.5.
        self._sleep(self._backoff * (2 ** (attempt - 1)) * self._rng.uniform(0.5, 1.5))

    def _transport_error(self, operation: str, exc: httpx.HTTPError) -> ArgoCDUnavailable:
        if isinstance(exc, httpx.ConnectTimeout):
            what = "did not accept a connection in time"
        elif isinstance(exc, httpx.TimeoutException):
            what = "did not answer in time"
        elif isinstance(exc, httpx.ConnectError):
            what = "cannot be reached"
        else:
            what = "failed to answer"
        detail = bound(self._scrub(str(exc)), 120)
        suffix = f" ({type(exc).__name__}: {detail})" if detail else f" ({type(exc).__name__})"
        return ArgoCDUnavailable(f"{self.base} {what}{suffix}", operation=operation)

    def _decode(
        self, operation: str, response: httpx.Response, content: bytes, decode: Callable[[bytes], T]
    ) -> T:
        if not response.is_success:
            raise classify(
                response.status_code,
                self._scrub(response.text),
                operation=operation,
                retry_after=response.headers.get("Retry-After"),
            )
        token = self._token.encode()
        if token and token in content:  # rare: scrub only then, so a large body is not copied
            content = content.replace(token, b"[token]")
        try:
            return decode(content)
        except NotAnObject:
            raise ArgoCDUnavailable(
                "answered with JSON that is not an object", operation=operation, status=response.status_code
            ) from None
        except ValueError:
            # A 200 that is not JSON: an SSO login page or a proxy in the way.
            text = content[:2000].decode(errors="replace")
            raise ArgoCDUnavailable(
                f"answered with something other than JSON: {bound(text, 120)}",
                operation=operation,
                status=response.status_code,
            ) from None


def _read(response: httpx.Response) -> bytes:
    """The whole body. A success is gathered in one growing buffer whose bytes are handed over
    without a copy, and is not kept on the response: httpx's own `read()` joins the chunks into a
    second copy and keeps it on a response that sits in a reference cycle (it and its stream point
    at each other), so a 7 MB list lived until the collector's next full pass — several scans
    later. An error keeps httpx's way, so its text is read with the charset the server named."""
    if not response.is_success:
        return response.read()
    buffer = io.BytesIO()
    for chunk in response.iter_bytes():
        buffer.write(chunk)
    return buffer.getvalue()


def _object(content: bytes) -> dict[str, object]:
    """A JSON object (an empty body reads as `{}`); msgspec: faster than `json`, and no str copy."""
    if not content.strip():
        return {}
    data = msgspec.json.decode(content)  # its DecodeError is a ValueError
    if not isinstance(data, dict):
        raise NotAnObject
    return data


class NotAnObject(ValueError):
    """JSON, but not the object every endpoint answers with."""
