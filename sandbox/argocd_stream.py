"""The fake Argo CD's watch stream, `GET /api/v1/stream/applications` (docs/argocd-api.md §4.9).

Each open stream has its own queue, fed by `Store.touch` (through `StreamHub.publish`) with the app's
JSON at that resourceVersion: the JSON cache List and Get share, so an app is encoded once per change
however many streams are open, and nothing ever diffs the whole store. The stream's iterator runs on
the server's handler thread, drains the queue, trims (`fields`), deduplicates and frames the events.

Filters follow `Server.Watch`/`isApplicationPermitted` upstream: projects (the legacy `project` wins
when present), selector, RBAC (forbidden apps), `name` together with `appNamespace` (defaulting to the
control-plane namespace) and the `resourceVersion` floor. Upstream ignores `repo` on Watch and uses
`appNamespace` only with `name`, and so does this fake.
"""

from __future__ import annotations

import hashlib
import json
import queue
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus

from sandbox.argocd_errors import NOT_FOUND, UNKNOWN, ApiError, code_for_status, error_reply
from sandbox.argocd_fields import filter_paths, parse_fields
from sandbox.argocd_http import Reply, Request
from sandbox.argocd_selector import SelectorError, parse_selector
from sandbox.argocd_state import ADDED, CONTROL_PLANE_NAMESPACE, DELETED, AppRecord, Store

__all__ = ["KEEPALIVE_SECONDS", "StreamHub", "error_event"]

KEEPALIVE_SECONDS = 15.0  # argoproj/pkg's SSE keep-alive period
_POLL = 0.05  # how soon an idle stream notices that it was cut or the fake stopped
_BATCH_BYTES = 256 * 1024  # events already queued (a snapshot) go out in few large chunks
_SSE = "text/event-stream"


@dataclass(frozen=True)
class _Change:
    kind: str  # ADDED, MODIFIED, DELETED
    name: str
    version: int
    encoded: bytes  # the Application's JSON at `version`


@dataclass(frozen=True)
class _End:
    error: bytes | None = None  # an error object sent as the last event
    abrupt: bool = False  # drop the connection without ending the chunked body


@dataclass(frozen=True)
class _Scope:
    """Which apps one stream is shown (everything but the resourceVersion floor)."""

    name: str
    namespace: str
    projects: frozenset[str]
    matches: Callable[[Mapping[str, str]], bool]  # the parsed label selector

    def covers(self, record: AppRecord) -> bool:
        metadata = record.app["metadata"]
        if record.forbidden or (self.projects and record.spec.get("project") not in self.projects):
            return False
        if self.name and (metadata["name"] != self.name or metadata.get("namespace") != self.namespace):
            return False
        return self.matches(metadata.get("labels") or {})


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0  # upstream: strconv.Atoi fails → no floor


def error_event(message: str, http_code: int) -> bytes:
    """grpc-gateway v1's mid-stream error object (`runtimeStreamError`)."""
    try:
        phrase = HTTPStatus(http_code).phrase
    except ValueError:
        phrase = ""
    error = {
        "grpc_code": code_for_status(http_code),
        "http_code": http_code,
        "message": message,
        "http_status": phrase,
    }
    return json.dumps({"error": error}, separators=(",", ":")).encode()


class _Stream:
    """One open watch: its queue, framing, `fields` and the last payload sent per app (dedup)."""

    def __init__(
        self,
        hub: StreamHub,
        scope: _Scope,
        *,
        floor: int,
        fields: tuple[frozenset[str], bool] | None,
        sse: bool,
        keepalive: float,
    ) -> None:
        self.hub = hub
        self.scope = scope
        self.floor = floor
        self.fields = fields
        self.sse = sse
        self.keepalive = keepalive
        self.queue: queue.SimpleQueue[_Change | _End] = queue.SimpleQueue()
        self._last: dict[str, bytes] = {}  # app name → digest of the last payload sent

    def frame(self, payload: bytes) -> bytes:
        return b"data: " + payload + b" \n\n" if self.sse else payload + b"\n"

    def render(self, change: _Change) -> bytes:
        if change.version < self.floor:
            return b""
        if self.fields is None:
            payload = b'{"result":{"type":"%s","application":%s}}' % (change.kind.encode(), change.encoded)
        else:
            event = {"result": {"type": change.kind, "application": json.loads(change.encoded)}}
            payload = json.dumps(filter_paths(event, *self.fields), separators=(",", ":")).encode()
        # Digests, not payloads: a stream over 5,000 apps must not hold 5,000 copies of them.
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        if self._last.get(change.name) == digest:
            return b""  # the forwarder drops an identical consecutive payload for the same app
        if change.kind == DELETED:
            self._last.pop(change.name, None)
        else:
            self._last[change.name] = digest
        return self.frame(payload)

    def events(self) -> Iterator[bytes]:
        """The body: runs on the handler thread until cut, stopped, or the client leaves."""
        beat = time.monotonic() + self.keepalive
        while True:
            timeout = max(0.0, min(_POLL, beat - time.monotonic())) if self.sse else _POLL
            try:
                item = self.queue.get(timeout=timeout)
            except queue.Empty:
                if self.sse and time.monotonic() >= beat:
                    beat = time.monotonic() + self.keepalive
                    yield b":\n"
                continue
            batch = bytearray()
            while True:
                if isinstance(item, _End):
                    if item.error is not None:
                        batch += self.frame(item.error)
                    if batch:
                        yield bytes(batch)
                    if item.abrupt:
                        # http_server treats OSError as a lost client: no final chunk, socket closed.
                        raise ConnectionAbortedError("stream cut by the fake")
                    return
                batch += self.render(item)
                if len(batch) >= _BATCH_BYTES or self.queue.empty():
                    break
                item = self.queue.get_nowait()  # the only consumer: not empty means an item is there
            if batch:
                yield bytes(batch)


