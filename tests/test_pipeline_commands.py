"""`/gitops pipelines` and `/gitops pipeline` against the real bot over HTTP: the fake Slack, and the
sandbox Tekton on the sandbox Kubernetes API server read through the real Kubernetes client.

A run starts behind a confirm card and is followed in ONE channel message edited in place to its end:
Succeeded, Failed (task, step, exit code, scrubbed log tail) or Cancelled (a deployer's click; a viewer
is refused). Nothing is created or half-done on bad input or when the Tekton API fails.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.pipeline_support import NS, RUNS, TOKEN, World, buttons, text_of, world

__all__ = ["world"]  # the fixture, imported for the tests here


# --- /gitops pipelines --------------------------------------------------------------------------


def test_pipelines_lists_the_latest_runs_failing_first_in_tkn_words_for_a_viewer(world: World) -> None:
    tk = world.tekton
    good = tk.start_run("web-ci", params={"revision": "aaa1111", "image": "x"})
    tk.wait_for(good)
    tk.fail_next("web-ci", "test", "unit", exit_code=2)
    bad = tk.start_run("web-ci", params={"revision": "bbb2222", "image": "x"})
    tk.wait_for(bad)
    api = tk.start_run("api-ci", params={"image": "x"})
    tk.wait_for(api)

    world.say("pipelines", user="U0VIEW")  # a viewer may list runs
    shown = world.wait_ephemeral("Pipeline runs", user="U0VIEW")
    assert shown.index(bad) < shown.index(good)  # the failing run first
    assert "Failed" in shown
    assert "Succeeded" in shown
    assert f"https://tekton.example.com/#/namespaces/ci/pipelineruns/{bad}" in shown
    assert api in shown
    [row] = world.rows("pipelines", 1)
    assert (row.user_id, row.outcome) == ("U0VIEW", "ok")

    world.say("pipelines api", user="U0VIEW")
    only_api = world.wait_ephemeral("Pipeline runs: api", user="U0VIEW").split("Pipeline runs: api")[-1]
    assert api in only_api
    assert bad not in only_api

    world.say("pipelines wbe", user="U0VIEW")
    assert "Did you mean `web`?" in world.wait_ephemeral("Unknown app or pipeline", user="U0VIEW")


# --- /gitops pipeline: start, follow, succeed -----------------------------------------------------


def test_a_run_is_started_after_the_confirm_card_and_followed_in_one_message_to_succeeded(
    world: World,
) -> None:
    world.say("pipeline web dev --param revision=abc1234")
    card = world.confirm_card()
    shown = text_of(card)
    assert "Start pipeline web-ci?" in shown
    assert "`image` = `registry.example.com/web`" in shown
    assert "`revision` = `abc1234`" in shown
    assert not world.created()  # nothing before the click

    world.click(card, "pipeline_start")
    final = world.wait_run("Succeeded")
    assert len(world.run_messages()) == 1  # one message, edited in place
    assert final.history, "the run's message was edited as the run moved"
    assert "pipeline_cancel" in buttons(final.history[0])  # Cancel while it ran …
    assert "pipeline_cancel" not in buttons(final)  # … gone at the end
    text = text_of(final)
    for task in ("fetch", "test", "report"):
        assert f"✓ `{task}` succeeded" in text
    assert "<@U0ALICE>" in text
    assert "Took" in text
    assert "Started `web-ci` for `web`" in world.ephemeral_text()  # the confirm card points at it

    [body] = world.created()
    assert body["metadata"]["generateName"] == "web-ci-run-"
    assert body["metadata"]["labels"]["gitops-bot.io/started-by"] == "U0ALICE"
    assert body["metadata"]["labels"]["gitops-bot.io/app"] == "web"
    spec = body["spec"]
    assert spec["pipelineRef"] == {"name": "web-ci"}
    assert spec["params"] == [
        {"name": "image", "value": "registry.example.com/web"},
        {"name": "revision", "value": "abc1234"},
    ]
    assert spec["workspaces"] == [{"name": "source", "emptyDir": {}}]
    assert spec["taskRunTemplate"] == {"serviceAccountName": "builder"}
    assert spec["timeouts"] == {"pipeline": "30m0s"}

    started, done = world.rows("pipeline_start", 2)
    assert (started.outcome, done.outcome, done.request_id) == ("started", "ok", started.id)
    assert done.target == "web/dev"
    assert "Succeeded" in done.detail
    command = world.rows("pipeline", 2)
    assert [r.outcome for r in command] == ["started", "ok"]
    assert {r.target for r in command} == {"web/dev"}


def test_a_param_overrides_the_configured_one_and_a_pipeline_name_is_accepted(world: World) -> None:
    world.say("pipeline api-ci --param image=registry.example.com/api:debug")
    shown = text_of(world.confirm_card())
    assert "`image` = `registry.example.com/api:debug`" in shown
    world.click(world.confirm_card(), "pipeline_start")
    world.wait_run("Succeeded")
    [body] = world.created()
    assert body["spec"]["params"] == [{"name": "image", "value": "registry.example.com/api:debug"}]
    assert "taskRunTemplate" not in body["spec"]


def test_cancel_on_the_confirm_card_starts_nothing(world: World) -> None:
    world.say("pipeline web dev --param revision=abc1234")
    world.click(world.confirm_card(), "pipeline_dismiss")
    world.wait_ephemeral("not started")
    assert not world.created()
    assert not world.run_messages()


# --- failure ----------------------------------------------------------------------------------------


def test_a_failing_step_shows_task_step_exit_code_and_the_scrubbed_log_tail(world: World) -> None:
    log = [f"test {n} ok" for n in range(30)] + [f"push with token {TOKEN}", "FAIL: TestDeploy"]
    world.tekton.fail_next("web-ci", "test", "unit", exit_code=2, log_lines=log)
    world.start()
    final = world.wait_run("Failed")
    text = text_of(final)
    assert "task `test`, step `unit`, exit code 2" in text
    assert "FAIL: TestDeploy" in text
    assert "test 29 ok" in text
    assert "test 11 ok" not in text
    assert TOKEN not in text
    assert "✗ `test` failed" in text
    assert "✓ `report` succeeded" in text
    assert "pipeline_cancel" not in buttons(final)
    _, done = world.rows("pipeline_start", 2)
    assert done.outcome == "failed"
    assert "failed at test/unit" in done.detail
    assert TOKEN not in done.detail


# --- cancel -----------------------------------------------------------------------------------------


def test_cancel_by_a_deployer_patches_once_finally_runs_and_a_viewer_is_refused(world: World) -> None:
    world.tekton.hold("web-ci", "test")
    running = world.start()
    assert "pipeline_cancel" in buttons(running)

    world.click(running, "pipeline_cancel", user="U0VIEW")
    assert "Not allowed" in world.wait_ephemeral("Not allowed", user="U0VIEW")
    assert not world.patches()
    assert "pipeline_cancel" in buttons(world.run_messages()[0])  # the card stays for the right person

    world.click(running, "pipeline_cancel", user="U0BOB")
    world.wait_ephemeral("Cancelling", user="U0BOB")
    world.click(running, "pipeline_cancel", user="U0BOB")  # a second press (the stale card still shows it)
    world.wait_ephemeral("already cancelled by", user="U0BOB")
    assert world.patches() == [{"spec": {"status": "CancelledRunFinally"}}]

    world.tekton.release("web-ci", "test")
    final = world.wait_run("Cancelled")
    text = text_of(final)
    assert "✓ `report` succeeded" in text  # finally tasks still run after CancelledRunFinally
    assert "Cancelled by <@U0BOB>" in text
    assert "pipeline_cancel" not in buttons(final)
    rows = world.rows("pipeline_cancel", 6)
    assert sorted(r.outcome for r in rows) == ["denied", "failed", "ok", "started", "started", "started"]
    assert {r.target for r in rows} == {"web/dev"}
    _, done = world.rows("pipeline_start", 2)
    assert done.outcome == "failed"
    assert "Cancelled" in done.detail


# --- v1beta1 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("world", [{"versions": ("v1beta1",), "legacy_task_runs": True}], indirect=True)
def test_a_v1beta1_only_cluster_starts_and_follows_with_the_task_runs_map(world: World) -> None:
    world.start()
    final = world.wait_run("Succeeded")
    assert "✓ `test` succeeded" in text_of(final)
    [post] = [r for r in world.tekton.requests("/apis/tekton.dev/v1beta1/") if r.method == "POST"]
    body: dict[str, Any] = post.body or {}
    assert body["apiVersion"] == "tekton.dev/v1beta1"
    assert body["spec"]["serviceAccountName"] == "builder"
    assert not world.tekton.requests("/apis/tekton.dev/v1/namespaces")
    [run] = world.tekton.objects("pipelineruns", namespace=NS, version="v1beta1")
    assert run["metadata"]["name"] in text_of(final)
    assert set(run["status"]["taskRuns"])  # the pre-v0.45 map the bot read its task tree from
    assert "childReferences" not in run["status"]


# --- bad input and a failing API ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("pipeline web dev --param revision", "it has no `=`"),
        ("pipeline web dev --param revision=-x", "starts with `-`"),
        ("pipeline web dev --param 9lives=1", "is not a Tekton param name"),
    ],
)
def test_a_malformed_param_is_refused_at_once(world: World, text: str, needle: str) -> None:
    ack = world.say(text)
    assert needle in json.dumps(ack)
    assert not world.created()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "pipeline web dev --param revision=a --param nope=1",
            "Param `nope` is not declared by the pipeline",
        ),
        ("pipeline web dev", "The pipeline needs a value for `revision`"),
        ("pipeline web qa --param revision=a", "Unknown environment `qa`"),
        ("pipeline web --namespace nowhere --param revision=a", "No pipeline of `web` applies"),
        ("pipeline web --param revision=a", "several pipelines"),
    ],
)
def test_a_bad_request_is_refused_before_the_card_and_nothing_is_created(
    world: World, text: str, needle: str
) -> None:
    world.say(text)
    world.wait_ephemeral(needle)
    assert world._card("U0ALICE") is None
    assert not world.created()
    [_, refused] = world.rows("pipeline", 2)
    assert refused.outcome == "failed"


def test_the_tekton_api_failing_is_a_clear_error_audited_and_nothing_is_half_done(world: World) -> None:
    world.kube.fail_next(path=f"/apis/tekton.dev/v1/namespaces/{NS}/pipelines/web-ci", status=503)
    world.say("pipeline web dev --param revision=abc1234")
    assert "Tekton ci is not answering" in world.wait_ephemeral("not answering")
    assert world._card("U0ALICE") is None
    [_, failed] = world.rows("pipeline", 2)
    assert failed.outcome == "failed"
    assert "Tekton ci" in failed.detail

    world.say("pipeline web dev --param revision=abc1234")
    card = world.confirm_card()
    world.kube.fail_next(path=RUNS, method="POST", status=500)
    world.click(card, "pipeline_start")
    world.slack.wait_for(lambda f: world.ephemeral_text().count("not answering") >= 2, timeout=20)
    _, done = world.rows("pipeline_start", 2)
    assert done.outcome == "failed"
    assert "Tekton ci" in done.detail
    assert not world.run_messages()
    assert not world.tekton.objects("pipelineruns", namespace=NS)
    assert world.runtime.deps.ops is not None
    assert world.runtime.deps.ops.watcher.active == 0
