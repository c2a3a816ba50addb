"""Building Applications and changing git or the cluster behind them (the test-facing knobs)."""

from __future__ import annotations

import calendar
import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.argocd_git import Manifest, Repo, Upstream, build_manifests, resource_key, set_image
from sandbox.argocd_live import apply_live, object_uid
from sandbox.argocd_state import CONTROL_PLANE_NAMESPACE, RFC3339, AppRecord, Store, rfc3339

DEFAULT_AUTHOR = "Alice Example <alice@example.com>"
_DEPLOY_SPACING = 3600.0  # seconds between the generated past deployments


@dataclass(frozen=True)
class AppSpec:
    """add_app()'s arguments."""

    name: str
    project: str = "default"
    namespace: str = CONTROL_PLANE_NAMESPACE
    dest_namespace: str | None = None
    repo_url: str = "https://git.example.com/deploy.git"
    path: str | None = None
    target_revision: str = "HEAD"
    labels: Mapping[str, str] | None = None
    auto_sync: bool = False
    images: Sequence[str] = ("registry.example.com/NAME:1.0.0",)
    replicas: int = 2
    history: int = 3
    health: str = "Healthy"
    commits: Sequence[Upstream] = ()  # real commits to deploy in turn instead of `history` made-up ones


def sync_message(manifest: Mapping[str, Any], verb: str) -> str:
    """kubectl's wording, e.g. `deployment.apps/web configured`."""
    group, kind, _, name = resource_key(manifest)
    return f"{kind.lower()}{'.' + group if group else ''}/{name} {verb}"


def sync_result_row(
    manifest: Mapping[str, Any], status: str, message: str, hook_phase: str
) -> dict[str, Any]:
    group, kind, namespace, name = resource_key(manifest)
    return {
        "group": group,
        "hookPhase": hook_phase,
        "kind": kind,
        "message": message,
        "name": name,
        "namespace": namespace,
        "status": status,
        "syncPhase": "Sync",
        "version": str(manifest.get("apiVersion", "v1")).rsplit("/", 1)[-1],
    }


def new_record(store: Store, spec: AppSpec) -> AppRecord:
    """An app deployed `spec.history` times, or once per `spec.commits`; Synced at the newest commit
    (never synced if none)."""
    name, now = spec.name, store.clock()
    dest_namespace = spec.dest_namespace or name
    images = [image.replace("NAME", name) for image in spec.images]
    repo = Repo(name, branch="main" if spec.target_revision == "HEAD" else spec.target_revision)
    if spec.commits:
        deployments = commits = len(spec.commits)
        deploy_times = _mirror(repo, spec, images, dest_namespace, now)
    else:
        deployments = max(spec.history, 0)
        commits = max(deployments, 1)
        deploy_times = [now - (deployments - i) * _DEPLOY_SPACING - 60 for i in range(1, deployments + 1)]
        for index in range(1, commits + 1):
            deployed = now - (commits - index) * _DEPLOY_SPACING - 60
            repo.commit(
                build_manifests(name, dest_namespace, images, spec.replicas, {"RELEASE": str(index)}),
                message=f"Add {name}" if index == 1 else f"Release {name} r{index}",
                author=DEFAULT_AUTHOR,
                date=rfc3339(deployed - 300),
            )
    source = {
        "repoURL": spec.repo_url,
        "path": spec.path or f"apps/{name}",
        "targetRevision": spec.target_revision,
    }
    sync_policy: dict[str, Any] = {"syncOptions": ["CreateNamespace=true"]}
    if spec.auto_sync:
        sync_policy["automated"] = {"prune": True, "selfHeal": True}
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": spec.namespace,
        "resourceVersion": "0",
        "uid": object_uid("argoproj.io", "Application", spec.namespace, name),
        "creationTimestamp": rfc3339(now - (commits + 1) * _DEPLOY_SPACING),
        "generation": 1,
    }
    if spec.labels:
        metadata["labels"] = dict(spec.labels)
    initiator = {"automated": True} if spec.auto_sync else {"username": "alice@example.com"}
    history = [
        {
            "deployStartedAt": rfc3339(deploy_times[i - 1] - 1),
            "deployedAt": rfc3339(deploy_times[i - 1]),
            "id": i,
            "revision": repo.commits[i - 1].sha,
            "source": dict(source),
            "initiatedBy": dict(initiator),
        }
        for i in range(1, deployments + 1)
    ]
    status: dict[str, Any] = {
        "controllerNamespace": CONTROL_PLANE_NAMESPACE,
        "reconciledAt": rfc3339(now),
        "observedAt": rfc3339(now),
        "sourceType": "Directory",
    }
    if history:
        status["history"] = history[-10:]
        head = repo.head
        status["operationState"] = {
            "operation": {
                "initiatedBy": dict(initiator),
                "sync": {"revision": head.sha, "syncStrategy": {"hook": {}}},
            },
            "phase": "Succeeded",
            "message": "successfully synced (all tasks run)",
            "startedAt": history[-1]["deployStartedAt"],
            "finishedAt": history[-1]["deployedAt"],
            "syncResult": {
                "revision": head.sha,
                "source": dict(source),
                "resources": [
                    sync_result_row(m, "Synced", sync_message(m, "configured"), "Running")
                    for m in head.manifests
                ],
            },
        }
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": metadata,
        "spec": {
            "project": spec.project,
            "source": source,
            "destination": {"server": "https://kubernetes.default.svc", "namespace": dest_namespace},
            "syncPolicy": sync_policy,
        },
        "status": status,
    }
    record = AppRecord(app=app, repo=repo, live={}, health=(spec.health, ""))
    if deployments:
        deployed_at = rfc3339(deploy_times[-1])
        for manifest in repo.head.manifests:
            version = store.next_resource_version()
            record.live[resource_key(manifest)] = apply_live(manifest, None, version, deployed_at)
    store.recompute(record)
    store.touch(record)
    return record


