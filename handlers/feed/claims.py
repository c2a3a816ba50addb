"""Noting the deploys the bot starts, so the feed links the request's message instead of
announcing the deploy a second time (GitOpsService.on_started → here)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

from handlers.deps import Deps
from services.backend import AppRef
from services.correlation import current_correlation_id
from services.feed.sources import FeedSource
from services.feed.store import FeedStore


def recorder(
    deps: Deps, store: FeedStore, sources: Sequence[FeedSource]
) -> Callable[[AppRef, str | None], None]:
    by_name = {s.name: s for s in sources}

    def started(ref: AppRef, initiated_by: str | None) -> None:
        source = by_name.get(f"{ref.backend}:{ref.instance}")
        if source is None:
            return
        correlation = current_correlation_id()
        request = deps.inflight.get(correlation) if deps.inflight is not None and correlation != "-" else None
        store.bot_started(
            source.key(ref),
            correlation_id=correlation if request is not None else f"bot-{secrets.token_hex(4)}",
            user_id=request.user_id if request is not None else (initiated_by or "unknown"),
            at=deps.clock(),
            channel=request.message_channel if request is not None else None,
            message_ts=request.message_ts if request is not None else None,
        )

    return started
