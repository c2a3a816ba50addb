"""The feed job: follow every backend (leader only), turn snapshots into deploys, post each once.

A supervisor tick (scheduled every few seconds) starts one thread per source while this replica
leads and stops them when it does not. Sources hand snapshots to `_emit`, which compares each with
the app's cursor (kept in memory, loaded from the database when following starts) and queues the
deploys. One worker enriches a deploy (the commit, the bot's own request behind it, the app and
environment), claims it in the database together with the cursor (never twice, across restarts and
leaders), audits it (`deploy.completed`, so notifiers get it) and counts it in /metrics; a poster
thread per channel posts it, paced, so a busy channel never holds up the others.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.blocks import Reply
from handlers.deps import Deps
from handlers.feed.views import FeedEntry, entry_card, linked_card, started_by
from handlers.posting import PacedPoster
from services.audit.trail import AuditEvent
from services.errors import GitOpsBotError
from services.extensions.events import BOT_USER
from services.feed.detect import detect
from services.feed.model import Cursor, Deploy, Snapshot
from services.feed.sources import FeedSource
from services.feed.store import (
    STATE_LINKED,
    STATE_POSTED,
    STATE_POSTING,
    STATE_UNPOSTED,
    BotDeploy,
    FeedStore,
    version_text,
)
from services.leader.election import Leadership
from services.revisions import short_revision
from services.settings.routes import route_channel

log = logging.getLogger(__name__)
STOP_JOIN_SECONDS = 2.0


@dataclass
class _Found:
    source: FeedSource
    previous: Cursor
    snap: Snapshot
    deploy: Deploy
    cursor: Cursor
    seen: float  # monotonic time the event arrived (post latency is measured from here)


@dataclass
class FeedJob:
    deps: Deps
    client: WebClient
    store: FeedStore
    leadership: Leadership
    sources: Sequence[FeedSource]
    sleep: Callable[[float], None] = time.sleep
    on_posted: Callable[[Deploy, float], None] | None = None  # (deploy, seconds from event to post): bench
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _cursors: dict[str, Cursor] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # start() (a scheduler tick) and stop() (the runtime's, or a lost lease) never interleave.
    _life: threading.Lock = field(default_factory=threading.Lock)
    _found: queue.Queue[_Found | None] = field(default_factory=queue.Queue)
    _channels: dict[str, queue.Queue[tuple[int, Reply, Deploy, float] | None]] = field(default_factory=dict)
    _poster: PacedPoster = field(init=False)

    def __post_init__(self) -> None:
        self._poster = PacedPoster(
            self.client, pace=self.deps.settings.feed.pace, sleep=self.sleep, what="feed"
        )

    @property
    def following(self) -> bool:
        return bool(self._threads)

    def tick(self) -> None:
        """Follow while leading; stop when not (another replica takes over from the stored cursors)."""
        leading = self.leadership.is_leader()
        if leading and not self.following and self.sources:
            self.start()
        elif not leading and self.following:
            log.info("feed: not the leader any more; stopping")
            self.stop()

    def start(self) -> None:
        with self._life:
            self._start()

    def _start(self) -> None:
        self._stop = threading.Event()
        self._found = queue.Queue()
        with self._lock:
            self._cursors = self.store.cursors()
        worker = threading.Thread(target=self._work, name="feed-worker", daemon=True)
        self._threads = [worker]
        worker.start()
        for source in self.sources:
            thread = threading.Thread(
                target=source.run, args=(self._stop, lambda snaps, s=source: self._emit(s, snaps)),
                name=f"feed-{source.name}", daemon=True,
            )  # fmt: skip
            self._threads.append(thread)
            thread.start()
        log.info("feed: following", extra={"sources": [s.name for s in self.sources]})

    def stop(self) -> None:
        with self._life:
            self._halt()

    def _halt(self) -> None:
        self._stop.set()
        self._found.put(None)
        for channel in list(self._channels.values()):
            channel.put(None)
        deadline = time.monotonic() + STOP_JOIN_SECONDS
        for thread in self._threads:  # a source blocked on a read ends at its next event; daemon
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads = []
        self._channels = {}

    # -- snapshots → deploys -------------------------------------------------------------------

    def _emit(self, source: FeedSource, snaps: Sequence[Snapshot]) -> None:
        baseline: list[Cursor] = []
        now = time.monotonic()
        with self._lock:
            for snap in snaps:
                previous = self._cursors.get(snap.key)
                deploy, cursor = detect(previous, snap)
                if cursor is None:
                    continue
                self._cursors[snap.key] = cursor
                if deploy is not None and previous is not None:
                    self._found.put(_Found(source, previous, snap, deploy, cursor, now))
                else:
                    baseline.append(cursor)
        if baseline:
            try:
                self.store.save_cursors(baseline, now=self.deps.clock())
            except GitOpsBotError:
                log.warning("feed: cursors not saved")  # the next snapshot of the app tries again

    def _work(self) -> None:
        while True:
            found = self._found.get()
            if found is None or self._stop.is_set():
                return
            try:
                self._handle(found)
            except Exception:  # one bad deploy must not stop the feed
                log.exception("feed: deploy not handled", extra={"app": found.deploy.key})

    def _handle(self, found: _Found) -> None:
        deploy, source = found.deploy, found.source
        if not source.streaming:
            refined, cursor = detect(found.previous, source.refine(found.snap))
            if refined is not None and cursor is not None:
                deploy = refined
        ops = self.deps.ops
        env, app = ops.resolver.scope_of(deploy.ref) if ops is not None else (None, None)
        now = self.deps.clock()
        bot = self.store.bot_deploy(
            deploy.key, started_at=deploy.started_at, finished_at=deploy.finished_at, now=now
        )
        commit = source.commit(deploy.ref, deploy.new_revision) if deploy.result == "succeeded" else None
        entry = FeedEntry(deploy, app or deploy.ref.name, env or "", _target(deploy), commit, bot)
        channel = self._route(entry)
        linked = bot is not None and bool(bot.message_ts) and bot.channel == channel
        state = STATE_LINKED if linked else STATE_POSTING if channel else STATE_UNPOSTED
        deployment_id = self.store.claim(
            deploy, found.cursor, app=entry.app, env=entry.env, target=entry.target, commit=commit, bot=bot,
            state=state, now=now,
        )  # fmt: skip
        if deployment_id is None:
            return  # recorded before (a restart, another leader): never twice
        self._account(entry, now)
        if channel is None or linked:
            return
        reply = linked_card(entry, self._permalink(bot)) if bot is not None else entry_card(entry, now=now)
        self._post(channel, deployment_id, reply, deploy, found.seen)

    def _account(self, entry: FeedEntry, now: datetime) -> None:
        deploy = entry.deploy
        lead = None
        if entry.commit and entry.commit.date and deploy.finished_at:
            lead = (deploy.finished_at - entry.commit.date).total_seconds()
        self.deps.metrics.observe_deploy(entry.app, entry.env or "-", deploy.result, lead)
        target = f"{entry.app}/{entry.env}" if entry.env else entry.app
        detail = (
            f"{deploy.result} {short_revision(deploy.old_revision or '-')} → "
            f"{short_revision(deploy.new_revision or '-')}; version {_version(deploy, old=True)} → "
            f"{_version(deploy, old=False)}; started by {_plain(started_by(entry))}"
        )
        event = AuditEvent(
            user_id=BOT_USER, user_name=BOT_USER, channel="", command="", target=target,
            action="deploy.completed", outcome="ok" if deploy.result == "succeeded" else "failed",
            detail=detail,
        )  # fmt: skip
        try:
            self.deps.audit.append(event)
        except GitOpsBotError:
            log.error("feed: audit row not written", extra={"app": target})

    def _route(self, entry: FeedEntry) -> str | None:
        feed = self.deps.settings.feed
        labels = (f"{k}={v}" for k, v in entry.deploy.labels)
        return route_channel(feed.routes, feed.channel, env=entry.env or None,
                             names=(entry.app, entry.deploy.ref.name), labels=labels)  # fmt: skip

    def _permalink(self, bot: BotDeploy) -> str | None:
        if not bot.channel or not bot.message_ts:
            return None
        try:
            return str(
                self.client.chat_getPermalink(channel=bot.channel, message_ts=bot.message_ts)["permalink"]
            )
        except (SlackApiError, KeyError):
            return None

    # -- posting, one paced thread per channel ---------------------------------------------------

    def _post(self, channel: str, deployment_id: int, reply: Reply, deploy: Deploy, seen: float) -> None:
        with self._lock:
            lane = self._channels.get(channel)
            if lane is None:
                lane = self._channels[channel] = queue.Queue()
                thread = threading.Thread(target=self._lane, args=(channel, lane), daemon=True,
                                          name=f"feed-post-{channel}")  # fmt: skip
                self._threads.append(thread)
                thread.start()
        lane.put((deployment_id, reply, deploy, seen))

    def _lane(self, channel: str, lane: queue.Queue[tuple[int, Reply, Deploy, float] | None]) -> None:
        while True:
            item = lane.get()
            if item is None:
                return
            deployment_id, reply, deploy, seen = item
            ts = self._poster.post(channel, reply)
            try:
                self.store.posted(
                    deployment_id, state=STATE_POSTED if ts else STATE_UNPOSTED, channel=channel, ts=ts
                )
            except GitOpsBotError:
                log.warning("feed: post not recorded", extra={"channel": channel})
            if ts and self.on_posted is not None:
                self.on_posted(deploy, time.monotonic() - seen)


def _target(deploy: Deploy) -> str:
    label = "argocd" if deploy.ref.backend == "argocd" else "flux"
    return f"{label} {deploy.ref.display}"


def _version(deploy: Deploy, *, old: bool) -> str:
    if old:
        return version_text(deploy.old_images, deploy.old_chart) or "-"
    return version_text(deploy.new_images, deploy.new_chart) or "-"


def _plain(text: str) -> str:
    """Slack markup out of an audit detail: `<@U1> through gitops-bot` → `U1 through gitops-bot`."""
    return text.replace("<@", "").replace(">", "").replace("`", "")
