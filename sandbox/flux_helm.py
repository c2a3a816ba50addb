"""helm-controller: releases from a HelmChart template (or chartRef), history, failures and drift.

As the real controller, a reconcile with nothing to change (same chart version and values, no force,
no earlier failure) performs no Helm action: the history is not bumped, only the token is handled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sandbox.flux_kinds import HELM
from sandbox.flux_sources import CHART_VERSIONS, StaticSourceReconciler, resolve_chart_version
from sandbox.flux_state import Failure, Outcome, Run, World, generation_of
from sandbox.flux_status import condition, go_duration, merge_conditions, parse_duration, sha256
from sandbox.k8s_store import Entry

_FAILURE_COUNTERS = ("failures", "installFailures", "upgradeFailures")
_SETTLED = ("Reconciling", "Stalled", "Remediated")


@dataclass(frozen=True)
class HelmPlan:
    chart: str
    version: str  # "" while the chart is not available
    blocked: str  # why the chart is not available
    chart_key: tuple[str, str] | None  # the HelmChart (namespace, name) generated from spec.chart
    values_digest: str
    release: str
    target_namespace: str
    timeout: str


def helm_chart_object(hr: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The HelmChart helm-controller generates from `spec.chart`: (namespace, object without status)."""
    template = ((hr.get("spec") or {}).get("chart") or {}).get("spec")
    if not template:
        return None
    meta = hr["metadata"]
    source = template.get("sourceRef") or {}
    namespace = str(source.get("namespace") or meta["namespace"])
    spec = {
        "chart": template.get("chart", ""),
        "version": template.get("version", "*"),
        "sourceRef": {"kind": source.get("kind", "HelmRepository"), "name": source.get("name", "")},
        "interval": template.get("interval") or (hr.get("spec") or {}).get("interval", "5m"),
        "reconcileStrategy": template.get("reconcileStrategy", "ChartVersion"),
    }
    name = f"{meta['namespace']}-{meta['name']}"
    labels = {f"{HELM}/name": meta["name"], f"{HELM}/namespace": meta["namespace"]}
    return namespace, {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "spec": spec}


def _plan(world: World, entry: Entry) -> HelmPlan:
    spec = entry.obj.get("spec") or {}
    meta = entry.obj["metadata"]
    target = str(spec.get("targetNamespace") or meta["namespace"])
    release = str(
        spec.get("releaseName")
        or (f"{target}-{meta['name']}" if spec.get("targetNamespace") else meta["name"])
    )
    values_digest = sha256(json.dumps(spec.get("values") or {}, sort_keys=True))
    timeout = go_duration(parse_duration(str(spec.get("timeout") or "5m")))
    chart, version, blocked, chart_key = "", "", "", None
    generated = helm_chart_object(entry.obj)
    if generated is not None:
        namespace, chart_obj = generated
        chart_key = (namespace, chart_obj["metadata"]["name"])
        ref = chart_obj["spec"]["sourceRef"]
        chart = str(chart_obj["spec"]["chart"])
        if world.entry(str(ref["kind"]), namespace, str(ref["name"])) is None:
            blocked = (
                f"HelmChart '{namespace}/{chart_key[1]}' is not ready: "
                f'{ref["kind"]}.source.toolkit.fluxcd.io "{ref["name"]}" not found'
            )
        else:
            version = resolve_chart_version(str(chart_obj["spec"]["version"]))
    else:
        ref = spec.get("chartRef") or {}
        namespace = str(ref.get("namespace") or meta["namespace"])
        source = world.entry(str(ref.get("kind", "")), namespace, str(ref.get("name", "")))
        artifact = ((source.obj.get("status") or {}).get("artifact") or {}) if source is not None else {}
        if not artifact:
            blocked = f"could not get {ref.get('kind')} '{namespace}/{ref.get('name')}': no artifact"
        elif source is not None and source.rtype.kind == "HelmChart":
            chart, version = str((source.obj.get("spec") or {}).get("chart", "")), str(artifact["revision"])
        else:
            chart, tag = str(ref.get("name", "")), str(artifact["revision"]).split("@")[0]
            version = resolve_chart_version(tag) if tag[:1].isdigit() else CHART_VERSIONS[-1]
    return HelmPlan(chart, version, blocked, chart_key, values_digest, release, target, timeout)


