"""The raw JSON shapes Argo CD's REST API speaks, as TypedDicts.

Argo CD marshals with Go `encoding/json` and `omitempty`, so every key may be absent; all dicts
here are `total=False`. The types are a promise about shape, not a check: the conversion code in
`convert.py` still verifies each value at run time before it reaches a record.
"""

from __future__ import annotations

from typing import TypedDict


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    resourceVersion: str
    deletionTimestamp: str


class ApplicationSource(TypedDict, total=False):
    repoURL: str
    path: str
    chart: str
    targetRevision: str


class Destination(TypedDict, total=False):
    server: str
    name: str
    namespace: str


class AutomatedPolicy(TypedDict, total=False):
    enabled: bool
    prune: bool
    selfHeal: bool
    allowEmpty: bool


class SyncPolicy(TypedDict, total=False):
    automated: AutomatedPolicy | None
    syncOptions: list[str]


class ApplicationSpec(TypedDict, total=False):
    project: str
    source: ApplicationSource
    sources: list[ApplicationSource]
    destination: Destination
    syncPolicy: SyncPolicy


class HealthPayload(TypedDict, total=False):
    status: str
    message: str


class SyncStatusPayload(TypedDict, total=False):
    status: str
    revision: str
    revisions: list[str]


class ResourceStatusPayload(TypedDict, total=False):
    group: str
    version: str
    kind: str
    namespace: str
    name: str
    status: str
    health: HealthPayload
    hook: bool
    requiresPruning: bool


class InitiatedBy(TypedDict, total=False):
    username: str
    automated: bool


class SyncResourceRef(TypedDict, total=False):
    group: str
    kind: str
    name: str
    namespace: str


class SyncOperationPayload(TypedDict, total=False):
    revision: str
    revisions: list[str]
    prune: bool
    dryRun: bool
    resources: list[SyncResourceRef]


class InfoPayload(TypedDict):
    name: str
    value: str


class OperationPayload(TypedDict, total=False):
    sync: SyncOperationPayload
    initiatedBy: InitiatedBy
    info: list[InfoPayload]


class ResourceResultPayload(TypedDict, total=False):
    group: str
    version: str
    kind: str
    namespace: str
    name: str
    status: str  # Synced | SyncFailed | Pruned | PruneSkipped
    message: str
    hookType: str
    hookPhase: str
    syncPhase: str


class SyncResultPayload(TypedDict, total=False):
    revision: str
    revisions: list[str]
    resources: list[ResourceResultPayload]


class OperationStatePayload(TypedDict, total=False):
    phase: str
    message: str
    startedAt: str
    finishedAt: str
    operation: OperationPayload
    syncResult: SyncResultPayload


class HistoryPayload(TypedDict, total=False):
    id: int
    revision: str
    revisions: list[str]
    deployedAt: str
    deployStartedAt: str
    source: ApplicationSource
    initiatedBy: InitiatedBy


class ConditionPayload(TypedDict, total=False):
    type: str
    message: str
    lastTransitionTime: str


class SummaryPayload(TypedDict, total=False):
    images: list[str]
    externalURLs: list[str]


class ApplicationStatusPayload(TypedDict, total=False):
    sync: SyncStatusPayload
    health: HealthPayload
    history: list[HistoryPayload]
    operationState: OperationStatePayload
    reconciledAt: str
    resources: list[ResourceStatusPayload]
    summary: SummaryPayload
    conditions: list[ConditionPayload]
    controllerNamespace: str


class ApplicationPayload(TypedDict, total=False):
    metadata: ObjectMeta
    spec: ApplicationSpec
    status: ApplicationStatusPayload
    operation: OperationPayload | None


class ListMeta(TypedDict, total=False):
    resourceVersion: str


class ApplicationListPayload(TypedDict, total=False):
    metadata: ListMeta
    items: list[ApplicationPayload] | None


class ResourceDiffPayload(TypedDict, total=False):
    group: str
    kind: str
    namespace: str
    name: str
    targetState: str  # JSON text, or "null"
    liveState: str
    normalizedLiveState: str
    predictedLiveState: str
    modified: bool
    hook: bool
    resourceVersion: str


class ManagedResourcesPayload(TypedDict, total=False):
    items: list[ResourceDiffPayload] | None


class ResourceNodePayload(TypedDict, total=False):
    group: str
    version: str
    kind: str
    namespace: str
    name: str
    uid: str
    health: HealthPayload
    images: list[str]
    parentRefs: list[dict[str, str]]
    info: list[InfoPayload]


class ApplicationTreePayload(TypedDict, total=False):
    nodes: list[ResourceNodePayload]
    orphanedNodes: list[ResourceNodePayload]


class RevisionMetadataPayload(TypedDict, total=False):
    author: str
    date: str
    message: str
    tags: list[str]


class VersionPayload(TypedDict, total=False):
    Version: str
    BuildDate: str
    GitCommit: str


class SyncStrategy(TypedDict):
    hook: dict[str, bool]


class SyncRequestBody(TypedDict, total=False):
    """`ApplicationSyncRequest`, as the CLI builds it (docs §7.3)."""

    name: str
    appNamespace: str
    project: str
    prune: bool
    dryRun: bool
    revision: str
    resources: list[SyncResourceRef]
    strategy: SyncStrategy
    infos: list[InfoPayload]


class RollbackRequestBody(TypedDict, total=False):
    name: str
    id: int  # a JSON number: a quoted id fails to decode on the server
    prune: bool
    appNamespace: str
    project: str


class PatchRequestBody(TypedDict, total=False):
    name: str
    patch: str  # the merge patch, itself JSON-encoded as a string
    patchType: str
    appNamespace: str
    project: str