class _Body:
    """The Reply's `chunks`: http_server calls `close()` when done, even if it never started."""

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream
        self._events = self._run()

    def _run(self) -> Generator[bytes, None, None]:
        try:
            yield from self._stream.events()
        finally:
            self._stream.hub.unregister(self._stream)

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        return next(self._events)

    def close(self) -> None:
        self._events.close()
        self._stream.hub.unregister(self._stream)


class StreamHub:
    """Every open watch stream of one fake, and the test hooks that cut, refuse or fail them.

    The set of streams is guarded by the store's lock: `publish` runs inside `Store.touch`, which
    holds it, and `open` takes the snapshot and registers under it, so no change falls in between.
    """

    def __init__(self, store: Store, *, keepalive_seconds: float = KEEPALIVE_SECONDS) -> None:
        self.keepalive_seconds = keepalive_seconds
        self.refusing = False
        self._store = store
        self._streams: set[_Stream] = set()
        store.listeners.append(self.publish)

    # -- the endpoint --------------------------------------------------------------------------------

    def refused(self) -> Reply | None:
        """An old Argo CD behind a proxy that does not route the stream: a plain 404."""
        return error_reply(404, NOT_FOUND, "Not Found") if self.refusing else None

    def open(self, request: Request) -> Reply:
        query = request.query
        projects = query["project"] if "project" in query else query.get("projects", [])
        try:
            matches = parse_selector(request.first("selector"))
        except SelectorError as exc:
            raise ApiError(UNKNOWN, f"error parsing labels with selectors: {exc}") from None
        name, version = request.first("name"), request.first("resourceVersion")
        scope = _Scope(
            name=name,
            namespace=request.first("appNamespace") or CONTROL_PLANE_NAMESPACE,
            projects=frozenset(p for p in projects if p),
            matches=matches,
        )
        sse = request.headers.get("accept", "") == _SSE  # upstream compares the header exactly
        stream = _Stream(
            self,
            scope,
            floor=_int(version),
            fields=parse_fields(request.first("fields")),
            sse=sse,
            keepalive=self.keepalive_seconds,
        )
        store = self._store
        with store.lock:
            if not version or name:  # upstream's initial snapshot rule
                for key in sorted(store.records):
                    record = store.records[key]
                    if scope.covers(record):
                        stream.queue.put(self._change(ADDED, record))
            self._streams.add(stream)
        content_type = _SSE if sse else "application/json"
        return Reply(200, b"", content_type=content_type, chunks=_Body(stream))

    # -- the store side ------------------------------------------------------------------------------

    @staticmethod
    def _change(kind: str, record: AppRecord) -> _Change:
        metadata = record.app["metadata"]
        return _Change(kind, record.name, _int(metadata.get("resourceVersion", "")), record.encoded())

    def publish(self, kind: str, record: AppRecord) -> None:
        """Called by `Store.touch`/`Store.remove` with the lock held: queue the change for each
        stream that may see it (the floor is applied by the stream, as upstream does per event)."""
        change: _Change | None = None
        for stream in self._streams:
            if stream.scope.covers(record):
                change = change or self._change(kind, record)
                stream.queue.put(change)

    def unregister(self, stream: _Stream) -> None:
        with self._store.lock:
            self._streams.discard(stream)

    # -- test hooks ----------------------------------------------------------------------------------

    def count(self) -> int:
        with self._store.lock:
            return len(self._streams)

    def end_all(self, *, abrupt: bool = False, error: bytes | None = None) -> None:
        """End every open stream now (after `error`, if given); they stop being fed at once."""
        with self._store.lock:
            streams, self._streams = self._streams, set()
        for stream in streams:
            stream.queue.put(_End(error=error, abrupt=abrupt))