class HelmReleaseReconciler:
    def progress(self, world: World, entry: Entry) -> dict[str, Any]:
        plan = _plan(world, entry)
        now, generation = world.store.now(), generation_of(entry.obj)
        history = (entry.obj.get("status") or {}).get("history") or []
        message = f"Running '{'upgrade' if history else 'install'}' action with timeout of {plan.timeout}"
        status = dict(entry.obj.get("status") or {})
        status["conditions"] = merge_conditions(
            status.get("conditions") or [],
            [
                condition("Reconciling", "True", "Progressing", message, generation, now),
                condition("Ready", "Unknown", "Progressing", message, generation, now),
            ],
        )
        return status

    def prepare(self, world: World, entry: Entry) -> None:
        return None

    def fetch(self, prepared: None) -> None:
        return None

    def finish(self, world: World, entry: Entry, run: Run, fetched: None) -> Outcome:
        stalled = world.stalled(entry, run.token)
        if stalled is not None:
            return stalled
        plan = _plan(world, entry)
        now, generation, memo = world.store.now(), generation_of(entry.obj), world.memo(entry.key)
        status = dict(entry.obj.get("status") or {})
        if run.token:
            status["lastHandledReconcileAt"] = run.token
        if run.force:
            status["lastHandledForceAt"] = run.token
        if run.reset:
            status["lastHandledResetAt"] = run.token
            for counter in _FAILURE_COUNTERS:
                status.pop(counter, None)
        outcome = Outcome(status)
        if not plan.version:
            ready = condition("Ready", "False", "ArtifactFailed", plan.blocked, generation, now)
            status["conditions"] = merge_conditions(
                status.get("conditions") or [], [ready], remove=("Reconciling",)
            )
            return outcome
        if plan.chart_key is not None:
            status["helmChart"] = f"{plan.chart_key[0]}/{plan.chart_key[1]}"
            sync_helm_chart(world, entry.obj)
        status["storageNamespace"] = str(
            (entry.obj.get("spec") or {}).get("storageNamespace") or entry.obj["metadata"]["namespace"]
        )
        failure, memo.failure = memo.failure, None
        history = [dict(h) for h in status.get("history") or []]
        previous = history[0] if history else None
        in_sync = (
            previous is not None
            and previous.get("status") == "deployed"
            and memo.released == (plan.version, plan.values_digest)
            and not (run.force or memo.retry or failure)
        )
        action = (
            "upgrade" if any(h.get("status") in ("deployed", "superseded") for h in history) else "install"
        )
        status.update(
            lastAttemptedGeneration=generation,
            lastAttemptedRevision=plan.version,
            lastAttemptedConfigDigest=f"sha256:{plan.values_digest}",
        )
        if in_sync and previous is not None:
            self._succeeded(world, entry, status, plan, previous, now)
            return outcome
        status["lastAttemptedReleaseAction"] = action
        status["lastAttemptedReleaseActionDuration"] = go_duration(world.reconcile_seconds)
        number = int(previous["version"]) + 1 if previous else 1
        release = self._release(plan, number, now, previous)
        if failure is not None:
            memo.retry = True
            self._failed(status, plan, failure, action, history, release, generation, now)
            outcome.event(
                "Warning", failure.reason, _ready_message(status), {f"{HELM}/revision": plan.version}
            )
            return outcome
        for item in history:
            if item.get("status") == "deployed":
                item["status"] = "superseded"
        max_history = int((entry.obj.get("spec") or {}).get("maxHistory") or 5)
        status["history"] = [release, *history][: max(max_history, 1)]
        memo.released, memo.retry = (plan.version, plan.values_digest), False
        for counter in _FAILURE_COUNTERS:
            status.pop(counter, None)
        message = self._succeeded(world, entry, status, plan, release, now)
        reason = "InstallSucceeded" if action == "install" else "UpgradeSucceeded"
        outcome.event(
            "Normal", reason, message, {f"{HELM}/revision": plan.version, f"{HELM}/app-version": plan.version}
        )
        return outcome

    @staticmethod
    def _release(plan: HelmPlan, number: int, now: str, previous: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "name": plan.release,
            "namespace": plan.target_namespace,
            "version": number,
            "chartName": plan.chart,
            "chartVersion": plan.version,
            "appVersion": plan.version,
            "configDigest": f"sha256:{plan.values_digest}",
            "digest": f"sha256:{sha256(f'{plan.release}.v{number}/{plan.version}/{plan.values_digest}')}",
            "firstDeployed": now,
            "lastDeployed": now,
            "status": "deployed",
            "action": "upgrade" if previous else "install",
        }

    def _succeeded(
        self,
        world: World,
        entry: Entry,
        status: dict[str, Any],
        plan: HelmPlan,
        release: dict[str, Any],
        now: str,
    ) -> str:
        generation = generation_of(entry.obj)
        memo = world.memo(entry.key)
        action = (
            "install" if release.get("action") == "install" or int(release["version"]) == 1 else "upgrade"
        )
        name = f"{plan.target_namespace}/{plan.release}.v{release['version']}"
        message = (
            f"Helm {action} succeeded for release {name} with chart {plan.chart}@{release['chartVersion']}"
        )
        reason = "InstallSucceeded" if action == "install" else "UpgradeSucceeded"
        updates = [condition("Released", "True", reason, message, generation, now)]
        spec = entry.obj.get("spec") or {}
        ready_reason, ready_message = reason, message
        if (spec.get("test") or {}).get("enable"):
            ready_reason = "TestSucceeded"
            chart = f"{plan.chart}@{release['chartVersion']}"
            ready_message = f"Helm test succeeded for release {name} with chart {chart}: no test hooks"
            updates.append(condition("TestSuccess", "True", ready_reason, ready_message, generation, now))
        mode = str((spec.get("driftDetection") or {}).get("mode", "disabled"))
        if mode in ("enabled", "warn"):
            if memo.drifted and mode == "warn":
                changes = "\n".join(f"{d} changed (0 additions, 1 changes, 0 removals)" for d in memo.drifted)
                text = f"Cluster state of release {name} has drifted from the desired state:\n{changes}"
                updates.append(condition("Drifted", "True", "DriftDetected", text, generation, now))
            else:
                memo.drifted = []
                updates.append(
                    condition(
                        "Drifted",
                        "False",
                        "NoDriftDetected",
                        f"No drift detected for release {name}",
                        generation,
                        now,
                    )
                )
        updates.append(condition("Ready", "True", ready_reason, ready_message, generation, now))
        status["conditions"] = merge_conditions(status.get("conditions") or [], updates, remove=_SETTLED)
        status["observedGeneration"] = generation
        return ready_message

    @staticmethod
    def _failed(
        status: dict[str, Any],
        plan: HelmPlan,
        failure: Failure,
        action: str,
        history: list[dict[str, Any]],
        release: dict[str, Any],
        generation: int,
        now: str,
    ) -> None:
        chart = f"{plan.chart}@{plan.version}"
        short = f"{plan.target_namespace}/{plan.release}"
        verb = "install" if action == "install" else "upgrade"
        released_reason = "InstallFailed" if verb == "install" else "UpgradeFailed"
        failed_text = f"Helm {verb} failed for release {short} with chart {chart}: {failure.message}"
        updates: list[dict[str, Any]] = []
        if failure.reason == "ArtifactFailed":
            updates.append(condition("Ready", "False", "ArtifactFailed", failure.message, generation, now))
        elif failure.reason == "TestFailed":
            status["history"] = [release, *history][:5]
            name = f"{short}.v{release['version']}"
            text = f"Helm test failed for release {name} with chart {chart}: {failure.message}"
            updates += [
                condition(
                    "Released",
                    "True",
                    "UpgradeSucceeded" if verb == "upgrade" else "InstallSucceeded",
                    text,
                    generation,
                    now,
                ),
                condition("TestSuccess", "False", "TestFailed", text, generation, now),
                condition("Ready", "False", "TestFailed", text, generation, now),
            ]
        elif failure.reason == "RollbackSucceeded" and history:
            good = next((h for h in history if h.get("status") == "deployed"), history[0])
            rollback = {
                **good,
                "version": int(release["version"]) + 1,
                "firstDeployed": now,
                "lastDeployed": now,
                "action": "rollback",
            }
            for item in history:
                if item.get("status") == "deployed":
                    item["status"] = "superseded"
            status["history"] = [rollback, {**release, "status": "failed"}, *history][:5]
            previous = f"{short}.v{good['version']} with chart {plan.chart}@{good['chartVersion']}"
            text = f"Helm rollback to previous release {previous} succeeded"
            updates += [
                condition("Released", "False", released_reason, failed_text, generation, now),
                condition("Remediated", "True", "RollbackSucceeded", text, generation, now),
                condition("Ready", "False", "RollbackSucceeded", text, generation, now),
            ]
        elif failure.reason in ("InstallFailed", "UpgradeFailed"):
            status["history"] = [{**release, "status": "failed"}, *history][:5]
            updates += [
                condition("Released", "False", released_reason, failed_text, generation, now),
                condition("Ready", "False", released_reason, failed_text, generation, now),
            ]
        else:
            updates.append(condition("Ready", "False", failure.reason, failure.message, generation, now))
        if failure.reason != "ArtifactFailed":
            retry = f"Running '{verb}' action with timeout of {plan.timeout}"
            updates.append(condition("Reconciling", "True", "ProgressingWithRetry", retry, generation, now))
            status["failures"] = int(status.get("failures", 0)) + 1
            counter = "installFailures" if verb == "install" else "upgradeFailures"
            status[counter] = int(status.get(counter, 0)) + 1
        status["conditions"] = merge_conditions(status.get("conditions") or [], updates)


def _ready_message(status: dict[str, Any]) -> str:
    for item in status.get("conditions") or []:
        if item.get("type") == "Ready":
            return str(item.get("message", ""))
    return ""


def sync_helm_chart(world: World, hr: dict[str, Any]) -> None:
    """Create or update the HelmChart generated from the release's template, then reconcile it."""
    generated = helm_chart_object(hr)
    if generated is None:
        return
    namespace, obj = generated
    rtype = world.cluster.registry.by_kind("HelmChart")
    entry = world.store.get(rtype.plural, namespace, obj["metadata"]["name"])
    if entry is None:
        entry = world.store.create(rtype, {**obj, "status": {"observedGeneration": -1}}, notify=False)
    elif entry.obj.get("spec") != obj["spec"]:
        world.store.commit(entry, {**entry.obj, "spec": obj["spec"]}, spec_changed=True, notify=False)
    else:
        return
    run = Run(world.monotonic(), "", generation_of(entry.obj), False, False)
    world.commit(entry, StaticSourceReconciler().finish(world, entry, run, None))
