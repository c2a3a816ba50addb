"""Argo CD JSON → the frozen records of `services.backend`, checking every value on the way.

The API omits empty values and older servers lack newer keys, so each reader tolerates an absent
or mistyped value and falls back to the record's default instead of raising.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from urllib.parse import quote

from services.argocd.errors import bound
from services.argocd.payloads import (
    ApplicationPayload,
    ApplicationSource,
    HistoryPayload,
    ResourceDiffPayload,
    RevisionMetadataPayload,
)
from services.backend import (
    AppRef,
    AppStatus,
    Condition,
    HistoryEntry,
    Operation,
    ResourceChange,
    ResourceStatus,
    kept_annotations,
)

_DONE_STATUSES = frozenset({"Synced", "SyncFailed", "Pruned", "PruneSkipped"})
_FAILED_HOOK_PHASES = frozenset({"Failed", "Error"})
AUTOMATED_KEYS = ("prune", "selfHeal", "allowEmpty")
SLACK_USER_INFO = "slack-user"


def text(value: object) -> str:
    return value if isinstance(value, str) else ""


def opt_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def flag(value: object) -> bool:
    return value is True


def mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def items(value: object) -> list[Mapping[str, object]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [v for v in value if isinstance(v, Mapping)]


def timestamp(value: object) -> datetime | None:
    """RFC 3339 with second precision, `Z` for UTC (3.11's fromisoformat reads it)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def first_source(app: ApplicationPayload) -> ApplicationSource:
    spec = app.get("spec") or {}
    source = spec.get("source")
    if isinstance(source, Mapping):
        return source
    sources = spec.get("sources")
    return sources[0] if isinstance(sources, list) and sources and isinstance(sources[0], Mapping) else {}


def ref_of(instance: str, app: ApplicationPayload, fallback: AppRef | None = None) -> AppRef:
    meta = mapping(app.get("metadata"))
    spec = mapping(app.get("spec"))
    name = text(meta.get("name")) or (fallback.name if fallback else "")
    namespace = opt_text(meta.get("namespace")) or (fallback.namespace if fallback else None)
    project = opt_text(spec.get("project")) or (fallback.project if fallback else None)
    return AppRef("argocd", instance, name, namespace=namespace, project=project)


def automated_policy(app: ApplicationPayload) -> dict[str, object] | None:
    """`spec.syncPolicy.automated` when auto-sync is on (`IsAutomatedSyncEnabled`), else None."""
    policy = mapping(mapping(app.get("spec")).get("syncPolicy")).get("automated")
    if not isinstance(policy, Mapping) or policy.get("enabled") is False:
        return None
    return {k: v for k, v in policy.items() if k in AUTOMATED_KEYS and isinstance(v, bool)}


def operation_in_progress(app: ApplicationPayload, *, trimmed: bool = False) -> bool:
    """The CLI's `app wait --operation` rule (docs §7.4)."""
    if app.get("operation"):
        return True
    status = mapping(app.get("status"))
    state = mapping(status.get("operationState"))
    if not state:
        return False
    finished = timestamp(state.get("finishedAt"))
    if finished is None:
        return True
    sync = mapping(mapping(state.get("operation")).get("sync"))
    if flag(sync.get("dryRun")):
        return False
    if trimmed:
        # A `fields=`-trimmed list never carries reconciledAt (not in the server's whitelist):
        # judge by the operation alone rather than call every listed app "in progress".
        return False
    # Until the controller re-compares after the sync, sync and health values are stale.
    reconciled = timestamp(status.get("reconciledAt"))
    return reconciled is None or reconciled < finished


def _failed(result: Mapping[str, object]) -> str | None:
    if result.get("status") != "SyncFailed" and result.get("hookPhase") not in _FAILED_HOOK_PHASES:
        return None
    what = f"{text(result.get('kind'))}/{text(result.get('name'))}"
    message = text(result.get("message"))
    return bound(f"{what}: {message}" if message else what)


def _slack_user(operation: Mapping[str, object]) -> str | None:
    """The Slack user the bot recorded in `infos`: more useful than the bot's own account name."""
    for info in items(operation.get("info")):
        if info.get("name") == SLACK_USER_INFO:
            return opt_text(info.get("value"))
    return None


def operation_of(app: ApplicationPayload) -> Operation | None:
    requested = mapping(app.get("operation"))
    status = mapping(app.get("status"))
    state: Mapping[str, object] = mapping(status.get("operationState"))
    if not state and not requested:
        return None
    echo = mapping(state.get("operation")) or requested
    by = mapping(echo.get("initiatedBy")) or mapping(requested.get("initiatedBy"))
    sync = mapping(echo.get("sync"))
    result = mapping(state.get("syncResult"))
    results = items(result.get("resources"))
    partial = items(sync.get("resources"))
    managed = [r for r in items(status.get("resources")) if not flag(r.get("hook"))]
    done = sum(1 for r in results if r.get("status") in _DONE_STATUSES)
    total = max(len(partial) if partial else len(managed), len(results), done)
    return Operation(
        # A requested operation the controller has not picked up yet has no state: it is queued.
        phase=text(state.get("phase")) or "Running",
        message=text(state.get("message")) if state else "operation requested",
        revision=opt_text(result.get("revision")) or opt_text(sync.get("revision")),
        started_at=timestamp(state.get("startedAt")),
        finished_at=timestamp(state.get("finishedAt")),
        initiated_by=_slack_user(echo) or opt_text(by.get("username")),
        automated=flag(by.get("automated")),
        dry_run=flag(sync.get("dryRun")),
        resources_done=done,
        resources_total=total,
        failed_resources=tuple(f for r in results if (f := _failed(r)) is not None),
    )


def _resource(raw: Mapping[str, object]) -> ResourceStatus:
    health = mapping(raw.get("health"))
    return ResourceStatus(
        kind=text(raw.get("kind")),
        name=text(raw.get("name")),
        namespace=text(raw.get("namespace")),
        group=text(raw.get("group")),
        sync=text(raw.get("status")),
        health=text(health.get("status")),
        message=text(health.get("message")),
    )


def ui_url(browser_url: str, ref: AppRef) -> str:
    base = browser_url.rstrip("/")
    parts = [ref.namespace, ref.name] if ref.namespace else [ref.name]
    return f"{base}/applications/" + "/".join(quote(p, safe="") for p in parts)


def app_status(
    instance: str,
    app: ApplicationPayload,
    *,
    browser_url: str,
    fallback: AppRef | None = None,
    trimmed: bool = False,
) -> AppStatus:
    ref = ref_of(instance, app, fallback)
    meta = mapping(app.get("metadata"))
    status = mapping(app.get("status"))
    sync = mapping(status.get("sync"))
    health = mapping(status.get("health"))
    source = first_source(app)
    revisions = [r for r in items_or_strings(sync.get("revisions")) if r]
    labels = mapping(meta.get("labels"))
    return AppStatus(
        ref=ref,
        sync=text(sync.get("status")) or "Unknown",
        health=text(health.get("status")) or "Unknown",
        health_message=text(health.get("message")),
        revision=deployed_revision(app),
        source_revision=opt_text(sync.get("revision")) or (revisions[0] if revisions else None),
        target_revision=(text(source.get("targetRevision")) or "HEAD") if source else None,
        repo_url=opt_text(source.get("repoURL")),
        path=opt_text(source.get("path")) or opt_text(source.get("chart")),
        images=tuple(items_or_strings(mapping(status.get("summary")).get("images"))),
        conditions=tuple(
            Condition(type=text(c.get("type")), message=text(c.get("message")))
            for c in items(status.get("conditions"))
        ),
        resources=tuple(_resource(r) for r in items(status.get("resources"))),
        operation=operation_of(app),
        operation_in_progress=operation_in_progress(app, trimmed=trimmed),
        auto_sync=automated_policy(app) is not None,
        reconciled_at=timestamp(status.get("reconciledAt")),
        labels=tuple(sorted((k, v) for k, v in labels.items() if isinstance(v, str))),
        ui_url=ui_url(browser_url, ref),
        annotations=kept_annotations(mapping(meta.get("annotations"))),
    )


def deployed_revision(app: ApplicationPayload) -> str | None:
    """What runs: the compared revision when Synced, else the last successful full sync.

    `status.sync.revision` alone is what Git's target resolves to *now*, which after a push is
    not yet deployed. None when neither is known (e.g. an OutOfSync app in a trimmed list).
    """
    sync = mapping(mapping(app.get("status")).get("sync"))
    if sync.get("status") == "Synced":
        revisions = items_or_strings(sync.get("revisions"))
        return opt_text(sync.get("revision")) or (revisions[0] if revisions else None)
    history = history_raw(app)
    if history:
        return history_revision(history[-1]) or None
    # Trimmed lists have no history; the last successful full sync's result says what was applied.
    state = mapping(mapping(app.get("status")).get("operationState"))
    # In a trimmed list the syncResult arrives under operation.sync (an upstream quirk).
    result = mapping(state.get("syncResult")) or mapping(mapping(state.get("operation")).get("sync"))
    if state.get("phase") == "Succeeded" and not flag(result.get("dryRun")):
        return opt_text(result.get("revision"))
    return None


def items_or_strings(value: object) -> list[str]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [v for v in value if isinstance(v, str)]


def history_raw(app: ApplicationPayload) -> list[HistoryPayload]:
    """`status.history` as stored: oldest first, entries without a numeric id dropped."""
    entries = (app.get("status") or {}).get("history")
    if not isinstance(entries, list):
        return []
    return [
        e
        for e in entries
        if isinstance(e, Mapping) and isinstance(e.get("id"), int) and e.get("id") is not True
    ]


def history_revision(entry: HistoryPayload) -> str:
    revisions = items_or_strings(entry.get("revisions"))
    return text(entry.get("revision")) or (revisions[0] if revisions else "")


def history_entry(
    entry: HistoryPayload, *, current: bool, meta: RevisionMetadataPayload | None = None
) -> HistoryEntry:
    by = mapping(entry.get("initiatedBy"))
    automated = flag(by.get("automated"))
    meta = meta or {}
    return HistoryEntry(
        id=str(entry.get("id")),
        revision=history_revision(entry),
        deployed_at=timestamp(entry.get("deployedAt")),
        author=opt_text(meta.get("author")),
        message=opt_text(meta.get("message")),
        initiated_by=opt_text(by.get("username")) or ("automated" if automated else None),
        automated=automated,
        current=current,
    )


def _state(raw: object) -> dict[str, object] | None:
    """One `*State` field: a string holding JSON, `"null"` when that side does not exist."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def resource_change(item: ResourceDiffPayload) -> ResourceChange | None:
    """The change the UI would show for one managed resource (docs §6), None when there is none."""
    if flag(item.get("hook")):
        return None
    live = _state(item.get("normalizedLiveState"))
    target = _state(item.get("predictedLiveState"))
    if live is None and target is None:
        return None
    if live is not None and target is not None and not flag(item.get("modified")):
        return None
    return ResourceChange(
        group=text(item.get("group")),
        kind=text(item.get("kind")),
        namespace=text(item.get("namespace")),
        name=text(item.get("name")),
        live=live,
        target=target,
    )
