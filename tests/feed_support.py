"""The world the deployment feed tests run in: the real bot over HTTP with the fake Slack and the
fake Argo CD (its watch stream), `feed.channel` set, apps `api` (dev, prod) configured."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.app import Runtime
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from sandbox.slack_models import Message
from tests.conftest import config_for, start_on_argocd

FEED = "C0FEED"
DEPLOYS = "C0DEPLOYS"

CONFIG = """
argocd:
  - name: main
    url: {url}
    token_env: ARGOCD_TOKEN
environments:
  - name: dev
  - name: prod
apps:
  - name: api
    environments:
      dev: {{backend: argocd, name: api-dev}}
      prod: {{backend: argocd, name: api-prod}}
access:
  grants:
    - role: deployer
      users: [U0ALICE]
feed:
  channel: {feed}
  source: {source}
  list_interval: 5s
  pace: 0
{extra}"""


class FeedWorld:
    def __init__(self, tmp: Path, slack: FakeSlack, argocd: FakeArgoCD) -> None:
        self.tmp, self.slack, self.argocd = tmp, slack, argocd
        self.runtime: Runtime | None = None
        self.sender: SlackSender | None = None

    @contextmanager
    def bot(self, *, feed: str = FEED, source: str = "auto", extra: str = "") -> Iterator[FeedWorld]:
        text = CONFIG.format(url=self.argocd.base_url, feed=feed, source=source, extra=extra)
        loaded = config_for(self.tmp, self.slack, extra_yaml=text, extra_env={"ARGOCD_TOKEN": JWT_TOKEN})
        self.runtime, self.sender = start_on_argocd(loaded, self.slack)
        try:
            yield self
        finally:
            self.runtime.stop()

    def following(self, timeout: float = 10.0) -> None:
        """The feed has its stream open (or, listing, has read once)."""
        assert self.runtime is not None
        assert self.runtime.feed is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.argocd.open_streams() > 0 or not all(s.streaming for s in self.runtime.feed.sources):
                time.sleep(0.3)  # the snapshot replay is read before the test changes anything
                return
            time.sleep(0.05)
        raise AssertionError("the feed never opened its stream")

    def say(self, text: str, user: str = "U0ALICE", channel: str = DEPLOYS) -> None:
        assert self.sender is not None
        response = self.sender.slash(text, user_id=user, user_name=user.lower()[2:], channel_id=channel)
        assert response.status == 200

    def posts(self, channel: str = FEED) -> list[Message]:
        return [m for m in self.slack.messages(channel) if m.thread_ts is None]

    def wait_posts(self, count: int, channel: str = FEED, timeout: float = 20.0) -> list[Message]:
        self.slack.wait_for(lambda fake: len(self.posts(channel)) >= count, timeout)
        return self.posts(channel)

    def actions(self) -> list[str]:
        assert self.runtime is not None
        return [r.action for r in self.runtime.deps.audit.recent(limit=200)]

    def deployments(self) -> int:
        assert self.runtime is not None
        assert self.runtime.deps.feed is not None
        return self.runtime.deps.feed.count()


def text_of(message: Message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)
