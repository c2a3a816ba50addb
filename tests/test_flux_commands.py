"""Transcript tests: /gitops against Flux through the fake Kubernetes API, with real Git repositories."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import Runtime, build_runtime
from sandbox.flux_fake import FakeKubernetes
from sandbox.flux_git import commit_file, make_deploy_repo
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from sandbox.slack_models import Message
from services.backend import GitOpsBackend
from services.flux import build_flux_backends
from services.git import RepoCache
from tests.conftest import SIGNING_SECRET, config_for

CHANNEL = "C0DEPLOYS"
ALERTS = "C0ALERTS"
MANIFEST = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: {replicas}\n"


class Bot:
    def __init__(
        self, runtime: Runtime, sender: SlackSender, slack: FakeSlack, k8s: FakeKubernetes, work: Path
    ):
        self.runtime, self.sender, self.slack, self.k8s, self.work = runtime, sender, slack, k8s, work

    def say(self, text: str, user: str = "U0ALICE") -> dict[str, object]:
        sent = self.sender.slash(text, user_id=user, user_name=user.lower()[2:], channel_id=CHANNEL)
        assert sent.status == 200, sent.body
        return sent.json_body or {}

    def ephemeral_text(self, user: str = "U0ALICE") -> str:
        return "\n".join(m.text + json.dumps(m.blocks) for m in self.slack.ephemeral(user))

    def wait_ephemeral(self, needle: str, user: str = "U0ALICE", timeout: float = 25) -> str:
        self.slack.wait_for(lambda f: needle in self.ephemeral_text(user), timeout=timeout)
        return self.ephemeral_text(user)

    def wait_channel(self, needle: str, timeout: float = 30) -> Message:
        self.slack.wait_for(lambda f: any(needle in m.text for m in f.messages(CHANNEL)), timeout=timeout)
        return next(m for m in self.slack.messages(CHANNEL) if needle in m.text)

    def audit(self, count: int, timeout: float = 10) -> list[object]:
        deadline = time.monotonic() + timeout
        while self.runtime.deps.audit.count() < count:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        return list(self.runtime.deps.audit.recent(limit=count))

    def push(self, replicas: int, message: str) -> str:
        sha = commit_file(self.work, "apps/prod/deployment.yaml", MANIFEST.format(replicas=replicas), message)
        self.k8s.fetch_sources()
        return sha


@pytest.fixture
def flux(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[Bot]:
    bare, work = make_deploy_repo(
        tmp_path / "git", {"apps/prod/deployment.yaml": MANIFEST.format(replicas=2), "README.md": "deploy\n"}
    )
    k8s = FakeKubernetes(tick=0.02, reconcile_seconds=0.1).start()
    k8s.add_git_repository("deploy", url=f"file://{bare}")
    k8s.add_kustomization("api", path="./apps/prod", source="deploy", labels={"team": "payments"})
    kubeconfig = k8s.write_kubeconfig(tmp_path / "kubeconfig")
    extra = f"""
flux:
  - name: prod
    kubeconfig: {kubeconfig}
    context: sandbox
repositories:
  - name: deploy
    url: file://{bare}
    branch: main
git:
  cache_dir: {tmp_path / "cache"}
slack:
  alerts_channel: {ALERTS}
drift:
  interval: 1h
  git_grace: 1s
access:
  grants:
    - role: deployer
      users: [U0ALICE, U0BOB]
