"""Flux objects (raw JSON) → the frozen records of `services.backend`.

Objects come from clusters of several Flux versions and may miss any status field (an object
the controller has not seen yet has no status at all), so every reader tolerates absent or
mistyped values and falls back to the record's default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from services.backend import (
    AppRef,
    AppRow,
    AppStatus,
    Condition,
    HistoryEntry,
    Operation,
    ResourceStatus,
    kept_annotations,
)
from services.flux.errors import bound
from services.flux.kinds import HELM_RELEASE, FluxKind, kind_named

SHOWN_CONDITIONS = ("Ready", "Reconciling", "Stalled", "Healthy", "Drifted")
MAX_WARNINGS = 5
# `main@sha1:<hex>`, `v1.2@sha256:<hex>`, `sha1:<hex>`, and the pre-2023 `main/<hex>`.
_HEX = re.compile(r"(?:^|[@:/])([0-9a-f]{7,64})$")


def text(value: object) -> str:
    return value if isinstance(value, str) else ""


def opt_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def items(value: object) -> list[Mapping[str, object]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [v for v in value if isinstance(v, Mapping)]


def integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# -- revisions ------------------------------------------------------------------------------------


def revision_hex(revision: str | None) -> str | None:
    """The commit / digest part of a Flux revision string, lower-case; None without one."""
    if not revision:
        return None
    match = _HEX.search(revision.strip().lower())
    return match.group(1) if match else None


def same_revision(a: str | None, b: str | None) -> bool:
    """Whether two revisions name the same commit (hex parts compared; a prefix is enough)."""
    if not a or not b:
        return False
    ha, hb = revision_hex(a), revision_hex(b)
    if ha and hb:
        return ha.startswith(hb) or hb.startswith(ha)
    return a == b


# -- object parts ---------------------------------------------------------------------------------


def meta(obj: Mapping[str, object]) -> Mapping[str, object]:
    return mapping(obj.get("metadata"))


def spec(obj: Mapping[str, object]) -> Mapping[str, object]:
    return mapping(obj.get("spec"))


def status_of(obj: Mapping[str, object]) -> Mapping[str, object]:
    return mapping(obj.get("status"))


def conditions(obj: Mapping[str, object]) -> dict[str, Mapping[str, object]]:
    return {text(c.get("type")): c for c in items(status_of(obj).get("conditions"))}


def is_true(cond: Mapping[str, object] | None) -> bool:
    return cond is not None and cond.get("status") == "True"


def suspended(obj: Mapping[str, object]) -> bool:
    return spec(obj).get("suspend") is True


def generation(obj: Mapping[str, object]) -> int:
    return integer(meta(obj).get("generation")) or 0


def observed_generation(obj: Mapping[str, object]) -> int:
    return integer(status_of(obj).get("observedGeneration")) or 0


def artifact_revision(source: Mapping[str, object] | None) -> str | None:
    return opt_text(mapping(status_of(source or {}).get("artifact")).get("revision"))


def source_part(source: Mapping[str, object]) -> dict[str, object]:
    """What `app_status` reads of a source (URL, ref, artifact revision), and nothing else: a
    list of every source is kept while the apps are converted, not every source whole."""
    return {
        "spec": {"url": spec(source).get("url"), "ref": spec(source).get("ref")},
        "status": {"artifact": {"revision": mapping(status_of(source).get("artifact")).get("revision")}},
    }


def source_ref(obj: Mapping[str, object], kind: FluxKind) -> tuple[FluxKind, str, str] | None:
    """(kind, namespace, name) of the object's source: a Kustomization's `sourceRef`, a
    HelmRelease's `chartRef`, or the source of its chart template."""
    own_ns = text(meta(obj).get("namespace"))
    if kind is HELM_RELEASE:
        ref = mapping(spec(obj).get("chartRef")) or mapping(
            mapping(mapping(spec(obj).get("chart")).get("spec")).get("sourceRef")
        )
    else:
        ref = mapping(spec(obj).get("sourceRef"))
    found = kind_named(text(ref.get("kind")))
    name = text(ref.get("name"))
    if found is None or not name:
        return None
    return found, text(ref.get("namespace")) or own_ns, name


