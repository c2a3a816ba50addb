"""The fake API server's object store: copy-on-write objects, resourceVersions, a JSON cache per version.

A committed object dict is never mutated again (writers build a new dict), so readers and the
per-version JSON cache can share it without copying. Callers hold `lock` around every call. Every
create/commit/delete (whatever `notify` says: that flag is for the fake controllers) goes to `history`,
which feeds the open watches and lets them resume (`sandbox.k8s_watch`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.k8s_history import HISTORY_LIMIT, History
from sandbox.k8s_registry import ResourceType

Key = tuple[str, str, str]  # plural, namespace, name
Converter = Callable[[dict[str, Any]], dict[str, Any]]


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


class Store:
    def __init__(self, clock: Callable[[], float] = time.time, *, history_limit: int = HISTORY_LIMIT) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.dirty: set[Key] = set()  # objects written by clients or fixtures since the controller looked
        self._objects: dict[str, dict[tuple[str, str], Entry]] = {}
        self._rv = 1000
        self.history = History(self._rv, limit=history_limit)

    @property
    def resource_version(self) -> int:
        return self._rv

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
        self._record("ADDED", entry, None)
        if notify:
            self.dirty.add(entry.key)
        return entry

    def commit(self, entry: Entry, obj: dict[str, Any], *, spec_changed: bool, notify: bool = True) -> None:
        """Replace the object (a new dict); bumps resourceVersion, and generation on a spec change."""
        self._rv += 1
        meta = dict(obj["metadata"])
        meta["resourceVersion"] = str(self._rv)
        if spec_changed:
            meta["generation"] = int(entry.obj["metadata"].get("generation", 1)) + 1
        old = entry.obj
        entry.obj = {**obj, "metadata": meta}
        entry.cache = {}
        self._record("MODIFIED", entry, old)
        if notify:
            self.dirty.add(entry.key)

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
        self._record("DELETED", entry, None)

    def _record(self, type_: str, entry: Entry, old: dict[str, Any] | None) -> None:
        # The snapshot shares the live entry's JSON cache until the next write replaces that dict,
        # so LIST and every watch encode a version of the object once.
        self.history.record(type_, self._rv, Entry(entry.rtype, entry.obj, entry.cache), old)

    def encoded(self, entry: Entry, api_version: str, convert: Converter | None = None) -> bytes:
        """The object as served in `api_version`; `convert` turns the stored shape into that version's."""
        cached = entry.cache.get(api_version)
        if cached is None:
            obj = convert(entry.obj) if convert is not None else entry.obj
            cached = entry.cache[api_version] = json.dumps(
                {"apiVersion": api_version, "kind": entry.rtype.kind, **_without_type(obj)}
            ).encode()
        return cached


def _without_type(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
