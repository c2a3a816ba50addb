"""The world the Tekton command tests run in: the real bot over HTTP with the fake Slack, and the
sandbox Tekton on the sandbox Kubernetes API server (read through the real Kubernetes client).

`world` (a fixture; import it into a test module) starts the bot on a config with `tekton:` and
`apps[].pipelines`; `World` types what a test says, clicks and reads.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import Runtime, build_runtime
from bot.config import LoadedConfig, parse_config_text
from handlers.pipelines import follow as pipeline_follow
from sandbox.flux_fake import FakeKubernetes
from sandbox.slack_api import FakeSlack
from sandbox.slack_client import SlackSender
from sandbox.slack_models import Message
from sandbox.tekton_fake import FakeTekton
from services.audit.trail import AuditEvent
from tests.conftest import BOT_TOKEN, SIGNING_SECRET

CHANNEL = "C0DEPLOYS"
NS = "ci"
TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"  # a secret a build step printed
RUNS = f"/apis/tekton.dev/v1/namespaces/{NS}/pipelineruns"

CONFIG = """
audit:
  database: {db}
server:
  workers: {workers}
  queue_limit: 16
  shutdown_timeout: 2s
flux:
  - {{name: k, kubeconfig: {kubeconfig}, context: sandbox}}
tekton:
  - {{name: ci, kubeconfig: {kubeconfig}, context: sandbox, namespaces: [ci, release],
      dashboard_url: https://tekton.example.com/}}
environments:
  - name: dev
  - name: prod
apps:
  - name: web
    environments:
      dev: {{backend: flux, name: web-dev, namespace: flux-system}}
      prod: {{backend: flux, name: web-prod, namespace: flux-system}}
    pipelines:
      - name: web-ci
        namespace: ci
        params: {{image: registry.example.com/web}}
        workspaces: [{{name: source, emptyDir: {{}}}}]
        service_account: builder
        timeout: 30m
        revision_param: revision
        environments: [dev]
      - {{name: web-release, namespace: release, environments: [prod]}}
  - name: api
    environments:
      dev: {{backend: flux, name: api-dev, namespace: flux-system}}
    pipelines:
      - {{name: api-ci, namespace: ci, params: {{image: registry.example.com/api}}}}
operations:
  sync_timeout: 30s
access:
  grants:
    - role: deployer
      users: [U0ALICE, U0BOB]
    - role: viewer
      users: [U0VIEW]
"""


@dataclass
class World:
    runtime: Runtime
    sender: SlackSender
    slack: FakeSlack
    tekton: FakeTekton
    kube: FakeKubernetes
    restart: Callable[[], World]

    def say(self, text: str, user: str = "U0ALICE") -> dict[str, Any]:
        sent = self.sender.slash(text, user_id=user, user_name=user.lower()[2:], channel_id=CHANNEL)
        assert sent.status == 200, sent.body
        assert sent.elapsed < 2.5
        return sent.json_body or {}

    def ephemeral_text(self, user: str = "U0ALICE") -> str:
        return "\n".join(m.text + json.dumps(m.blocks) for m in self.slack.ephemeral(user))

    def wait_ephemeral(self, needle: str, user: str = "U0ALICE", timeout: float = 20) -> str:
        self.slack.wait_for(lambda f: needle in self.ephemeral_text(user), timeout=timeout)
        return self.ephemeral_text(user)

    def confirm_card(self, user: str = "U0ALICE") -> Message:
        self.slack.wait_for(lambda f: self._card(user) is not None, timeout=20)
        card = self._card(user)
        assert card is not None
        return card

    def _card(self, user: str) -> Message | None:
        return next(
            (m for m in reversed(self.slack.ephemeral(user)) if "pipeline_start" in json.dumps(m.blocks)),
            None,
        )

    def click(self, message: Message, action: str, user: str = "U0ALICE") -> None:
        sent = self.sender.click(message, action, user_id=user, user_name=user.lower()[2:])
        assert sent.status == 200, sent.body

    def run_messages(self) -> list[Message]:
        return [m for m in self.slack.messages(CHANNEL) if m.text.startswith("Pipeline ")]

    def wait_run(self, needle: str, timeout: float = 30) -> Message:
        def found(fake: FakeSlack) -> bool:
            return any(needle in m.text + json.dumps(m.blocks) for m in self.run_messages())

        self.slack.wait_for(found, timeout=timeout)
        return next(m for m in self.run_messages() if needle in m.text + json.dumps(m.blocks))

    def start(
        self, text: str = "pipeline web dev --param revision=abc1234", user: str = "U0ALICE"
    ) -> Message:
        """Ask, press Start on the new confirm card, and return the run's channel message once posted."""
        before = {m.ts for m in self.slack.ephemeral(user)}
        posted = len(self.run_messages())
        self.say(text, user)
        self.slack.wait_for(lambda f: (c := self._card(user)) is not None and c.ts not in before, timeout=20)
        card = self._card(user)
        assert card is not None
        self.click(card, "pipeline_start", user)
        self.slack.wait_for(lambda f: len(self.run_messages()) > posted, timeout=20)
        return self.run_messages()[-1]

    def rows(self, action: str, count: int, timeout: float = 20) -> list[AuditEvent]:
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.runtime.deps.audit.recent(limit=200) if r.action == action]
            if len(found) >= count:
                return sorted(found, key=lambda r: r.id or 0)
            assert time.monotonic() < deadline, f"{action}: {[(r.outcome, r.detail) for r in found]}"
            time.sleep(0.02)

    def created(self) -> list[dict[str, Any]]:
        return [dict(r.body) for r in self.tekton.requests(RUNS) if r.method == "POST" and r.body]

    def patches(self) -> list[Any]:
        return [r.body for r in self.tekton.requests(RUNS) if r.method == "PATCH"]


def text_of(message: Message) -> str:
    return message.text + json.dumps(message.blocks, ensure_ascii=False)


def buttons(message: Message) -> list[str]:
    return [
        str(e.get("action_id")) for b in message.blocks if b.get("type") == "actions" for e in b["elements"]
    ]


@pytest.fixture
def world(
    request: pytest.FixtureRequest, tmp_path: Path, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    options: dict[str, Any] = getattr(request, "param", {})
    workers = int(options.pop("workers", 4))
    monkeypatch.setattr(pipeline_follow, "POLL_SECONDS", 0.1)  # the sandbox's steps take 50 ms
    with (
        FakeKubernetes(tick=0.01) as kube,
        FakeTekton(kube, tick=0.01, step_seconds=0.05, **options) as tekton,
    ):
        tekton.add_simple_pipeline(
            "web-ci", {"fetch": ["clone"], "test": ["lint", "unit"]}, finally_={"report": ["send"]},
            params=("revision", "image"),
        )  # fmt: skip
        tekton.add_simple_pipeline("api-ci", {"test": ["unit"]}, params=("image",))
        tekton.add_simple_pipeline("web-release", {"build": ["compile"]}, params=(), namespace="release")
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
        text = CONFIG.format(db=tmp_path / "audit.db", kubeconfig=kubeconfig, workers=workers)
        started: list[Runtime] = []

        def start() -> World:
            runtime = build_runtime(_loaded(text, fake_slack), port=0, host="127.0.0.1").start()
            started.append(runtime)
            url = f"http://127.0.0.1:{runtime.server.port}/slack/events"
            return World(
                runtime, SlackSender(url, SIGNING_SECRET, fake_slack), fake_slack, tekton, kube, start
            )

        try:
            yield start()
        finally:
            for runtime in started:
                runtime.stop()


def _loaded(text: str, fake: FakeSlack) -> LoadedConfig:
    environ = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.base_url,
    }
    return parse_config_text(textwrap.dedent(text), environ=environ)
