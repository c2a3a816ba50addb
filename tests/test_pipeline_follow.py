"""Following Tekton runs: a running pipeline holds no worker thread, and a run followed when the bot
shuts down is picked up again after a restart (same message, one result row); a request cut off before
its run was followed says how to check with `/gitops pipelines`."""

from __future__ import annotations

import time

import pytest

from tests.pipeline_support import CHANNEL, World, text_of, world

__all__ = ["world"]  # the fixture, imported for the tests here


# --- no worker held; restart ----------------------------------------------------------------------------


@pytest.mark.parametrize("world", [{"workers": 1}], indirect=True)
def test_running_pipelines_hold_no_worker(world: World) -> None:
    world.tekton.hold("api-ci", "test")
    for _ in range(3):
        world.start("pipeline api-ci")
    assert len(world.run_messages()) == 3
    ops = world.runtime.deps.ops
    assert ops is not None
    deadline = time.monotonic() + 10
    while world.runtime.deps.jobs.active:
        assert time.monotonic() < deadline, world.runtime.deps.jobs.running()
        time.sleep(0.02)
    assert ops.watcher.active == 3  # followed by the watcher, not by the one worker
    world.say("pipelines api", user="U0VIEW")  # the one worker still answers
    assert "Running" in world.wait_ephemeral("Pipeline runs: api", user="U0VIEW")
    world.tekton.release("api-ci", "test")
    world.slack.wait_for(lambda f: sum("Succeeded" in m.text for m in world.run_messages()) == 3, timeout=30)


def test_a_run_followed_at_shutdown_is_picked_up_again_after_a_restart(world: World) -> None:
    world.tekton.hold("web-ci", "test")
    running = world.start()
    [started] = world.rows("pipeline_start", 1)
    world.slack.wait_for(lambda f: "⏳ `test` running" in text_of(world.run_messages()[0]), timeout=20)
    world.runtime.stop()
    noted_card = world.slack.find_message(CHANNEL, running.ts)
    assert noted_card is not None
    assert "Still running in Tekton ci" in text_of(noted_card)

    time.sleep(1.1)  # a new process identity (host:pid:start second)
    again = world.restart()
    noted = again.rows("pipeline_start", 2)[1]
    assert noted.outcome == "unknown"
    assert "still running in Tekton ci" in noted.detail
    world.tekton.release("web-ci", "test")
    final = again.wait_run("Succeeded")
    assert final.ts == running.ts
    assert len(again.run_messages()) == 1
    done = again.rows("pipeline_start", 3)[-1]
    assert (done.outcome, done.request_id, done.target) == ("ok", started.id, "web/dev")
    assert len(world.created()) == 1  # followed, not started again


def test_a_start_cut_off_by_a_shutdown_says_to_check_with_gitops_pipelines(world: World) -> None:
    world.say("pipeline web dev --param revision=abc1234")
    card = world.confirm_card()
    world.kube.set_latency(2.5)  # the Start click's requests are in flight past shutdown_timeout (2s)
    world.click(card, "pipeline_start")
    [started] = world.rows("pipeline_start", 1)
    assert started.outcome == "started"
    world.runtime.stop()
    world.kube.set_latency(0)
    shown = world.wait_ephemeral("was shut down before this finished")
    assert "outcome is unknown" in shown
    assert "Check with `/gitops pipelines web dev`." in shown
