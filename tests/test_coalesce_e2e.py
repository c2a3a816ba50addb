"""Coalescing as wired into the bot: every backend wrapped once, `operations.read_cache` honoured,
the counts on /metrics, and a chat transcript where two people's `status --all` cost one list."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.config import LoadedConfig, parse_config_text
from bot.wiring import Services, build_services
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from services.argocd import ArgoCDBackend
from services.argocd.client import NAME_FIELDS
from services.backend import GitOpsBackend
from services.coalesce import CoalescingBackend
from services.flux import FluxBackend
from services.jobs import JobRunner
from services.metrics import Metrics
from services.store.sqlite import SqliteDatabase
from tests.argocd_fixtures import backend_for
from tests.conftest import config_for, start_on_argocd

APPS = "/api/v1/applications"
CHANNEL = "C0DEPLOYS"


def lists(fake: FakeArgoCD) -> int:
    """Status lists the fake answered (not the name index app resolution keeps on its own)."""
    index = [",".join(NAME_FIELDS)]
    return len(
        [
            r
            for r in fake.requests(APPS)
            if r.path == APPS and r.method == "GET" and r.query.get("fields") != index
        ]
    )


@pytest.fixture
def fake() -> Iterator[FakeArgoCD]:
    server = FakeArgoCD(operation_seconds=0.2, tick=0.02).start()
    server.add_app("web")
    server.add_app("api-dev")
    try:
        yield server
    finally:
        server.stop()


def _loaded(tmp_path: Path, yaml: str = "") -> LoadedConfig:
    return parse_config_text(f"git: {{cache_dir: {tmp_path / 'git'}}}\n{yaml}", environ={})


@contextmanager
def _services(
    tmp_path: Path, metrics: Metrics, yaml: str = "", *, backends: Mapping[str, GitOpsBackend] | None = None
) -> Iterator[Services]:
    database = SqliteDatabase(tmp_path / "audit.db")
    try:
        yield build_services(_loaded(tmp_path, yaml), database, metrics, backends=backends)
    finally:
        database.close()


def test_backends_from_config_are_wrapped(tmp_path: Path) -> None:
    yaml = """
argocd: [{name: main, url: "https://argo.example.com", token_env: ARGOCD_TOKEN}]
flux: [{name: prod, in_cluster: true}]
"""
    with _services(tmp_path, Metrics(), yaml) as services:
        argo, flux = services.backends["argocd:main"], services.backends["flux:prod"]
        assert isinstance(argo, CoalescingBackend)
        assert isinstance(argo.inner, ArgoCDBackend)
        assert isinstance(flux, CoalescingBackend)
        assert isinstance(flux.inner, FluxBackend)
        assert services.ops.resolver.backends == [argo, flux]  # what every command goes through


def test_backends_handed_in_are_wrapped_once(tmp_path: Path, fake: FakeArgoCD) -> None:
    inner = backend_for(fake)
    already = CoalescingBackend(backend_for(fake), ttl=5)
    handed: dict[str, GitOpsBackend] = {"argocd:sandbox": inner, "argocd:other": already}
    with _services(tmp_path, Metrics(), backends=handed) as services:
        wrapped = services.backends["argocd:sandbox"]
        assert isinstance(wrapped, CoalescingBackend)
        assert wrapped.inner is inner
        assert services.backends["argocd:other"] is already


def test_status_lists_are_reused_and_counted_on_metrics(tmp_path: Path, fake: FakeArgoCD) -> None:
    metrics = Metrics()
    with _services(tmp_path, metrics, backends={"argocd:sandbox": backend_for(fake)}) as services:
        assert len(services.ops.overview().apps) == 2
        assert len(services.ops.overview().apps) == 2
    assert lists(fake) == 1
    labels = {"backend": "argocd:sandbox", "operation": "list_apps"}
    assert metrics.registry.get_sample_value("gitops_bot_coalesced_requests_total", labels) == 1


def test_read_cache_0s_asks_every_time(tmp_path: Path, fake: FakeArgoCD) -> None:
    yaml = "operations: {read_cache: 0s}\n"
    with _services(tmp_path, Metrics(), yaml, backends={"argocd:sandbox": backend_for(fake)}) as services:
        services.ops.overview()
        services.ops.overview()
    assert lists(fake) == 2


def test_the_job_queue_reports_how_long_each_job_waited() -> None:
    metrics = Metrics()
    jobs = JobRunner(workers=1, queue_limit=2, on_wait=metrics.observe_queue_wait)
    started, release = threading.Event(), threading.Event()

    def first() -> None:
        started.set()
        release.wait(5)

    assert jobs.submit(first, name="first")
    assert started.wait(5)
    assert jobs.submit(lambda: None, name="second")  # queued behind `first`
    time.sleep(0.3)
    release.set()
    assert jobs.close(timeout=5)
    sample = metrics.registry.get_sample_value
    assert sample("gitops_bot_job_queue_wait_seconds_count") == 2
    assert (sample("gitops_bot_job_queue_wait_seconds_sum") or 0) >= 0.3  # the second waited that long


def test_a_failing_wait_callback_never_stops_the_job() -> None:
    def broken(seconds: float) -> None:
        raise RuntimeError("metrics backend gone")

    jobs = JobRunner(workers=1, queue_limit=1, on_wait=broken)
    ran = threading.Event()
    assert jobs.submit(ran.set, name="job")
    assert ran.wait(5)
    assert jobs.close(timeout=5)


# -- a chat transcript -------------------------------------------------------------------------


@pytest.fixture
def chat(tmp_path: Path, fake_slack: FakeSlack, fake: FakeArgoCD) -> Iterator[tuple[SlackSender, int]]:
    yaml = f"""
