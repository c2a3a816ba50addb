"""The fake API server's change history and its open watches' queues (see `sandbox.k8s_watch`).

Apart from the watch streams so the store can record changes without importing the streaming code
(which needs the cluster, which needs the store).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from sandbox.k8s_registry import ResourceType


class Stored(Protocol):
    """What a change keeps of the stored object (`sandbox.k8s_store.Entry`)."""

    @property
    def rtype(self) -> ResourceType: ...

    @property
    def obj(self) -> dict[str, Any]: ...


HISTORY_LIMIT = 10_000  # events kept for resuming watches (the real watch cache keeps ~100 to 100k)


@dataclass(frozen=True)
class Change:
    type: str  # ADDED, MODIFIED, DELETED
    rv: int
    entry: Stored  # a snapshot after the change (DELETED: the last state, with the deletion's rv)
    old: dict[str, Any] | None  # the object before a MODIFIED, to see it leave or enter a selection

    @property
    def plural(self) -> str:
        return self.entry.rtype.plural

    @property
    def namespace(self) -> str:
        return str(self.entry.obj["metadata"].get("namespace", ""))


class Watcher:
    """One open watch's queue. The store offers changes under its lock; the stream takes them."""

    def __init__(self, plural: str, namespace: str | None, limit: int) -> None:
        self.plural = plural
        self.namespace = namespace
        self._limit = limit
        self._items: deque[Change] = deque()
        self._ready = threading.Condition(threading.Lock())
        self.closed = False  # no more changes will come: cut, or overflowed (deliver what is queued)
        self.cut = False  # end now, as a proxy dropping the connection

    def offer(self, change: Change) -> None:
        if change.plural != self.plural:
            return
        if self.namespace is not None and change.namespace != self.namespace:
            return
        with self._ready:
            if self.closed:
                return
            if len(self._items) >= self._limit:
                # A client too slow to keep up: the real API server closes its watch; it resumes from
                # its last resourceVersion. What is queued stays contiguous, so nothing is skipped.
                self.closed = True
            else:
                self._items.append(change)
            self._ready.notify()

    def end(self) -> None:
        with self._ready:
            self.closed = self.cut = True
            self._ready.notify()

    def take(self, timeout: float) -> list[Change]:
        with self._ready:
            if not self._items and not self.closed:
                self._ready.wait(timeout)
            items = list(self._items)
            self._items.clear()
            return items

    def empty(self) -> bool:
        with self._ready:
            return not self._items


class Expired(Exception):
    def __init__(self, asked: int, floor: int) -> None:
        super().__init__(f"too old resource version: {asked} ({floor})")


class History:
    """The last `limit` changes, in resourceVersion order, and the open watches. Callers hold the
    store's lock (the store records from create/commit/delete; streams register under it)."""

    def __init__(self, resource_version: int, *, limit: int = HISTORY_LIMIT) -> None:
        self.limit = limit
        self._changes: deque[Change] = deque()
        self._floor = resource_version  # every change with rv > floor is retained
        self._watchers: set[Watcher] = set()

    def record(self, type_: str, rv: int, entry: Stored, old: dict[str, Any] | None) -> None:
        change = Change(type_, rv, entry, old)
        self._changes.append(change)
        while len(self._changes) > self.limit:
            self._floor = self._changes.popleft().rv
        for watcher in self._watchers:
            watcher.offer(change)

    def since(self, rv: int) -> list[Change]:
        """Changes after `rv`; Expired when some of them were dropped already."""
        if rv < self._floor:
            raise Expired(rv, self._floor)
        found: list[Change] = []
        for change in reversed(self._changes):
            if change.rv <= rv:
                break
            found.append(change)
        found.reverse()
        return found

    def compact(self, resource_version: int) -> None:
        """Forget every change so far (a test hook): a watch from an older rv gets 410."""
        self._changes.clear()
        self._floor = resource_version

    def register(self, watcher: Watcher) -> None:
        self._watchers.add(watcher)

    def unregister(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def cut(self) -> None:
        for watcher in self._watchers:
            watcher.end()

    def open_count(self) -> int:
        return len(self._watchers)
