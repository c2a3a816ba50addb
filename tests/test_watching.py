"""Watching is not working: long syncs are followed by the watcher, not by worker threads.

With four workers and more long syncs running than workers, a `status` still answers at once; an
Argo CD outage while 20 syncs are followed ends with every message telling the truth.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.slack_api import FakeSlack
from tests.conftest import config_for, start_on_argocd
from tests.test_argocd_commands import CHANNEL, Bot

GRANTS = """
argocd:
  - name: main
    url: {url}
    token_env: ARGOCD_TOKEN
    timeouts: {{connect: 1, read: 2}}
operations:
  sync_timeout: {timeout}
access:
  grants:
    - role: deployer
      users: [U0ALICE]
  rate_limit: {{commands: 100, per: 1m}}
"""


@contextmanager
def _bot(tmp_path: Path, fake_slack: FakeSlack, argocd: FakeArgoCD, *, timeout: str = "60s") -> Iterator[Bot]:
    loaded = config_for(
        tmp_path,
        fake_slack,
        extra_yaml=GRANTS.format(url=argocd.base_url, timeout=timeout),
        extra_env={"ARGOCD_TOKEN": JWT_TOKEN},
    )
    runtime, sender = start_on_argocd(loaded, fake_slack, poll_interval=0.1)
    try:
        yield Bot(runtime, sender, fake_slack, argocd)
    finally:
        runtime.stop()


@pytest.fixture
def slow_syncs() -> Iterator[FakeArgoCD]:
    fake = FakeArgoCD(operation_seconds=30, tick=0.05).start()
    fake.bulk_add(8, prefix="app-")
    try:
        yield fake
    finally:
        fake.stop()


def _cards(bot: Bot, needle: str) -> list[str]:
    return [m.text + json.dumps(m.blocks) for m in bot.slack.messages(CHANNEL) if needle in m.text]


def test_a_long_sync_does_not_delay_a_status(
    tmp_path: Path, fake_slack: FakeSlack, slow_syncs: FakeArgoCD
) -> None:
    with _bot(tmp_path, fake_slack, slow_syncs) as bot:
        for i in range(6):  # more 30 s syncs than the four workers
            bot.say(f"sync app-{i:05d}")
        bot.slack.wait_for(lambda f: len(_cards(bot, "Running")) >= 6, timeout=20)
        deadline = time.monotonic() + 5  # the last job returns right after posting its card
        while bot.runtime.deps.jobs.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bot.runtime.deps.jobs.active == 0  # no worker is held by a running sync
        assert bot.runtime.deps.ops is not None
        assert bot.runtime.deps.ops.watcher.active == 6
        asked = time.monotonic()
        bot.say("status app-00007")
        bot.wait_ephemeral("Healthy", timeout=5)
        assert time.monotonic() - asked < 3  # answered now, not after a sync ends
        workers = [t for t in threading.enumerate() if t.name.startswith("gitops-job")]
        assert len(workers) <= 4


@pytest.fixture
def twenty() -> Iterator[FakeArgoCD]:
    fake = FakeArgoCD(operation_seconds=2.5, tick=0.05).start()
    fake.bulk_add(20, prefix="app-")
    try:
        yield fake
    finally:
        fake.stop()


def _start_twenty(bot: Bot) -> None:
    for i in range(20):
        bot.say(f"sync app-{i:05d}")
    bot.slack.wait_for(lambda f: len(_cards(bot, "Sync app-")) >= 20, timeout=30)


def test_an_outage_during_twenty_watched_syncs_ends_with_every_message_true(
    tmp_path: Path, fake_slack: FakeSlack, twenty: FakeArgoCD
) -> None:
    with _bot(tmp_path, fake_slack, twenty) as bot:
        _start_twenty(bot)
        twenty.go_down()  # Argo CD stops answering while every sync is being followed
        time.sleep(4)  # the operations finish meanwhile, unseen
        assert not _cards(bot, "Succeeded")  # nothing is reported finished that was not seen to finish
        twenty.come_up()
        bot.slack.wait_for(lambda f: len(_cards(bot, "Succeeded")) >= 20, timeout=40)
        assert not _cards(bot, "Failed")
        rows = [r for r in bot.runtime.deps.audit.recent(limit=80) if r.action == "sync"]
        assert sorted({r.outcome for r in rows}) == ["ok", "started"]
        assert sum(r.outcome == "ok" for r in rows) == 20


def test_an_outage_longer_than_the_sync_timeout_says_the_operation_goes_on(
    tmp_path: Path, fake_slack: FakeSlack, twenty: FakeArgoCD
) -> None:
    with _bot(tmp_path, fake_slack, twenty, timeout="3s") as bot:
        _start_twenty(bot)
        twenty.go_down()
        bot.slack.wait_for(lambda f: len(_cards(bot, "Sync app-")) >= 20 and all(
            "Stopped following" in c for c in _cards(bot, "Sync app-")), timeout=40)  # fmt: skip
        assert not _cards(bot, "Succeeded")
        shown = _cards(bot, "Sync app-")[0]
        assert "`/gitops status main/app-" in shown
        twenty.come_up()
        rows = [r for r in bot.runtime.deps.audit.recent(limit=80) if r.action == "sync"]
        assert sum(r.outcome == "unknown" for r in rows) == 20  # not "ok", not "failed": we do not know
