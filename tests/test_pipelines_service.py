"""services/pipelines: which pipeline a name means, and the runs of configured pipelines — read from the
sandbox Tekton through the real Kubernetes client, one list per namespace."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import parse_config_text
from bot.wiring import build_pipelines
from sandbox.flux_fake import FakeKubernetes
from sandbox.tekton_fake import FakeTekton
from services.errors import UserError
from services.metrics import Metrics
from services.pipelines import PipelineRuns, RunRef
from services.tekton.runs import LABEL_APP, LABEL_ENV, LABEL_STARTED_BY, StartedBy

CONFIG = """
argocd:
  - {{name: main, url: https://argo.example.com, token_env: ARGO_TOKEN}}
tekton:
  - {{name: ci, kubeconfig: {kubeconfig}, context: sandbox, namespaces: [ci, release],
      dashboard_url: https://tekton.example.com/}}
environments:
  - name: dev
  - name: prod
apps:
  - name: web
    environments:
      dev: {{backend: argocd, name: web-dev}}
      prod: {{backend: argocd, name: web-prod}}
    pipelines:
      - {{name: web-ci, namespace: ci, revision_param: revision, params: {{image: registry.example.com/web}},
          service_account: builder, timeout: 30m, environments: [dev]}}
      - {{name: web-release, namespace: release, environments: [prod]}}
  - name: api
    environments:
      dev: {{backend: argocd, name: api-dev}}
    pipelines:
      - {{name: api-ci, namespace: ci}}
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeTekton, PipelineRuns]]:
    with (
        FakeKubernetes(tick=0.01) as kube,
        FakeTekton(kube, tick=0.01, step_seconds=0.02) as tekton,
    ):
        for name, ns in (("web-ci", "ci"), ("api-ci", "ci"), ("web-release", "release"), ("other", "ci")):
            tekton.add_simple_pipeline(name, {"test": ["unit"]}, params=("revision", "image"), namespace=ns)
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="ci")
        loaded = parse_config_text(
            textwrap.dedent(CONFIG.format(kubeconfig=kubeconfig)),
            environ={"ARGO_TOKEN": "t", "SLACK_BOT_TOKEN": "x"},
        )
        runs = build_pipelines(loaded, Metrics())
        assert runs is not None
        try:
            yield tekton, runs
        finally:
            runs.close()


def test_a_name_is_an_app_or_a_pipeline_and_a_typo_gets_the_nearest_name(
    world: tuple[FakeTekton, PipelineRuns],
) -> None:
    _, runs = world
    targets = runs.targets
    assert targets.resolve("web", "dev").pipeline == "web-ci"
    assert targets.resolve("web", "prod").pipeline == "web-release"
    assert targets.resolve("web-release").app == "web"
    assert targets.resolve("web", namespace="release").pipeline == "web-release"
    with pytest.raises(UserError) as several:
        targets.resolve("web")
    assert "several pipelines" in str(several.value)
    assert "web-ci" in (several.value.hint or "")
    with pytest.raises(UserError) as typo:
        targets.resolve("wbe")
    assert typo.value.hint == "Did you mean `web`?"
    with pytest.raises(UserError) as env:
        targets.resolve("web", "prd")
    assert env.value.hint == "Did you mean `prod`?"
    assert [t.pipeline for t in targets.of("web", None)] == ["web-ci", "web-release"]
    assert [t.pipeline for t in targets.of(None, "dev")] == ["web-ci", "api-ci"]


def test_latest_lists_each_namespace_once_and_puts_failing_runs_first(
    world: tuple[FakeTekton, PipelineRuns],
) -> None:
    tekton, runs = world
    ok = tekton.start_run("web-ci", params={"revision": "a1", "image": "x"})
    tekton.wait_for(ok)
    tekton.fail_next("api-ci", "test", "unit", exit_code=3, log_lines=["boom"])
    bad = tekton.start_run("api-ci", params={"revision": "a2", "image": "x"})
    tekton.wait_for(bad)
    released = tekton.start_run("web-release", namespace="release", params={"revision": "a3", "image": "x"})
    tekton.wait_for(released, namespace="release")
    tekton.start_run("other", params={"revision": "a4", "image": "x"})  # not configured: never listed
    before = len(tekton.requests("/apis/tekton.dev/v1/namespaces/"))
    latest = runs.latest(runs.targets.all)
    lists = tekton.requests("/apis/tekton.dev/v1/namespaces/")[before:]
    assert sorted(r.path for r in lists) == [
        "/apis/tekton.dev/v1/namespaces/ci/pipelineruns",
        "/apis/tekton.dev/v1/namespaces/release/pipelineruns",
    ]
    assert (latest.runs[0][0].pipeline, latest.runs[0][1].name) == ("api-ci", bad)
    assert {(t.pipeline, r.name) for t, r in latest.runs[1:]} == {("web-ci", ok), ("web-release", released)}
    assert latest.runs[0][1].status.kind == "failed"
    assert {r.pipeline for _, r in latest.runs} == {"web-ci", "api-ci", "web-release"}
    assert latest.unreachable == ()


def test_a_started_run_carries_config_params_labels_and_reads_back_with_its_tree(
    world: tuple[FakeTekton, PipelineRuns],
) -> None:
    tekton, runs = world
    target = runs.targets.resolve("web", "dev")
    started = runs.start(target, ["revision=abc1234"], StartedBy("U0ALICE", "alice"))
    stored = tekton.object("pipelineruns", started.name)
    assert stored["metadata"]["generateName"] == "web-ci-run-"
    assert stored["metadata"]["labels"][LABEL_STARTED_BY] == "U0ALICE"
    assert (stored["metadata"]["labels"][LABEL_APP], stored["metadata"]["labels"][LABEL_ENV]) == (
        "web",
        "dev",
    )
    spec = stored["spec"]
    assert {p["name"]: p["value"] for p in spec["params"]} == {
        "image": "registry.example.com/web",
        "revision": "abc1234",
    }
    assert spec["taskRunTemplate"]["serviceAccountName"] == "builder"
    assert spec["timeouts"]["pipeline"] == "30m0s"
    tekton.wait_for(started.name)
    detail = runs.read(RunRef("ci", "ci", started.name))
    assert detail.status.kind == "succeeded"
    assert [(t.pipeline_task, t.mark) for t in detail.tasks] == [("test", "✓")]
    assert detail.dashboard_url == f"https://tekton.example.com/#/namespaces/ci/pipelineruns/{started.name}"


def test_bad_params_are_refused_before_anything_is_created(world: tuple[FakeTekton, PipelineRuns]) -> None:
    tekton, runs = world
    target = runs.targets.resolve("web", "dev")
    for args, words in (
        (["revision"], "has no `=`"),
        (["nope=1"], "not declared"),
        (["revision=a", "revision=b"], "given twice"),
    ):
        with pytest.raises(UserError) as refused:
            runs.start(target, args, StartedBy("U0ALICE"))
        assert words in str(refused.value)
    assert tekton.objects("pipelineruns") == []


def test_a_failed_runs_log_tail_is_scrubbed(world: tuple[FakeTekton, PipelineRuns]) -> None:
    tekton, runs = world
    log_lines = [*(f"line {n}" for n in range(30)), "export NPM_TOKEN=npm_abcdefgh123"]
    tekton.fail_next("web-ci", "test", "unit", exit_code=2, log_lines=log_lines)
    target = runs.targets.resolve("web-ci")
    started = runs.start(target, ["revision=abc1234"], StartedBy("U0ALICE"))
    tekton.wait_for(started.name)
    detail = runs.read(RunRef("ci", "ci", started.name))
    log = runs.failure_log(detail, "ci")
    assert log is not None
    assert len(log.lines) == 20
    assert log.truncated
    assert "npm_abcdefgh123" not in log.text
    assert log.lines[-1].startswith("export NPM_TOKEN=")
