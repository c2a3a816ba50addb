"""A drift scan's application list → `AppStatus`es, decoded straight from the response bytes.

A drift scan asks for `items.status.operationState.operation.sync`, which carries the last
sync's result with every resource it applied: most of the body, yet `convert.app_status` only
counts those resources. Decoding the list into dicts built that whole tree for every app at
once (+41 MB at 5,000 apps). Here msgspec first splits the list into each app's bytes (views of
the body, no copy), then decodes one app at a time when the caller asks for its status: only the
keys `convert.app_status` reads, the resource lists into empty structs (a count), every other
byte skipped; the app is rebuilt as a small dict and converted by `convert.app_status` itself, so
the statuses are the ones the dict path gives, and a drift scan that classifies each status as
it comes holds one app's tree at a time, never the whole list's.

Keys are `UNSET` when absent, so the rebuilt dict has exactly the keys the body had (an explicit
`null` stays `null`). The two objects whose emptiness `convert` tests (`operationState` and its
`operation`) refuse unknown keys: a key this module does not know would vanish and change that
test, so such an app is read the dict way instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
from msgspec import UNSET, UnsetType

from services.argocd import convert
from services.argocd.payloads import ApplicationPayload
from services.argocd.transport import NotAnObject
from services.backend import AppStatus

# Leaves are `object`: a mistyped value reaches `convert` as sent and is read as it reads it.
# gc=False: decoded JSON holds no cycles, so the collector need not track these.


class _Counted(msgspec.Struct, gc=False):
    """One element of a list `convert` only counts: nothing of it is kept."""


class _Resource(msgspec.Struct, gc=False):
    # `status.resources[]`: what `convert._resource` and the operation's resource count read.
    kind: object = UNSET
    name: object = UNSET
    namespace: object = UNSET
    group: object = UNSET
    status: object = UNSET
    health: object = UNSET
    hook: object = UNSET


class _SyncOperation(msgspec.Struct, gc=False):
    # `operationState.operation.sync`: in a trimmed list, the last syncResult (an upstream quirk).
    revision: object = UNSET
    dryRun: object = UNSET  # noqa: N815 - Argo CD's key
    resources: list[_Counted] | UnsetType | None = UNSET


class _StateOperation(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    sync: _SyncOperation | UnsetType | None = UNSET
    initiatedBy: object = UNSET  # noqa: N815
    info: object = UNSET
    retry: object = UNSET


class _OperationState(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    phase: object = UNSET
    message: object = UNSET
    startedAt: object = UNSET  # noqa: N815
    finishedAt: object = UNSET  # noqa: N815
    operation: _StateOperation | UnsetType | None = UNSET
    syncResult: object = UNSET  # noqa: N815 - untrimmed lists only
    retryCount: object = UNSET  # noqa: N815


class _Sync(msgspec.Struct, gc=False):
    status: object = UNSET
    revision: object = UNSET
    revisions: object = UNSET


class _Summary(msgspec.Struct, gc=False):
    images: object = UNSET


class _Status(msgspec.Struct, gc=False):
    sync: _Sync | UnsetType | None = UNSET
    health: object = UNSET
    summary: _Summary | UnsetType | None = UNSET
    conditions: object = UNSET
    resources: list[_Resource] | UnsetType | None = UNSET
    operationState: _OperationState | UnsetType | None = UNSET  # noqa: N815
    reconciledAt: object = UNSET  # noqa: N815
    history: object = UNSET  # untrimmed lists only


class _Spec(msgspec.Struct, gc=False):
    project: object = UNSET
    source: object = UNSET
    sources: object = UNSET
    syncPolicy: object = UNSET  # noqa: N815


class _Meta(msgspec.Struct, gc=False):
    name: object = UNSET
    namespace: object = UNSET
    labels: object = UNSET
    annotations: object = UNSET


class _App(msgspec.Struct, gc=False):
    metadata: _Meta | UnsetType | None = UNSET
    spec: _Spec | UnsetType | None = UNSET
    status: _Status | UnsetType | None = UNSET
    operation: object = UNSET  # a requested operation: `convert` tests its emptiness, so kept whole


class _RawList(msgspec.Struct, gc=False):
    items: list[msgspec.Raw] | None = None  # each app left as its bytes (a view of the body) until read


_SPLIT = msgspec.json.Decoder(_RawList)
_APP = msgspec.json.Decoder(_App)
_EMPTY: dict[str, object] = {}


def _payload(app: _App) -> ApplicationPayload:
    """The app as the dict `convert.app_status` reads (only the keys it reads)."""
    status = app.status
    state = status.operationState if isinstance(status, _Status) else None
    operation = state.operation if isinstance(state, _OperationState) else None
    sync = operation.sync if isinstance(operation, _StateOperation) else None
    if not isinstance(sync, _SyncOperation) or not isinstance(sync.resources, list):
        return msgspec.to_builtins(app)  # type: ignore[no-any-return]
    # `convert` only counts these: as many references to one empty object, not a copy of each.
    count = len(sync.resources)
    sync.resources = UNSET
    payload = msgspec.to_builtins(app)
    payload["status"]["operationState"]["operation"]["sync"]["resources"] = [_EMPTY] * count
    return payload  # type: ignore[no-any-return]


Items = list[msgspec.Raw] | list[ApplicationPayload]  # views of the body, or dicts of an odd body


def split(content: bytes) -> Items:
    """The list's apps, each still its bytes (no tree is built here: the transport's decode step).
    Raises `ValueError` when the body is not JSON, `NotAnObject` when it is not an object."""
    if not content.strip():
        return []  # as the dict path reads an empty body: `{}`
    try:
        return _SPLIT.decode(content).items or []
    except msgspec.ValidationError:
        # Valid JSON of another shape (`items` not a list): read it the dict way, as before.
        payload = msgspec.json.decode(content)
        if not isinstance(payload, dict):
            raise NotAnObject from None
        found = payload.get("items") or []
        return found if isinstance(found, list) else []


def _app(item: msgspec.Raw | ApplicationPayload) -> ApplicationPayload:
    if not isinstance(item, msgspec.Raw):
        return item
    try:
        return _payload(_APP.decode(item))
    except msgspec.ValidationError:
        # An app of a shape the structs do not take: this one is read the dict way.
        return msgspec.json.decode(item)  # type: ignore[no-any-return]


def iter_statuses(instance: str, items: Items, *, browser_url: str, trimmed: bool) -> Iterator[AppStatus]:
    """The statuses, in the body's order, equal to converting its dicts; each app is decoded
    only when its turn comes and dropped from `items` once converted, so one app's tree exists
    at a time (the body's bytes stay until the last app is read)."""
    items.reverse()  # popped from the end: the body's order
    while items:
        yield convert.app_status(instance, _app(items.pop()), browser_url=browser_url, trimmed=trimmed)
