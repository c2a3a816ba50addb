"""Two bot replicas with a Kubernetes Lease: only the leader scans and posts drift alerts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from bot.app import Runtime, build_runtime
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.flux_fake import FakeKubernetes
from sandbox.slack_api import FakeSlack
from services.argocd import build_argocd_backends
from services.backend import GitOpsBackend
from tests.conftest import config_for

ALERTS = "C0ALERTS"


@pytest.fixture
def cluster() -> Iterator[tuple[FakeArgoCD, FakeKubernetes]]:
    argocd = FakeArgoCD(tick=0.02).start()
    k8s = FakeKubernetes(leases=True).start()
    try:
        yield argocd, k8s
    finally:
        argocd.stop()
        k8s.stop()


def _replica(tmp: Path, slack: FakeSlack, argocd: FakeArgoCD, kubeconfig: Path, name: str) -> Runtime:
    extra = f"""
slack:
  alerts_channel: {ALERTS}
argocd:
  - name: main
    url: {argocd.base_url}
    token_env: ARGOCD_TOKEN
leader:
  enabled: true
  namespace: gitops-bot
  kubeconfig: {kubeconfig}
  context: sandbox
  lease_duration: 3s
  renew_deadline: 2s
  retry_period: 1s
"""
    (tmp / name).mkdir()
    loaded = config_for(tmp / name, slack, extra_yaml=extra, extra_env={"ARGOCD_TOKEN": JWT_TOKEN})
    argo = build_argocd_backends(loaded.settings, loaded.secrets, poll_interval=0.05)
    backends: dict[str, GitOpsBackend] = {f"argocd:{n}": b for n, b in argo.items()}
    runtime = build_runtime(loaded, port=0, host="127.0.0.1", backends=backends, leader_identity=name).start()
    assert runtime.drift is not None
    runtime.drift.pace = 0.0
    return runtime


def test_only_the_leader_posts(
    tmp_path: Path, fake_slack: FakeSlack, cluster: tuple[FakeArgoCD, FakeKubernetes]
) -> None:
    argocd, k8s = cluster
    argocd.add_app("api-prod", health="Degraded")
    kubeconfig = k8s.write_kubeconfig(tmp_path / "kubeconfig")
    with ExitStack() as stack:
        replicas = [_replica(tmp_path, fake_slack, argocd, kubeconfig, f"bot-{i}") for i in range(2)]
        for replica in replicas:
            stack.callback(replica.stop)
        deadline = time.monotonic() + 10
        while not any(r.leadership.is_leader() for r in replicas if r.leadership):
            assert time.monotonic() < deadline, "nobody became leader"
            time.sleep(0.1)
        calls = [r.drift.run() for r in replicas for _ in range(3) if r.drift]
        leaders = [r for r in replicas if r.leadership and r.leadership.is_leader()]
        assert len(leaders) == 1
        posts = [c for c in fake_slack.recorded("chat.postMessage") if c.args.get("channel") == ALERTS]
        assert len(posts) == 1  # one incident, one post, from one replica
        assert sum(1 for c in calls if c) >= 1
