"""FluxBackend's Git side (diff, history, rollback) and HelmRelease specifics, against the fake
Kubernetes API and a real bare repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.backend import SyncRequest
from services.errors import UserError
from services.flux import FluxBackend, build_flux_backends
from services.flux.reconcile import REQUESTED_AT
from services.git import RepoCache
from services.settings.model import GitRepository, Secrets, Settings
from tests.flux_fixtures import CLUSTER, NS, FluxEnv, deployment, flux_env

__all__ = ["flux_env"]


def test_diff_shows_git_changes_under_the_path_not_yet_applied(flux_env: FluxEnv) -> None:
    assert flux_env.backend.diff(flux_env.ref()).text == ""
    applied = flux_env.bare_git("rev-parse", "main").strip()
    new = flux_env.commit("apps/web/deployment.yaml", deployment("web", 5), "five replicas")
    flux_env.commit("apps/api/deployment.yaml", deployment("api", 9), "api elsewhere")
    flux_env.fake.fetch_sources()
    diff = flux_env.backend.diff(flux_env.ref())
    assert diff.text is not None
    assert "-  replicas: 1\n+  replicas: 5" in diff.text
    assert "apps/api" not in diff.text  # only the Kustomization's path
    assert diff.from_revision == applied
    assert diff.to_revision is not None
    assert diff.to_revision != new  # the artifact is the newest commit, which touched apps/api
    assert diff.to_revision == flux_env.bare_git("rev-parse", "main").strip()


def test_diff_names_the_url_no_configured_repository_matches(flux_env: FluxEnv, tmp_path: Path) -> None:
    other = GitRepository(name="other", url="https://git.example.com/other.git")
    settings = Settings(flux=(flux_env.cluster,), repositories=(other,))
    repos = RepoCache(tmp_path / "other-cache", settings.repositories, {})
    backend = FluxBackend(flux_env.cluster, flux_env.client, repos, settings)
    with pytest.raises(
        UserError, match=f"No configured repository matches `file://{flux_env.bare}`"
    ) as caught:
        backend.diff(flux_env.ref())
    assert caught.value.hint is not None
    assert "repositories[]" in caught.value.hint


def test_history_newest_first_with_the_applied_commit_current(flux_env: FluxEnv) -> None:
    first = flux_env.bare_git("rev-parse", "main").strip()
    second = flux_env.commit("apps/web/deployment.yaml", deployment("web", 2), "web: two")
    flux_env.commit("apps/api/deployment.yaml", deployment("api", 2), "api: two")
    flux_env.backend.sync(flux_env.ref(), SyncRequest())
    flux_env.backend.wait(flux_env.ref(), timeout=10)
    third = flux_env.commit("apps/web/deployment.yaml", deployment("web", 3), "web: three (not applied)")
    entries = flux_env.backend.history(flux_env.ref())
    assert [e.revision for e in entries] == [third, second, first]
    assert [e.current for e in entries] == [False, True, False]
    assert entries[1].id == second[:8]
    assert entries[1].message == "web: two"
    assert entries[1].author == "Sandbox Bot"


def test_rollback_reverts_the_deployed_commit_in_git_and_reconciles(flux_env: FluxEnv) -> None:
    bad = flux_env.commit(
        "apps/web/deployment.yaml", deployment("web", image="nginx:broken"), "web: bad image"
    )
    flux_env.backend.sync(flux_env.ref(), SyncRequest())
    flux_env.backend.wait(flux_env.ref(), timeout=10)

    plan = flux_env.backend.plan_rollback(flux_env.ref(), None)
    assert plan.to.revision == bad
    assert plan.current is not None
    assert plan.current.revision == bad
    assert plan.auto_sync is False
    assert plan.path == "apps/web"
    assert flux_env.backend.plan_rollback(flux_env.ref(), plan.to.id) == plan  # a confirm button re-plans

    started = flux_env.backend.rollback(plan, initiated_by="alice")
    pushed = flux_env.bare_git("rev-parse", "main").strip()
    assert started.operation is not None
    assert started.operation.revision == pushed
    assert flux_env.bare_git("show", "main:apps/web/deployment.yaml") == deployment("web")
    message = flux_env.bare_git("log", "-1", "--format=%B", "main")
    assert message.startswith(f"rollback {NS}/web: revert {bad[:8]} (web: bad image)")
    assert "Requested-by: alice" in message
    assert f"Rolled-back-from: {bad}" in message
    assert (
        flux_env.bare_git("log", "-1", "--format=%an <%ae>", "main").strip()
        == "gitops-bot <gitops-bot@localhost>"
    )

    final = flux_env.backend.wait(flux_env.ref(), timeout=10)
    assert final.operation is not None
    assert (final.operation.phase, final.operation.revision) == ("Succeeded", f"main@sha1:{pushed}")


def test_rollback_to_a_commit_restores_the_path(flux_env: FluxEnv) -> None:
    good = flux_env.bare_git("rev-parse", "main").strip()
    flux_env.commit("apps/web/deployment.yaml", deployment("web", 2), "web: two")
    flux_env.commit("apps/web/deployment.yaml", deployment("web", 3), "web: three")
    flux_env.backend.sync(flux_env.ref(), SyncRequest())
    flux_env.backend.wait(flux_env.ref(), timeout=10)

    plan = flux_env.backend.plan_rollback(flux_env.ref(), good[:10])
    assert plan.to.revision == good
    assert plan.current is not None
    assert plan.current.message == "web: three"
    assert flux_env.backend.plan_rollback(flux_env.ref(), plan.to.id) == plan
    flux_env.backend.rollback(plan, initiated_by="bob")
    assert flux_env.bare_git("show", "main:apps/web/deployment.yaml") == deployment("web")
    subject = flux_env.bare_git("log", "-1", "--format=%s", "main").strip()
    assert subject == f"rollback {NS}/web: restore apps/web to {good[:8]} (Initial commit)"
    final = flux_env.backend.wait(flux_env.ref(), timeout=10)
    assert final.operation is not None
    assert final.operation.phase == "Succeeded"


def test_helm_release_reconciles_repository_chart_then_release(flux_env: FluxEnv) -> None:
    ref = flux_env.ref("podinfo", "apps", "HelmRelease")
    flux_env.fake.clear_requests()
    flux_env.backend.sync(ref, SyncRequest())
    paths = [p.path.rsplit("/", 2)[-2] for p in flux_env.patches()]
    assert paths == ["helmrepositories", "helmcharts", "helmreleases"]
    final = flux_env.backend.wait(ref, timeout=10)
    assert final.operation is not None
    assert final.operation.phase == "Succeeded"
    assert final.operation.revision == "6.5.0"
    release = flux_env.obj("helmreleases", "podinfo", namespace="apps")
    assert release["status"]["lastHandledReconcileAt"] == release["metadata"]["annotations"][REQUESTED_AT]


def test_helm_release_history_comes_from_its_status(flux_env: FluxEnv) -> None:
    entries = flux_env.backend.history(flux_env.ref("podinfo", "apps", "HelmRelease"))
    assert entries
    assert entries[0].current
    assert entries[0].revision == "6.5.0"
    assert entries[0].id.isdigit()


def test_helm_release_rollback_and_diff_explain_the_git_way(flux_env: FluxEnv) -> None:
    ref = flux_env.ref("podinfo", "apps", "HelmRelease")
    with pytest.raises(UserError, match="HelmRelease") as caught:
        flux_env.backend.plan_rollback(ref, None)
    assert caught.value.hint is not None
    assert "remediation" in caught.value.hint
    with pytest.raises(UserError, match="Kustomizations only"):
        flux_env.backend.diff(ref)


def test_build_flux_backends_makes_one_backend_per_cluster(flux_env: FluxEnv) -> None:
    backends = build_flux_backends(flux_env.settings, Secrets(), flux_env.repos, poll_interval=0.05)
    assert list(backends) == [CLUSTER]
    backend = backends[CLUSTER]
    try:
        assert backend.get(flux_env.ref()).health == "Healthy"
    finally:
        backend.client.close()
