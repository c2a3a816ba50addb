"""From snapshots to deploys: what counts as a deploy, once, and what the cursor keeps; and the
snapshots themselves, built from the contract's real Application and Flux objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.backend import AppRef
from services.feed.argocd_source import app_key, snapshot
from services.feed.detect import detect
from services.feed.flux_source import snapshot as flux_snapshot
from services.feed.model import Cursor, Snapshot
from services.flux.kinds import HELM_RELEASE, KUSTOMIZATION
from services.settings.feed import parse_digest

REF = AppRef("argocd", "main", "api-prod")
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 12, 1, 10, 1, tzinfo=UTC)


def snap(
    op_id: str | None, phase: str | None = "Succeeded", revision: str = "b" * 40, **kw: object
) -> Snapshot:
    values: dict[str, object] = {
        "key": "k",
        "ref": REF,
        "revision": revision,
        "op_id": op_id,
        "op_phase": phase,
        "op_revision": revision,
        "started_at": T0,
        "finished_at": T1,
        "images": ("registry.example.com/api:1.4.3",),
    }
    values.update(kw)
    return Snapshot(**values)  # type: ignore[arg-type]


BEFORE = Cursor("k", "op-1", "a" * 40, ("registry.example.com/api:1.4.1",))


def test_first_sight_is_a_baseline_not_a_deploy() -> None:
    deploy, cursor = detect(None, snap("op-2"))
    assert deploy is None
    assert cursor == Cursor("k", "op-2", "b" * 40, ("registry.example.com/api:1.4.3",))


def test_a_new_succeeded_operation_that_changes_the_revision_is_one_deploy() -> None:
    deploy, cursor = detect(BEFORE, snap("op-2"))
    assert deploy is not None
    assert (deploy.result, deploy.old_revision, deploy.new_revision) == ("succeeded", "a" * 40, "b" * 40)
    assert deploy.old_images == ("registry.example.com/api:1.4.1",)
    assert deploy.duration_seconds == 60
    assert cursor is not None
    assert cursor.op_id == "op-2"
    assert detect(cursor, snap("op-2")) == (None, None)  # the same attempt seen again: nothing


def test_running_unsettled_or_repeated_attempts_say_nothing_yet() -> None:
    assert detect(BEFORE, snap(None, "Running")) == (None, None)
    assert detect(BEFORE, snap("op-2", settled=False)) == (None, None)
    assert detect(BEFORE, snap("op-1")) == (None, None)


def test_a_resync_of_what_runs_moves_the_cursor_without_a_deploy() -> None:
    same = snap("op-2", revision="a" * 40, images=("registry.example.com/api:1.4.1",))
    deploy, cursor = detect(BEFORE, same)
    assert deploy is None
    assert cursor is not None
    assert cursor.op_id == "op-2"


def test_a_failed_attempt_is_a_failed_deploy_and_the_app_still_runs_the_old_revision() -> None:
    deploy, cursor = detect(BEFORE, snap("op-2", "Failed", message="one or more objects failed to apply"))
    assert deploy is not None
    assert deploy.result == "failed"
    assert deploy.new_images == BEFORE.images
    assert cursor == Cursor("k", "op-2", "a" * 40, BEFORE.images)


def test_a_deleted_app_says_nothing() -> None:
    assert detect(BEFORE, snap("op-9", deleted=True)) == (None, None)


CONTRACTS = Path(__file__).resolve().parents[2] / "shared" / "contracts"


@pytest.mark.skipif(not CONTRACTS.is_dir(), reason="../shared/contracts is not next to this clone")
def test_snapshots_of_the_contract_applications() -> None:
    seen = 0
    for path in sorted((CONTRACTS / "argocd").rglob("*.json")):
        data = json.loads(path.read_text())
        if not (isinstance(data, dict) and data.get("kind") == "Application" and data.get("status")):
            continue
        found = snapshot("main", data)
        state = data["status"].get("operationState") or {}
        assert found.op_phase == (state.get("phase") or None)
        assert found.key == app_key(found.ref)
        if state.get("finishedAt"):
            assert found.op_id is not None
            assert state["finishedAt"] in found.op_id
        seen += 1
    assert seen > 0


def test_flux_kustomization_states() -> None:
    base = {"metadata": {"name": "api", "namespace": "flux-system", "resourceVersion": "7"}}
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "ReconciliationSucceeded",
        "lastTransitionTime": "2026-12-01T10:01:00Z",
        "message": "Applied revision: main@sha1:bbb",
    }
    applied = flux_snapshot(
        "prod",
        KUSTOMIZATION,
        {
            **base,
            "status": {
                "lastAppliedRevision": "main@sha1:bbb",
                "lastAttemptedRevision": "main@sha1:bbb",
                "conditions": [ready],
            },
        },
    )
    assert (applied.op_id, applied.op_phase, applied.revision) == (
        "applied:main@sha1:bbb",
        "Succeeded",
        "main@sha1:bbb",
    )
    failing = {**ready, "status": "False", "reason": "ReconciliationFailed", "message": "apply failed"}
    failed = flux_snapshot(
        "prod",
        KUSTOMIZATION,
        {
            **base,
            "status": {
                "lastAppliedRevision": "main@sha1:bbb",
                "lastAttemptedRevision": "main@sha1:ccc",
                "conditions": [failing],
            },
        },
    )
    assert (failed.op_id, failed.op_phase, failed.revision) == (
        "failed:main@sha1:ccc",
        "Failed",
        "main@sha1:bbb",
    )
    busy = {**ready, "status": "Unknown", "reason": "Progressing"}
    running = flux_snapshot(
        "prod",
        KUSTOMIZATION,
        {
            **base,
            "status": {
                "lastAppliedRevision": "main@sha1:bbb",
                "lastAttemptedRevision": "main@sha1:ccc",
                "conditions": [busy],
            },
        },
    )
    assert running.op_phase == "Running"


def test_flux_helm_release_history() -> None:
    obj = {
        "metadata": {"name": "podinfo", "namespace": "apps"},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "UpgradeSucceeded"}],
            "history": [
                {
                    "version": 3,
                    "status": "deployed",
                    "chartName": "podinfo",
                    "chartVersion": "6.5.4",
                    "lastDeployed": "2026-12-01T10:01:00Z",
                },
                {"version": 2, "status": "superseded", "chartName": "podinfo", "chartVersion": "6.5.3"},
            ],
        },
    }
    found = flux_snapshot("prod", HELM_RELEASE, obj)
    assert (found.op_id, found.op_phase, found.chart) == ("release:3", "Succeeded", "podinfo@6.5.4")
    assert found.key == "flux:prod/apps/podinfo.helmrelease"


def test_digest_schedule_is_checked() -> None:
    assert parse_digest("mon 09:00 Europe/Berlin").text == "mon 09:00 Europe/Berlin"
    assert parse_digest("Fri 17:30").timezone == "UTC"
    for bad in ("monday 9", "mon 25:00", "mon 09:00 Mars/Olympus"):
        with pytest.raises(ValueError, match=r"digest|time zone|between"):
            parse_digest(bad)


def test_check_config_warns_about_a_feed_with_nowhere_to_post() -> None:
    from services.settings.check import check_settings

    report = check_settings({"feed": {"enabled": True, "digest": "mon 09:00"}})
    assert {"feed.channel", "feed.digest"} <= {p.path for p in report.warnings}
    quiet = check_settings({"feed": {"channel": "C0FEED", "digest": "mon 09:00"}})
    assert not {p.path for p in quiet.warnings} & {"feed.channel", "feed.digest"}