"""
    loaded = config_for(tmp_path, fake_slack, extra_yaml=extra)
    repos = RepoCache(tmp_path / "cache", loaded.settings.repositories, loaded.secrets.git_credentials)
    flux_backends = build_flux_backends(loaded.settings, loaded.secrets, repos, poll_interval=0.05)
    backends: dict[str, GitOpsBackend] = {f"flux:{name}": b for name, b in flux_backends.items()}
    runtime = build_runtime(loaded, port=0, host="127.0.0.1", backends=backends).start()
    sender = SlackSender(f"http://127.0.0.1:{runtime.server.port}/slack/events", SIGNING_SECRET, fake_slack)
    try:
        yield Bot(runtime, sender, fake_slack, k8s, work)
    finally:
        runtime.stop()
        k8s.stop()


def test_status_shows_git_ahead_of_the_cluster(flux: Bot) -> None:
    flux.push(3, "scale api to 3")
    flux.say("status flux-system/api")
    shown = flux.wait_ephemeral("OutOfSync")
    assert "api" in shown
    flux.say("status --all")
    assert "need attention" in flux.wait_ephemeral("need attention")


def test_flux_revisions_read_as_flux_get_shows_them_everywhere(flux: Bot) -> None:
    applied = subprocess.run(
        ["git", "-C", str(flux.work), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    ahead = flux.push(3, "scale api to 3")
    flux.say("status api")
    shown = {"status": flux.wait_ephemeral("OutOfSync")}
    assert f"main@sha1:{applied[:8]}" in shown["status"]  # `flux get ks` form: prefix + 8 hex
    time.sleep(1.1)  # past drift.git_grace (1s) since the last reconcile
    assert flux.runtime.drift is not None
    flux.runtime.drift.run()
    flux.slack.wait_for(lambda f: any("Undeployed Git change" in m.text for m in f.messages(ALERTS)))
    shown["drift"] = "\n".join(m.text + json.dumps(m.blocks) for m in flux.slack.messages(ALERTS))
    assert f"Git is ahead: main@sha1:{ahead[:8]} is not applied" in shown["drift"]
    flux.say("sync api")
    card = flux.wait_channel("Succeeded")
    shown["sync"] = card.text + json.dumps(card.blocks)
    assert f"main@sha1:{ahead[:8]}" in shown["sync"]
    flux.say("history api")
    shown["history"] = flux.wait_ephemeral("History of api")
    flux.say("status --all")
    shown["overview"] = flux.wait_ephemeral("apps,")
    for where, text in shown.items():
        for sha in (applied, ahead):
            assert sha not in text, f"{where} shows the full {sha}"
            assert f"{sha[:8]}…" not in text, f"{where} cuts {sha} mid-way"


def test_sync_reconciles_source_then_target_and_reports(flux: Bot) -> None:
    sha = flux.push(4, "scale api to 4")
    flux.say("sync api")
    card = flux.wait_channel("Succeeded")
    assert "Reconcile api" in card.text
    patches = [r for r in flux.k8s.requests() if r.method == "PATCH"]
    assert [p.path.split("/")[-2] for p in patches][:2] == ["gitrepositories", "kustomizations"]
    assert all(p.query.get("fieldManager") == ["flux-client-side-apply"] for p in patches)
    obj = flux.k8s.object("kustomizations", "api")
    assert obj["status"]["lastAppliedRevision"].endswith(sha)
    [row] = flux.audit(1)
    assert row.outcome == "ok"  # type: ignore[attr-defined]


def test_build_failure_is_reported_at_once(flux: Bot) -> None:
    flux.push(5, "broken")
    flux.k8s.fail_next_reconcile(
        "Kustomization", "api", reason="BuildFailed", message="kustomize build failed: x"
    )
    flux.say("sync api")
    card = flux.wait_channel("Failed")
    assert "BuildFailed" in json.dumps(card.blocks) or "kustomize build failed" in json.dumps(card.blocks)


def test_suspend_and_resume(flux: Bot) -> None:
    flux.say("suspend api")
    flux.wait_channel("Suspended")
    assert flux.k8s.object("kustomizations", "api")["spec"]["suspend"] is True
    flux.say("sync api", user="U0BOB")
    assert "suspended" in flux.wait_ephemeral("suspended", user="U0BOB")
    flux.say("resume api")
    flux.wait_channel("Resume api")
    flux.slack.wait_for(lambda f: "Succeeded" in f.messages(CHANNEL)[-1].text, timeout=20)
    assert "suspend" not in flux.k8s.object("kustomizations", "api")["spec"]


def test_diff_is_the_git_diff_of_the_path(flux: Bot) -> None:
    flux.push(6, "scale api to 6")
    flux.say("diff api")
    shown = flux.wait_ephemeral("Diff api")
    assert "replicas" in shown
    assert "README" not in shown


def test_history_and_rollback_is_a_revert_commit(flux: Bot, tmp_path: Path) -> None:
    flux.push(7, "scale api to 7")
    flux.say("sync api")
    flux.wait_channel("Succeeded")
    flux.say("history api")
    assert "scale api to 7" in flux.wait_ephemeral("History of api")
    flux.say("rollback api")
    flux.wait_ephemeral("Revert commit")
    card = next(
        m for m in reversed(flux.slack.ephemeral("U0ALICE")) if "rollback_confirm" in json.dumps(m.blocks)
    )
    flux.sender.click(card, "rollback_confirm", user_id="U0ALICE", user_name="alice")
    flux.slack.wait_for(lambda f: sum("Succeeded" in m.text for m in f.messages(CHANNEL)) >= 2, timeout=30)
    log = subprocess.run(
        ["git", "-C", str(flux.work), "pull", "-q"], capture_output=True, text=True, check=False
    )
    assert log.returncode == 0, log.stderr
    content = (flux.work / "apps/prod/deployment.yaml").read_text()
    assert "replicas: 2" in content
    message = subprocess.run(
        ["git", "-C", str(flux.work), "log", "-1", "--format=%B"], capture_output=True, text=True, check=True
    ).stdout
    assert "Requested-by:" in message


def test_forbidden_is_a_denial(flux: Bot) -> None:
    flux.k8s.forbid("patch", "kustomizations")
    flux.say("sync api")
    flux.wait_ephemeral("Not allowed")
    [row] = flux.audit(1)
    assert row.outcome == "denied"  # type: ignore[attr-defined]


def test_api_server_down(flux: Bot) -> None:
    flux.k8s.go_down()
    try:
        flux.say("status api")
        assert "not answering" in flux.wait_ephemeral("not answering", timeout=30)
    finally:
        flux.k8s.come_up()


def _confirm_card(flux: Bot) -> Message:
    return next(
        m for m in reversed(flux.slack.ephemeral("U0ALICE")) if "rollback_confirm" in json.dumps(m.blocks)
    )


def _button(card: Message, action_id: str) -> dict[str, Any]:
    return next(
        e
        for b in card.blocks
        if b.get("type") == "actions"
        for e in b["elements"]
        if e.get("action_id") == action_id
    )


def _audited(flux: Bot, needle: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        rows = flux.runtime.deps.audit.recent(limit=50)
        details = [r.detail for r in rows if r.action.startswith("rollback")]
        found = [d for d in details if needle in d]
        if found:
            return found[0]
        assert time.monotonic() < deadline, details
        time.sleep(0.05)


def test_a_revert_is_labelled_by_the_commit_it_undoes_and_audits_the_new_commit(flux: Bot) -> None:
    reverted = flux.push(7, "scale api to 7")
    flux.say("sync api")
    flux.wait_channel("Succeeded")
    flux.say("rollback api")
    flux.wait_ephemeral("Revert commit")
    go = _button(_confirm_card(flux), "rollback_confirm")
    assert go["text"]["text"] == f"Revert {reverted[:7]}"
    assert go["confirm"]["title"]["text"] == f"Revert {reverted[:7]}?"
    assert f"undoes {reverted[:7]}" in go["confirm"]["text"]["text"]
    assert "#" not in json.dumps(go)  # no "roll back to #<reverted>": the app runs the parent's content
    flux.sender.click(_confirm_card(flux), "rollback_confirm", user_id="U0ALICE", user_name="alice")
    result = flux.wait_channel(f"Revert {reverted[:7]} in api")
    assert f"--revision {reverted[:7]}" not in json.dumps(result.blocks)
    flux.slack.wait_for(lambda f: "Succeeded" in f.messages(CHANNEL)[-1].text, timeout=30)
    revert = subprocess.run(
        ["git", "-C", str(flux.work), "ls-remote", "origin", "refs/heads/main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    assert revert != reverted
    detail = _audited(flux, " → ")
    assert detail.startswith(f"revert {reverted[:7]}: {reverted[:7]} → {revert[:7]};"), detail


def test_a_restore_says_restore_to(flux: Bot) -> None:
    first = subprocess.run(
        ["git", "-C", str(flux.work), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    flux.push(8, "scale api to 8")
    flux.push(9, "scale api to 9")
    flux.say("sync api")
    flux.wait_channel("Succeeded")
    flux.say(f"rollback api --to {first[:10]}")
    flux.wait_ephemeral("Restore `apps/prod`")
    go = _button(_confirm_card(flux), "rollback_confirm")
    assert go["text"]["text"] == f"Restore to {first[:7]}"
    assert go["confirm"]["title"]["text"] == f"Restore to {first[:7]}?"
    flux.sender.click(_confirm_card(flux), "rollback_confirm", user_id="U0ALICE", user_name="alice")
    flux.wait_channel(f"Restore api to {first[:7]}")