def _mirror(repo: Repo, spec: AppSpec, images: list[str], namespace: str, now: float) -> list[float]:
    """Commit `spec.commits` with their real SHAs; each was deployed a minute after it was made
    (and before now, in order). Returns the deploy times, oldest first."""
    running, replicas, deployed_at = list(images), spec.replicas, []
    for index, upstream in enumerate(spec.commits, start=1):
        running = [upstream.image] if upstream.image else running
        replicas = upstream.replicas if upstream.replicas is not None else replicas
        repo.commit(
            build_manifests(spec.name, namespace, running, replicas, {"RELEASE": str(index)}),
            message=upstream.message,
            author=upstream.author,
            date=upstream.date,
            sha=upstream.sha,
        )
        latest = now - 60 - (len(spec.commits) - index)
        deployed_at.append(min(calendar.timegm(time.strptime(upstream.date, RFC3339)) + 60, latest))
    return deployed_at


def push_revision(
    store: Store,
    record: AppRecord,
    *,
    image: str | None,
    replicas: int | None,
    config: Mapping[str, str] | None,
    message: str,
    author: str,
    tags: Sequence[str] = (),
    add: Sequence[Manifest] = (),
    remove: Sequence[str] = (),
    sha: str | None = None,
    date: str | None = None,
) -> str:
    """Commit changed manifests on the app's branch; the app turns OutOfSync (auto-sync may follow).
    `sha` / `date` mirror a real commit; by default the SHA is made up and the date is now."""
    manifests = [
        m for m in record.repo.head_manifests() if f"{m['kind']}/{m['metadata']['name']}" not in remove
    ]
    for manifest in manifests:
        if manifest["kind"] == "Deployment" and image is not None:
            set_image(manifest, image)
        if manifest["kind"] == "Deployment" and replicas is not None:
            manifest["spec"]["replicas"] = replicas
        if manifest["kind"] == "ConfigMap" and config is not None:
            manifest["data"] = dict(config)
    manifests.extend(copy.deepcopy(list(add)))
    commit = record.repo.commit(
        manifests, message=message, author=author, date=date or store.now(), tags=tags, sha=sha
    )
    store.recompute(record)
    record.reconcile_due = True  # lets auto-sync notice the new revision on the next tick
    store.touch(record, wake_controller=True)
    return commit.sha


def drift(store: Store, record: AppRecord, *, replicas: int | None, image: str | None) -> None:
    """Someone ran `kubectl edit` on the live Deployment; self-heal deliberately does not react."""
    deployment = next((obj for key, obj in record.live.items() if key[1] == "Deployment"), None)
    if deployment is None:
        raise ValueError(f"{record.name} has no live Deployment to edit")
    if replicas is not None:
        deployment["spec"]["replicas"] = replicas
        deployment["status"]["replicas"] = deployment["status"]["readyReplicas"] = replicas
    if image is not None:
        set_image(deployment, image)
    meta = deployment["metadata"]
    meta["resourceVersion"] = str(store.next_resource_version())
    meta["managedFields"] = [
        *meta.get("managedFields", []),
        {
            "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
            "manager": "kubectl-edit",
            "operation": "Update",
            "time": store.now(),
        },
    ]
    store.recompute(record)
    store.touch(record)


def heal(store: Store, record: AppRecord) -> None:
    """Live objects become exactly what the target revision renders."""
    now = store.now()
    commit = record.target_commit()
    desired = commit.desired() if commit is not None else {}
    record.live = {
        key: apply_live(manifest, record.live.get(key), store.next_resource_version(), now)
        for key, manifest in desired.items()
    }
    store.recompute(record)
    store.touch(record)