def target_revision(
    obj: Mapping[str, object], kind: FluxKind, source: Mapping[str, object] | None
) -> str | None:
    """What Git (or the registry) is asked for: the branch, tag, semver range or chart version."""
    if kind is HELM_RELEASE:
        chart = mapping(mapping(spec(obj).get("chart")).get("spec"))
        if opt_text(chart.get("version")):
            return opt_text(chart.get("version"))
    ref = mapping(spec(source or {}).get("ref"))
    for key in ("branch", "tag", "semver", "name", "commit", "digest"):
        if value := opt_text(ref.get(key)):
            return value
    return None


def helm_deployed(obj: Mapping[str, object]) -> str | None:
    """The chart version running: `history[0].chartVersion` (v2), else the v2beta fields."""
    status = status_of(obj)
    history = items(status.get("history"))
    if history and (version := opt_text(history[0].get("chartVersion"))):
        return version
    return opt_text(status.get("lastAppliedRevision")) or opt_text(status.get("lastAttemptedRevision"))


def applied_revision(obj: Mapping[str, object], kind: FluxKind) -> str | None:
    if kind is HELM_RELEASE:
        return helm_deployed(obj)
    return opt_text(status_of(obj).get("lastAppliedRevision"))


# -- status ---------------------------------------------------------------------------------------


def health(obj: Mapping[str, object]) -> str:
    conds = conditions(obj)
    ready, reconciling = conds.get("Ready"), conds.get("Reconciling")
    if suspended(obj):
        return "Suspended"
    if is_true(conds.get("Stalled")):
        return "Degraded"
    retrying = text(mapping(reconciling).get("reason")) == "ProgressingWithRetry"
    if is_true(reconciling) and not (retrying and ready is not None and ready.get("status") == "False"):
        return "Progressing"
    if ready is None:
        return "Unknown"
    if ready.get("status") == "True":
        return "Healthy" if generation(obj) <= observed_generation(obj) else "Progressing"
    if ready.get("status") == "False":
        return "Degraded"
    return "Progressing"


def sync_state(obj: Mapping[str, object], kind: FluxKind, source_revision: str | None) -> str:
    applied = applied_revision(obj, kind)
    if kind is HELM_RELEASE:
        attempted = opt_text(status_of(obj).get("lastAttemptedRevision"))
        if generation(obj) > observed_generation(obj) or (attempted and applied and attempted != applied):
            return "OutOfSync"
        return "Synced" if is_true(conditions(obj).get("Ready")) else "Unknown"
    if not applied or not source_revision:
        return "Unknown"
    return "Synced" if same_revision(applied, source_revision) else "OutOfSync"


def in_progress(obj: Mapping[str, object]) -> bool:
    if suspended(obj):
        return False
    reconciling = conditions(obj).get("Reconciling")
    retrying = text(mapping(reconciling).get("reason")) == "ProgressingWithRetry"
    return (is_true(reconciling) and not retrying) or generation(obj) > observed_generation(obj)


def shown_conditions(obj: Mapping[str, object]) -> list[Condition]:
    conds = conditions(obj)
    return [
        Condition(
            type=name,
            status=text(conds[name].get("status")),
            reason=text(conds[name].get("reason")),
            message=bound(text(conds[name].get("message")), 1000),
        )
        for name in SHOWN_CONDITIONS
        if name in conds
    ]


def warnings(events: Iterable[Mapping[str, object]]) -> list[Condition]:
    """The newest Warning events (at most five) as `Warning` conditions."""

    def when(event: Mapping[str, object]) -> str:
        series = mapping(event.get("series"))
        return (
            text(series.get("lastObservedTime"))
            or text(event.get("lastTimestamp"))
            or text(event.get("eventTime"))
            or text(meta(event).get("creationTimestamp"))
        )

    found = sorted((e for e in events if e.get("type") == "Warning"), key=when, reverse=True)
    return [
        Condition(
            type="Warning", status="", reason=text(e.get("reason")), message=bound(text(e.get("message")))
        )
        for e in found[:MAX_WARNINGS]
    ]


