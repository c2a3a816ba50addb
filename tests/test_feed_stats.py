"""`/gitops stats` and the weekly digest over a fixture history whose figures are worked out by hand:
the figures in the message, one PNG chart uploaded in its thread, and /metrics."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from handlers.feed.stats import post_digest
from sandbox.argocd_fake import FakeArgoCD
from sandbox.slack_api import FakeSlack
from services.backend import AppRef
from services.feed.model import CommitInfo, Cursor, Deploy
from services.feed.store import FeedStore
from tests.feed_support import DEPLOYS, FEED, FeedWorld, text_of

PNG = b"\x89PNG\r\n\x1a\n"
REF = AppRef("argocd", "main", "api-prod")


def _deploy(n: int, finished: datetime, result: str = "succeeded") -> Deploy:
    return Deploy(
        key="argocd:main/-/api-prod", ref=REF, deploy_id=f"op-{n}", result=result,  # type: ignore[arg-type]
        old_revision=None, new_revision=f"{n:040x}", old_images=(), new_images=(), old_chart=None,
        new_chart=None, started_at=finished - timedelta(minutes=2), finished_at=finished, initiated_by=None,
        automated=True, message="",
    )  # fmt: skip


def record_history(store: FeedStore, now: datetime) -> None:
    """api/prod over the last week, failure window 1h, worked out by hand:
    d1 now-6d (commit 2h before), d2 now-4d (commit 4h before), f3 now-4d+30m failed, d4 now-4d+90m
    (commit now-4d-4h: 5h30m), d5 now-1d (commit 6h before).
    → 4 succeeded deploys in 7 days (0.6/day); lead times 2h, 4h, 5h30m, 6h → median 4h45m; d2 is a
    failed change (f3 within the hour) → 1 of 4 = 25%; restore f3 → d4 = 1h00m."""
    day = timedelta(days=1)
    rows = [
        (_deploy(1, now - 6 * day), now - 6 * day - timedelta(hours=2)),
        (_deploy(2, now - 4 * day), now - 4 * day - timedelta(hours=4)),
        (_deploy(3, now - 4 * day + timedelta(minutes=30), "failed"), None),
        (_deploy(4, now - 4 * day + timedelta(minutes=90)), now - 4 * day - timedelta(hours=4)),
        (_deploy(5, now - day), now - day - timedelta(hours=6)),
    ]
    for deploy, commit_time in rows:
        commit = CommitInfo(author="Dana", date=commit_time, message="change") if commit_time else None
        cursor = Cursor(deploy.key, deploy.deploy_id, deploy.new_revision)
        claimed = store.claim(deploy, cursor, app="api", env="prod", target="argocd main/api-prod",
                              commit=commit, bot=None, state="posted", now=now)  # fmt: skip
        assert claimed is not None


def test_stats_answers_with_the_four_keys_and_one_chart(tmp_path: Path, fake_slack: FakeSlack) -> None:
    with FakeArgoCD().start() as argocd:
        argocd.add_app("api-dev")
        argocd.add_app("api-prod")
        world = FeedWorld(tmp_path, fake_slack, argocd)
        with world.bot() as w:
            assert w.runtime is not None
            assert w.runtime.deps.feed is not None
            # The feed's first look at api-prod is a baseline only while it has no cursor for it: the
            # history written first would make the fake's own last sync look like a deploy just done
            # (5 deploys, one more post) whenever the bot was slow to open its stream.
            w.following()
            record_history(w.runtime.deps.feed, datetime.now(UTC))
            w.say("stats api --env prod --since 7d")
            (card,) = w.wait_posts(1, channel=DEPLOYS)
            text = text_of(card)
            assert "4 deploys, 4.0/week" in text
            assert "4h45m median" in text  # lead time
            assert "25% (1 of 4)" in text  # change failure rate
            assert "1h00m median" in text  # time to restore
            assert "Accelerate State of DevOps Report 2024" in text
            fake_slack.wait_for(lambda fake: len(fake.files()) == 1, 20)
            (chart,) = fake_slack.files()
            assert chart.content.startswith(PNG)
            time.sleep(0.5)
            assert len(fake_slack.files()) == 1  # uploaded once
            assert post_digest(w.runtime.deps, w.runtime.app.client, leadership=w.runtime.leadership)  # type: ignore[arg-type]
            (digest,) = w.wait_posts(1, channel=FEED)
            assert "Weekly delivery digest" in text_of(digest)
            fake_slack.wait_for(lambda fake: len(fake.files()) == 2, 20)


def test_stats_for_an_unknown_app_suggests_the_nearest(tmp_path: Path, fake_slack: FakeSlack) -> None:
    with FakeArgoCD().start() as argocd:
        argocd.add_app("api-dev")
        world = FeedWorld(tmp_path, fake_slack, argocd)
        with world.bot() as w:
            w.say("stats apx")
            answered = lambda fake: [m for m in fake.ephemeral("U0ALICE") if "Working on" not in m.text]  # noqa: E731
            fake_slack.wait_for(lambda fake: bool(answered(fake)), 10)
            shown = " ".join(m.text + text_of(m) for m in answered(fake_slack))
            assert "apx" in shown
            assert "`api`" in shown  # the nearest name


def test_the_weekly_digest_is_scheduled_in_its_time_zone(tmp_path: Path, fake_slack: FakeSlack) -> None:
    from zoneinfo import ZoneInfo

    with FakeArgoCD().start() as argocd:
        argocd.add_app("api-dev")
        world = FeedWorld(tmp_path, fake_slack, argocd)
        with world.bot(extra='  digest: "mon 09:00 Europe/Berlin"') as w:
            assert w.runtime is not None
            job = w.runtime.scheduler.get_job("feed-digest")
            assert job is not None
            upcoming = job.next_run_time.astimezone(ZoneInfo("Europe/Berlin"))
            assert (upcoming.weekday(), upcoming.hour, upcoming.minute) == (0, 9, 0)


def test_a_bad_period_is_refused_and_changes_nothing(tmp_path: Path, fake_slack: FakeSlack) -> None:
    with FakeArgoCD().start() as argocd:
        argocd.add_app("api-dev")
        world = FeedWorld(tmp_path, fake_slack, argocd)
        with world.bot() as w:
            w.say("stats --since 400d")
            refused = lambda fake: [m for m in fake.ephemeral("U0ALICE") if "400d" in m.text + text_of(m)]  # noqa: E731
            fake_slack.wait_for(lambda fake: bool(refused(fake)), 10)
            assert "366 days" in " ".join(m.text + text_of(m) for m in refused(fake_slack))
            assert w.posts(DEPLOYS) == []  # no figures posted
            assert fake_slack.files() == []
            assert w.deployments() == 0
