"""Cluster state shared by the fake API server and the fake controllers: types, objects, RBAC, Events."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.argocd_http import Reply, Request
from sandbox.k8s_registry import Registry, ResourceType
from sandbox.k8s_store import Entry, Key, Store

VersionConverter = Callable[[ResourceType, dict[str, Any], str], dict[str, Any]]  # stored -> served shape
# An admission webhook: (type, request version, stored object or None on create, new stored object) -> the
# object to store (mutated), or raises k8s_status.ApiError (a denial).
Admission = Callable[[ResourceType, str, dict[str, Any] | None, dict[str, Any]], dict[str, Any]]
SubresourceHandler = Callable[[Request, str, str], Reply]  # (request, namespace, name), e.g. pods/log
EVENT = ResourceType(group="", kind="Event", plural="events", singular="event", short_names=("ev",))
MAX_EVENTS = 5000  # the real API server expires Events after an hour; the fake keeps the newest
BOOKMARK_SECONDS = 60.0  # kube-apiserver sends a watch bookmark about once a minute
WATCH_TIMEOUT_SECONDS = 1800.0  # a watch without timeoutSeconds: the real --min-request-timeout


class Cluster:
    def __init__(
        self, registry: Registry, store: Store, *, token: str, convert: VersionConverter | None = None
    ) -> None:
        self.registry = registry
        self.store = store
        self.token = token
        self._convert = convert
        # Extension points for kinds added after construction (sandbox.tekton_fake): converters by group
        # (stored -> served, and `decoders` request version -> stored), admission by plural, plurals that
        # take POST (k8s_create), and subresource handlers by (plural, subresource).
        self.converters: dict[str, VersionConverter] = {}
        self.decoders: dict[str, VersionConverter] = {}
        self.admission: dict[str, Admission] = {}
        self.creatable: set[str] = set()
        self.subresources: dict[tuple[str, str], SubresourceHandler] = {}
        self._denied: set[tuple[str, str, str | None]] = set()
        self._event_index: dict[tuple[str, ...], Key] = {}
        self._event_keys: dict[Key, tuple[str, ...]] = {}
        self._event_order: deque[Key] = deque()
        self._event_seq = 0
        # Watch knobs (`sandbox.k8s_watch`), read when a stream starts: tests and benchmarks shorten them.
        self.bookmark_seconds = BOOKMARK_SECONDS
        self.watch_timeout_seconds = WATCH_TIMEOUT_SECONDS
        registry.register(EVENT, ["v1"], None)

    # -- RBAC ------------------------------------------------------------------------------------------

    def forbid(self, verb: str, plural: str, namespace: str | None) -> None:
        with self.store.lock:
            self._denied.add((verb, plural, namespace))

    def allow(self, verb: str, plural: str, namespace: str | None) -> None:
        with self.store.lock:
            self._denied.discard((verb, plural, namespace))

    def allowed(self, verb: str, plural: str, namespace: str | None) -> bool:
        """A denial in one namespace also denies the cluster scope (no ClusterRole can grant it)."""
        with self.store.lock:
            for denied_verb, denied_plural, denied_ns in self._denied:
                scoped = denied_ns is None or namespace is None or denied_ns == namespace
                if denied_verb == verb and denied_plural == plural and scoped:
                    return False
            return True

    # -- watches (test hooks) ---------------------------------------------------------------------------

    def compact(self) -> None:
        """Drop the change history, as etcd compaction does: a watch from an older rv gets 410 Expired."""
        with self.store.lock:
            self.store.history.compact(self.store.resource_version)

    def cut_watches(self) -> None:
        """End every open watch now (the client sees its body end, as when a proxy drops it)."""
        with self.store.lock:
            self.store.history.cut()

    def open_watches(self) -> int:
        with self.store.lock:
            return self.store.history.open_count()

    # -- serving ---------------------------------------------------------------------------------------

    def encoded(self, entry: Entry, version: str) -> bytes:
        rtype = entry.rtype
        convert = self.converters.get(rtype.group, self._convert)
        converter = None if convert is None else (lambda obj: convert(rtype, obj, version))
        return self.store.encoded(entry, rtype.api_version(version), converter)

    def served(self, entry: Entry, version: str | None = None) -> dict[str, Any]:
        """A deep copy of the object as a client of `version` (default: preferred) sees it."""
        chosen = version or self.registry.preferred_version(entry.rtype.plural)
        copied: dict[str, Any] = json.loads(self.encoded(entry, chosen))
        return copied

    # -- Events ----------------------------------------------------------------------------------------

    def record_event(
        self,
        involved: Entry,
        *,
        type_: str,
        reason: str,
        message: str,
        component: str,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        """A core/v1 Event about `involved`; repeats aggregate (count, lastTimestamp) as in client-go."""
        store = self.store
        with store.lock:
            meta = involved.obj["metadata"]
            index_key = (meta["uid"], type_, reason, message, component)
            now = store.now()
            known = self._event_index.get(index_key)
            existing = store.get(*known) if known else None
            if existing is not None:
                obj = {**existing.obj, "count": int(existing.obj.get("count", 1)) + 1, "lastTimestamp": now}
                store.commit(existing, obj, spec_changed=False, notify=False)
                return
            self._event_seq += 1
            rtype = involved.rtype
            version = self.registry.preferred_version(rtype.plural)
            event: dict[str, Any] = {
                "metadata": {
                    "name": f"{meta['name']}.{int(store.clock() * 1e9) + self._event_seq:x}",
                    "namespace": meta.get("namespace", "default"),
                    "annotations": dict(annotations or {}),
                },
                "involvedObject": {
                    "kind": rtype.kind,
                    "namespace": meta.get("namespace", ""),
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "apiVersion": rtype.api_version(version),
                    "resourceVersion": meta["resourceVersion"],
                },
                "reason": reason,
                "message": message,
                "source": {"component": component},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "type": type_,
                "eventTime": None,
                "reportingComponent": component,
                "reportingInstance": f"{component}-7f9c6d5b8-sbx{self._event_seq % 100:02d}",
            }
            created = store.create(EVENT, event, notify=False, generation=False)
            self._event_index[index_key] = created.key
            self._event_keys[created.key] = index_key
            self._event_order.append(created.key)
            while len(self._event_order) > MAX_EVENTS:
                key = self._event_order.popleft()
                self._event_index.pop(self._event_keys.pop(key, ()), None)
                oldest = store.get(*key)
                if oldest is not None:
                    store.delete(oldest)
