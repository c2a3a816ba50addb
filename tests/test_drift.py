"""Drift findings per backend, the scan, and the incident lifecycle on a real SQLite file."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from services.backend import AppRef, AppStatus, Condition, GitOpsBackend, Operation, ResourceStatus
from services.drift.rules import short
from services.drift.scan import Finding, ScanResult, finding_key, findings_for, scan
from services.drift.store import Change, IncidentStore
from services.errors import BackendUnavailable, UserError
from services.store.db import Database
from tests.db_engines import Opener

T0 = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=2)
FLAP = timedelta(minutes=30)
SHA_A = "a" * 40
SHA_B = "b" * 40

ARGO = AppRef("argocd", "main", "guestbook", namespace="argocd", project="default")
KS = AppRef("flux", "prod", "podinfo", namespace="apps", kind="Kustomization")
HR = AppRef("flux", "prod", "podinfo", namespace="apps", kind="HelmRelease")


def find(status: AppStatus, now: datetime = T0) -> list[Finding]:
    return findings_for(status, now=now, suspended_after=timedelta(hours=1), git_grace=timedelta(minutes=10))


def argo(**kw: object) -> AppStatus:
    base = AppStatus(ref=ARGO, sync="Synced", health="Healthy", revision=SHA_A, source_revision=SHA_A)
    return replace(base, **kw)  # type: ignore[arg-type]


def flux(ref: AppRef = KS, **kw: object) -> AppStatus:
    base = AppStatus(
        ref=ref,
        sync="Synced",
        health="Healthy",
        revision=f"main@sha1:{SHA_A}",
        source_revision=f"main@sha1:{SHA_A}",
        conditions=(Condition("Ready", status="True", reason="ReconciliationSucceeded"),),
        reconciled_at=T0 - timedelta(hours=3),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


# -- Argo CD ---------------------------------------------------------------------------------------


def test_argocd_healthy_app_has_no_findings() -> None:
    assert find(argo()) == []


def test_argocd_out_of_sync_at_another_revision_is_git_ahead() -> None:
    status = argo(
        sync="OutOfSync",
        source_revision=SHA_B,
        target_revision="main",
        resources=(ResourceStatus("Deployment", "web", "default", "apps", sync="OutOfSync"),),
    )
    [found] = find(status)
    assert found.kind == "git_ahead"
    assert found.key == "argocd:main/argocd/guestbook:git_ahead"
    assert found.title == "Git is ahead: bbbbbbb is not deployed (running aaaaaaa)"
    assert found.resources == ("apps/Deployment/default/web",)


def test_argocd_out_of_sync_at_the_same_revision_is_live_changed() -> None:
    resources = (
        ResourceStatus("ConfigMap", "cfg", "default", sync="OutOfSync"),
        ResourceStatus("Service", "web", "default", sync="Synced"),
    )
    [found] = find(argo(sync="OutOfSync", resources=resources))
    assert found.kind == "live_changed"
    assert "outside Git (1 resource) at aaaaaaa" in found.title
    assert found.resources == ("ConfigMap/default/cfg",)


def test_argocd_out_of_sync_while_syncing_is_not_reported() -> None:
    assert find(argo(sync="OutOfSync", source_revision=SHA_B, operation_in_progress=True)) == []


@pytest.mark.parametrize("health", ["Degraded", "Missing"])
def test_argocd_bad_health_is_failing(health: str) -> None:
    resources = (ResourceStatus("Deployment", "web", "default", "apps", health=health, message="crash"),)
    [found] = find(argo(health=health, health_message="pods crash", resources=resources))
    assert (found.kind, found.title, found.detail) == ("failing", f"Health {health}", "pods crash")
    assert found.resources == (f"apps/Deployment/default/web ({health})",)


def test_argocd_failed_sync_and_bad_health_merge_into_one_finding() -> None:
    finished = T0 - timedelta(minutes=5)
    op = Operation(
        phase="Failed",
        message="one or more objects failed to apply",
        revision=SHA_A,
        finished_at=finished,
        failed_resources=("Deployment/web: invalid",),
    )
    found = find(argo(health="Degraded", operation=op))
    assert [f.kind for f in found] == ["failing"]
    assert found[0].title == "Sync failed: one or more objects failed to apply (+1 more)"
    assert found[0].since == finished
    assert "Deployment/web: invalid" in found[0].resources
    assert "Health Degraded" in found[0].detail


def test_argocd_stale_failed_sync_on_a_healthy_app_at_another_revision_is_ignored() -> None:
    op = Operation(phase="Error", message="old failure", revision=SHA_B)
    assert find(argo(operation=op)) == []
    assert [f.kind for f in find(argo(operation=replace(op, revision=SHA_A)))] == ["failing"]


def test_argocd_error_condition_is_failing() -> None:
    cond = Condition("ComparisonError", message="rpc error: repository not found")
    [found] = find(argo(conditions=(cond,)))
    assert found.title == "ComparisonError: rpc error: repository not found"


# -- Flux ------------------------------------------------------------------------------------------


def test_flux_healthy_object_has_no_findings() -> None:
    assert find(flux()) == []


def test_flux_ready_false_and_stalled_are_one_failing_finding() -> None:
    conds = (
        Condition("Ready", status="False", reason="BuildFailed", message="kustomize build failed"),
        Condition("Stalled", status="True", reason="BuildFailed", message="kustomize build failed"),
    )
    [found] = find(flux(health="Degraded", conditions=conds))
    assert found.key == "flux:prod/apps/podinfo.kustomization:failing"
    assert found.title == "Not ready: BuildFailed (+1 more)"
    assert "Stalled: BuildFailed" in found.detail


def test_flux_suspended_longer_than_threshold_is_failing() -> None:
    [found] = find(flux(suspended=True, health="Suspended"))
    assert found.kind == "failing"
    assert found.title == "Suspended, not reconciled for 3h"
    assert found.since == T0 - timedelta(hours=3)
    assert find(flux(suspended=True, reconciled_at=T0 - timedelta(minutes=30))) == []
    assert find(flux(suspended=True, reconciled_at=None)) == []


def test_flux_suspended_with_git_ahead_is_one_finding_that_says_so() -> None:
    [found] = find(flux(suspended=True, sync="OutOfSync", source_revision=f"main@sha1:{SHA_B}"))
    assert found.kind == "failing"
    assert "Git is ahead" in found.detail


def test_flux_source_ahead_after_grace_is_git_ahead() -> None:
    ahead = flux(sync="OutOfSync", source_revision=f"main@sha1:{SHA_B}")
    [found] = find(ahead)
    assert found.kind == "git_ahead"
    assert found.title == "Git is ahead: main@sha1:bbbbbbbb is not applied (applied main@sha1:aaaaaaaa)"
    assert found.detail == "Source revision main@sha1:bbbbbbbb; last applied main@sha1:aaaaaaaa."
    assert find(replace(ahead, reconciled_at=T0 - timedelta(minutes=5))) == []  # inside git_grace
    assert find(replace(ahead, operation_in_progress=True)) == []


def test_flux_helmrelease_drifted_is_live_changed_with_its_own_key() -> None:
    drifted = Condition("Drifted", status="True", reason="DriftDetected", message="Deployment/web changed")
    [found] = find(flux(HR, conditions=(drifted,)))
    assert found.kind == "live_changed"
    assert found.detail == "Deployment/web changed"
    assert found.key != finding_key(KS, "live_changed")


def test_short_revisions() -> None:
    assert short(f"main@sha1:{SHA_A}") == "main@sha1:aaaaaaaa"  # as `flux get` shows it
    assert short(f"sha1:{SHA_A}") == "sha1:aaaaaaaa"
    assert short(f"v1.0@sha256:{SHA_A}{SHA_B[:24]}") == "v1.0@sha256:aaaaaaaa"
    assert short(SHA_B) == "bbbbbbb"
    assert short("1.2.3") == "1.2.3"
    assert short(None) == "?"


# -- scan ------------------------------------------------------------------------------------------


class FakeBackend:
    def __init__(self, kind: str, instance: str, apps: list[AppStatus] | None = None) -> None:
        self.kind = kind
        self.instance = instance
        self.apps = apps or []
        self.down = False
        self.calls = 0

    def list_apps(
        self,
        *,
        selector: str | None = None,
        project: str | None = None,
        deployed: bool = False,
        annotations: bool = False,
    ) -> list[AppStatus]:
        self.calls += 1
        if self.down:
            raise BackendUnavailable(f"{self.kind}:{self.instance}", "connection refused")
        return list(self.apps)


def run(backends: list[FakeBackend], now: datetime) -> ScanResult:
    return scan(
        [cast(GitOpsBackend, b) for b in backends],
        now=now,
        suspended_after=timedelta(hours=1),
        git_grace=timedelta(minutes=10),
    )


def test_scan_lists_each_backend_once_and_reports_unreachable() -> None:
    up = FakeBackend("argocd", "main", [argo(health="Degraded"), argo(sync="OutOfSync")])
    down = FakeBackend("flux", "prod", [flux()])
    down.down = True
    result = run([up, down], T0)
    assert (up.calls, down.calls) == (1, 1)
    assert result.scanned == ("argocd:main",)
    assert result.unreachable == ("flux:prod",)
    assert [f.kind for f in result.findings] == ["failing", "live_changed"]


@pytest.fixture
def db(any_database: Database) -> Database:
    return any_database  # SQLite and PostgreSQL (tests/db_engines.py)


@pytest.fixture
def store(db: Database) -> IncidentStore:
    return IncidentStore(db, refresh_every=10)


def posted(store: IncidentStore, changes: list[Change]) -> None:
    """What the caller does after posting each new incident."""
    for change in changes:
        if change.kind == "new":
            store.set_message(change.incident.id, channel="C1", ts=f"{change.incident.id}.0001")


def test_unreachable_backend_keeps_its_incidents_open(store: IncidentStore) -> None:
    argocd = FakeBackend("argocd", "main", [argo(health="Degraded")])
    fluxb = FakeBackend("flux", "prod", [flux(suspended=True)])
    first = store.apply(run([argocd, fluxb], T0), now=T0, flap_window=FLAP)
    assert sorted(c.incident.backend for c in first) == ["argocd:main", "flux:prod"]
    posted(store, first)
    argocd.apps, fluxb.down = [], True
    second = store.apply(run([argocd, fluxb], T0 + STEP), now=T0 + STEP, flap_window=FLAP)
    assert [(c.kind, c.incident.backend) for c in second] == [("resolved", "argocd:main")]
    assert [i.backend for i in store.open_incidents()] == ["flux:prod"]


# -- lifecycle -------------------------------------------------------------------------------------


def result_of(*statuses: AppStatus, now: datetime = T0) -> ScanResult:
    return run([FakeBackend("argocd", "main", list(statuses))], now)


DEGRADED = argo(health="Degraded", health_message="pods crash")


def test_lifecycle_new_updates_resolved_reopened(store: IncidentStore) -> None:
    now = T0
    [change] = store.apply(result_of(DEGRADED), now=now, flap_window=FLAP)
    assert (change.kind, change.quiet, change.incident.count) == ("new", False, 1)
    assert change.finding is not None
    assert change.finding.ref == ARGO
    posted(store, [change])
    incident_id = change.incident.id

    seen: list[Change] = []
    for _ in range(4):
        now += STEP
        seen += store.apply(result_of(DEGRADED), now=now, flap_window=FLAP)
    assert seen == []  # nothing a reader sees changed
    now += STEP
    [update] = store.apply(
        result_of(replace(DEGRADED, health_message="OOMKilled")), now=now, flap_window=FLAP
    )
    assert (update.kind, update.incident.id, update.incident.count) == ("update", incident_id, 6)
    assert update.incident.detail == "OOMKilled"
    assert update.incident.last_seen == now
    assert len(store.open_incidents()) == 1

    now += STEP
    [resolved] = store.apply(result_of(argo()), now=now, flap_window=FLAP)
    assert (resolved.kind, resolved.incident.status, resolved.incident.resolved_at) == (
        "resolved",
        "resolved",
        now,
    )
    assert resolved.incident.open_for(now) == 6 * STEP
    assert store.open_incidents() == []

    now += FLAP - timedelta(minutes=1)
    [reopened] = store.apply(result_of(DEGRADED), now=now, flap_window=FLAP)
    assert (reopened.kind, reopened.incident.id, reopened.incident.flap_count) == ("reopened", incident_id, 1)
    assert reopened.incident.message_ts == f"{incident_id}.0001"

    now += STEP
    store.apply(result_of(argo()), now=now, flap_window=FLAP)
    now += FLAP + timedelta(minutes=1)
    [fresh] = store.apply(result_of(DEGRADED), now=now, flap_window=FLAP)
    assert fresh.kind == "new"
    assert fresh.incident.id != incident_id
    assert store.by_key(fresh.incident.key) == fresh.incident
    old = store.get(incident_id)
    assert old is not None
    assert old.status == "resolved"


def test_periodic_refresh_every_n_scans(store: IncidentStore) -> None:
    posted(store, store.apply(result_of(DEGRADED), now=T0, flap_window=FLAP))
    kinds = [
        [c.kind for c in store.apply(result_of(DEGRADED), now=T0 + n * STEP, flap_window=FLAP)]
        for n in range(1, 11)
    ]
    assert kinds[8] == ["update"]  # the 10th sighting
    assert sum(len(k) for k in kinds) == 1


def test_restart_between_scans_neither_reposts_nor_loses_the_thread(open_again: Opener) -> None:
    first_db = open_again()
    first = IncidentStore(first_db)
    [change] = first.apply(result_of(DEGRADED), now=T0, flap_window=FLAP)
    first.set_message(change.incident.id, channel="C1", ts="111.222")
    first_db.close()

    second_db = open_again()
    try:
        second = IncidentStore(second_db)
        assert second.apply(result_of(DEGRADED), now=T0 + STEP, flap_window=FLAP) == []
        [incident] = second.open_incidents()
        assert (incident.channel, incident.message_ts, incident.thread_ts, incident.count) == (
            "C1",
            "111.222",
            "111.222",
            2,
        )
    finally:
        second_db.close()


def test_a_new_incident_whose_post_was_lost_is_new_again(store: IncidentStore) -> None:
    store.apply(result_of(DEGRADED), now=T0, flap_window=FLAP)  # crashed before set_message
    [again] = store.apply(result_of(DEGRADED), now=T0 + STEP, flap_window=FLAP)
    assert again.kind == "new"
    assert again.incident.count == 2


def test_snoozed_changes_are_quiet_and_still_tracked(store: IncidentStore) -> None:
    [change] = store.apply(result_of(DEGRADED), now=T0, flap_window=FLAP)
    posted(store, [change])
    snoozed = store.snooze(change.incident.id, T0 + timedelta(hours=1), "U2")
    assert (snoozed.snoozed_by, snoozed.snoozed_until) == ("U2", T0 + timedelta(hours=1))
    [update] = store.apply(result_of(replace(DEGRADED, health_message="x")), now=T0 + STEP, flap_window=FLAP)
    assert (update.kind, update.quiet, update.incident.detail) == ("update", True, "x")
    [resolved] = store.apply(result_of(argo()), now=T0 + 2 * STEP, flap_window=FLAP)
    assert (resolved.kind, resolved.quiet) == ("resolved", True)
    [reopened] = store.apply(result_of(DEGRADED), now=T0 + 3 * STEP, flap_window=FLAP)
    assert (reopened.kind, reopened.quiet) == ("reopened", True)
    store.snooze(change.incident.id, None, "U2")
    [loud] = store.apply(result_of(argo()), now=T0 + 4 * STEP, flap_window=FLAP)
    assert loud.quiet is False


def test_acknowledge_is_kept_and_cleared_when_the_incident_reopens(store: IncidentStore) -> None:
    [change] = store.apply(result_of(DEGRADED), now=T0, flap_window=FLAP)
    posted(store, [change])
    acked = store.acknowledge(change.incident.id, "U1", now=T0 + STEP)
    assert (acked.acknowledged_by, acked.acknowledged_at) == ("U1", T0 + STEP)
    assert store.acknowledge(change.incident.id, "U9", now=T0 + 2 * STEP) == acked
    store.apply(result_of(argo()), now=T0 + 3 * STEP, flap_window=FLAP)
    [reopened] = store.apply(result_of(DEGRADED), now=T0 + 4 * STEP, flap_window=FLAP)
    assert reopened.incident.acknowledged_by is None
    with pytest.raises(UserError):
        store.acknowledge(999, "U1", now=T0)


def test_backend_unreachable_announced_once_then_reachable_once(store: IncidentStore) -> None:
    assert store.backend_reachable("flux:prod") is False  # never down: nothing to announce
    assert store.backend_unreachable("flux:prod", now=T0) is True
    assert store.backend_unreachable("flux:prod", now=T0 + STEP) is False
    assert store.unreachable_since() == {"flux:prod": T0}
    assert store.backend_reachable("flux:prod") is True
    assert store.backend_reachable("flux:prod") is False


def test_short_outage_below_the_threshold_is_silent(store: IncidentStore) -> None:
    wait = timedelta(minutes=5)
    assert store.backend_unreachable("argocd:main", now=T0, announce_after=wait) is False
    assert store.backend_reachable("argocd:main") is False
    assert store.backend_unreachable("argocd:main", now=T0 + STEP, announce_after=wait) is False
    # The outage that began at T0 + STEP has lasted 6 minutes by now.
    assert store.backend_unreachable("argocd:main", now=T0 + 4 * STEP, announce_after=wait) is True


def test_fifty_simultaneous_findings_are_fifty_new_changes(store: IncidentStore) -> None:
    apps = [replace(DEGRADED, ref=replace(ARGO, name=f"app-{n:02d}")) for n in range(50)]
    changes = store.apply(result_of(*apps), now=T0, flap_window=FLAP)
    assert [c.kind for c in changes] == ["new"] * 50
    assert len({c.incident.id for c in changes}) == 50
    for change in changes:
        store.set_message(change.incident.id, channel="C1", ts="999.000", thread_ts="999.000")
    assert store.apply(result_of(*apps), now=T0 + STEP, flap_window=FLAP) == []


# -- git_grace for Argo CD (no start time from the backend) -------------------------------------------

GRACE = timedelta(minutes=10)
AHEAD = argo(sync="OutOfSync", source_revision=SHA_B)


def test_git_ahead_without_a_start_is_held_for_the_grace_from_its_first_sighting(
    store: IncidentStore,
) -> None:
    for minutes in (0, 4, 8):
        at = T0 + timedelta(minutes=minutes)
        assert store.apply(result_of(AHEAD, now=at), now=at, flap_window=FLAP, git_grace=GRACE) == []
    assert store.open_incidents() == []  # nothing to list or resolve while held
    at = T0 + GRACE
    [change] = store.apply(result_of(AHEAD, now=at), now=at, flap_window=FLAP, git_grace=GRACE)
    assert change.kind == "new"
    assert change.incident.first_seen == T0  # the incident began when the bot first saw it


def test_an_unreachable_backend_keeps_the_first_sighting(store: IncidentStore) -> None:
    store.apply(result_of(AHEAD), now=T0, flap_window=FLAP, git_grace=GRACE)
    down = ScanResult(findings=(), unreachable=("argocd:main",), scanned=())
    store.apply(down, now=T0 + STEP, flap_window=FLAP, git_grace=GRACE)
    at = T0 + GRACE
    assert [
        c.kind for c in store.apply(result_of(AHEAD, now=at), now=at, flap_window=FLAP, git_grace=GRACE)
    ] == ["new"]


def test_an_incident_already_open_is_never_held_back(store: IncidentStore) -> None:
    # Opened before the grace applied (an older bot): later scans update it instead of resolving it.
    posted(store, store.apply(result_of(AHEAD), now=T0, flap_window=FLAP))
    later = store.apply(result_of(AHEAD, now=T0 + STEP), now=T0 + STEP, flap_window=FLAP, git_grace=GRACE)
    assert [c.kind for c in later if c.kind == "resolved"] == []
    assert len(store.open_incidents()) == 1


def test_a_held_change_that_catches_up_leaves_nothing_and_the_next_one_waits_again(
    store: IncidentStore,
) -> None:
    store.apply(result_of(AHEAD), now=T0, flap_window=FLAP, git_grace=GRACE)
    assert (
        store.apply(result_of(argo(), now=T0 + STEP), now=T0 + STEP, flap_window=FLAP, git_grace=GRACE) == []
    )
    at = T0 + GRACE
    assert store.apply(result_of(AHEAD, now=at), now=at, flap_window=FLAP, git_grace=GRACE) == []
    at += GRACE
    assert [
        c.kind for c in store.apply(result_of(AHEAD, now=at), now=at, flap_window=FLAP, git_grace=GRACE)
    ] == ["new"]
