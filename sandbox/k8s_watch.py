"""Watches on the fake API server (`?watch=true` on a list path), as kube-apiserver serves them.

200, `application/json`, chunked; one `{"type": ..., "object": {...}}` per line. Without a
resourceVersion (or with "0") a synthetic ADDED for every matching object comes first; with one, only
the changes after it, from the store's bounded `History` (older than its window: one ERROR event with a
410 Expired Status, then the end, as the watch cache answers). `allowWatchBookmarks=true` adds a
BOOKMARK every `Cluster.bookmark_seconds`; `timeoutSeconds` (default `Cluster.watch_timeout_seconds`)
ends the stream. Selectors apply to each change as the watch cache applies them: an object moving out of
the selection is DELETED for that watch, one moving in is ADDED.

Each watch is fed by its own `Watcher` queue, filled by the store under its lock as changes commit; the
stream waits on it with a short timeout, so `cut_watches()` (and a stopped or vanished client, on the
next write) ends it promptly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from sandbox import k8s_status as status
from sandbox.argocd_http import Reply, Request
from sandbox.k8s_history import Change, Expired, Watcher

if TYPE_CHECKING:  # the cluster's modules are only types here
    from sandbox.k8s_cluster import Cluster
    from sandbox.k8s_registry import ResourceType
    from sandbox.k8s_select import Predicate
    from sandbox.k8s_store import Entry

POLL_SECONDS = 0.1  # how long a stream waits for a change before checking cut / timeout / bookmark


@dataclass(frozen=True)
class _Watch:
    cluster: Cluster
    rtype: ResourceType
    version: str
    namespace: str | None
    match: Predicate
    resource_version: int | None  # None: the current state first (absent or "0")
    bookmarks: bool
    timeout: float

    def line(self, kind: str, body: bytes) -> bytes:
        return b'{"type":"%s","object":%s}\n' % (kind.encode(), body)

    def event(self, change: Change) -> bytes | None:
        """The line this watch sends for `change`, with the selection applied (None: nothing)."""
        if self.resource_version is not None and change.rv <= self.resource_version:
            return None  # asked from a version the store has not reached yet: only what comes after it
        now_in = self.match(change.entry.obj)
        kind = change.type
        if kind == "MODIFIED":
            was_in = change.old is not None and self.match(change.old)
            kind = "MODIFIED" if was_in and now_in else "ADDED" if now_in else "DELETED" if was_in else ""
        elif not now_in:
            kind = ""
        if not kind:
            return None
        entry = cast("Entry", change.entry)  # the store records its own entries
        return self.line(kind, self.cluster.encoded(entry, self.version))

    def bookmark(self, rv: int) -> bytes:
        obj = {
            "kind": self.rtype.kind,
            "apiVersion": self.rtype.api_version(self.version),
            "metadata": {"resourceVersion": str(rv)},
        }
        return self.line("BOOKMARK", json.dumps(obj).encode())

    def start(self, watcher: Watcher) -> list[bytes]:
        """Under the store lock: the first lines, and the watcher registered at the same point."""
        store = self.cluster.store
        if self.resource_version is None:
            entries = store.select(self.rtype.plural, self.namespace)
            lines = [
                self.line("ADDED", self.cluster.encoded(e, self.version))
                for e in entries
                if self.match(e.obj)
            ]
        else:
            changes = store.history.since(self.resource_version)
            wanted = (c for c in changes if watcher.plural == c.plural)
            lines = [
                line
                for c in wanted
                if (self.namespace is None or c.namespace == self.namespace)
                and (line := self.event(c)) is not None
            ]
        store.history.register(watcher)
        return lines

    def stream(self) -> Iterator[bytes]:
        # Registration happens on the first read, inside the try, so the `finally` always unregisters.
        store = self.cluster.store
        watcher = Watcher(self.rtype.plural, self.namespace, store.history.limit)
        try:
            try:
                with store.lock:
                    pending = self.start(watcher)
            except Expired as exc:
                yield _expired(str(exc))
                return
            yield from pending
            clock = time.monotonic
            deadline = clock() + self.timeout
            next_bookmark = clock() + self.cluster.bookmark_seconds
            while not watcher.cut:
                now = clock()
                if now >= deadline or (watcher.closed and watcher.empty()):
                    return
                wait = min(POLL_SECONDS, deadline - now)
                if self.bookmarks:
                    wait = max(0.0, min(wait, next_bookmark - now))
                changes = watcher.take(wait)
                with store.lock:
                    lines = [line for c in changes if (line := self.event(c)) is not None]
                    due = self.bookmarks and clock() >= next_bookmark and watcher.empty()
                    if due:  # all changes up to here are queued (they enqueue under this lock)
                        lines.append(self.bookmark(store.resource_version))
                if due:
                    next_bookmark = clock() + self.cluster.bookmark_seconds
                for line in lines:
                    if watcher.cut:
                        return
                    yield line
        finally:
            with store.lock:
                store.history.unregister(watcher)


def _expired(message: str) -> bytes:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Expired",
        "code": 410,
    }
    return json.dumps({"type": "ERROR", "object": body}).encode() + b"\n"


def _flag(request: Request, name: str) -> bool:
    return request.first(name).lower() in ("true", "1")


def serve(
    cluster: Cluster,
    request: Request,
    rtype: ResourceType,
    version: str,
    namespace: str | None,
    match: Predicate,
) -> Reply:
    """A watch of `rtype` in `namespace` (None: all); RBAC and selector parsing are done by the caller."""
    text = request.first("resourceVersion")
    resource_version: int | None = None
    if text not in ("", "0"):
        try:
            resource_version = int(text)
        except ValueError as exc:
            raise status.bad_request(f'invalid resource version: "{text}"') from exc
    timeout_text = request.first("timeoutSeconds")
    try:
        timeout = float(int(timeout_text)) if timeout_text else cluster.watch_timeout_seconds
    except ValueError as exc:
        raise status.bad_request(f'invalid value for timeoutSeconds: "{timeout_text}"') from exc
    watch = _Watch(
        cluster, rtype, version, namespace, match, resource_version, _flag(request, "allowWatchBookmarks"),
        timeout if timeout > 0 else cluster.watch_timeout_seconds,
    )  # fmt: skip
    return Reply(200, b"", chunks=watch.stream())
