"""The deployment feed on Flux: the real bot watches the fake API server's Kustomizations and posts
each applied commit once, with its author and message from the deploy repository — through a cut
watch and an expired resourceVersion (410) alike."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import Runtime, build_runtime
from sandbox.flux_fake import FakeKubernetes
from sandbox.flux_git import commit_file, make_deploy_repo
from sandbox.slack_api import FakeSlack
from sandbox.slack_models import Message
from services.backend import GitOpsBackend
from services.flux import build_flux_backends
from services.git import RepoCache
from tests.conftest import config_for
from tests.sandbox_flux_support import KS, Flux, api_client, request_reconcile

FEED = "C0FEED"
MANIFEST = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: {replicas}\n"


class World:
    def __init__(
        self, runtime: Runtime, slack: FakeSlack, k8s: FakeKubernetes, work: Path, tmp: Path
    ) -> None:
        self.runtime, self.slack, self.k8s, self.work = runtime, slack, k8s, work
        self.flux = Flux(api_client(k8s, tmp))

    def push(self, replicas: int, message: str) -> str:
        """A commit, then `flux reconcile ks api --with-source` as someone at a terminal runs it."""
        sha = commit_file(self.work, "apps/prod/deployment.yaml", MANIFEST.format(replicas=replicas), message)
        self.k8s.fetch_sources()
        request_reconcile(self.flux, KS, "api", datetime.now(UTC).isoformat())
        return sha

    def posts(self) -> list[Message]:
        return [m for m in self.slack.messages(FEED) if m.thread_ts is None]

    def wait_posts(self, count: int, timeout: float = 20) -> list[Message]:
        self.slack.wait_for(lambda fake: len(self.posts()) >= count, timeout)
        return self.posts()

    def watching(self) -> None:
        deadline = time.monotonic() + 10
        while self.k8s.open_watches() < 2:  # Kustomizations and HelmReleases
            assert time.monotonic() < deadline, "the feed never opened its watches"
            time.sleep(0.05)


@pytest.fixture
def world(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[World]:
    bare, work = make_deploy_repo(
        tmp_path / "git", {"apps/prod/deployment.yaml": MANIFEST.format(replicas=2)}
    )
    k8s = FakeKubernetes(tick=0.02, reconcile_seconds=0.1).start()
    k8s.add_git_repository("deploy", url=f"file://{bare}")
    k8s.add_kustomization("api", path="./apps/prod", source="deploy")
    k8s.wait_idle()
    extra = f"""
flux:
  - name: prod
    kubeconfig: {k8s.write_kubeconfig(tmp_path / "kubeconfig")}
    context: sandbox
repositories:
  - name: deploy
    url: file://{bare}
    branch: main
git:
  cache_dir: {tmp_path / "cache"}
environments:
  - name: prod
apps:
  - name: api
    environments:
      prod: {{backend: flux, instance: prod, namespace: flux-system, name: api, repository: deploy,
             path: apps/prod}}
feed:
  channel: {FEED}
  pace: 0
"""
    loaded = config_for(tmp_path, fake_slack, extra_yaml=extra)
    repos = RepoCache(tmp_path / "cache", loaded.settings.repositories, loaded.secrets.git_credentials)
    flux = build_flux_backends(loaded.settings, loaded.secrets, repos, poll_interval=0.05)
    backends: dict[str, GitOpsBackend] = {f"flux:{name}": b for name, b in flux.items()}
    runtime = build_runtime(loaded, port=0, host="127.0.0.1", backends=backends).start()
    try:
        yield World(runtime, fake_slack, k8s, work, tmp_path)
    finally:
        runtime.stop()
        k8s.stop()


def test_a_reconcile_after_a_commit_posts_one_message_with_its_author(world: World) -> None:
    world.watching()
    sha = world.push(3, "Scale api to 3 replicas")
    (post,) = world.wait_posts(1)
    text = json.dumps(post.blocks, ensure_ascii=False)
    assert "*api* → *prod* deployed" in text
    assert sha[:8] in text
    assert "Scale api to 3 replicas" in text
    assert "Flux reconciliation" in text
    time.sleep(1.0)
    assert len(world.posts()) == 1


def test_a_cut_watch_and_an_expired_version_lose_and_double_nothing(world: World) -> None:
    world.watching()
    world.push(3, "first")
    world.wait_posts(1)
    world.k8s.cut_watches()
    world.push(4, "second")  # while the watch is down: resumed from its resourceVersion
    world.wait_posts(2)
    world.k8s.compact()
    world.k8s.cut_watches()
    world.push(5, "third")  # the resume gets 410 Expired: the feed lists again
    posts = world.wait_posts(3)
    time.sleep(1.0)
    assert len(world.posts()) == 3
    assert ["first" in json.dumps(p.blocks) for p in posts] == [True, False, False]
    assert "third" in json.dumps(posts[2].blocks)