argocd:
  - name: main
    url: {fake.base_url}
    token_env: ARGOCD_TOKEN
access:
  grants:
    - role: deployer
      users: [U0ALICE, U0BOB]
"""
    loaded = config_for(tmp_path, fake_slack, extra_yaml=yaml, extra_env={"ARGOCD_TOKEN": JWT_TOKEN})
    runtime, sender = start_on_argocd(loaded, fake_slack)
    try:
        yield sender, runtime.server.port
    finally:
        runtime.stop()


def _say(sender: SlackSender, text: str, user: str) -> None:
    sent = sender.slash(text, user_id=user, user_name=user.lower()[2:], channel_id=CHANNEL)
    assert sent.status == 200, sent.body


def _replies(slack: FakeSlack, user: str, needle: str, count: int) -> None:
    slack.wait_for(lambda f: sum(needle in m.text for m in f.ephemeral(user)) >= count, timeout=20)


def test_two_people_asking_for_every_app_cost_one_list_until_someone_syncs(
    chat: tuple[SlackSender, int], fake_slack: FakeSlack, fake: FakeArgoCD
) -> None:
    sender, port = chat
    _say(sender, "status --all", "U0ALICE")
    _replies(fake_slack, "U0ALICE", "2 apps", 1)
    _say(sender, "status --all", "U0BOB")
    _replies(fake_slack, "U0BOB", "2 apps", 1)
    assert lists(fake) == 1  # Bob's answer came from Alice's list

    fake.push_revision("web", replicas=3)
    _say(sender, "sync web", "U0ALICE")
    fake_slack.wait_for(lambda f: any("Succeeded" in m.text for m in f.messages(CHANNEL)), timeout=20)
    _say(sender, "status --all", "U0BOB")
    _replies(fake_slack, "U0BOB", "2 apps", 2)
    assert lists(fake) == 2  # the sync, and the end of its operation, made the cached list stale

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'gitops_bot_coalesced_requests_total{backend="argocd:main",operation="list_apps"} 1.0' in text
    assert "# TYPE gitops_bot_watches_active gauge" in text
    assert "# TYPE gitops_bot_job_queue_wait_seconds histogram" in text
