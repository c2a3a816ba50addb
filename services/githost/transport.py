"""The HTTP layer under both host clients: headers, timeouts, Link pagination, bounded retries
of reads, serialised writes, rate-limit handling and error classification (githost-api.md §1-§3, §10).

Only GETs are retried (5xx and network failures, `max_tries` tries, jittered exponential
backoff). A write is sent once: when it may have reached the host and no answer came back (5xx,
read timeout, dropped connection) it raises `WriteOutcomeUnknown` so the caller re-reads first.
Tokens live only in the per-request headers; every text that may end up in an error is scrubbed.
"""

from __future__ import annotations

import copy
import email.utils
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from importlib import metadata
from typing import Literal
from urllib.parse import urlsplit

import httpx

from services.githost.errors import (
    HostError,
    HostNotFound,
    HostPermissionDenied,
    HostRateLimited,
    HostRejected,
    HostUnauthorized,
    HostUnavailable,
    WriteOutcomeUnknown,
    cannot_see,
)
from services.githost.model import HostKind
from services.githost.throttle import WriteGate
from services.metrics import Metrics
from services.redaction import Redactor

log = logging.getLogger(__name__)

try:
    _VERSION = metadata.version("gitops-bot")
except metadata.PackageNotFoundError:  # running from a plain checkout
    _VERSION = "0+unknown"
USER_AGENT = f"gitops-bot/{_VERSION}"  # GitHub refuses requests without a User-Agent

Params = Sequence[tuple[str, str]]
Missing = Literal["repo", "resource"]  # what a 404 means for this call
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
# Failures where the request never reached the host: safe to repeat, even for a write.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


@dataclass(frozen=True)
class Answer:
    status: int
    data: object  # decoded JSON; None for an empty body (204)
    headers: httpx.Headers


def _seconds(value: str | None, now: float) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def _error_texts(text: str) -> tuple[str, tuple[str, ...]]:
    """(message, details) from GitHub's `{message, errors[]}` or GitLab's `{message|error}`."""
    try:
        data = json.loads(text)
    except ValueError:
        return text, ()
    if not isinstance(data, dict):
        return text, ()
    message = data.get("message", data.get("error", ""))
    details: list[str] = []
    if isinstance(message, list):  # GitLab: {"message": ["Another open merge request …"]}
        details.extend(str(m) for m in message)
        message = ""
    elif isinstance(message, dict):  # GitLab: {"message": {"field": ["is invalid"]}}
        details.extend(
            f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in message.items()
        )
        message = ""
    for entry in data.get("errors", ()) if isinstance(data.get("errors"), list) else ():
        if isinstance(entry, str):  # validation-error-simple
            details.append(entry)
        elif isinstance(entry, dict):  # validation-error: {resource, field, code, message}
            text_ = entry.get("message") or " ".join(
                str(entry[k]) for k in ("resource", "field", "code") if entry.get(k)
            )
            details.append(str(text_))
    return str(message), tuple(details)


