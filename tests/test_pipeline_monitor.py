"""The pipeline monitor: the real bot (scheduler, SQLite file, leadership) against the sandbox Tekton on
the sandbox Kubernetes API server and the fake Slack. A failed run of a configured pipeline is posted
once, to its route, as the run card; never again after a restart; history, other states and other
pipelines stay quiet; one list per namespace per scan; a namespace that does not answer waits."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.app import Runtime, build_runtime
from bot.scheduler import build_scheduler
from handlers.pipelines.monitor import PipelineMonitor
from sandbox.flux_fake import FakeKubernetes
from sandbox.slack_api import FakeSlack
from sandbox.tekton_fake import FakeTekton
from services.audit.trail import AuditEvent
from services.extensions.events import document, events_for
from services.leader.election import AlwaysLeader
from services.settings.check import check_settings
from services.settings.model import Settings
from services.store.posted_runs import PostedRuns, RunKey
from services.store.sqlite import SqliteDatabase
from tests.conftest import config_for

ALERTS = "C0ALERTS"
PROD = "C0PROD"
TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"  # a secret a build step printed
LIST_CI = "/apis/tekton.dev/v1/namespaces/ci/pipelineruns"
LIST_RELEASE = "/apis/tekton.dev/v1/namespaces/release/pipelineruns"
SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "events.schema.json").read_text())

CONFIG = """
slack:
  alerts_channel: {alerts}
flux:
  - {{name: home, kubeconfig: {kubeconfig}, context: sandbox}}
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
      - {{name: web-ci, namespace: ci, environments: [dev]}}
      - {{name: web-release, namespace: release, environments: [prod]}}
  - name: api
    environments:
      dev: {{backend: flux, name: api-dev, namespace: flux-system}}
    pipelines:
      - {{name: api-ci, namespace: ci}}
drift:
  enabled: false
  routes:
    - {{channel: {prod}, environments: [prod]}}
