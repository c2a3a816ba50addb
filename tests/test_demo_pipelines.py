"""The demo's Tekton: web-ci on the sandbox API server with its history, `break-ci` / `fix-ci`, and
the pipeline commands driven from the console as a team would (start, follow, fail with a scrubbed
log tail, the monitor's post, cancel by a deployer, refusals for the viewer)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from bot.demo import ci
from bot.demo.config import ALERTS_CHANNEL, SHOWN_CHANNELS, WEB_IMAGE, web_path
from bot.demo.console import Console
from bot.demo.feed import Feed, Output
from bot.demo.render import PLAIN
from bot.demo.script import parse_script, run_script
from bot.demo.world import DemoWorld
from sandbox.flux_git import git
from services.pipelines import RunRef

FAST_STEPS = 0.05  # seconds per step where a test only needs runs to finish


@pytest.fixture
def world() -> Iterator[DemoWorld]:
    with DemoWorld.start() as started:
        started.set_autoscan(False)  # scans come from the tests only
        yield started


def _replay(world: DemoWorld, script: str) -> str:
    """Run console lines on a started world; the transcript. Fails the test on a missed expectation."""
    stream = io.StringIO()
    output = Output(stream, PLAIN)
    feed = Feed(world.slack, output, world.names(), SHOWN_CHANNELS).start()
    try:
        console = Console(world, feed, output)
        done = run_script(
            parse_script(script), console.handle, output, prompt=lambda: "> ", finished=lambda: False
        )
    finally:
        feed.stop()
    assert done == 0, stream.getvalue()[-4000:]
    return stream.getvalue()


def _slack_text(world: DemoWorld) -> str:
    return json.dumps([call.args for call in world.slack.recorded()], ensure_ascii=False)


def _run(world: DemoWorld) -> dict[str, Any]:
    """A run of web-ci started behind the bot's back (a webhook trigger would), to its end."""
    params = {ci.REVISION_PARAM: "main", ci.IMAGE_PARAM: WEB_IMAGE}
    name = world.tekton.start_run(ci.PIPELINE, namespace=ci.NAMESPACE, params=params)
    return world.tekton.wait_for(name, namespace=ci.NAMESPACE, timeout=20)


def _reason(run: dict[str, Any]) -> str:
    return str(run["status"]["conditions"][0]["reason"])


def test_the_world_runs_tekton_with_web_ci_s_history_for_the_revisions_web_runs(world: DemoWorld) -> None:
    pipelines = world.runtime.deps.pipelines
    assert pipelines is not None
    [target] = pipelines.targets.of("web", "prod")
    assert (target.pipeline, target.namespace, target.cluster) == (ci.PIPELINE, ci.NAMESPACE, ci.CLUSTER)
    latest = pipelines.latest([target], per_pipeline=10)  # through the bot's client, over HTTP
    runs = [run for _, run in latest.runs]
    assert [r.status.kind for r in runs] == ["failed", "succeeded", "succeeded", "succeeded"]
    overlay = f"{web_path('staging')}/kustomization.yaml"
    newest, current, older = git(
        "--git-dir", str(world.bare), "log", "--format=%H", "-3", "main", "--", overlay
    ).split()
    by_age = sorted(runs[1:], key=lambda r: r.started_at.timestamp() if r.started_at else 0, reverse=True)
    assert [r.param("revision") for r in by_age] == [newest, current, older]  # the gate finds a pass
    assert runs[0].param("revision") == older  # failed once, passed when run again
    assert all(r.param("image") == WEB_IMAGE for r in runs)
    detail = pipelines.read(RunRef(ci.CLUSTER, ci.NAMESPACE, runs[0].name))  # a real task tree
    failure = detail.failure
    assert failure is not None
    assert (failure.pipeline_task, failure.step, failure.exit_code) == ("test", "unit", 1)
    assert runs[1].finished_at is not None
    assert runs[1].started_at is not None
    assert (runs[1].finished_at - runs[1].started_at).total_seconds() > 60  # history took build time
    assert any(line.startswith("  web-ci: Tekton pipeline 'ci/ci/web-ci'") for line in world.describe())


