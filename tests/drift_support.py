"""The drift-alert harness: the real bot (scheduler, drift job, SQLite) against the fake Argo CD and
the fake Slack, with an optional injected clock for the bot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import Runtime, build_runtime
from sandbox.argocd_fake import JWT_TOKEN, FakeArgoCD
from sandbox.slack_api import FakeSlack
from services.argocd import build_argocd_backends
from services.backend import GitOpsBackend
from tests.conftest import config_for

ALERTS = "C0ALERTS"


class Clock:
    """The bot's clock, moved by the test (the fake Argo CD keeps real time)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Drift:
    def __init__(self, tmp: Path, slack: FakeSlack) -> None:
        self.tmp, self.slack = tmp, slack
        self.argocd = FakeArgoCD(operation_seconds=0.1, tick=0.02).start()
        self.argocd.bulk_add(60, prefix="app-")
        self.runtime: Runtime | None = None

    @contextmanager
    def bot(
        self, *, drift_yaml: str = "", clock: Clock | None = None, extra_yaml: str = ""
    ) -> Iterator[Runtime]:
        """`drift_yaml`: more `drift:` keys, indented two spaces (they override the defaults here);
        `extra_yaml`: more top-level sections (e.g. `access:`)."""
        settings = {"interval": "10s", "digest_threshold": "10"}
        for line in drift_yaml.strip().splitlines():
            key, _, value = line.strip().partition(":")
            settings[key.strip()] = value.strip()
        drift = "\n".join(f"  {key}: {value}" for key, value in settings.items())
        extra = f"""
slack:
  alerts_channel: {ALERTS}
argocd:
  - name: main
    url: {self.argocd.base_url}
    token_env: ARGOCD_TOKEN
drift:
{drift}
{extra_yaml}"""
        loaded = config_for(self.tmp, self.slack, extra_yaml=extra, extra_env={"ARGOCD_TOKEN": JWT_TOKEN})
        argo = build_argocd_backends(loaded.settings, loaded.secrets, poll_interval=0.05)
        backends: dict[str, GitOpsBackend] = {f"argocd:{n}": b for n, b in argo.items()}
        runtime = build_runtime(loaded, port=0, host="127.0.0.1", backends=backends, clock=clock).start()
        assert runtime.drift is not None
        runtime.drift.pace = 0.0
        self.runtime = runtime
        try:
            yield runtime
        finally:
            runtime.stop()

    def scan(self) -> int:
        assert self.runtime is not None
        assert self.runtime.drift is not None
        return self.runtime.drift.run()

    def posts(self) -> list[Any]:
        return [c for c in self.slack.recorded("chat.postMessage") if c.args.get("channel") == ALERTS]

    def top_level(self) -> list[Any]:
        return [m for m in self.slack.messages(ALERTS) if not m.thread_ts or m.thread_ts == m.ts]


@pytest.fixture
def drift(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[Drift]:
    d = Drift(tmp_path, fake_slack)
    try:
        yield d
    finally:
        d.argocd.stop()
