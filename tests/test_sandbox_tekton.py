"""The sandbox Tekton, driven by the official `kubernetes` client as the bot and tkn drive a real cluster.

Each test starts one fake API server (FakeKubernetes) with FakeTekton attached, creates PipelineRuns the way
`tkn pipeline start` builds them (docs/tekton-api.md §2), and checks what the client reads back against the
contract: reasons, messages, labels, step states, pods/log, v1beta1 conversion, CRD schemas, example shapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from sandbox.flux_fake import FakeKubernetes
from sandbox.k8s_create import NAME_ALPHABET
from sandbox.k8s_schema import StructuralSchema
from sandbox.tekton_fake import FakeTekton
from sandbox.tekton_kinds import load_schemas

CONTRACTS = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "tekton"
G, V1, V1B1 = "tekton.dev", "v1", "v1beta1"
NS = "ci"
PIPELINE = "deploy-web"


class World:
    def __init__(self, kube: FakeKubernetes, tekton: FakeTekton, api: client.ApiClient) -> None:
        self.kube, self.tekton, self.api = kube, tekton, api
        self.co = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    def start(self, *, version: str = V1, namespace: str = NS, **spec: Any) -> str:
        """POST the §2.1 body (generateName); the name comes from the 201 response."""
        body: dict[str, Any] = {
            "apiVersion": f"{G}/{version}",
            "kind": "PipelineRun",
            "metadata": {"generateName": f"{PIPELINE}-run-", "namespace": namespace},
            "spec": {
                "pipelineRef": {"name": PIPELINE},
                "params": [{"name": "revision", "value": "main"}],
                "taskRunTemplate": {"serviceAccountName": "deployer"},
                "timeouts": {"pipeline": "1h0m0s"},
                **spec,
            },
        }
        created = self.co.create_namespaced_custom_object(G, version, namespace, "pipelineruns", body)
        return str(created["metadata"]["name"])

    def run(self, name: str, version: str = V1) -> dict[str, Any]:
        obj: dict[str, Any] = self.co.get_namespaced_custom_object(G, version, NS, "pipelineruns", name)
        return obj

    def taskrun(self, name: str, version: str = V1) -> dict[str, Any]:
        obj: dict[str, Any] = self.co.get_namespaced_custom_object(G, version, NS, "taskruns", name)
        return obj

    def patch(self, name: str, body: Any) -> dict[str, Any]:
        kind = {"_content_type": "application/json-patch+json"} if isinstance(body, list) else {}
        obj: dict[str, Any] = self.co.patch_namespaced_custom_object(
            G, V1, NS, "pipelineruns", name, body, **kind
        )
        return obj

    def wait(self, name: str, reason: str | None = None) -> dict[str, Any]:
        def matches(obj: dict[str, Any]) -> bool:
            conditions = (obj.get("status") or {}).get("conditions") or [{}]
            return (
                conditions[0].get("reason") == reason
                if reason
                else conditions[0].get("status") in ("True", "False")
            )

        self.tekton.wait_for(name, until=matches)
        return self.run(name)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with FakeKubernetes(tick=0.01) as kube, FakeTekton(kube, tick=0.01, step_seconds=0.02) as tekton:
        tekton.add_simple_pipeline(
            PIPELINE,
            {"fetch": ["clone"], "test": ["lint", "unit", "report"], "deploy": ["apply"]},
            finally_={"notify": ["send"]},
        )
        tekton.add_simple_pipeline(
            "plain", {"fetch": ["clone"], "test": ["lint", "unit", "report"], "deploy": ["apply"]}
        )
        api = config.new_client_from_config(str(kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)))
        yield World(kube, tekton, api)
        api.close()


def condition(obj: dict[str, Any]) -> tuple[str, str, str]:
    c = obj["status"]["conditions"][0]
    return c["status"], c["reason"], c["message"]


def test_a_run_started_like_tkn_goes_running_then_succeeded(world: World) -> None:
    world.tekton.hold(PIPELINE, "test")
    name = world.start()
    assert re.fullmatch(f"{PIPELINE}-run-[{NAME_ALPHABET}]{{5}}", name)
    (post,) = [r for r in world.kube.requests("/apis/tekton.dev") if r.method == "POST"]
    assert (post.status, post.body["metadata"]) == (
        201,
        {"generateName": f"{PIPELINE}-run-", "namespace": NS},
    )
    run = world.wait(name, "Running")
    tr_name = f"{name}-test"
    world.tekton.wait_for(name, until=lambda o: len(o["status"]["childReferences"]) == 2)
    tr = world.taskrun(tr_name)
    world.tekton.wait_for(
        name, until=lambda _: world.taskrun(tr_name)["status"]["conditions"][0]["reason"] == "Running"
    )
    tr = world.taskrun(tr_name)
    run = world.run(name)
    assert run["metadata"]["labels"] == {"tekton.dev/pipeline": PIPELINE}
    assert condition(run)[:2] == ("Unknown", "Running")
    assert condition(run)[2] == "Tasks Completed: 1 (Failed: 0, Cancelled 0), Incomplete: 3, Skipped: 0"
    assert run["status"]["childReferences"][1] == {
        "apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": tr_name, "pipelineTaskName": "test"
    }  # fmt: skip
    labels = tr["metadata"]["labels"]
    assert labels["tekton.dev/pipelineRun"] == name
    assert labels["tekton.dev/pipelineTask"] == "test"
    assert labels["tekton.dev/memberOf"] == "tasks"
    assert labels["tekton.dev/task"] == f"{PIPELINE}-test"
    assert labels["tekton.dev/pipelineRunUID"] == run["metadata"]["uid"]
    assert tr["metadata"]["ownerReferences"][0]["uid"] == run["metadata"]["uid"]
    assert tr["spec"]["serviceAccountName"] == "deployer"
    assert tr["spec"]["params"] == [{"name": "revision", "value": "main"}]
    assert condition(tr) == ("Unknown", "Running", "Not all Steps in the Task have finished executing")
    assert tr["status"]["podName"] == f"{tr_name}-pod"
    assert [("running" in s, s["container"]) for s in tr["status"]["steps"]] == [
        (True, "step-lint"), (True, "step-unit"), (True, "step-report")
    ]  # fmt: skip
    world.tekton.release(PIPELINE, "test")
    run = world.wait(name)
    assert condition(run) == ("True", "Succeeded", "Tasks Completed: 4 (Failed: 0, Cancelled 0), Skipped: 0")
    assert run["status"]["completionTime"] >= run["status"]["startTime"]
    tr = world.taskrun(tr_name)
    assert condition(tr) == ("True", "Succeeded", "All Steps have completed executing")
    assert [(s["terminated"]["exitCode"], s["terminationReason"]) for s in tr["status"]["steps"]] == [
        (0, "Completed")
    ] * 3
    notify = world.taskrun(f"{name}-notify")
    assert notify["metadata"]["labels"]["tekton.dev/memberOf"] == "finally"


def test_a_failing_step_fails_the_run_with_its_log_tail(world: World) -> None:
    world.tekton.fail_next(
        PIPELINE, "test", "unit", exit_code=2, log_lines=["=== RUN TestA", "--- FAIL: TestA", "FAIL"]
    )
    name = world.start()
    run = world.wait(name)
    assert condition(run) == ("False", "Failed", "Tasks Completed: 3 (Failed: 1, Cancelled 0), Skipped: 1")
    assert run["status"]["skippedTasks"] == [{"name": "deploy", "reason": "PipelineRun was stopping"}]
    assert condition(world.taskrun(f"{name}-notify"))[1] == "Succeeded"  # finally still runs
    tr = world.taskrun(f"{name}-test")
    assert condition(tr) == ("False", "StepFailed", '"step-unit" exited with code 2: Error')
    steps = [
        (s["name"], s["terminated"]["exitCode"], s["terminated"]["reason"], s["terminationReason"])
        for s in tr["status"]["steps"]
    ]
    assert steps == [
        ("lint", 0, "Completed", "Completed"),
        ("unit", 2, "Error", "Error"),
        ("report", 1, "Error", "Skipped"),
    ]
    pod = tr["status"]["podName"]
    tail = world.core.read_namespaced_pod_log(pod, NS, container="step-unit", tail_lines=2)
    assert tail == "--- FAIL: TestA\nFAIL\n"
    log = world.kube.requests(f"/api/v1/namespaces/{NS}/pods/{pod}/log")[-1]
    assert log.query == {"container": ["step-unit"], "tailLines": ["2"]}
    with pytest.raises(ApiException) as bad:
        world.core.read_namespaced_pod_log(pod, NS, container="step-nope")
    assert bad.value.status == 400
    assert "is not valid for pod" in json.loads(bad.value.body)["message"]
    with pytest.raises(ApiException) as missing:
        world.core.read_namespaced_pod_log("no-such-pod", NS, container="step-unit")
    assert missing.value.status == 404
    # the next run has no fault left: it succeeds
    assert condition(world.wait(world.start()))[1] == "Succeeded"


def test_cancel_run_finally_cancels_the_running_task_and_runs_finally(world: World) -> None:
    world.tekton.hold(PIPELINE, "test")
    name = world.start()
    world.tekton.wait_for(
        name, until=lambda o: len((o.get("status") or {}).get("childReferences") or []) == 2
    )
    world.patch(name, [{"op": "replace", "path": "/spec/status", "value": "CancelledRunFinally"}])
    run = world.wait(name)
    assert condition(run) == ("False", "Cancelled", f'PipelineRun "{name}" was cancelled')
    assert run["status"]["skippedTasks"] == [{"name": "deploy", "reason": "PipelineRun was stopping"}]
    tr = world.taskrun(f"{name}-test")
    assert tr["spec"]["status"] == "TaskRunCancelled"
    assert tr["metadata"]["generation"] == 2
    message = "TaskRun cancelled as the PipelineRun it belongs to has been cancelled."
    assert condition(tr) == ("False", "TaskRunCancelled", f'TaskRun "{name}-test" was cancelled. {message}')
    assert {s["terminationReason"] for s in tr["status"]["steps"]} == {"TaskRunCancelled"}
    assert condition(world.taskrun(f"{name}-notify"))[1] == "Succeeded"
    with pytest.raises(ApiException) as gone:  # the cancelled TaskRun's pod is deleted
        world.core.read_namespaced_pod_log(tr["status"]["podName"], NS, container="step-unit")
    assert gone.value.status == 404
    with pytest.raises(ApiException) as done:
        world.patch(name, {"spec": {"status": "Cancelled"}})
    assert done.value.status == 400
    assert "Once the PipelineRun is complete" in json.loads(done.value.body)["message"]


def test_cancelled_stops_everything_and_skips_finally(world: World) -> None:
    world.tekton.hold(PIPELINE, "fetch")
    name = world.start()
    world.wait(name, "Running")
    world.patch(name, {"spec": {"status": "Cancelled"}})
    run = world.wait(name)
    assert condition(run) == ("False", "Cancelled", f'PipelineRun "{name}" was cancelled')
    assert "skippedTasks" not in run["status"]
    assert [c["pipelineTaskName"] for c in run["status"]["childReferences"]] == ["fetch"]


def test_stopped_run_finally_lets_running_tasks_finish(world: World) -> None:
    world.tekton.hold(PIPELINE, "test")
    name = world.start()
    world.tekton.wait_for(
        name, until=lambda o: len((o.get("status") or {}).get("childReferences") or []) == 2
    )
    world.patch(name, [{"op": "add", "path": "/spec/status", "value": "StoppedRunFinally"}])
    assert condition(world.wait(name, "StoppedRunningFinally"))[0] == "Unknown"
    world.tekton.release(PIPELINE, "test")
    run = world.wait(name)
    assert condition(run) == ("False", "Cancelled", f'PipelineRun "{name}" was cancelled')
    assert run["status"]["skippedTasks"] == [
        {"name": "deploy", "reason": "PipelineRun was gracefully stopped"}
    ]
    assert condition(world.taskrun(f"{name}-test"))[1] == "Succeeded"
    assert condition(world.taskrun(f"{name}-notify"))[1] == "Succeeded"


def test_a_pending_run_waits_until_the_field_is_cleared(world: World) -> None:
    name = world.start(status="PipelineRunPending")
    run = world.wait(name, "PipelineRunPending")
    assert condition(run) == ("Unknown", "PipelineRunPending", f'PipelineRun "{name}" is pending')
    assert "startTime" not in run["status"]
    assert "childReferences" not in run["status"]
    world.patch(name, [{"op": "remove", "path": "/spec/status"}])
    assert condition(world.wait(name))[1] == "Succeeded"
    started = world.start()
    world.wait(started, "Running")
    for body in (
        {"spec": {"status": "PipelineRunPending"}},
        {"spec": {"params": [{"name": "revision", "value": "x"}]}},
    ):
        with pytest.raises(ApiException) as refused:
            world.patch(started, body)
        message = json.loads(refused.value.body)["message"]
        assert refused.value.status == 400
        assert message.startswith(
            'admission webhook "validation.webhook.pipeline.tekton.dev" denied the request'
        )


def test_a_pipeline_timeout_cancels_the_children(world: World) -> None:
    world.tekton.hold(PIPELINE, "test")
    name = world.start(timeouts={"pipeline": "10m"})
    world.tekton.wait_for(
        name, until=lambda o: len((o.get("status") or {}).get("childReferences") or []) == 2
    )
    world.tekton.advance(601)
    run = world.wait(name)
    assert condition(run) == (
        "False",
        "PipelineRunTimeout",
        f'PipelineRun "{name}" failed to finish within "10m0s"',
    )
    assert run["spec"]["timeouts"]["pipeline"] == "10m"  # stored as written
    assert run["status"]["skippedTasks"] == [
        {"name": "deploy", "reason": "PipelineRun timeout has been reached"}
    ]
    tr = world.taskrun(f"{name}-test")
    assert tr["spec"]["statusMessage"] == "TaskRun cancelled as the PipelineRun it belongs to has timed out."
    assert condition(tr)[1] == "TaskRunCancelled"
    with pytest.raises(ApiException):
        world.taskrun(f"{name}-notify")  # finally does not run after a pipeline timeout


def test_list_across_namespaces_by_label(world: World) -> None:
    world.tekton.add_simple_pipeline(PIPELINE, {"build": ["compile"]}, namespace="team-b")
    names = [world.start(), world.start(namespace="team-b")]
    world.tekton.start_run("plain")
    for name in names[:1]:
        world.wait(name)
    world.tekton.wait_for(names[1], namespace="team-b")
    found = world.co.list_cluster_custom_object(
        G, V1, "pipelineruns", label_selector=f"tekton.dev/pipeline={PIPELINE}"
    )
    assert sorted(i["metadata"]["name"] for i in found["items"]) == sorted(names)
    children = world.co.list_namespaced_custom_object(
        G, V1, NS, "taskruns", label_selector=f"tekton.dev/pipelineRun={names[0]}"
    )
    assert {i["metadata"]["labels"]["tekton.dev/pipelineTask"] for i in children["items"]} == {
        "fetch",
        "test",
        "deploy",
        "notify",
    }


def test_v1beta1_reads_and_writes_convert(world: World) -> None:
    name = world.start()
    world.wait(name)
    old = world.run(name, V1B1)
    assert old["apiVersion"] == "tekton.dev/v1beta1"
    assert old["spec"]["serviceAccountName"] == "deployer"
    assert "taskRunTemplate" not in old["spec"]
    assert "taskRuns" not in old["status"]
    assert {c["apiVersion"] for c in old["status"]["childReferences"]} == {"tekton.dev/v1"}
    assert old["status"]["conditions"] == world.run(name)["status"]["conditions"]
    steps = world.taskrun(f"{name}-test", V1B1)["status"]["steps"]
    assert steps
    assert all("terminationReason" not in s for s in steps)
    body = {
        "apiVersion": "tekton.dev/v1beta1", "kind": "PipelineRun",
        "metadata": {"generateName": "old-", "namespace": NS},
        "spec": {"pipelineRef": {"name": PIPELINE}, "params": [{"name": "revision", "value": "v2"}],
                 "serviceAccountName": "legacy", "timeout": "30m"},
    }  # fmt: skip
    created = world.co.create_namespaced_custom_object(G, V1B1, NS, "pipelineruns", body)
    stored = world.run(created["metadata"]["name"])
    assert stored["spec"]["taskRunTemplate"] == {"serviceAccountName": "legacy"}
    assert stored["spec"]["timeouts"] == {"pipeline": "30m"}


def test_a_v1beta1_only_cluster_and_the_legacy_task_runs_map(tmp_path: Path) -> None:
    with (
        FakeKubernetes(tick=0.01) as kube,
        FakeTekton(
            kube, versions=("v1beta1",), legacy_task_runs=True, tick=0.01, step_seconds=0.01
        ) as tekton,
    ):
        tekton.add_simple_pipeline(PIPELINE, {"build": ["compile"]})
        api = config.new_client_from_config(str(kube.write_kubeconfig(tmp_path / "kc")))
        group = client.ApisApi(api).get_api_versions()
        (tekton_group,) = [g for g in group.groups if g.name == G]
        assert [v.version for v in tekton_group.versions] == [V1B1]
        co = client.CustomObjectsApi(api)
        with pytest.raises(ApiException) as missing:
            co.list_namespaced_custom_object(G, V1, NS, "pipelineruns")
        assert missing.value.status == 404
        name = tekton.start_run(PIPELINE, params={"revision": "main"})
        tekton.wait_for(name)
        run = co.get_namespaced_custom_object(G, V1B1, NS, "pipelineruns", name)
        (entry,) = run["status"]["taskRuns"].values()
        assert entry["pipelineTaskName"] == "build"
        assert entry["status"]["conditions"][0]["reason"] == "Succeeded"
        assert "childReferences" not in run["status"]
        api.close()


def test_discovery_lists_both_versions_v1_preferred(world: World) -> None:
    group = client.ApisApi(world.api).get_api_versions()
    (tekton_group,) = [g for g in group.groups if g.name == G]
    assert [v.version for v in tekton_group.versions] == [V1, V1B1]
    assert tekton_group.preferred_version.version == V1
    resources = world.co.get_api_resources(G, V1)
    by_name = {r.name: r for r in resources.resources}
    assert by_name["pipelineruns"].short_names == ["pr", "prs"]
    assert "pipelineruns/status" in by_name


def test_the_webhook_and_the_schema_reject_bad_runs(world: World) -> None:
    cases = [
        ({"pipelineSpec": {"tasks": []}}, 400, "expected exactly one, got both"),
        ({"status": "Paused"}, 400, "Paused should be Cancelled"),
        ({"params": [{"name": "revision"}]}, 422, "spec.params[0].value: Required value"),
    ]
    for spec, code, text in cases:
        with pytest.raises(ApiException) as refused:
            world.start(**spec)
        assert (refused.value.status, text in json.loads(refused.value.body)["message"]) == (code, True)
    name = world.start(params=[])
    assert condition(world.wait(name))[1] == "ParameterMissing"
    name = world.start(pipelineRef={"name": "nope"})
    assert condition(world.wait(name)) == (
        "False", "CouldntGetPipeline",
        f'Error retrieving pipeline for pipelinerun {NS}/{name}: pipelines.tekton.dev "nope" not found',
    )  # fmt: skip


def _paths(node: Any, prefix: str = "") -> set[str]:
    if isinstance(node, dict):
        out: set[str] = set()
        for key, value in node.items():
            out |= {f"{prefix}.{key}"} | _paths(value, f"{prefix}.{key}")
        return out
    if isinstance(node, list):
        return set().union(*(_paths(item, prefix + "[]") for item in node)) if node else set()
    return set()


def _examples() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(CONTRACTS.glob("examples/*.ASSEMBLED.yaml")):
        doc = yaml.safe_load(path.read_text())
        for item in doc.get("items", [doc]):
            found[f"{path.name.split('.')[0]}/{item['kind']}"] = item
    return found


def test_every_object_fits_the_crd_schema_and_the_contract_shapes(world: World) -> None:
    world.tekton.fail_next("plain", "test", "unit")
    failed = world.start(pipelineRef={"name": "plain"})
    world.wait(failed)
    world.tekton.hold("plain", "test", step="unit")
    cancelled, timedout = (
        world.start(pipelineRef={"name": "plain"}),
        world.start(pipelineRef={"name": "plain"}, timeouts={"pipeline": "10m0s"}),
    )
    for name in (cancelled, timedout):
        world.tekton.wait_for(
            name,
            until=lambda o: (
                "terminated" in world.taskrun(f"{o['metadata']['name']}-test")["status"]["steps"][0]
                if len((o.get("status") or {}).get("childReferences") or []) == 2
                else False
            ),
        )
    world.patch(cancelled, {"spec": {"status": "Cancelled"}})
    world.tekton.advance(601)
    ours = {"failed": failed, "cancelled": cancelled, "timedout": timedout}
    for name in ours.values():
        world.wait(name)
    schemas = {kind: StructuralSchema(info["versions"]["v1"]) for kind, info in load_schemas().items()}
    for entry in [*world.tekton.entries("pipelineruns"), *world.tekton.entries("taskruns")]:
        checked = schemas[entry.rtype.kind].check(entry.obj, sections=("spec", "status"))
        assert (entry.key, checked.causes, checked.unknown) == (entry.key, [], [])
    if not CONTRACTS.is_dir():
        pytest.skip("the contract examples are not next to the repository")
    ignored = {".metadata.managedFields", ".status.steps[].terminated.message"}
    for key, example in _examples().items():
        state, kind = key.split("/")
        if state not in ours:
            continue
        run = world.run(ours[state])
        obj = run if kind == "PipelineRun" else world.taskrun(f"{ours[state]}-test")
        missing = _paths(example) - _paths(obj) - ignored
        extra = {
            p
            for p in _paths(obj) - _paths(example)
            if not p.startswith((".metadata.managedFields", ".spec.params", ".spec.pipelineRef"))
        }
        assert (key, missing) == (key, set())
        assert (key, extra) == (key, set())


@pytest.mark.skipif(not CONTRACTS.is_dir(), reason="the contract files are not next to the repository")
def test_packaged_schemas_match_the_crd_contracts() -> None:
    extract = load_schemas()
    for path in sorted(CONTRACTS.glob("300-*.yaml")):
        crd = yaml.safe_load(path.read_text())
        info = extract[crd["spec"]["names"]["kind"]]
        assert sorted(info["versions"]) == sorted(v["name"] for v in crd["spec"]["versions"] if v["served"])
        assert info["shortNames"] == crd["spec"]["names"].get("shortNames", [])
        for version in crd["spec"]["versions"]:
            props = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            assert sorted(info["versions"][version["name"]]["properties"]["spec"]["properties"]) == sorted(
                props
            )
