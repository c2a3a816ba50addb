"""The fake API server's object store: copy-on-write objects, resourceVersions, a change log for watches.

A committed object dict is never mutated again (writers build a new dict), so readers, the watch log and
the per-version JSON cache can share it without copying.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.k8s_registry import ResourceType

Key = tuple[str, str, str]  # plural, namespace, name
Converter = Callable[[dict[str, Any]], dict[str, Any]]
LOG_SIZE = 50_000


def rfc3339(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass
class Entry:
    rtype: ResourceType
    obj: dict[str, Any]
    cache: dict[str, bytes] = field(default_factory=dict)  # apiVersion -> JSON

    @property
    def key(self) -> Key:
        meta = self.obj["metadata"]
        return self.rtype.plural, meta.get("namespace", ""), meta["name"]


@dataclass(frozen=True)
class Change:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    plural: str
    obj: dict[str, Any]


class Store:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified on every write (watches wait on it)
        self.dirty: set[Key] = set()  # objects written by clients or fixtures since the controller looked
        self._objects: dict[str, dict[tuple[str, str], Entry]] = {}
        self._rv = 1000
        self._log: deque[Change] = deque(maxlen=LOG_SIZE)

    @property
    def resource_version(self) -> int:
        return self._rv

    def oldest_logged(self) -> int:
        """The resourceVersion a watch can start after; older ones are `410 Gone`."""
        return self._log[0].rv - 1 if self._log else self._rv

    def changes_since(self, rv: int, plural: str) -> list[Change]:
        return [c for c in self._log if c.rv > rv and c.plural == plural]

    def now(self) -> str:
        return rfc3339(self.clock())

    def get(self, plural: str, namespace: str, name: str) -> Entry | None:
        return self._objects.get(plural, {}).get((namespace, name))

    def select(self, plural: str, namespace: str | None = None) -> list[Entry]:
        """Entries in etcd key order (namespace, then name)."""
        bucket = self._objects.get(plural, {})
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[k] for k in keys]

    def create(
        self, rtype: ResourceType, obj: dict[str, Any], *, notify: bool = True, generation: bool = True
    ) -> Entry:
        meta = dict(obj["metadata"])
        namespace = meta.get("namespace", "")
        bucket = self._objects.setdefault(rtype.plural, {})
        if (namespace, meta["name"]) in bucket:
            raise KeyError(f'{rtype.resource} "{meta["name"]}" already exists in {namespace!r}')
        self._rv += 1
        meta.update(uid=str(uuid.uuid4()), resourceVersion=str(self._rv), creationTimestamp=self.now())
        if generation:
            meta["generation"] = 1
        entry = Entry(rtype, {**obj, "metadata": meta})
        bucket[(namespace, meta["name"])] = entry
        self._logged("ADDED", entry, notify=notify)
        return entry

    def commit(self, entry: Entry, obj: dict[str, Any], *, spec_changed: bool, notify: bool = True) -> None:
        """Replace the object (a new dict); bumps resourceVersion, and generation on a spec change."""
        self._rv += 1
        meta = dict(obj["metadata"])
        meta["resourceVersion"] = str(self._rv)
        if spec_changed:
            meta["generation"] = int(entry.obj["metadata"].get("generation", 1)) + 1
        entry.obj = {**obj, "metadata": meta}
        entry.cache = {}
        self._logged("MODIFIED", entry, notify=notify)

    def set_status(self, entry: Entry, status: dict[str, Any]) -> None:
        """A write through the status subresource (the controllers): no generation change."""
        self.commit(entry, {**entry.obj, "status": status}, spec_changed=False, notify=False)

    def delete(self, entry: Entry) -> None:
        plural, namespace, name = entry.key
        if self._objects.get(plural, {}).pop((namespace, name), None) is None:
            return
        self._rv += 1
        meta = {**entry.obj["metadata"], "resourceVersion": str(self._rv)}
        entry.obj = {**entry.obj, "metadata": meta}
        entry.cache = {}
        self._logged("DELETED", entry, notify=False)

    def encoded(self, entry: Entry, api_version: str, convert: Converter | None = None) -> bytes:
        """The object as served in `api_version`; `convert` turns the stored shape into that version's."""
        cached = entry.cache.get(api_version)
        if cached is None:
            obj = convert(entry.obj) if convert is not None else entry.obj
            cached = entry.cache[api_version] = json.dumps(
                {"apiVersion": api_version, "kind": entry.rtype.kind, **_without_type(obj)}
            ).encode()
        return cached

    def _logged(self, kind: str, entry: Entry, *, notify: bool) -> None:
        self._log.append(Change(self._rv, kind, entry.rtype.plural, entry.obj))
        if notify:
            self.dirty.add(entry.key)
        self.changed.notify_all()


def _without_type(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
