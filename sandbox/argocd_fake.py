"""A stateful fake Argo CD API server on 127.0.0.1, held to docs/argocd-api.md and the swagger extract.

Typical use: `with FakeArgoCD() as argocd:` then `argocd.add_app("web", project="shop")`, and point a
client at `argocd.base_url` with `Authorization: Bearer <JWT_TOKEN>`. `push_revision` / `drift` /
`set_health` / `fail_next_sync` / `forbid` / `delete_app` change the world behind the API; `requests()`
shows what the client sent; `fail_next` / `set_latency` / `go_down` simulate a bad network or proxy;
`cut_streams` / `refuse_streams` / `stream_error` do the same to the watch stream (argocd_stream).
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from sandbox import argocd_apps
from sandbox.argocd_apps import DEFAULT_AUTHOR, AppSpec
from sandbox.argocd_controller import Controller
from sandbox.argocd_faults import Faults, RecordedRequest
from sandbox.argocd_git import Manifest, Upstream
from sandbox.argocd_http import RebindableServer
from sandbox.argocd_routes import ArgoApi
from sandbox.argocd_schema import BodySchema
from sandbox.argocd_state import AppRecord, InjectedFailure, Store
from sandbox.argocd_stream import KEEPALIVE_SECONDS, StreamHub, error_event

__all__ = ["JWT_TOKEN", "FakeArgoCD", "RecordedRequest", "Upstream"]

# header {"alg":"HS256","typ":"JWT"}, claims {"iss":"argocd","sub":"gitops-bot:apiKey",...}; unsigned.
JWT_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJpc3MiOiJhcmdvY2QiLCJzdWIiOiJnaXRvcHMtYm90OmFwaUtleSIsIm5iZiI6MTcwMDAwMDAwMCwiaWF0IjoxNzAwMDAwMDAw"
    "LCJqdGkiOiJzYW5kYm94LXRva2VuIn0."
    "c2FuZGJveC1zaWduYXR1cmUtbm90LWNoZWNrZWQ"
)


class FakeArgoCD:
    """Argo CD's REST API with apps, a fake git per app, live objects and a controller thread."""

    def __init__(
        self,
        *,
        token: str = JWT_TOKEN,
        version: str = "v3.6.0+sandbox",
        operation_seconds: float = 0.3,
        tick: float = 0.05,
        clock: Callable[[], float] = time.time,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ) -> None:
        self._store = Store(clock)
        self._streams = StreamHub(self._store, keepalive_seconds=keepalive_seconds)
        self._api = ArgoApi(
            self._store, BodySchema.load(), token=token, version=version, streams=self._streams
        )
        self._controller = Controller(self._store, operation_seconds=operation_seconds, tick=tick)
        self._faults = Faults(self._api.handle)
        self._server = RebindableServer(self._faults)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeArgoCD:
        self._server.up()
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
        self._server.down()
        self._streams.end_all(abrupt=True)  # their sockets are gone; free the handler threads

    def __enter__(self) -> FakeArgoCD:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    def go_down(self) -> None:
        """Close the listening socket and open connections: clients get connection refused."""
        self._server.down()
        self._streams.end_all(abrupt=True)

    def come_up(self) -> None:
        """Listen again on the same port; apps and history are kept."""
        self._server.up()

    # -- apps, git and cluster ----------------------------------------------------------------------

    def add_app(
        self,
        name: str,
        *,
        project: str = "default",
        namespace: str = "argocd",
        dest_namespace: str | None = None,
        repo_url: str = "https://git.example.com/deploy.git",
        path: str | None = None,
        target_revision: str = "HEAD",
        labels: Mapping[str, str] | None = None,
        auto_sync: bool = False,
        images: Sequence[str] = ("registry.example.com/NAME:1.0.0",),
        replicas: int = 2,
        history: int = 3,
        health: str = "Healthy",
        commits: Sequence[Upstream] = (),
    ) -> None:
        """`commits`: real commits (oldest first) the app was deployed at, one history entry each,
        instead of `history` made-up ones; the fake then reports their SHAs, authors and dates."""
        spec = AppSpec(
            name, project, namespace, dest_namespace, repo_url, path, target_revision,
            labels, auto_sync, tuple(images), replicas, history, health, tuple(commits),
        )  # fmt: skip
        with self._store.lock:
            if name in self._store.records:
                raise ValueError(f"app {name!r} already exists")
            self._store.records[name] = argocd_apps.new_record(self._store, spec)

    def bulk_add(self, count: int, *, prefix: str = "app-", **options: Any) -> list[str]:
        """`count` apps named `<prefix>00000`…; `options` are add_app's keyword arguments."""
        names = [f"{prefix}{index:05d}" for index in range(count)]
        # Full GC passes rescan every stored app while thousands are allocated: quadratic, so pause it.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with self._store.lock:
                for name in names:
                    self.add_app(name, **options)
                    self._store.records[name].encoded()  # warm the JSON cache List joins
        finally:
            if collecting:
                gc.enable()
        return names

    def push_revision(
        self,
        name: str,
        *,
        image: str | None = None,
        replicas: int | None = None,
        config: Mapping[str, str] | None = None,
        message: str = "update",
        author: str = DEFAULT_AUTHOR,
        tags: Sequence[str] = (),
        add: Sequence[Manifest] = (),
        remove: Sequence[str] = (),
        sha: str | None = None,
        date: str | None = None,
    ) -> str:
        """A new commit on the app's branch; `add` manifests, `remove` "Kind/name"s. Returns the SHA.
        `sha` and `date` (RFC 3339) mirror a real commit instead of making them up."""
        with self._store.lock:
            return argocd_apps.push_revision(
                self._store, self._record(name), image=image, replicas=replicas, config=config,
                message=message, author=author, tags=tags, add=add, remove=remove, sha=sha, date=date,
            )  # fmt: skip

    def drift(self, name: str, *, replicas: int | None = None, image: str | None = None) -> None:
        with self._store.lock:
            argocd_apps.drift(self._store, self._record(name), replicas=replicas, image=image)

    def heal(self, name: str) -> None:
        with self._store.lock:
            argocd_apps.heal(self._store, self._record(name))

    def set_health(self, name: str, health: str, message: str = "") -> None:
        with self._store.lock:
            record = self._record(name)
            record.health = (health, message)
            self._store.recompute(record)
            self._store.touch(record)

    def fail_next_sync(
        self,
        name: str,
        *,
        phase: str = "Failed",
        message: str = "one or more objects failed to apply",
        resource: str = "Deployment/NAME",
    ) -> None:
        with self._store.lock:
            self._record(name).failure = InjectedFailure(phase, message, resource.replace("NAME", name))

    def forbid(self, name: str) -> None:
        """RBAC: the token may no longer see this app (List drops it, single-app calls 403/404)."""
        with self._store.lock:
            self._record(name).forbidden = True

    def delete_app(self, name: str) -> None:
        """The Application is gone (as after `argocd app delete`): open watches get DELETED."""
        with self._store.lock:
            self._record(name)
            self._store.remove(name)

    def app(self, name: str) -> dict[str, Any]:
        with self._store.lock:
            copied: dict[str, Any] = json.loads(self._record(name).encoded())
            return copied

    def apps(self) -> list[str]:
        with self._store.lock:
            return sorted(self._store.records)

    def _record(self, name: str) -> AppRecord:
        record = self._store.records.get(name)
        if record is None:
            raise KeyError(f"no app named {name!r}")
        return record

    # -- requests and injected trouble --------------------------------------------------------------

    def requests(self, path_prefix: str | None = None) -> list[RecordedRequest]:
        return self._faults.requests(path_prefix)

    def clear_requests(self) -> None:
        self._faults.clear_requests()

    def fail_next(
        self,
        *,
        path: str = "",
        method: str | None = None,
        status: int = 500,
        times: int = 1,
        body: str | None = None,
        content_type: str = "application/json",
    ) -> None:
        """The next `times` requests under `path` (and `method`) get this answer instead."""
        self._faults.fail_next(
            path=path, method=method, status=status, times=times, body=body, content_type=content_type
        )

    def set_latency(self, seconds: float, *, path: str | None = None) -> None:
        """Every response waits this long first; with `path`, only requests for exactly that path
        (e.g. `/api/v1/applications/web-prod`: one app answering slowly)."""
        self._faults.set_latency(seconds, path=path)

    # -- the watch stream ---------------------------------------------------------------------------

    @property
    def keepalive_seconds(self) -> float:
        """The SSE keep-alive period (`:` comment lines); applies to streams opened afterwards."""
        return self._streams.keepalive_seconds

    @keepalive_seconds.setter
    def keepalive_seconds(self, seconds: float) -> None:
        self._streams.keepalive_seconds = seconds

    def on_change(self, listener: Callable[[str, AppRecord], None]) -> None:
        """Call `listener(event type, app record)` on every change of an app, with the fake's lock
        held (what its watch streams are fed from): benchmarks time deploys inside the fake."""
        with self._store.lock:
            self._store.listeners.append(listener)

    def open_streams(self) -> int:
        return self._streams.count()

    def cut_streams(self, *, abrupt: bool = False) -> None:
        """End every open stream now, as a proxy dropping it: the body ends (`abrupt`: the connection
        closes mid-body instead, which httpx reports as a protocol error)."""
        self._streams.end_all(abrupt=abrupt)

    def refuse_streams(self, refuse: bool = True) -> None:
        """The stream endpoint answers 404 (an old Argo CD behind a proxy that does not route it)."""
        self._streams.refusing = refuse

    def stream_error(self, message: str = "permission denied", http_code: int = 403) -> None:
        """Every open stream gets grpc-gateway's mid-stream error object, then ends."""
        self._streams.end_all(error=error_event(message, http_code))
