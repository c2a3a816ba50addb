"""Fixtures that wire the real app, served by the real HTTP server, to the Slack sandbox."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bot.app import Runtime, build_runtime
from bot.config import LoadedConfig, parse_config_text
from handlers.deps import Executor
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from services.argocd import build_argocd_backends
from services.backend import GitOpsBackend
from tests.pgserver import PgDatabase
from tests.suggestions import unrunnable

# Fixtures of the fake Argo CD contract tests (argocd, client, clock, slow_client).
pytest_plugins = ["tests.sandbox_argocd_support", "tests.pg_fixtures", "tests.db_engines"]

BOT_TOKEN = "xoxb-sandbox-token"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APP_TOKEN = "xapp-1-A0SANDBOX-1234567890-abcdefabcdef"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN).start()
    try:
        yield fake
    finally:
        fake.stop()
    # Whatever the test did, every command the bot suggested on the way must run as written.
    problems = unrunnable(fake)
    if problems:
        pytest.fail("the bot suggested commands that do not run:\n  " + "\n  ".join(problems))


def config_for(
    tmp_path: Path,
    fake: FakeSlack,
    *,
    extra_yaml: str = "",
    app_token: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> LoadedConfig:
    environ = {
        **(extra_env or {}),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.base_url,
    }
    if app_token:
        environ["SLACK_APP_TOKEN"] = APP_TOKEN
    text = (
        f"audit:\n  database: {tmp_path / 'audit.db'}\n"
        f"server:\n  workers: 4\n  queue_limit: 16\n  shutdown_timeout: 2s\n{extra_yaml}"
    )
    pg = _APP_DATABASE.get("current")
    if pg is not None and "\ndatabase:" not in f"\n{extra_yaml}":
        text += f"\ndatabase:\n  url: {pg.url}\n  password_env: GITOPS_BOT_DATABASE_PASSWORD\n"
        environ.update(pg.environ())
    return parse_config_text(text, environ=environ)


# GITOPS_BOT_TEST_DATABASE=postgresql: every bot these tests start keeps its state in a fresh
# PostgreSQL database instead of the SQLite file (the store tests run on both engines anyway).
TEST_DATABASE_ENV = "GITOPS_BOT_TEST_DATABASE"
_APP_DATABASE: dict[str, PgDatabase] = {}


@pytest.fixture(autouse=True)
def _app_database(request: pytest.FixtureRequest) -> Iterator[None]:
    if (
        os.environ.get(TEST_DATABASE_ENV, "sqlite") != "postgresql"
        or "fake_slack" not in request.fixturenames
    ):
        yield
        return
    _APP_DATABASE["current"] = request.getfixturevalue("postgres_db")
    try:
        yield
    finally:
        _APP_DATABASE.clear()


BotFactory = Callable[..., tuple[Runtime, SlackSender]]


def start_on_argocd(
    loaded: LoadedConfig, fake: FakeSlack, *, poll_interval: float = 0.05, **options: Any
) -> tuple[Runtime, SlackSender]:
    """The real bot on an ephemeral port with the Argo CD instances `loaded` names (real clients,
    short polls), and a signed-request sender for it. `options` go to build_runtime (a clock…)."""
    argo = build_argocd_backends(loaded.settings, loaded.secrets, poll_interval=poll_interval)
    backends: dict[str, GitOpsBackend] = {f"argocd:{n}": b for n, b in argo.items()}
    runtime = build_runtime(loaded, port=0, host="127.0.0.1", backends=backends, **options).start()
    return runtime, SlackSender(f"http://127.0.0.1:{runtime.server.port}/slack/events", SIGNING_SECRET, fake)


@pytest.fixture
def bot(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[BotFactory]:
    """Start the real bot on an ephemeral port; returns (runtime, sender). Stopped at teardown."""
    started: list[Runtime] = []

    def start(
        executors: Mapping[str, Executor] | None = None, extra_yaml: str = ""
    ) -> tuple[Runtime, SlackSender]:
        loaded = config_for(tmp_path, fake_slack, extra_yaml=extra_yaml)
        runtime = build_runtime(loaded, port=0, host="127.0.0.1", extra_executors=executors).start()
        started.append(runtime)
        url = f"http://127.0.0.1:{runtime.server.port}/slack/events"
        return runtime, SlackSender(url, SIGNING_SECRET, fake_slack)

    yield start
    for runtime in started:
        runtime.stop()