def inventory(obj: Mapping[str, object]) -> tuple[ResourceStatus, ...]:
    """`status.inventory.entries[].id` = `<ns>_<name>_<group>_<Kind>` (names hold no `_`)."""
    found: list[ResourceStatus] = []
    for entry in items(mapping(status_of(obj).get("inventory")).get("entries")):
        parts = text(entry.get("id")).split("_")
        if len(parts) == 4:
            namespace, name, group, kind = parts
            found.append(ResourceStatus(kind=kind, name=name, namespace=namespace, group=group))
    return tuple(found)


def running_operation(obj: Mapping[str, object]) -> Operation | None:
    if not in_progress(obj):
        return None
    reconciling = conditions(obj).get("Reconciling")
    message = text(mapping(reconciling).get("message")) or "reconciliation in progress"
    return Operation(phase="Running", message=bound(message, 1000), automated=True)


def ref_of(instance: str, obj: Mapping[str, object], kind: FluxKind) -> AppRef:
    m = meta(obj)
    return AppRef(
        "flux", instance, text(m.get("name")), namespace=opt_text(m.get("namespace")), kind=kind.kind
    )


def app_status(
    instance: str,
    obj: Mapping[str, object],
    kind: FluxKind,
    *,
    source: Mapping[str, object] | None = None,
    extra_conditions: Sequence[Condition] = (),
) -> AppStatus:
    source_revision = _source_revision(obj, kind, source)
    conds = conditions(obj)
    history = items(status_of(obj).get("history"))
    reconciled = timestamp(history[0].get("lastReconciled")) if history and kind is not HELM_RELEASE else None
    path = opt_text(spec(obj).get("path"))
    if kind is HELM_RELEASE:
        path = opt_text(mapping(mapping(spec(obj).get("chart")).get("spec")).get("chart"))
    return AppStatus(
        ref=ref_of(instance, obj, kind),
        sync=sync_state(obj, kind, source_revision),
        health=health(obj),
        health_message=bound(text(mapping(conds.get("Ready")).get("message")), 1000),
        revision=applied_revision(obj, kind),
        target_revision=target_revision(obj, kind, source),
        source_revision=source_revision,
        repo_url=opt_text(spec(source or {}).get("url")),
        path=path,
        conditions=(*shown_conditions(obj), *extra_conditions),
        resources=inventory(obj),
        operation=running_operation(obj),
        operation_in_progress=in_progress(obj),
        auto_sync=not suspended(obj),  # Flux reconciles on every interval unless suspended
        suspended=suspended(obj),
        reconciled_at=reconciled or timestamp(mapping(conds.get("Ready")).get("lastTransitionTime")),
        labels=_labels(obj),
        annotations=kept_annotations(mapping(meta(obj).get("annotations"))),
    )


def app_row(
    instance: str, obj: Mapping[str, object], kind: FluxKind, *, source: Mapping[str, object] | None = None
) -> AppRow:
    """What a summary shows of the object: `AppRow.of(app_status(…))` without building the rest
    (inventory, conditions, revisions, timestamps)."""
    return AppRow(
        ref_of(instance, obj, kind),
        sync_state(obj, kind, _source_revision(obj, kind, source)),
        health(obj),
        "Running" if in_progress(obj) else None,  # the phase `running_operation` gives
        _labels(obj),
        kept_annotations(mapping(meta(obj).get("annotations"))),
    )


def _source_revision(
    obj: Mapping[str, object], kind: FluxKind, source: Mapping[str, object] | None
) -> str | None:
    if kind is HELM_RELEASE:
        return opt_text(status_of(obj).get("lastAttemptedRevision"))
    return artifact_revision(source)


def _labels(obj: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    labels = mapping(meta(obj).get("labels"))
    return tuple(sorted((k, v) for k, v in labels.items() if isinstance(v, str)))


def helm_history(obj: Mapping[str, object]) -> list[HistoryEntry]:
    """`status.history` of a HelmRelease (newest first): one entry per Helm release version."""
    entries = items(status_of(obj).get("history"))
    return [
        HistoryEntry(
            id=str(integer(e.get("version")) or text(e.get("version")) or "?"),
            revision=text(e.get("chartVersion")),
            deployed_at=timestamp(e.get("lastDeployed")) or timestamp(e.get("firstDeployed")),
            message=" ".join(
                p for p in (text(e.get("chartName")), text(e.get("status")), text(e.get("action"))) if p
            )
            or None,
            automated=True,
            current=i == 0,
        )
        for i, e in enumerate(entries)
    ]
