"""Pure decisions the backend makes before it calls Argo CD: request bodies and rollback targets.

Kept apart from `backend.py` so they can be read (and tested) without a server.
"""

from __future__ import annotations

from services.argocd.convert import SLACK_USER_INFO, history_revision
from services.argocd.payloads import HistoryPayload, SyncRequestBody, SyncResourceRef
from services.backend import AppRef, AppStatus, ResourceStatus, SyncRequest
from services.errors import UserError


def _sync_resource(r: ResourceStatus) -> SyncResourceRef:
    ref: SyncResourceRef = {"kind": r.kind, "name": r.name}
    if r.group:
        ref["group"] = r.group
    if r.namespace:
        ref["namespace"] = r.namespace
    return ref


def sync_body(ref: AppRef, request: SyncRequest, *, app_namespace: str | None) -> SyncRequestBody:
    """The body `argocd app sync` would send (docs §7.3)."""
    body: SyncRequestBody = {"name": ref.name}
    if app_namespace:
        body["appNamespace"] = app_namespace
    if ref.project:
        body["project"] = ref.project
    body["prune"] = request.prune
    body["dryRun"] = request.dry_run
    if request.revision:
        body["revision"] = request.revision
    if request.resources:
        body["resources"] = [_sync_resource(r) for r in request.resources]
    body["strategy"] = {"hook": {"force": False}}
    if request.initiated_by:
        body["infos"] = [{"name": SLACK_USER_INFO, "value": request.initiated_by}]
    return body


def pick_rollback(name: str, history: list[HistoryPayload], to: str | None) -> HistoryPayload:
    """The entry `argocd app rollback` would pick (docs §7.2): the one before the current when
    `to` is None, else a history id (a short number) or a revision SHA prefix."""
    ids = ", ".join(str(e.get("id")) for e in reversed(history)) or "none"
    if to is None:
        if len(history) < 2:
            raise UserError(
                f"`{name}` should have at least two successful deployments to roll back.",
                hint=f"See `/gitops history {name}` for what has been deployed.",
            )
        return history[-2]
    if to.isdigit() and len(to) < 7:
        for entry in history:
            if entry.get("id") == int(to):
                return entry
        raise UserError(
            f"`{name}` has no deployment with id {int(to)} in its history.",
            hint=f"Deployment ids, newest first: {ids}.",
        )
    prefix = to.lower()
    matches = [e for e in history if history_revision(e).lower().startswith(prefix)]
    older = [e for e in matches if e is not history[-1]]
    if older:
        return older[-1]
    if matches:
        raise UserError(f"`{name}` is already at revision `{prefix}`; there is nothing to roll back to.")
    raise UserError(
        f"`{name}` has no deployment of revision `{prefix}` in its history.",
        hint=f"Deployment ids, newest first: {ids} (see `/gitops history {name}`).",
    )


def same_revision(revision: str, status: AppStatus) -> bool:
    """Whether `revision` names what Argo CD already compares the app with."""
    wanted = revision.lower()
    compared = (status.source_revision or "").lower()
    return wanted == (status.target_revision or "").lower() or (
        len(wanted) >= 7 and compared.startswith(wanted)
    )


def auto_sync_patch(enabled: bool, policy: dict[str, object] | None) -> dict[str, object]:
    """The merge patch that turns automated sync off (null removes the block) or on again."""
    automated: dict[str, bool] | None = None
    if enabled:
        given = policy or {}
        automated = {"prune": given.get("prune") is True, "selfHeal": given.get("selfHeal") is True}
        if given.get("allowEmpty") is True:
            automated["allowEmpty"] = True
    return {"spec": {"syncPolicy": {"automated": automated}}}
