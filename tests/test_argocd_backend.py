"""ArgoCDBackend against the fake Argo CD: records, sync and wait, history, rollback, diff, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD, RecordedRequest
from services.argocd import ArgoCDBackend, build_argocd_backends
from services.argocd.client import NAME_FIELDS
from services.backend import (
    AppNotFound,
    AppRef,
    AutoSyncBlocksRollback,
    GitOpsBackend,
    OperationInProgress,
    ResourceStatus,
    SyncRequest,
)
from services.errors import BackendUnavailable, PermissionDenied, UserError
from services.settings.model import ArgoCDInstance, Secrets, Settings
from tests.argocd_fixtures import (
    argocd_backend,
    argocd_client,
    backend_for,
    client_for,
    fake_argocd,
    instance_for,
    running,
    slow_argocd,
    wait_until,
)

__all__ = ["argocd_backend", "argocd_client", "fake_argocd", "slow_argocd"]  # fixtures used below

WEB = AppRef("argocd", "sandbox", "web")


def _body(request: RecordedRequest) -> dict[str, Any]:
    assert isinstance(request.body, dict)
    return request.body


def _head(fake: FakeArgoCD, name: str) -> str:
    return str(fake.app(name)["status"]["sync"]["revision"])


def test_is_a_gitops_backend(argocd_backend: ArgoCDBackend) -> None:
    assert isinstance(argocd_backend, GitOpsBackend)
    assert argocd_backend.kind == "argocd"
    assert argocd_backend.instance == "sandbox"


def test_get_maps_every_field(fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web", project="payments", labels={"team": "pay"}, path="apps/web/prod")
    backend = ArgoCDBackend(
        instance_for(fake_argocd, ui_url="https://argocd.example.com/"), client_for(fake_argocd)
    )
    status = backend.get(WEB)
    assert status.ref == AppRef("argocd", "sandbox", "web", namespace="argocd", project="payments")
    assert (status.sync, status.health, status.auto_sync) == ("Synced", "Healthy", False)
    assert status.revision == status.source_revision == _head(fake_argocd, "web")
    assert status.target_revision == "HEAD"
    assert status.repo_url == "https://git.example.com/deploy.git"
    assert status.path == "apps/web/prod"
    assert status.images == ("registry.example.com/web:1.0.0",)
    assert {r.key for r in status.resources} == {
        "apps/Deployment/web/web",
        "Service/web/web",
        "ConfigMap/web/web-config",
    }
    assert status.labels == (("team", "pay"),)
    assert status.ui_url == "https://argocd.example.com/applications/argocd/web"
    assert status.reconciled_at is not None
    assert status.operation_in_progress is False
    op = status.operation
    assert op is not None
    assert (op.phase, op.message) == ("Succeeded", "successfully synced (all tasks run)")
    assert (op.initiated_by, op.revision, op.resources_done, op.resources_total) == (
        "alice@example.com",
        status.revision,
        3,
        3,
    )
    assert op.duration_seconds is not None
    # The next GET sends the project it learnt, so a vanished app would be a 404, not a 403.
    assert fake_argocd.requests("/api/v1/applications/web")[-1].query["project"] == ["payments"]

    sha = fake_argocd.push_revision("web", image="registry.example.com/web:2.0.0")
    fake_argocd.set_health("web", "Degraded", "Back-off restarting failed container")
    changed = backend.get(WEB)
    assert (changed.sync, changed.revision, changed.source_revision) == ("OutOfSync", status.revision, sha)
    assert (changed.health, changed.health_message) == ("Degraded", "Back-off restarting failed container")
    assert not changed.healthy


def test_get_reports_a_running_operation(slow_argocd: FakeArgoCD) -> None:
    slow_argocd.add_app("web")
    backend = backend_for(slow_argocd)
    slow_argocd.push_revision("web", replicas=4)
    queued = backend.sync(WEB, SyncRequest(initiated_by="U0ALICE"))
    assert queued.operation_in_progress
    assert queued.operation is not None
    assert queued.operation.phase == "Running"
    wait_until(lambda: running(slow_argocd, "web"), what="the operation to start")
    status = backend.get(WEB)
    op = status.operation
    assert op is not None
    assert status.operation_in_progress
    assert (op.phase, op.finished_at, op.initiated_by) == ("Running", None, "U0ALICE")
    assert op.started_at is not None
    assert op.resources_total == 3
    backend.terminate(WEB)
    ended = backend_for(slow_argocd, poll_interval=0.02).wait(WEB, timeout=10)
    assert ended.operation is not None
    assert (ended.operation.phase, ended.operation.message) == ("Failed", "Operation terminated")


def test_list_with_selector_and_project(argocd_backend: ArgoCDBackend, fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web", project="payments", labels={"team": "pay"})
    fake_argocd.add_app("api", project="payments", labels={"team": "core"})
    fake_argocd.add_app("shop", project="retail", labels={"team": "pay"})
    listed = argocd_backend.list_apps(selector="team=pay", project="payments")
    assert [(s.ref.name, s.ref.project, s.sync, s.health) for s in listed] == [
        ("web", "payments", "Synced", "Healthy")
    ]
    assert listed[0].images == ("registry.example.com/web:1.0.0",)
    assert [s.ref.name for s in argocd_backend.list_apps()] == ["api", "shop", "web"]
    first, second = fake_argocd.requests("/api/v1/applications")
    assert (first.query["projects"], first.query["selector"]) == (["payments"], ["team=pay"])
    assert "projects" not in second.query
    assert "items.status.summary" in first.query["fields"][0].split(",")


def test_find_and_names_use_a_cached_trimmed_list(fake_argocd: FakeArgoCD) -> None:
    now = [1000.0]
    backend = backend_for(fake_argocd, clock=lambda: now[0])
    fake_argocd.add_app("web", project="payments")
    fake_argocd.add_app("svc", namespace="team-a", project="team-a")
    assert backend.find("web") == [AppRef("argocd", "sandbox", "web", namespace="argocd", project="payments")]
    assert backend.find("svc", namespace="team-a")[0].namespace == "team-a"
    assert backend.find("svc", namespace="argocd") == []
    assert backend.find("nope") == []
    assert backend.names() == ["svc", "web"]
    (listed,) = fake_argocd.requests("/api/v1/applications")
    assert listed.query["fields"] == [",".join(NAME_FIELDS)]

    fake_argocd.add_app("new")
    fake_argocd.add_app("newer")
    assert "new" not in backend.names()  # still cached
    assert backend.find("new") == []  # a miss refreshes only when the list is a few seconds old
    now[0] += 6
    assert backend.find("new")[0].name == "new"
    assert len(fake_argocd.requests("/api/v1/applications")) == 2
    now[0] += 31
    assert "newer" in backend.names()
    assert len(fake_argocd.requests("/api/v1/applications")) == 3

    # An app outside the control-plane namespace is addressed with appNamespace.
    assert backend.get(AppRef("argocd", "sandbox", "svc")).ref.namespace == "team-a"
    assert fake_argocd.requests("/api/v1/applications/svc")[-1].query["appNamespace"] == ["team-a"]


def test_sync_and_wait_reach_succeeded(argocd_backend: ArgoCDBackend, fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web", project="payments")
    sha = fake_argocd.push_revision("web", image="registry.example.com/web:2.0.0", message="Bump web")
    queued = argocd_backend.sync(WEB, SyncRequest(initiated_by="U0ALICE"))
    assert queued.operation_in_progress
    (request,) = fake_argocd.requests("/api/v1/applications/web/sync")
    assert request.body == {
        "name": "web",
        "project": "payments",
        "prune": False,
        "dryRun": False,
        "strategy": {"hook": {"force": False}},
        "infos": [{"name": "slack-user", "value": "U0ALICE"}],
    }
    seen: list[tuple[str, int]] = []
    final = argocd_backend.wait(
        WEB,
        timeout=15,
        on_progress=lambda s: seen.append(
            (s.operation.phase, s.operation.resources_done) if s.operation else ("", -1)
        ),
    )
    assert seen
    assert len(seen) == len(set(seen))  # only changes are reported
    assert not final.operation_in_progress
    assert final.operation is not None
    assert (final.operation.phase, final.operation.revision) == ("Succeeded", sha)
    assert (final.sync, final.revision, final.images) == ("Synced", sha, ("registry.example.com/web:2.0.0",))
    assert argocd_backend.history(WEB)[0].revision == sha


def test_dry_run_changes_nothing(argocd_backend: ArgoCDBackend, fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web")
    fake_argocd.push_revision("web", replicas=5)
    argocd_backend.sync(WEB, SyncRequest(dry_run=True, prune=True))
    final = argocd_backend.wait(WEB, timeout=15)
    assert final.operation is not None
    assert final.operation.dry_run
    assert final.operation.phase == "Succeeded"
    assert "dry run" in final.operation.message
    assert final.sync == "OutOfSync"
    assert len(argocd_backend.history(WEB)) == 3
    assert _body(fake_argocd.requests("/api/v1/applications/web/sync")[0])["dryRun"] is True


def test_partial_sync_to_a_revision(argocd_backend: ArgoCDBackend, fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web")
    sha = fake_argocd.push_revision("web", replicas=5)
    deployment = ResourceStatus(kind="Deployment", name="web", namespace="web", group="apps")
    argocd_backend.sync(WEB, SyncRequest(revision=sha, resources=(deployment,)))
    body = _body(fake_argocd.requests("/api/v1/applications/web/sync")[0])
    assert body["revision"] == sha
    assert body["resources"] == [{"group": "apps", "kind": "Deployment", "name": "web", "namespace": "web"}]
    assert "infos" not in body
    final = argocd_backend.wait(WEB, timeout=15)
    assert final.operation is not None
    assert (final.operation.phase, final.operation.resources_total) == ("Succeeded", 1)
    assert len(argocd_backend.history(WEB)) == 3  # partial syncs add no history


def test_sync_while_running_is_operation_in_progress(slow_argocd: FakeArgoCD) -> None:
    slow_argocd.add_app("web")
    backend = backend_for(slow_argocd)
    backend.sync(WEB, SyncRequest())
    with pytest.raises(OperationInProgress) as caught:
        backend.sync(WEB, SyncRequest())
    assert caught.value.message == (
        "Argo CD instance `sandbox` refused to sync `web`: another operation is already in progress."
    )


def test_wait_times_out_while_the_operation_continues(slow_argocd: FakeArgoCD) -> None:
    slow_argocd.add_app("web")
    backend = backend_for(slow_argocd)
    backend.sync(WEB, SyncRequest())
    with pytest.raises(BackendUnavailable) as caught:
        backend.wait(WEB, timeout=0.2)
    assert caught.value.message == "timed out waiting for the operation; it continues in Argo CD"
    assert slow_argocd.app("web").get("operation") is not None


def test_wait_on_failure_reports_failed_resources(
    argocd_backend: ArgoCDBackend, fake_argocd: FakeArgoCD
) -> None:
    fake_argocd.add_app("web")
    fake_argocd.push_revision("web", replicas=3)
    message = 'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1'
    fake_argocd.fail_next_sync("web", message=message)
    argocd_backend.sync(WEB, SyncRequest())
    final = argocd_backend.wait(WEB, timeout=15)
    assert final.operation is not None
    assert final.operation.phase == "Failed"
    assert final.operation.failed_resources == (f"Deployment/web: {message}",)


def test_history_newest_first_with_commit_metadata(
    argocd_backend: ArgoCDBackend, fake_argocd: FakeArgoCD
) -> None:
    fake_argocd.add_app("web", history=3)
    sha = fake_argocd.push_revision(
        "web", replicas=3, message="Scale web to 3", author="Bob <bob@example.com>"
    )
    argocd_backend.sync(WEB, SyncRequest(initiated_by="U0BOB"))
    argocd_backend.wait(WEB, timeout=15)
    fake_argocd.clear_requests()
    history = argocd_backend.history(WEB)
    assert [h.id for h in history] == ["4", "3", "2", "1"]
    assert [h.current for h in history] == [True, False, False, False]
    newest, previous = history[0], history[1]
    assert (newest.revision, newest.author, newest.message) == (
        sha,
        "Bob <bob@example.com>",
        "Scale web to 3",
    )
    assert newest.initiated_by == "gitops-bot"  # the account the token belongs to
    assert (previous.author, previous.message, previous.initiated_by) == (
        "Alice Example <alice@example.com>",
        "Release web r3",
        "alice@example.com",
    )
    assert all(h.deployed_at is not None for h in history)
    assert len(fake_argocd.requests("/api/v1/applications/web/revisions/")) == 4
    argocd_backend.history(WEB)
    assert len(fake_argocd.requests("/api/v1/applications/web/revisions/")) == 4  # metadata is cached


def test_history_is_bounded(fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web", history=8)
    history = backend_for(fake_argocd, history_limit=5).history(WEB)
    assert [h.id for h in history] == ["8", "7", "6", "5", "4"]
    assert len(fake_argocd.requests("/api/v1/applications/web/revisions/")) == 5


def test_plan_rollback_default_explicit_and_invalid(
    argocd_backend: ArgoCDBackend, fake_argocd: FakeArgoCD
) -> None:
    fake_argocd.add_app("web", history=3)
    fake_argocd.add_app("new", history=1)
    revisions = {e["id"]: e["revision"] for e in fake_argocd.app("web")["status"]["history"]}
    plan = argocd_backend.plan_rollback(WEB, None)
    assert (plan.to.id, plan.to.revision, plan.to.message) == ("2", revisions[2], "Release web r2")
    assert plan.current is not None
    assert (plan.current.id, plan.current.current, plan.auto_sync) == ("3", True, False)
    assert argocd_backend.plan_rollback(WEB, "1").to.id == "1"
    assert argocd_backend.plan_rollback(WEB, revisions[1][:8]).to.id == "1"
    with pytest.raises(UserError) as unknown:
        argocd_backend.plan_rollback(WEB, "9")
    assert unknown.value.hint is not None
    assert "3, 2, 1" in unknown.value.hint
    with pytest.raises(UserError, match="already at revision"):
        argocd_backend.plan_rollback(WEB, revisions[3][:7])
    with pytest.raises(UserError, match="no deployment of revision"):
        argocd_backend.plan_rollback(WEB, "abcdef0")
    with pytest.raises(UserError, match="at least two successful deployments"):
        argocd_backend.plan_rollback(AppRef("argocd", "sandbox", "new"), None)


def test_rollback_needs_auto_sync_off_and_policy_round_trips(
    argocd_backend: ArgoCDBackend, fake_argocd: FakeArgoCD
) -> None:
    fake_argocd.add_app("web", auto_sync=True, history=3)
    plan = argocd_backend.plan_rollback(WEB, None)
    assert plan.auto_sync
    with pytest.raises(AutoSyncBlocksRollback) as refused:
        argocd_backend.rollback(plan, initiated_by="U0ALICE")
    assert "auto-sync would immediately move the app forward" in refused.value.message

    policy = argocd_backend.automated_policy(WEB)
    assert policy == {"prune": True, "selfHeal": True}
    argocd_backend.set_auto_sync(WEB, False)
    (patch,) = fake_argocd.requests("/api/v1/applications/web")[-1:]
    assert patch.method == "PATCH"
    assert _body(patch)["patchType"] == "merge"
    assert json.loads(_body(patch)["patch"]) == {"spec": {"syncPolicy": {"automated": None}}}
    assert "automated" not in fake_argocd.app("web")["spec"]["syncPolicy"]
    assert argocd_backend.automated_policy(WEB) is None

    rolled = argocd_backend.rollback(plan, initiated_by="U0ALICE")
    assert rolled.operation_in_progress
    refused_request, request = fake_argocd.requests("/api/v1/applications/web/rollback")
    assert refused_request.status == 400
    assert request.body == {"name": "web", "id": 2, "prune": False, "project": "default"}
    final = argocd_backend.wait(WEB, timeout=15)
    assert final.operation is not None
    assert final.operation.phase == "Succeeded"
    assert fake_argocd.app("web")["status"]["operationState"]["syncResult"]["revision"] == plan.to.revision

    argocd_backend.set_auto_sync(WEB, True, policy)
    assert fake_argocd.app("web")["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert argocd_backend.automated_policy(WEB) == policy


def test_diff_shows_changed_created_and_pruned(
    argocd_backend: ArgoCDBackend, fake_argocd: FakeArgoCD
) -> None:
    fake_argocd.add_app("web")
    extra = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "extra", "namespace": "web"},
        "data": {},
    }
    sha = fake_argocd.push_revision(
        "web", image="registry.example.com/web:2.0.0", add=[extra], remove=["ConfigMap/web-config"]
    )
    fake_argocd.drift("web", replicas=5)
    diff = argocd_backend.diff(WEB)
    assert [c.key for c in diff.changes] == [
        "ConfigMap/web/extra",
        "ConfigMap/web/web-config",
        "apps/Deployment/web/web",
    ]
    created, pruned, changed = diff.changes
    assert (created.live, created.target is not None) == (None, True)
    assert (pruned.live is not None, pruned.target) == (True, None)
    assert changed.live is not None
    assert changed.target is not None
    assert changed.live["spec"]["replicas"] == 5  # type: ignore[index]
    assert diff.to_revision == sha
    assert diff.from_revision == fake_argocd.app("web")["status"]["history"][-1]["revision"]
    assert argocd_backend.diff(WEB, revision="HEAD").changes == diff.changes
    with pytest.raises(UserError, match="only with its target revision"):
        argocd_backend.diff(WEB, revision="v9.9.9")


def test_diff_of_a_synced_app_is_empty(argocd_backend: ArgoCDBackend, fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web")
    assert argocd_backend.diff(WEB).changes == ()


def test_missing_and_forbidden_apps(fake_argocd: FakeArgoCD, argocd_backend: ArgoCDBackend) -> None:
    fake_argocd.add_app("web", project="payments")
    fake_argocd.add_app("secret", project="vault")
    fake_argocd.forbid("secret")
    # With the project known Argo CD says 404, which names the app and the instance.
    with pytest.raises(AppNotFound) as missing:
        argocd_backend.sync(AppRef("argocd", "sandbox", "nope", project="payments"), SyncRequest())
    assert missing.value.message == "No app `nope` on Argo CD instance `sandbox` in project `payments`."
    assert fake_argocd.requests("/api/v1/applications/nope/sync")[0].status == 404
    # Without it a missing and a forbidden app both get 403; the reason says so.
    for name in ("secret", "nope"):
        with pytest.raises(PermissionDenied) as denied:
            argocd_backend.get(AppRef("argocd", "sandbox", name))
        assert denied.value.reason == (
            f"Argo CD instance `sandbox` does not allow the bot to read app `{name}`, "
            "or has no such app (Argo CD does not say which)."
        )
    with pytest.raises(AppNotFound, match="in project `vault`"):
        argocd_backend.get(AppRef("argocd", "sandbox", "secret", project="vault"))


def test_permission_denied_names_instance_action_and_app(
    fake_argocd: FakeArgoCD, argocd_backend: ArgoCDBackend
) -> None:
    fake_argocd.add_app("web", project="payments")
    blocked = json.dumps({"error": "x", "code": 7, "message": "cannot sync: blocked by sync window"})
    fake_argocd.fail_next(path="/api/v1/applications/web/sync", status=403, body=blocked)
    with pytest.raises(PermissionDenied) as caught:
        argocd_backend.sync(WEB, SyncRequest())
    assert caught.value.reason == (
        "Argo CD instance `sandbox` does not allow the bot to sync app `web` "
        "(cannot sync: blocked by sync window)."
    )
    fake_argocd.fail_next(path="/api/v1/applications/web/rollback", status=403)
    with pytest.raises(PermissionDenied, match="does not allow the bot to roll back app `web`"):
        argocd_backend.rollback(argocd_backend.plan_rollback(WEB, None))


def test_rejected_token_and_outage_are_backend_unavailable(fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web")
    with pytest.raises(BackendUnavailable) as rejected:
        backend_for(fake_argocd, client=client_for(fake_argocd, token="expired")).get(WEB)
    assert rejected.value.backend == "Argo CD sandbox"
    assert rejected.value.message == "the bot's token was rejected (401); ask an admin to rotate it"
    backend = backend_for(fake_argocd, client=client_for(fake_argocd, sleep=lambda _: None))
    fake_argocd.go_down()
    try:
        with pytest.raises(BackendUnavailable, match="cannot be reached"):
            backend.names()
    finally:
        fake_argocd.come_up()
    fake_argocd.fail_next(path="/api/v1/applications", status=503, times=3)
    with pytest.raises(BackendUnavailable, match="HTTP 503"):
        backend.list_apps()


def test_invalid_argument_is_a_user_error(argocd_backend: ArgoCDBackend, fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web")
    with pytest.raises(
        UserError, match="Argo CD refused to terminate the operation of `web`: Unable to terminate"
    ):
        argocd_backend.terminate(WEB)


def test_version_is_cached(argocd_backend: ArgoCDBackend, fake_argocd: FakeArgoCD) -> None:
    assert argocd_backend.version() == "v3.6.0+sandbox"
    assert argocd_backend.version() == "v3.6.0+sandbox"
    assert len(fake_argocd.requests("/api/version")) == 1


def test_build_backends_one_per_instance(fake_argocd: FakeArgoCD) -> None:
    fake_argocd.add_app("web")
    good = instance_for(fake_argocd)
    unset = ArgoCDInstance(name="other", url=fake_argocd.base_url, token_env="OTHER_ARGOCD_TOKEN")
    settings = Settings(argocd=(good, unset))
    secrets = Secrets(argocd_tokens={"sandbox": SecretStr(JWT_TOKEN)})
    backends = build_argocd_backends(settings, secrets, poll_interval=0.05)
    assert sorted(backends) == ["other", "sandbox"]
    assert backends["sandbox"].names() == ["web"]
    for call in (backends["other"].names, backends["other"].version, lambda: backends["other"].get(WEB)):
        with pytest.raises(BackendUnavailable) as caught:
            call()
        assert (caught.value.backend, caught.value.message) == (
            "Argo CD other",
            "no token: set OTHER_ARGOCD_TOKEN",
        )
    assert len(fake_argocd.requests()) == 1
