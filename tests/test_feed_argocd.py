"""The deployment feed on Argo CD: the real bot follows the fake Argo CD's watch stream and posts
every deploy once — an auto-sync after a push, a sync from the UI, a failed sync — never one the bot
started itself a second time, and nothing lost or doubled across a cut stream or a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.argocd_fake import FakeArgoCD
from sandbox.slack_api import FakeSlack
from tests.feed_support import DEPLOYS, FeedWorld, text_of


@pytest.fixture
def argocd() -> Iterator[FakeArgoCD]:
    fake = FakeArgoCD(operation_seconds=0.2, tick=0.02, keepalive_seconds=0.5).start()
    fake.add_app("api-dev", auto_sync=True, images=("registry.example.com/api:1.4.2",))
    fake.add_app("api-prod", images=("registry.example.com/api:1.4.1",))
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def world(tmp_path: Path, fake_slack: FakeSlack, argocd: FakeArgoCD) -> FeedWorld:
    return FeedWorld(tmp_path, fake_slack, argocd)


def test_an_auto_sync_deploy_is_posted_once_with_its_author_and_versions(world: FeedWorld) -> None:
    with world.bot() as w:
        w.following()
        sha = w.argocd.push_revision(
            "api-dev",
            image="registry.example.com/api:1.4.3",
            message="Bump api to 1.4.3\n\nCloses #12",
            author="Dana <dana@example.com>",
        )
        (post,) = w.wait_posts(1)
        text = text_of(post)
        assert "*api* → *dev* deployed" in text
        assert sha[:7] in text
        assert "1.4.2" in text
        assert "*1.4.3*" in text
        assert "Bump api to 1.4.3" in text
        assert "Dana" in text
        assert "auto-sync" in text
        time.sleep(1.0)
        assert len(w.posts()) == 1  # the later MODIFIED events of the same deploy add nothing
        assert "deploy.completed" in w.actions()
        assert w.deployments() == 1
        assert w.runtime is not None
        exported = w.runtime.deps.metrics.render().decode()
        assert 'gitops_bot_deployments_total{app="api",env="dev",result="succeeded"} 1.0' in exported
        assert 'gitops_bot_lead_time_seconds_count{app="api",env="dev"} 1.0' in exported


def test_nothing_is_posted_for_what_was_deployed_before_the_feed_started(world: FeedWorld) -> None:
    with world.bot() as w:
        w.following()
        time.sleep(0.5)
        assert w.posts() == []  # the snapshot is a baseline, not news


def test_a_sync_the_bot_started_is_not_posted_twice(world: FeedWorld) -> None:
    with world.bot(feed=DEPLOYS) as w:  # the feed channel is where the command's card is
        w.following()
        w.argocd.push_revision("api-prod", image="registry.example.com/api:1.4.3")
        w.say("sync api prod")
        w.slack.wait_for(lambda fake: any("Succeeded" in text_of(m) for m in w.posts(DEPLOYS)), 20)
        deadline = time.monotonic() + 10
        while w.deployments() < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        assert w.deployments() == 1  # recorded for the figures …
        cards = w.posts(DEPLOYS)
        assert len(cards) == 1  # … but the sync's own card is its announcement
        assert "deployed" not in cards[0].text


def test_a_bot_started_sync_elsewhere_is_one_line_linking_its_card(world: FeedWorld) -> None:
    with world.bot() as w:
        w.following()
        w.argocd.push_revision("api-prod", image="registry.example.com/api:1.4.3")
        w.say("sync api prod")
        (line,) = w.wait_posts(1)
        text = text_of(line)
        assert "<@U0ALICE> through gitops-bot" in text
        assert "the request" in text  # the permalink to the card in #deploys
        time.sleep(0.5)
        assert len(w.posts()) == 1


def test_a_failed_sync_is_posted_as_failed(world: FeedWorld) -> None:
    with world.bot() as w:
        w.following()
        w.argocd.fail_next_sync("api-dev")
        w.argocd.push_revision("api-dev", image="registry.example.com/api:1.4.4")
        (post,) = w.wait_posts(1)
        assert "Deploy of *api* → *dev* failed" in text_of(post)
        assert "Why" in text_of(post)


def test_a_stream_cut_mid_deploy_loses_and_doubles_nothing(world: FeedWorld) -> None:
    with world.bot() as w:
        w.following()
        w.argocd.push_revision("api-dev", image="registry.example.com/api:1.4.3")
        w.argocd.cut_streams(abrupt=True)  # mid-deploy: the bot reconnects and replays the snapshot
        (post,) = w.wait_posts(1)
        assert "1.4.3" in text_of(post)
        w.following()
        w.argocd.cut_streams()
        w.following()
        time.sleep(1.0)
        assert len(w.posts()) == 1


def test_a_restart_resumes_from_the_stored_cursors(world: FeedWorld) -> None:
    with world.bot() as w:
        w.following()
        w.argocd.push_revision("api-dev", image="registry.example.com/api:1.4.3")
        w.wait_posts(1)
    world.argocd.push_revision("api-dev", image="registry.example.com/api:1.4.4")  # while the bot is down
    time.sleep(1.5)
    with world.bot() as w:
        posts = w.wait_posts(2)
        time.sleep(1.0)
        posts = w.posts()
        assert len(posts) == 2  # the one missed while down, and the first one not again
        assert "1.4.4" in text_of(posts[1])


def test_without_a_stream_the_feed_lists_instead(world: FeedWorld) -> None:
    world.argocd.refuse_streams()
    with world.bot() as w:
        w.following()
        w.argocd.push_revision("api-dev", image="registry.example.com/api:1.4.3")
        (post,) = w.wait_posts(1, timeout=30)
        assert "auto-sync" in text_of(post)  # the list has no initiatedBy: the deploy was read again


def test_two_replicas_leading_at_once_for_a_moment_post_each_deploy_once(
    tmp_path: Path, fake_slack: FakeSlack, argocd: FakeArgoCD
) -> None:
    """A leader handover overlaps (the old leader has not noticed yet): both follow the same stream
    over one database; the deploy row is claimed once, so one message."""
    first, second = FeedWorld(tmp_path, fake_slack, argocd), FeedWorld(tmp_path, fake_slack, argocd)
    with first.bot(), second.bot():
        deadline = time.monotonic() + 10
        while argocd.open_streams() < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        argocd.push_revision("api-dev", image="registry.example.com/api:1.4.3")
        (post,) = first.wait_posts(1)
        assert "1.4.3" in text_of(post)
        time.sleep(1.5)
        assert len(first.posts()) == 1