def test_break_ci_fails_the_next_run_once_and_fix_ci_takes_a_pending_break_back(world: DemoWorld) -> None:
    world.tekton.set_speed(FAST_STEPS)
    said = world.break_ci()
    assert "fails at test/unit" in said
    world.break_ci()  # a second break before a run changes nothing
    failed = _run(world)
    assert _reason(failed) == "Failed"
    taskruns = world.tekton.objects("taskruns", namespace=ci.NAMESPACE)
    [test] = [t for t in taskruns if t["metadata"]["name"] == f"{failed['metadata']['name']}-test"]
    [unit] = [s for s in test["status"]["steps"] if s["name"] == "unit"]
    assert unit["terminated"]["exitCode"] == 1
    log = world.tekton.pod_log(ci.NAMESPACE, test["status"]["podName"], "step-unit")
    assert log is not None
    assert f"+ export NPM_TOKEN={ci.NPM_TOKEN}" in log  # what the bot must scrub
    assert _reason(_run(world)) == "Succeeded"  # one failing run per break-ci
    world.break_ci()
    assert "pass" in world.fix_ci()
    assert _reason(_run(world)) == "Succeeded"


def test_a_failed_run_started_from_slack_shows_its_scrubbed_log_and_is_posted_once(world: DemoWorld) -> None:
    out = _replay(
        world,
        """
timeout: 40
/gitops pipelines web
expect: web-ci-run-
break-ci
/gitops pipeline web --param revision=main
expect: [1] Start run  [2] Cancel
1
expect: PIPELINE WEB-CI: RUNNING
expect: Failed at task `test`, step `unit`, exit code 1
expect: NPM_TOKEN=[REDACTED]
expect: npm ERR! errno 1
scan-ci
expect: 1 failed run posted
expect: PIPELINE WEB-CI FAILED
scan-ci
expect: 0 failed runs posted
fix-ci
""",
    )
    assert ci.NPM_TOKEN not in out
    assert ci.NPM_TOKEN not in _slack_text(world)  # nowhere in Slack: posts, edits, ephemerals
    alerts = [m for m in world.slack.messages(ALERTS_CHANNEL) if "web-ci" in json.dumps(m.blocks)]
    assert len(alerts) == 1  # the monitor posts a failed run once
    assert "NPM_TOKEN=[REDACTED]" in json.dumps(alerts[0].blocks)


def test_a_deployer_cancels_a_run_and_the_viewer_may_only_list(world: DemoWorld) -> None:
    world.tekton.hold(ci.PIPELINE, "build")  # the run stays at build until cancelled
    out = _replay(
        world,
        """
timeout: 30
/as dave
/gitops pipelines web
expect: web-ci-run-
/gitops pipeline web --param revision=main
expect: Not allowed
/as alice
/gitops pipeline web --param revision=main
expect: [1] Start run
1
expect: ⏳ `build` running
expect: [3] Cancel run
/as dave
3
expect: Not allowed
/as bob
3
expect: PIPELINE WEB-CI: CANCELLED
expect: @bob
""",
    )
    assert "`pipeline_cancel` for `web`" in out  # dave's refusal names what he lacks
    [run] = [
        r for r in world.tekton.objects("pipelineruns", namespace=ci.NAMESPACE) if r["spec"].get("status")
    ]
    assert run["spec"]["status"] == "CancelledRunFinally"  # finally tasks still run
    assert _reason(run) == "Cancelled"


def test_a_promotion_the_gate_blocks_passes_after_the_run_it_suggests(world: DemoWorld) -> None:
    """dev's revision was never built: the gate blocks web's promotion to staging and names the
    command that builds it; run as written, it makes the same promotion pass."""
    out = _replay(world, "timeout: 30\n/gitops promote web --to staging\nexpect: start one with\n")
    commands = re.findall(r"start one with `(/gitops pipeline [^`]+)`", out)
    assert len(commands) == 1, out[-2000:]
    assert re.fullmatch(r"/gitops pipeline web-ci --param revision=[0-9a-f]{40}", commands[0])
    out = _replay(
        world,
        f"""
timeout: 40
{commands[0]}
expect: [1] Start run
1
expect: PIPELINE WEB-CI: SUCCEEDED
/gitops promote web --to staging
expect: Succeeded for revision
expect: Deploy: Succeeded
""",
    )
    promoted = out[out.rindex("> /gitops promote web --to staging") :]
    assert "⛔" not in promoted
    assert ":information_source: pipeline_succeeded: pipeline `web-ci`: run `web-ci-run-" in promoted