pipeline_monitor:
  interval: 1h
{monitor}
"""


class NotLeader:
    def is_leader(self) -> bool:
        return False

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None


class World:
    def __init__(self, tmp: Path, slack: FakeSlack, kube: FakeKubernetes, tekton: FakeTekton) -> None:
        self.tmp, self.slack, self.kube, self.tekton = tmp, slack, kube, tekton
        self.kubeconfig = kube.write_kubeconfig(tmp / "kubeconfig", namespace="ci")
        self.runtime: Runtime | None = None

    def start_bot(self, monitor_yaml: str = "") -> Runtime:
        text = CONFIG.format(alerts=ALERTS, prod=PROD, kubeconfig=self.kubeconfig, monitor=monitor_yaml)
        loaded = config_for(self.tmp, self.slack, extra_yaml=text)
        runtime = build_runtime(loaded, port=0, host="127.0.0.1").start()
        assert runtime.pipeline_monitor is not None
        runtime.pipeline_monitor.pace = 0.0
        self.runtime = runtime
        return runtime

    @property
    def monitor(self) -> PipelineMonitor:
        assert self.runtime is not None
        assert self.runtime.pipeline_monitor is not None
        return self.runtime.pipeline_monitor

    def run(
        self,
        pipeline: str,
        *,
        namespace: str = "ci",
        fail: str | None = None,
        wait: bool = True,
        **options: Any,
    ) -> str:
        """Start a run; `fail`: "task/step" makes it fail there. Returns its name, once done if `wait`."""
        if fail is not None:
            task, step = fail.split("/")
            log = [f"step line {n}" for n in range(30)] + [f"push with {TOKEN}", "FAIL: TestDeploy"]
            self.tekton.fail_next(pipeline, task, step, exit_code=2, log_lines=log)
        name = self.tekton.start_run(pipeline, namespace=namespace, params={"revision": "abc1234"}, **options)
        if wait:
            self.tekton.wait_for(name, namespace=namespace)
        return name

    def posts(self, channel: str | None = None) -> list[Any]:
        calls = self.slack.recorded("chat.postMessage")
        return [c for c in calls if channel is None or c.args.get("channel") == channel]

    def lists(self, path: str) -> int:
        return sum(1 for r in self.kube.requests(path) if r.method == "GET" and r.path == path)

    def audit_rows(self) -> list[AuditEvent]:
        assert self.runtime is not None
        return [r for r in self.runtime.deps.audit.recent(limit=200) if r.action == "pipeline.failed"]


@pytest.fixture
def world(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[World]:
    with ExitStack() as stack:
        kube = stack.enter_context(FakeKubernetes(tick=0.01))
        tekton = stack.enter_context(FakeTekton(kube, tick=0.01, step_seconds=0.01))
        for name, ns in (("web-ci", "ci"), ("api-ci", "ci"), ("other", "ci"), ("web-release", "release")):
            tekton.add_simple_pipeline(name, {"build": ["compile"], "test": ["lint", "unit"]}, namespace=ns)
        w = World(tmp_path, fake_slack, kube, tekton)
        yield w
        if w.runtime is not None:
            w.runtime.stop()


def _text(call: Any) -> str:
    return json.dumps(call.args.get("blocks"), ensure_ascii=False) + str(call.args.get("text"))


def test_a_failed_run_is_posted_once_as_the_run_card_and_audited(world: World) -> None:
    runtime = world.start_bot()
    assert world.monitor.run() == 0  # the first look: nothing failed yet, the cursors are written
    name = world.run("web-ci", fail="test/unit")
    assert world.monitor.run() == 1
    (post,) = world.posts()
    assert post.args["channel"] == ALERTS  # web-ci builds dev; the prod route does not match
    text = _text(post)
    assert "Pipeline web-ci failed" in text
    assert name in text
    assert "Failed at task `test`, step `unit`, exit code 2" in text
    assert "FAIL: TestDeploy" in text  # the failing step's log tail
    assert TOKEN not in text
    assert "`web` · dev" in text  # the app and environment the run is about
    assert "tekton.example.com" in text  # the Dashboard link
    assert world.monitor.run() == 0
    assert len(world.posts()) == 1

    (row,) = world.audit_rows()
    assert (row.user_id, row.target, row.channel, row.outcome) == ("gitops-bot", "web/dev", ALERTS, "ok")
    assert row.detail == f"run ci/ci/{name} (pipeline web-ci): Failed; task test, step unit, exit code 2"
    (event,) = events_for(row)
    assert event.type == "pipeline.failed"
    assert (event.actor, event.target) == ("gitops-bot", "web/dev")
    data = dict(event.data)
    assert (data["cluster"], data["namespace"], data["run"], data["pipeline"]) == ("ci", "ci", name, "web-ci")
    assert (data["status"], data["task"], data["step"], data["exit_code"]) == ("Failed", "test", "unit", 2)
    jsonschema.validate(document(event), SCHEMA, format_checker=jsonschema.FormatChecker())
    runtime.stop()
    world.runtime = None


def test_a_restart_posts_nothing_again_and_a_new_failure_afterwards_is_posted(world: World) -> None:
    runtime = world.start_bot()
    world.monitor.run()
    world.run("web-ci", fail="test/unit")
    assert world.monitor.run() == 1
    runtime.stop()

    world.start_bot()  # a new process on the same database file
    assert world.monitor.run() == 0
    fresh = PipelineMonitor(world.monitor.deps, world.monitor.client, AlwaysLeader())  # a new leader
    fresh.pace = 0.0
    assert fresh.run() == 0
    assert len(world.posts()) == 1
    second = world.run("api-ci", fail="build/compile")
    assert world.monitor.run() == 1
    assert fresh.run() == 0
    posts = world.posts()
    assert len(posts) == 2
    assert second in _text(posts[-1])
    assert "Pipeline api-ci failed" in _text(posts[-1])


def test_only_failures_of_configured_pipelines_after_the_first_look_are_posted(world: World) -> None:
    old = world.run("web-ci", fail="test/lint")  # failed before the monitor ever looked
    world.start_bot()
    assert world.monitor.run() == 0  # history is recorded, not posted

    world.run("web-ci")  # succeeds
    world.run("other", fail="test/unit")  # not a configured pipeline
    cancelled = world.run("api-ci", status="Cancelled")  # somebody's decision, not an alert
    assert world.tekton.object("pipelineruns", cancelled)["status"]["conditions"][0]["reason"] == "Cancelled"
    world.tekton.hold("api-ci", "test")
    running = world.run("api-ci", wait=False)
    failed = world.run("web-release", namespace="release", fail="build/compile")
    assert world.monitor.run() == 1
    (post,) = world.posts()
    assert post.args["channel"] == PROD  # web-release builds prod: drift's prod route applies
    text = _text(post)
    assert failed in text
    assert old not in text
    assert running not in text
    assert "`web` · prod" in text
    world.tekton.release("api-ci", "test")
    world.tekton.wait_for(running)
    assert world.monitor.run() == 0  # it succeeded


def test_a_non_leader_neither_lists_nor_posts(world: World) -> None:
    world.start_bot()
    world.monitor.run()
    world.run("web-ci", fail="test/unit")
    follower = PipelineMonitor(world.monitor.deps, world.monitor.client, NotLeader())
    before = world.lists(LIST_CI)
    assert follower.run() == 0
    assert world.lists(LIST_CI) == before
    assert world.posts() == []
    assert world.monitor.run() == 1  # the leader still does


def test_one_list_per_namespace_per_scan_whatever_the_number_of_pipelines(world: World) -> None:
    world.start_bot()
    world.run("api-ci", fail="test/unit")  # history: recorded at the first look
    counts = (world.lists(LIST_CI), world.lists(LIST_RELEASE))
    assert world.monitor.run() == 0
    for _ in range(2):
        world.run("web-ci", fail="test/unit")
        world.run("api-ci", fail="build/compile")
        world.run("api-ci")
    world.run("web-release", namespace="release", fail="test/lint")
    assert world.monitor.run() == 5
    assert world.monitor.run() == 0
    # web-ci and api-ci share namespace ci: three scans, three lists of it (five runs announced)
    assert (world.lists(LIST_CI) - counts[0], world.lists(LIST_RELEASE) - counts[1]) == (3, 3)


def test_a_namespace_that_does_not_answer_waits_and_the_others_go_on(world: World) -> None:
    world.start_bot()
    world.monitor.run()
    world.kube.fail_next(path=LIST_RELEASE, status=503, times=2)  # two scans
    release = world.run("web-release", namespace="release", fail="test/unit")
    ci = world.run("web-ci", fail="test/unit")
    assert world.monitor.run() == 1
    assert [ci in _text(p) for p in world.posts()] == [True]
    assert world.monitor.run() == 0  # still down: nothing, and nothing twice
    assert world.monitor.run() == 1  # back: its failure goes out now, to its route
    assert [p.args["channel"] for p in world.posts()] == [ALERTS, PROD]
    assert release in _text(world.posts()[-1])


def test_the_scheduler_has_the_job_when_the_monitor_is_on(world: World) -> None:
    runtime = world.start_bot()
    job = runtime.scheduler.get_job("pipeline-monitor")
    assert job is not None
    assert job.trigger.interval.total_seconds() == 3600
    off = runtime.deps.settings.model_copy(
        update={
            "pipeline_monitor": runtime.deps.settings.pipeline_monitor.model_copy(update={"enabled": False})
        }
    )
    deps = dataclasses.replace(runtime.deps, settings=off)
    scheduler = build_scheduler(deps, runtime.app.client, pipeline_monitor=world.monitor)
    assert scheduler.get_job("pipeline-monitor") is None
    assert scheduler.get_job("hold-reminders") is not None


def test_routing_defaults_follow_drift_and_a_monitor_without_a_channel_warns() -> None:
    apps = {
        "tekton": [{"name": "ci", "in_cluster": True, "namespaces": ["ci"]}],
        "environments": [{"name": "prod"}],
        "apps": [
            {
                "name": "web",
                "environments": {"prod": {"backend": "flux", "instance": "home", "name": "web"}},
                "pipelines": [{"name": "web-ci", "namespace": "ci"}],
            }
        ],
        "flux": [{"name": "home", "in_cluster": True}],
    }
    route = {"channel": PROD, "environments": ["prod"]}
    inherited = Settings.model_validate(
        {**apps, "slack": {"alerts_channel": ALERTS}, "drift": {"routes": [route]}}
    )
    assert inherited.pipeline_monitor_enabled
    assert inherited.pipeline_monitor_channel == ALERTS
    assert [r.channel for r in inherited.pipeline_monitor_routes] == [PROD]
    own = Settings.model_validate(
        {**apps, "drift": {"routes": [route]}, "pipeline_monitor": {"channel": "C0CI"}}
    )
    assert (own.pipeline_monitor_channel, own.pipeline_monitor_routes) == ("C0CI", ())
    assert not Settings.model_validate({"drift": {"channel": ALERTS}}).pipeline_monitor_enabled

    report = check_settings(apps)
    assert [(w.path, w.kind) for w in report.warnings if w.path.startswith("pipeline_monitor")] == [
        ("pipeline_monitor.channel", "warning")
    ]
    lonely = check_settings({"pipeline_monitor": {"enabled": True}})
    assert [w.path for w in lonely.warnings if w.path.startswith("pipeline")] == ["pipeline_monitor.enabled"]


def test_a_refused_post_is_tried_again_and_a_429_is_waited_out(world: World) -> None:
    world.slack.add_channel(ALERTS, "gitops-alerts", is_member=False)
    world.start_bot()
    world.monitor.run()
    name = world.run("web-ci", fail="test/unit")
    assert world.monitor.run() == 0  # not_in_channel: nothing recorded, nothing audited
    assert world.audit_rows() == []
    world.slack.add_channel(ALERTS, "gitops-alerts", is_member=True)
    world.slack.fail_next("chat.postMessage", status=429, retry_after=1)
    assert world.monitor.run() == 1  # the client waited Retry-After and sent it again
    answers = [(c.status, c.response.get("error")) for c in world.posts(ALERTS)]
    assert answers == [(200, "not_in_channel"), (429, "ratelimited"), (200, None)]
    assert name in _text(world.posts(ALERTS)[-1])
    assert world.monitor.run() == 0
    assert len(world.audit_rows()) == 1


def test_a_timed_out_run_is_posted_as_timed_out(world: World) -> None:
    world.start_bot()
    world.monitor.run()
    world.tekton.hold("web-ci", "test")
    name = world.run("web-ci", wait=False, timeout="30s")
    world.tekton.wait_for(name, until=lambda o: bool((o.get("status") or {}).get("childReferences")))
    world.tekton.advance(60)
    world.tekton.wait_for(name)
    world.tekton.release("web-ci", "test")
    assert world.monitor.run() == 1
    text = _text(world.posts(ALERTS)[-1])
    assert "Pipeline web-ci timed out" in text
    (row,) = world.audit_rows()
    assert "PipelineRunTimeout" in row.detail


def test_the_store_keeps_claims_releases_refusals_and_forgets_runs_the_cluster_dropped(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    db = SqliteDatabase(tmp_path / "bot.db")
    store = PostedRuns(db)
    kept, dropped, refused = (RunKey("ci", "ci", f"run-{n}", f"uid-{n}") for n in range(3))
    store.baseline("web-ci", [kept], cluster="ci", namespace="ci", now=now)
    assert store.baselined("ci", "ci") == {"web-ci"}
    assert store.claim(dropped, "web-ci", now=now)
    assert not store.claim(dropped, "web-ci", now=now)  # one claim per run
    store.mark_posted(dropped, channel=ALERTS, ts="1.0", now=now)
    assert store.message(dropped) == (ALERTS, "1.0")
    store.release(dropped)  # a posted run is never given back
    assert store.claim(refused, "web-ci", now=now)
    store.release(refused)
    assert store.known("ci", "ci") == {kept, dropped}
    assert store.forget_missing("ci", "ci", {kept}, older_than=now - timedelta(hours=1)) == 0  # too recent
    assert store.forget_missing("ci", "ci", {kept}, older_than=now + timedelta(seconds=1)) == 1
    db.close()
    reopened = SqliteDatabase(tmp_path / "bot.db")
    assert PostedRuns(reopened).known("ci", "ci") == {kept}  # it is all on the file
    reopened.close()
