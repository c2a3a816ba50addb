"""kustomize-controller: apply the source's current artifact, keep inventory, history and change-set Events.

The manifests are the real YAML under `spec.path` at the artifact's commit (read with `git`, not built
with kustomize). A source that is not a local repository, or a path holding no manifests, stands for a
Deployment and a Service named after the Kustomization, the Deployment changing with every revision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import flux_git
from sandbox.flux_kinds import KUSTOMIZE
from sandbox.flux_state import Failure, Memo, Outcome, Run, World, generation_of
from sandbox.flux_status import condition, go_duration, is_ready, merge_conditions, parse_duration, sha256
from sandbox.k8s_store import Entry

REVISION_KEY = f"{KUSTOMIZE}/revision"
_CLUSTER_KINDS = frozenset(
    {
        "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass",
        "PersistentVolume", "PriorityClass", "IngressClass", "APIService", "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
)  # fmt: skip
_FIRST_STAGE = ("CustomResourceDefinition", "Namespace")
_RETRY_STEP = {
    "BuildFailed": "Building manifests",
    "ArtifactFailed": "Fetching manifests",
    "ReconciliationFailed": "Detecting drift",
    "PruneFailed": "Detecting drift",
    "HealthCheckFailed": "Running health checks",
}
_HISTORY_SIZE = 5


@dataclass(frozen=True)
class Applied:
    """One inventory object: `id` is `<ns>_<name>_<group>_<Kind>`, `shown` how Events name it."""

    id: str
    version: str
    shown: str
    digest: str
    stage: int


@dataclass(frozen=True)
class Plan:
    revision: str  # "" when the source has no artifact
    repo: Path | None
    path: str
    target_namespace: str  # spec.targetNamespace, "" when unset
    namespace: str
    name: str
    blocked_by: str  # "" or the dependency that is not ready
    timeout: str


@dataclass(frozen=True)
class Built:
    plan: Plan
    objects: list[Applied] = field(default_factory=list)
    error: Failure | None = None


def _inventory_item(doc: dict[str, Any], target_namespace: str) -> Applied:
    api_version = str(doc.get("apiVersion", "v1"))
    group, _, version = api_version.rpartition("/")
    kind = str(doc["kind"])
    meta = doc.get("metadata") or {}
    name = str(meta.get("name", ""))
    namespace = (
        "" if kind in _CLUSTER_KINDS else (target_namespace or str(meta.get("namespace") or "default"))
    )
    shown = f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"
    digest = sha256(json.dumps(doc, sort_keys=True, default=str))
    stage = 0 if kind in _FIRST_STAGE else 1
    return Applied(f"{namespace}_{name}_{group}_{kind}", version, shown, digest, stage)


def _synthetic(plan: Plan) -> list[Applied]:
    namespace = plan.target_namespace or plan.namespace
    return [
        Applied(
            f"{namespace}_{plan.name}_apps_Deployment",
            "v1",
            f"Deployment/{namespace}/{plan.name}",
            sha256(plan.revision),
            1,
        ),
        Applied(
            f"{namespace}_{plan.name}__Service",
            "v1",
            f"Service/{namespace}/{plan.name}",
            sha256(plan.name),
            1,
        ),
    ]


def _change_set(memo: Memo, objects: list[Applied], prune: bool) -> list[str]:
    lines: list[tuple[int, str, str]] = []
    current = {o.id for o in objects}
    for obj in objects:
        before = memo.applied.get(obj.id)
        if before is None:
            lines.append((obj.stage, obj.shown, "created"))
        elif before != obj.digest or obj.shown in memo.drifted:
            lines.append((obj.stage, obj.shown, "configured"))
    if prune:
        for gone in sorted(set(memo.applied) - current):
            namespace, name, _, kind = gone.split("_", 3)
            lines.append((2, f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}", "deleted"))
    return [f"{shown} {verb}" for _, shown, verb in sorted(lines)]


class KustomizationReconciler:
    def progress(self, world: World, entry: Entry) -> dict[str, Any]:
        plan = self.prepare(world, entry)
        now, generation = world.store.now(), generation_of(entry.obj)
        message = f"Fetching manifests for revision {plan.revision} with a timeout of {plan.timeout}"
        status = dict(entry.obj.get("status") or {})
        status["conditions"] = merge_conditions(
            status.get("conditions") or [],
            [
                condition("Reconciling", "True", "Progressing", message, generation, now),
                condition("Ready", "Unknown", "Progressing", "Reconciliation in progress", generation, now),
            ],
        )
        return status

    def prepare(self, world: World, entry: Entry) -> Plan:
        spec = entry.obj.get("spec") or {}
        meta = entry.obj["metadata"]
        ref = spec.get("sourceRef") or {}
        source = world.entry(
            str(ref.get("kind", "")), str(ref.get("namespace") or meta["namespace"]), str(ref.get("name", ""))
        )
        revision, repo = "", None
        if source is not None:
            revision = str(((source.obj.get("status") or {}).get("artifact") or {}).get("revision", ""))
            if source.rtype.kind == "GitRepository":
                repo = flux_git.local_path(str((source.obj.get("spec") or {}).get("url", "")))
        blocked_by = ""
        for dependency in spec.get("dependsOn") or []:
            dep_ns = str(dependency.get("namespace") or meta["namespace"])
            dep = world.entry("Kustomization", dep_ns, str(dependency.get("name", "")))
            fresh = dep is not None and (dep.obj.get("status") or {}).get(
                "observedGeneration"
            ) == generation_of(dep.obj)
            if dep is None or not is_ready(dep.obj) or not fresh:
                blocked_by = f"{dep_ns}/{dependency.get('name')}"
                break
        timeout = go_duration(parse_duration(str(spec.get("timeout") or spec.get("interval") or "5m")))
        path = str(spec.get("path") or "./")
        target = str(spec.get("targetNamespace") or "")
        return Plan(revision, repo, path, target, meta["namespace"], meta["name"], blocked_by, timeout)

    def fetch(self, plan: Plan) -> Built:
        if not plan.revision or plan.blocked_by:
            return Built(plan)
        if plan.repo is None or "sha1:" not in plan.revision:
            return Built(plan, _synthetic(plan))
        sha = plan.revision.rsplit("sha1:", 1)[1]
        try:
            docs = flux_git.read_manifests(plan.repo, sha, plan.path)
        except ValueError as exc:
            return Built(plan, error=Failure("BuildFailed", f"kustomize build failed: {exc}"))
        except flux_git.GitError as exc:
            return Built(plan, error=Failure("ArtifactFailed", f"failed to extract artifact: {exc}"))
        if docs is None:
            relative = plan.path.strip().removeprefix("./").strip("/")
            message = (
                f"kustomization path not found: stat /tmp/kustomization-{int(sha[:6], 16)}/{relative}: "
                "no such file or directory"
            )
            return Built(plan, error=Failure("ArtifactFailed", message))
        objects = [_inventory_item(d, plan.target_namespace) for d in docs]
        return Built(plan, objects or _synthetic(plan))

    def finish(self, world: World, entry: Entry, run: Run, built: Built) -> Outcome:
        stalled = world.stalled(entry, run.token)
        if stalled is not None:
            return stalled
        plan = built.plan
        now, generation, memo = world.store.now(), generation_of(entry.obj), world.memo(entry.key)
        status = dict(entry.obj.get("status") or {})
        if run.token:
            status["lastHandledReconcileAt"] = run.token
        outcome = Outcome(status)
        if not plan.revision:
            message = "Source artifact not found, retrying in 30s"
            self._not_ready(status, "ArtifactFailed", message, generation, now)
            return outcome
        if plan.blocked_by:
            message = f"dependency '{plan.blocked_by}' is not ready"
            self._not_ready(status, "DependencyNotReady", message, generation, now)
            outcome.event(
                "Normal", "DependencyNotReady", "Dependencies do not meet ready condition, retrying in 30s"
            )
            return outcome
        failure, memo.failure = memo.failure, None
        failure = failure or built.error
        annotations = {REVISION_KEY: plan.revision}
        status["lastAttemptedRevision"] = plan.revision
        if failure is not None and failure.reason != "HealthCheckFailed":
            self._retry(status, plan, failure, generation, now)
            outcome.event("Warning", failure.reason, failure.message, annotations)
            return outcome
        lines = _change_set(memo, built.objects, bool((entry.obj.get("spec") or {}).get("prune")))
        memo.applied = {o.id: o.digest for o in built.objects}
        memo.drifted = []
        status["inventory"] = {
            "entries": [{"id": o.id, "v": o.version} for o in sorted(built.objects, key=lambda o: o.id)]
        }
        if lines:
            outcome.event("Normal", "ReconciliationSucceeded", "\n".join(lines), annotations)
        duration = go_duration(world.reconcile_seconds)
        digest = "sha256:" + sha256(json.dumps(sorted(memo.applied.items())))
        if failure is not None:  # HealthCheckFailed: applied, but not lastAppliedRevision
            self._retry(status, plan, failure, generation, now)
            healthy = condition("Healthy", "False", "HealthCheckFailed", failure.message, generation, now)
            status["conditions"] = merge_conditions(status["conditions"], [healthy])
            status["history"] = _history(status, digest, "HealthCheckFailed", plan.revision, duration, now)
            outcome.event("Warning", failure.reason, failure.message, annotations)
            return outcome
        spec = entry.obj.get("spec") or {}
        updates = [
            condition(
                "Ready",
                "True",
                "ReconciliationSucceeded",
                f"Applied revision: {plan.revision}",
                generation,
                now,
            )
        ]
        if spec.get("wait") or spec.get("healthChecks"):
            updates.append(
                condition(
                    "Healthy", "True", "Succeeded", f"Health check passed in {duration}", generation, now
                )
            )
        status["conditions"] = merge_conditions(
            status.get("conditions") or [], updates, remove=("Reconciling", "Stalled")
        )
        status["observedGeneration"] = generation
        status["lastAppliedRevision"] = plan.revision
        status["history"] = _history(status, digest, "ReconciliationSucceeded", plan.revision, duration, now)
        interval = go_duration(parse_duration(str(spec.get("interval", "10m"))))
        finished = f"Reconciliation finished in {duration}, next run in {interval}"
        outcome.event(
            "Normal",
            "ReconciliationSucceeded",
            finished,
            {**annotations, f"{KUSTOMIZE}/commit_status": "update"},
        )
        return outcome

    @staticmethod
    def _not_ready(status: dict[str, Any], reason: str, message: str, generation: int, now: str) -> None:
        ready = condition("Ready", "False", reason, message, generation, now)
        status["conditions"] = merge_conditions(
            status.get("conditions") or [], [ready], remove=("Reconciling",)
        )

    @staticmethod
    def _retry(status: dict[str, Any], plan: Plan, failure: Failure, generation: int, now: str) -> None:
        step = _RETRY_STEP.get(failure.reason, "Reconciling")
        message = f"{step} for revision {plan.revision} with a timeout of {plan.timeout}"
        status["conditions"] = merge_conditions(
            status.get("conditions") or [],
            [
                condition("Reconciling", "True", "ProgressingWithRetry", message, generation, now),
                condition("Ready", "False", failure.reason, failure.message, generation, now),
            ],
        )


def _history(
    status: dict[str, Any], digest: str, outcome: str, revision: str, duration: str, now: str
) -> list[dict[str, Any]]:
    history = [dict(h) for h in status.get("history") or []]
    if history and history[0].get("digest") == digest and history[0].get("lastReconciledStatus") == outcome:
        latest = history[0]
        latest.update(
            lastReconciled=now,
            lastReconciledDuration=duration,
            totalReconciliations=int(latest.get("totalReconciliations", 0)) + 1,
        )
        return history
    entry = {
        "digest": digest,
        "firstReconciled": now,
        "lastReconciled": now,
        "lastReconciledDuration": duration,
        "lastReconciledStatus": outcome,
        "totalReconciliations": 1,
        "metadata": {"revision": revision},
    }
    return [entry, *history][:_HISTORY_SIZE]
