"""services/tekton's client against the sandbox Tekton (a real HTTP API server, the official client):
discovery, a run started as `tkn pipeline start` builds it, followed to a failure with its step's log
tail, cancel, and the v1beta1 fallback. The Slack commands built on it come with issue 16."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.flux_fake import FakeKubernetes
from sandbox.tekton_fake import FakeTekton
from services.redaction import Redactor
from services.tekton import convert
from services.tekton.client import TektonClient
from services.tekton.logs import failing_container, tail
from services.tekton.runs import StartedBy, cancel_patch, pipelinerun_body

NS = "ci"
PIPELINE = "web-ci"
TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"  # a secret a build step printed


@dataclass(frozen=True)
class Cluster:
    name: str
    kubeconfig: Path | None
    context: str | None = "sandbox"
    in_cluster: bool = False


def _tekton(tmp_path: Path, **options: object) -> Iterator[tuple[FakeTekton, TektonClient]]:
    with (
        FakeKubernetes(tick=0.01) as kube,
        FakeTekton(kube, tick=0.01, step_seconds=0.02, **options) as tekton,
    ):
        tekton.add_simple_pipeline(
            PIPELINE, {"fetch": ["clone"], "test": ["lint", "unit"]}, params=("revision",)
        )
        client = TektonClient(Cluster("ci", kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)))
        try:
            yield tekton, client
        finally:
            client.close()


@pytest.fixture
def tekton(tmp_path: Path) -> Iterator[tuple[FakeTekton, TektonClient]]:
    yield from _tekton(tmp_path)


def test_a_run_started_like_tkn_fails_and_its_step_log_tail_is_read_scrubbed(
    tekton: tuple[FakeTekton, TektonClient],
) -> None:
    fake, client = tekton
    assert client.version() == "v1"
    log = [f"test {n} ok" for n in range(30)] + [f"push with token {TOKEN}", "FAIL: TestDeploy"]
    fake.fail_next(PIPELINE, "test", "unit", exit_code=2, log_lines=log)
    body = pipelinerun_body(
        PIPELINE, NS, params={"revision": "abc1234"}, started_by=StartedBy("U0ALICE", "alice")
    )
    created = client.create_pipelinerun(NS, body)
    name = created["metadata"]["name"]
    assert name.startswith(f"{PIPELINE}-run-")
    fake.wait_for(name)
    run = client.get_pipelinerun(NS, name)
    detail = convert.detail(run, client.list_taskruns(NS, name))
    assert detail.summary.status.kind == "failed"
    assert detail.failure is not None
    assert (detail.failure.pipeline_task, detail.failure.step, detail.failure.exit_code) == (
        "test",
        "unit",
        2,
    )
    target = failing_container(detail)
    assert target is not None
    assert target.container == "step-unit"
    text = client.read_log(NS, target.pod, target.container, tail_lines=20)
    shown = tail(text, target, Redactor([TOKEN]), lines=20)
    assert shown.lines[-1] == "FAIL: TestDeploy"
    assert TOKEN not in shown.text
    assert [
        convert.summary(r).name for r in client.list_pipelineruns(NS, selector="gitops-bot.io/started-by")
    ] == [name]


def test_cancel_lets_finally_run_and_reads_cancelled(tekton: tuple[FakeTekton, TektonClient]) -> None:
    fake, client = tekton
    fake.hold(PIPELINE, "test")
    name = client.create_pipelinerun(NS, pipelinerun_body(PIPELINE, NS, params={"revision": "main"}))[
        "metadata"
    ]["name"]
    fake.wait_for(name, until=lambda obj: bool((obj.get("status") or {}).get("childReferences")))
    client.cancel_pipelinerun(NS, name)
    assert cancel_patch()["spec"]["status"] == "CancelledRunFinally"
    fake.release(PIPELINE, "test")
    fake.wait_for(name)
    assert convert.summary(client.get_pipelinerun(NS, name)).status.kind == "cancelled"


def test_a_cluster_serving_only_v1beta1_is_used_in_v1beta1(tmp_path: Path) -> None:
    for fake, client in _tekton(tmp_path, versions=("v1beta1",)):
        assert client.version() == "v1beta1"
        body = pipelinerun_body(PIPELINE, NS, params={"revision": "main"}, api_version="v1beta1")
        name = client.create_pipelinerun(NS, body)["metadata"]["name"]
        fake.wait_for(name)
        assert convert.summary(client.get_pipelinerun(NS, name)).status.kind == "succeeded"
