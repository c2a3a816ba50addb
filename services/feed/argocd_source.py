"""Following one Argo CD instance for the feed: its application watch stream, else its list.

The stream (`GET /api/v1/stream/applications`, docs/argocd-api.md §4.9) is trimmed with `fields`
to what a snapshot needs. It never ends on its own; when it does (a proxy, a restart of
argocd-server) the source reconnects **without** a resourceVersion: the server then replays every
app as ADDED, and the stored cursors turn that replay into exactly the deploys that finished while
the stream was down — nothing lost, nothing twice. (Resuming from a resourceVersion would only
filter; the server has no backlog to replay.) When the endpoint is not served (a proxy that does
not route it, 404/405/501) the source lists every `list_interval` instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from services.argocd.backend import ArgoCDBackend
from services.argocd.convert import (
    SLACK_USER_INFO,
    flag,
    items,
    items_or_strings,
    mapping,
    opt_text,
    text,
    timestamp,
)
from services.argocd.errors import ArgoCDError, ArgoCDNotFound, ArgoCDUnavailable
from services.backend import AppRef
from services.feed.model import CommitInfo, Snapshot

log = logging.getLogger(__name__)

Mode = Literal["auto", "stream", "list"]
Emit = Callable[[Sequence[Snapshot]], None]

_APP = (
    "metadata.name", "metadata.namespace", "metadata.resourceVersion", "metadata.labels", "spec.project",
    "spec.source.chart", "status.sync.status", "status.sync.revision", "status.reconciledAt",
    "status.summary.images",
    "status.operationState.phase", "status.operationState.message", "status.operationState.startedAt",
    "status.operationState.finishedAt", "status.operationState.operation.initiatedBy",
    "status.operationState.operation.info", "status.operationState.operation.sync.dryRun",
    "status.operationState.syncResult.revision",
)  # fmt: skip
STREAM_FIELDS = ("result.type", *(f"result.application.{f}" for f in _APP))
# List honours a fixed whitelist only (§4.1): no initiatedBy, message or reconciledAt there; a
# deploy found in a list is read once more with GET for those (`refine`).
LIST_FIELDS = tuple(
    f"items.{f}"
    for f in (
        "metadata.name", "metadata.namespace", "metadata.labels", "spec.project", "spec.source",
        "status.sync.status", "status.sync.revision", "status.summary", "status.operationState.phase",
        "status.operationState.startedAt", "status.operationState.finishedAt",
        "status.operationState.operation.sync",
    )
)  # fmt: skip
_NOT_SERVED = (404, 405, 501)


def app_key(ref: AppRef, control_namespace: str = "argocd") -> str:
    """Apps in the control-plane namespace are addressed without one (the resolver's refs)."""
    namespace = ref.namespace if ref.namespace and ref.namespace != control_namespace else "-"
    return f"argocd:{ref.instance}/{namespace}/{ref.name}"


def snapshot(
    instance: str, app: Mapping[str, object], *, deleted: bool = False, trimmed: bool = False,
    control_namespace: str = "argocd",
) -> Snapshot:  # fmt: skip
    meta, spec, status = mapping(app.get("metadata")), mapping(app.get("spec")), mapping(app.get("status"))
    ref = AppRef("argocd", instance, text(meta.get("name")), namespace=opt_text(meta.get("namespace")),
                 project=opt_text(spec.get("project")))  # fmt: skip
    state = mapping(status.get("operationState"))
    echo = mapping(state.get("operation"))
    by = mapping(echo.get("initiatedBy"))
    # A trimmed list carries the syncResult under operation.sync (an upstream quirk, §4.1).
    result = mapping(state.get("syncResult")) or mapping(echo.get("sync"))
    started, finished = timestamp(state.get("startedAt")), timestamp(state.get("finishedAt"))
    dry_run = flag(mapping(echo.get("sync")).get("dryRun")) or flag(result.get("dryRun"))

    reconciled = timestamp(status.get("reconciledAt"))
    chart = opt_text(mapping(spec.get("source")).get("chart"))
    revision = opt_text(result.get("revision"))
    # Times have one-second resolution: two quick syncs can share them, never with one revision.
    op_id = (
        None
        if finished is None or dry_run
        else f"{state.get('startedAt')}/{state.get('finishedAt')}/{revision}"
    )
    labels = mapping(meta.get("labels"))
    return Snapshot(
        key=app_key(ref, control_namespace), ref=ref, resource_version=text(meta.get("resourceVersion")),
        revision=_running(state, mapping(status.get("sync")), revision),
        op_id=op_id, op_phase=opt_text(state.get("phase")), op_revision=revision,
        started_at=started, finished_at=finished,
        initiated_by=_bot_user(echo) or opt_text(by.get("username")), automated=flag(by.get("automated")),
        message=text(state.get("message"))[:500],
        images=tuple(sorted(items_or_strings(mapping(status.get("summary")).get("images")))),
        chart=f"{chart}@{revision}" if chart and revision else None,
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        # Until the controller re-compares after the operation, images and sync are stale (§7.4).
        settled=trimmed or finished is None or (reconciled is not None and reconciled >= finished),
        deleted=deleted,
    )  # fmt: skip


def _running(state: Mapping[str, object], sync: Mapping[str, object], applied: str | None) -> str | None:
    """What runs: the last successful sync's revision; `status.sync.revision` is what Git resolves
    to now (ahead of the cluster after a push), so it counts only while the app is Synced."""
    if state.get("phase") == "Succeeded" and applied:
        return applied
    return opt_text(sync.get("revision")) if sync.get("status") == "Synced" else None


def _bot_user(operation: Mapping[str, object]) -> str | None:
    for info in items(operation.get("info")):
        if info.get("name") == SLACK_USER_INFO:
            return f"slack:{text(info.get('value'))}"
    return None


class ArgoCDFeed:
    """Follows one instance until `stop` is set; `emit` receives snapshots in order."""

    def __init__(self, backend: ArgoCDBackend, *, mode: Mode = "auto", list_interval: float = 60.0,
                 idle: float = 60.0, retry: float = 2.0) -> None:  # fmt: skip
        self.backend = backend
        self.name = f"argocd:{backend.instance}"
        self.mode = mode
        self.list_interval = list_interval
        self.idle = idle  # keep-alives come every 15 s; this much silence means a dead connection
        self.retry = retry
        self.streaming = mode != "list"
        self.connects = 0  # stream connections opened (the benchmark and tests read it)
        self._ns = backend.control_namespace

    def key(self, ref: AppRef) -> str:
        return app_key(ref, self._ns)

    def run(self, stop: threading.Event, emit: Emit) -> None:
        failures = 0
        while not stop.is_set():
            try:
                if self.streaming:
                    self._stream(stop, emit)
                else:
                    self.list_once(emit)
                    stop.wait(self.list_interval)
                failures = 0
            except ArgoCDError as exc:
                if stop.is_set():
                    return  # the stream was cut because the bot is stopping
                if self.streaming and self.mode == "auto" and exc.status in _NOT_SERVED:
                    log.warning("Argo CD stream not served; listing instead", extra={"instance": self.name})
                    self.streaming = False
                    continue
                failures += 1
                log.warning("feed source failed", extra={"instance": self.name, "error": str(exc)[:200]})
                stop.wait(min(60.0, self.retry * 2 ** min(failures - 1, 5)))

    def _stream(self, stop: threading.Event, emit: Emit) -> None:
        client = self.backend.client
        with client.stream_apps(fields=STREAM_FIELDS, idle=self.idle) as events:
            self.connects += 1
            for event in events:
                if stop.is_set():
                    return
                app = mapping(event.get("application"))
                if app:
                    deleted = event.get("type") == "DELETED"
                    emit([snapshot(self.backend.instance, app, deleted=deleted, control_namespace=self._ns)])

    def list_once(self, emit: Emit) -> None:
        payload = self.backend.client.list_apps(fields=LIST_FIELDS)
        emit([snapshot(self.backend.instance, a, trimmed=True, control_namespace=self._ns)
              for a in items(payload.get("items"))])  # fmt: skip

    def refine(self, snap: Snapshot) -> Snapshot:
        """The full app for a deploy found in a trimmed list (who started it, the message)."""
        ref = snap.ref
        try:
            app = self.backend.client.get_app(ref.name, project=ref.project, app_namespace=ref.namespace)
        except (ArgoCDNotFound, ArgoCDUnavailable):
            return snap
        except ArgoCDError:
            return snap
        fresh = snapshot(self.backend.instance, app, trimmed=True, control_namespace=self._ns)
        if fresh.op_id != snap.op_id:
            return snap  # another operation meanwhile: keep what was found
        return fresh

    def commit(self, ref: AppRef, revision: str | None) -> CommitInfo | None:
        if not revision:
            return None
        meta = self.backend.revision_metadata(ref, revision)
        if meta is None:
            return None
        return CommitInfo(
            author=meta.get("author"), date=timestamp(meta.get("date")), message=meta.get("message")
        )
