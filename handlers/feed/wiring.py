"""Building the feed job for the app factory: its sources, and the hook that notes the bot's own deploys."""

from __future__ import annotations

from slack_sdk import WebClient

from handlers.deps import Deps
from handlers.feed.claims import recorder
from handlers.feed.job import FeedJob
from services.feed.sources import build_sources
from services.leader.election import Leadership
from services.operations import GitOpsService

__all__ = ["FeedJob", "build_feed"]


def build_feed(deps: Deps, client: WebClient, leadership: Leadership, ops: GitOpsService) -> FeedJob | None:
    """None when `feed:` has nowhere to post (it is off) or no backend can be followed."""
    settings = deps.settings.feed
    if not settings.on or deps.feed is None:
        return None
    sources = build_sources(
        ops.resolver.backends, mode=settings.source, list_interval=settings.list_interval.total_seconds()
    )
    if not sources:
        return None
    ops.on_started = recorder(deps, deps.feed, sources)
    return FeedJob(deps, client, deps.feed, leadership, sources)
