"""Drift alerts: one message per incident, updated, resolved in place, no repeats across restarts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from tests.drift_support import ALERTS, Drift, drift

__all__ = ["drift"]


def test_one_post_updated_then_resolved_with_a_thread_reply(drift: Drift) -> None:
    with drift.bot():
        drift.scan()
        assert drift.posts() == []  # all healthy: nothing to say
        drift.argocd.drift("app-00007", replicas=9)
        drift.scan()
        [card] = drift.top_level()
        assert "Live state changed outside Git" in card.text
        assert "app-00007" in card.text
        for _ in range(5):
            drift.scan()
        assert len(drift.posts()) == 1  # still one message
        drift.argocd.heal("app-00007")
        drift.scan()
        [card] = drift.top_level()
        assert card.text.startswith("Resolved")
        replies = [m for m in drift.slack.messages(ALERTS) if m.thread_ts == card.ts and m.ts != card.ts]
        assert any("Resolved after" in m.text for m in replies)


def test_restart_neither_reposts_nor_loses_the_thread(drift: Drift) -> None:
    drift.argocd.set_health("app-00003", "Degraded", "CrashLoopBackOff")
    with drift.bot():
        drift.scan()
        assert len(drift.posts()) == 1
    with drift.bot():
        drift.scan()
        assert len(drift.posts()) == 1
        drift.argocd.set_health("app-00003", "Healthy")
        drift.scan()
        [card] = drift.top_level()
        replies = [m for m in drift.slack.messages(ALERTS) if m.thread_ts == card.ts and m.ts != card.ts]
        assert replies  # the resolution landed in the original thread after the restart


def test_a_storm_becomes_one_digest(drift: Drift) -> None:
    with drift.bot():
        for i in range(50):
            drift.argocd.set_health(f"app-{i:05d}", "Degraded", "boom")
        drift.scan()
        [digest] = drift.posts()
        assert "50 new drift incidents" in str(digest.args.get("text"))  # type: ignore[attr-defined]


def test_backend_down_marks_nothing_resolved_and_is_announced_once(drift: Drift) -> None:
    with drift.bot():
        drift.argocd.set_health("app-00001", "Degraded", "boom")
        drift.scan()
        drift.argocd.go_down()
        try:
            drift.scan()
            drift.scan()
        finally:
            drift.argocd.come_up()
        texts = [m.text for m in drift.slack.messages(ALERTS)]
        assert sum("not answering" in t for t in texts) == 1
        assert not any(t.startswith("Resolved") for t in texts)
        drift.scan()
        assert any("answers again" in m.text for m in drift.slack.messages(ALERTS))


def test_slack_rate_limit_is_retried_after_retry_after(drift: Drift) -> None:
    with drift.bot():
        drift.argocd.set_health("app-00002", "Degraded", "boom")
        drift.slack.fail_next("chat.postMessage", status=429, retry_after=0)
        drift.scan()
        statuses = [c.status for c in drift.slack.recorded("chat.postMessage")]
        assert statuses[:2] == [429, 200]
        assert len(drift.top_level()) == 1


def test_the_real_scheduler_runs_the_scan(drift: Drift) -> None:
    with drift.bot() as runtime:
        drift.argocd.set_health("app-00004", "Degraded", "boom")
        job = runtime.scheduler.get_job("drift-scan")
        assert job is not None
        job.modify(next_run_time=datetime.now(UTC))
        drift.slack.wait_for(lambda f: any("app-00004" in m.text for m in f.messages(ALERTS)), timeout=15)


def test_drift_command_lists_open_incidents_and_buttons_work(drift: Drift) -> None:
    from sandbox.slack_client import SlackSender
    from tests.conftest import SIGNING_SECRET

    with drift.bot() as runtime:
        drift.argocd.drift("app-00005", replicas=4)
        drift.scan()
        sender = SlackSender(
            f"http://127.0.0.1:{runtime.server.port}/slack/events", SIGNING_SECRET, drift.slack
        )
        sender.slash("drift", user_id="U0ALICE")
        drift.slack.wait_for(
            lambda f: any("app-00005" in m.text + json.dumps(m.blocks) for m in f.ephemeral("U0ALICE"))
        )
        [card] = drift.top_level()
        sender.click(card, "drift_ack", user_id="U0BOB")
        drift.slack.wait_for(
            lambda f: "Acknowledged by" in json.dumps(f.messages(ALERTS)[0].blocks), timeout=10
        )
        sender.click(drift.top_level()[0], "drift_snooze_1h", user_id="U0BOB")
        drift.slack.wait_for(lambda f: "Snoozed" in json.dumps(f.messages(ALERTS)[0].blocks), timeout=20)
        deadline = time.monotonic() + 20  # the audit row is written just after the card is edited
        while not {"drift_ack", "drift_snooze_1h"} <= {r.action for r in runtime.deps.audit.recent(limit=10)}:
            assert time.monotonic() < deadline, "button clicks were not audited"
            time.sleep(0.05)