class Transport:
    """One host + repository, one token. Thread-safe as far as httpx.Client is."""

    def __init__(
        self,
        *,
        host: HostKind,
        api_url: str,
        repo: str,
        auth_headers: Mapping[str, str],
        extra_headers: Mapping[str, str] | None = None,
        secrets: Sequence[str] = (),
        timeout: float = 10.0,
        http: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        metrics: Metrics | None = None,
        gate: WriteGate | None = None,
        max_tries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        max_pages: int = 20,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.base = api_url.rstrip("/")
        self.repo = repo
        self._origin = urlsplit(self.base)[:2]
        self._headers = {"User-Agent": USER_AGENT, **(extra_headers or {}), **auth_headers}
        self._scrub = Redactor(secrets)
        self._metrics = metrics
        self._gate = gate or WriteGate(clock)
        self._host_key = self.base
        self._repo_key = f"{self.base}#{repo}"
        self._max_tries = max(1, max_tries)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_pages = max(1, max_pages)
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._owns_http = http is None
        self._http = http or httpx.Client(transport=transport, timeout=self._timeout, follow_redirects=False)

    def sharing(self, auth_headers: Mapping[str, str], secrets: Sequence[str]) -> Transport:
        """The same host, repository, HTTP pool and gate with another identity (the approver):
        its writes queue behind the same repository lock."""
        twin = copy.copy(self)
        twin._headers = {**self._headers, **auth_headers}
        twin._scrub = Redactor(secrets)
        twin._owns_http = False
        return twin

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # -- calls ---------------------------------------------------------------------------------

    def get(self, operation: str, path: str, params: Params = (), *, missing: Missing = "resource") -> Answer:
        with self._timed(operation):
            return self._send(operation, "GET", self.base + path, params, None, missing)

    def get_all(
        self,
        operation: str,
        path: str,
        params: Params = (),
        *,
        key: str | None = None,
        missing: Missing = "resource",
    ) -> list[object]:
        """Every item of a list endpoint, following `Link: rel="next"` verbatim (§2).

        `key` names the array inside an object page (GitHub check-runs: `check_runs`). Stops after
        `max_pages` pages: the bot only lists small things (its own PRs, one PR's reviews).
        """
        items: list[object] = []
        url: str | None = self.base + path
        query: Params = params
        pages = 0
        with self._timed(operation):
            while url is not None and pages < self._max_pages:
                answer = self._send(operation, "GET", url, query, None, missing)
                page = answer.data.get(key) if key and isinstance(answer.data, dict) else answer.data
                if not isinstance(page, list):
                    raise self._unavailable(
                        operation, "answered a list call with something else", answer.status
                    )
                items.extend(page)
                url, query, pages = self._next(answer.headers, operation), (), pages + 1
        return items

    def write(
        self,
        operation: str,
        method: Literal["POST", "PUT", "PATCH", "DELETE"],
        path: str,
        body: Mapping[str, object] | None = None,
        *,
        missing: Missing = "resource",
    ) -> Answer:
        """One mutating call, sent once, under the repository's write lock."""
        with self._timed(operation), self._gate.lock(self._repo_key):
            answer = self._send(operation, method, self.base + path, (), body, missing)
            self._gate.succeeded(self._host_key)
            return answer

    # -- internals -----------------------------------------------------------------------------

    def _timed(self, operation: str) -> AbstractContextManager[None]:
        if self._metrics is None:
            return nullcontext()
        return self._metrics.backend_call(f"{self.host}:{self.repo}", operation)

    def _next(self, headers: httpx.Headers, operation: str) -> str | None:
        link = str(headers.get("link") or "")
        for part in link.split(",") if link else ():
            target, _, rest = part.partition(";")
            if 'rel="next"' in rest.replace(" ", "") or "rel=next" in rest.replace(" ", ""):
                url = target.strip().strip("<>")
                if urlsplit(url)[:2] != self._origin:
                    # Never send the token to another origin, whatever a header says.
                    raise self._unavailable(operation, "pagination link points to another host", None)
                return url
        return None

    def _send(
        self,
        operation: str,
        method: str,
        url: str,
        params: Params,
        body: Mapping[str, object] | None,
        missing: Missing,
    ) -> Answer:
        write = method != "GET"
        waiting, why = self._gate.paused_for(self._host_key, write=write)
        if waiting > 0:
            # Still inside a rate-limit pause: don't even ask (secondary limits grow when poked).
            raise HostRateLimited(self.host, self.repo, kind=why, retry_after=waiting, operation=operation)
        headers = dict(self._headers)
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = json.dumps(body).encode()
        tries = 1 if write else self._max_tries
        for attempt in range(1, tries + 1):
            try:
                response = self._http.request(
                    # No `params` at all for a Link URL: httpx would replace its query with an empty one.
                    method,
                    url,
                    params=list(params) or None,
                    content=content,
                    headers=headers,
                    timeout=self._timeout,
                )
            except httpx.HTTPError as exc:
                if attempt < tries and isinstance(exc, httpx.TransportError):
                    self._pause(attempt, operation, type(exc).__name__)
                    continue
                raise self._network_error(operation, exc, write) from None
            if response.status_code in _RETRY_STATUSES and attempt < tries:
                self._pause(attempt, operation, str(response.status_code))
                continue
            return self._decode(operation, response, write, missing)
        raise AssertionError("unreachable: the last try returns or raises")  # pragma: no cover

    def _pause(self, attempt: int, operation: str, why: str) -> None:
        delay = min(self._max_backoff, self._backoff * 2.0 ** (attempt - 1)) * self._rng.uniform(0.5, 1.5)
        log.info("%s %s: %s, retrying in %.2f s", self.host, operation, why, delay)
        self._sleep(delay)

    def _unavailable(self, operation: str, message: str, status: int | None) -> HostUnavailable:
        return HostUnavailable(self.host, self.repo, message, operation=operation, status=status)

    def _network_error(self, operation: str, exc: httpx.HTTPError, write: bool) -> HostUnavailable:
        if isinstance(exc, httpx.ConnectTimeout):
            what = "did not accept a connection in time"
        elif isinstance(exc, httpx.TimeoutException):
            what = "did not answer in time"
        elif isinstance(exc, httpx.ConnectError):
            what = "cannot be reached"
        else:
            what = "failed to answer"
        message = f"{self.base} {what} ({type(exc).__name__})"
        if write and not isinstance(exc, _NOT_SENT):
            message += "; the change may have been applied"
            return WriteOutcomeUnknown(self.host, self.repo, message, operation=operation)
        return self._unavailable(operation, message, None)

    def _decode(self, operation: str, response: httpx.Response, write: bool, missing: Missing) -> Answer:
        status = response.status_code
        if not response.is_success:
            raise self._classify(operation, response, write, missing)
        text = self._scrub(response.text)
        try:
            data = json.loads(text) if text.strip() else None
        except ValueError:
            # A 2xx that is not JSON: a login page or a proxy in the way.
            what = "answered with something other than JSON"
            if write:
                raise WriteOutcomeUnknown(
                    self.host, self.repo, what, operation=operation, status=status
                ) from None
            raise self._unavailable(operation, what, status) from None
        return Answer(status, data, response.headers)

    def _classify(self, operation: str, response: httpx.Response, write: bool, missing: Missing) -> HostError:
        status = response.status_code
        limited = self._rate_limited(operation, response, write)
        if limited is not None:
            return limited
        if status >= 500 or status == 408:
            message = f"HTTP {status} from {self.base}"
            if write:
                message += "; the change may have been applied"
                return WriteOutcomeUnknown(self.host, self.repo, message, operation=operation, status=status)
            return self._unavailable(operation, message, status)
        if status == 401:
            return HostUnauthorized(self.host, self.repo, operation=operation)
        message, details = _error_texts(self._scrub(response.text))
        if status == 404 and missing == "repo":
            return cannot_see(self.host, self.repo, operation=operation, status=status)
        if status == 404:
            return HostNotFound(
                self.host,
                self.repo,
                f"{operation}: not found in `{self.repo}` (or the bot's token cannot see it)",
                operation=operation,
                status=status,
            )
        if status == 403:
            return HostPermissionDenied(
                self.host,
                self.repo,
                f"the bot's token may not {operation} in `{self.repo}` (HTTP 403: {message or 'forbidden'})",
                operation=operation,
                status=status,
            )
        return HostRejected(
            self.host, self.repo, message, details=details, operation=operation, status=status
        )

    def _rate_limited(self, operation: str, response: httpx.Response, write: bool) -> HostRateLimited | None:
        status, headers, now = response.status_code, response.headers, self._clock()
        retry_after = _seconds(headers.get("retry-after"), now)
        if self.host == "gitlab":
            if status != 429:
                return None
            # The body is plain text an admin may change ("Retry later"): never parse it.
            wait = retry_after if retry_after is not None else _reset_in(headers.get("ratelimit-reset"), now)
            return self._limited(
                operation, "gitlab", 60.0 if wait is None else wait, status, writes_only=False
            )
        if status not in (403, 429):
            return None
        message, _ = _error_texts(response.text)
        remaining = headers.get("x-ratelimit-remaining")
        reset_in = _reset_in(headers.get("x-ratelimit-reset"), now)
        if "secondary rate limit" in message.lower() or (status == 429 and remaining != "0"):
            if retry_after is not None:
                wait = retry_after
            elif remaining == "0" and reset_in is not None:
                wait = reset_in
            else:
                wait = self._gate.secondary_wait(self._host_key)
            return self._limited(operation, "secondary", wait, status, writes_only=True)
        if remaining == "0":
            wait = reset_in if reset_in is not None else (retry_after or 60.0)
            return self._limited(operation, "primary", wait, status, writes_only=False)
        if retry_after is not None:  # a 403 telling us when to come back is a limit, whatever it says
            return self._limited(operation, "secondary", retry_after, status, writes_only=True)
        return None

    def _limited(
        self,
        operation: str,
        kind: Literal["primary", "secondary", "gitlab"],
        wait: float,
        status: int,
        *,
        writes_only: bool,
    ) -> HostRateLimited:
        self._gate.pause(self._host_key, wait, writes_only=writes_only, kind=kind)
        log.warning("%s %s: %s rate limit, pausing %.0f s", self.host, operation, kind, wait)
        return HostRateLimited(
            self.host, self.repo, kind=kind, retry_after=wait, operation=operation, status=status
        )


def _reset_in(value: str | None, now: float) -> float | None:
    """Seconds until an epoch-seconds reset header (x-ratelimit-reset, RateLimit-Reset)."""
    try:
        return max(0.0, float(value) - now) if value else None
    except ValueError:
        return None
