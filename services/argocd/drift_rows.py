"""A drift scan's application list → `AppStatus`es, decoded straight from the response bytes.

A drift scan asks for `items.status.operationState.operation.sync`, which carries the last
sync's result with every resource it applied: most of the body, yet `convert.app_status` only
counts those resources. Decoding the list into dicts built that whole tree for every app at
once (+41 MB at 5,000 apps). Here msgspec decodes only the keys `convert.app_status` reads,
the resource lists into empty structs (a count), and skips every other byte; each app is then
rebuilt as a small dict and converted by `convert.app_status` itself, one at a time, so the
statuses are the ones the dict path gives.

Keys are `UNSET` when absent, so the rebuilt dict has exactly the keys the body had (an explicit
`null` stays `null`). The two objects whose emptiness `convert` tests (`operationState` and its
`operation`) refuse unknown keys: a key this module does not know would vanish and change that
test, so such a body is read the dict way instead.
"""

from __future__ import annotations

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


class _List(msgspec.Struct, gc=False):
    items: list[_App] | None = None


_DECODER = msgspec.json.Decoder(_List)
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


Decoded = list[_App] | list[ApplicationPayload]  # the structs, or the dicts of an unexpected shape


def decode(content: bytes) -> Decoded:
    """The list's apps, decoded from the body (the transport's decode step: the body can go once
    this returns, before any status is built). Raises `ValueError` when the body is not JSON."""
    if not content.strip():
        return []  # as the dict path reads an empty body: `{}`
    try:
        return _DECODER.decode(content).items or []
    except msgspec.ValidationError:
        # Valid JSON of a shape these structs do not take: read it the dict way, as before.
        payload = msgspec.json.decode(content)
        if not isinstance(payload, dict):
            raise NotAnObject from None
        found = payload.get("items") or []
        return found if isinstance(found, list) else []


def statuses_of(instance: str, apps: Decoded, *, browser_url: str, trimmed: bool) -> list[AppStatus]:
    """The statuses, in the body's order, equal to converting its dicts; empties `apps` as it goes."""
    apps.reverse()  # popped from the end: the body's order, each app's structs freed once converted
    out: list[AppStatus] = []
    while apps:
        app = apps.pop()
        payload = _payload(app) if isinstance(app, _App) else app
        out.append(convert.app_status(instance, payload, browser_url=browser_url, trimmed=trimmed))
    return out


def statuses(instance: str, content: bytes, *, browser_url: str, trimmed: bool) -> list[AppStatus]:
    """`decode` then `statuses_of`, in one step."""
    return statuses_of(instance, decode(content), browser_url=browser_url, trimmed=trimmed)
