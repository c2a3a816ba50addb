"""Request bodies for Tekton (as `tkn pipeline start` builds them, accepted by the contract CRDs),
param validation, the cancel patch, and scrubbed log tails."""

from __future__ import annotations

from typing import Any

import pytest

from services.errors import UserError
from services.redaction import REDACTED, Redactor
from services.tekton import convert
from services.tekton.logs import LogTarget, failing_container, step_container, tail
from services.tekton.runs import (
    CANCEL_PATCH,
    ParamSpec,
    StartedBy,
    Timeouts,
    cancel_patch,
    declared_params,
    ensure_cancellable,
    pipelinerun_body,
    resolve_params,
)
from tests.tekton_fixtures import example, schema_problems, split

PIPELINE: dict[str, Any] = {
    "apiVersion": "tekton.dev/v1",
    "kind": "Pipeline",
    "metadata": {"name": "deploy-web", "namespace": "ci"},
    "spec": {
        "params": [
            {"name": "revision", "type": "string"},
            {"name": "targets", "type": "array", "default": []},
            {"name": "flags", "type": "object", "default": {}},
            {"name": "image", "default": "web:latest"},  # untyped: the webhook defaults to string
            {"name": "extra", "default": ["a"]},  # untyped with a list default: array
        ],
        "tasks": [{"name": "build", "taskRef": {"name": "build"}}],
    },
}


def test_body_is_what_tkn_sends_per_the_contract() -> None:
    body = pipelinerun_body(
        "deploy-web",
        "ci",
        params={"revision": "main"},
        service_account="deployer",
        timeouts=Timeouts(pipeline="1h0m0s"),
    )
    # docs/tekton-api.md §2.1, verbatim.
    assert body == {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"generateName": "deploy-web-run-", "namespace": "ci"},
        "spec": {
            "pipelineRef": {"name": "deploy-web"},
            "params": [{"name": "revision", "value": "main"}],
            "taskRunTemplate": {"serviceAccountName": "deployer"},
            "timeouts": {"pipeline": "1h0m0s"},
        },
    }
    assert schema_problems(body, "pipelineruns", "v1") == []


def test_full_body_v1_and_v1beta1_are_accepted_by_the_crd() -> None:
    params = resolve_params(
        ["targets=eu,us", "flags=dry:true, verbose: 1", "image=web:1.2"],
        configured={"revision": "abc1234"},
        declared=declared_params(PIPELINE),
    )
    workspaces = [
        {"name": "source", "persistentVolumeClaim": {"claimName": "src"}, "subPath": "web"},
        {"name": "cache", "emptyDir": {}},
    ]
    kwargs: dict[str, Any] = {
        "params": params,
        "workspaces": workspaces,
        "service_account": "deployer",
        "timeouts": Timeouts(pipeline="1h0m0s", tasks="45m", finally_="10m"),
        "started_by": StartedBy("U123ABC", "alice", "req-42"),
        "labels": {"gitops-bot.io/app": "web", "gitops-bot.io/env": "prod"},
    }
    v1 = pipelinerun_body("deploy-web", "ci", **kwargs)
    assert v1["metadata"] == {
        "generateName": "deploy-web-run-",
        "namespace": "ci",
        "labels": {
            "gitops-bot.io/app": "web",
            "gitops-bot.io/env": "prod",
            "gitops-bot.io/started-by": "U123ABC",
        },
        "annotations": {"gitops-bot.io/started-by-name": "alice", "gitops-bot.io/request-id": "req-42"},
    }
    # Sorted by name like tkn's MergeParam, typed by the Pipeline's declarations.
    assert v1["spec"]["params"] == [
        {"name": "flags", "value": {"dry": "true", "verbose": "1"}},
        {"name": "image", "value": "web:1.2"},
        {"name": "revision", "value": "abc1234"},
        {"name": "targets", "value": ["eu", "us"]},
    ]
    assert v1["spec"]["workspaces"] == workspaces
    assert v1["spec"]["timeouts"] == {"pipeline": "1h0m0s", "tasks": "45m", "finally": "10m"}
    assert schema_problems(v1, "pipelineruns", "v1") == []
    beta = pipelinerun_body("deploy-web", "ci", api_version="v1beta1", **kwargs)
    assert beta["apiVersion"] == "tekton.dev/v1beta1"
    assert beta["spec"]["serviceAccountName"] == "deployer"
    assert "taskRunTemplate" not in beta["spec"]
    assert schema_problems(beta, "pipelineruns", "v1beta1") == []
    # The run the bot started reads back with its starter.
    stored = {**v1, "metadata": {**v1["metadata"], "name": "deploy-web-run-x7k2p"}}
    summary = convert.summary(stored)
    assert (summary.started_by, summary.started_by_name, summary.status.label) == (
        "U123ABC",
        "alice",
        "queued",
    )


def test_prefix_name_and_no_optional_fields() -> None:
    body = pipelinerun_body("web-ci", "ci", prefix_name="nightly")
    assert body["metadata"] == {"generateName": "nightly-", "namespace": "ci"}
    assert body["spec"] == {"pipelineRef": {"name": "web-ci"}}


def test_declared_params_types() -> None:
    declared = declared_params(PIPELINE)
    assert declared["revision"] == ParamSpec("revision", "string", False)
    assert declared["image"].type == "string"
    assert declared["extra"].type == "array"
    assert declared["flags"] == ParamSpec("flags", "object", True)


def test_params_without_a_known_spec_are_strings() -> None:
    assert resolve_params(["list=a,b", "url=https://x/y?a=b=c"]) == {
        "list": "a,b",
        "url": "https://x/y?a=b=c",
    }
    assert resolve_params(["targets="], declared=declared_params(PIPELINE), configured={"revision": "x"}) == {
        "revision": "x",
        "targets": [],
    }


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["revision"], "has no `=`"),
        (["$(context.pipelineRun.name)=x"], "Invalid param name"),
        (["re vision=x"], "Invalid param name"),
        (["-x=1"], "Invalid param name"),
        (["1abc=1"], "Invalid param name"),
        (["=x"], "Invalid param name"),
        (["unknown=1"], "not declared by the pipeline"),
        (["revision=a\nb"], "line break or control character"),
        (["revision=a\x1b[31m"], "line break or control character"),
        (["revision=\u202eevil"], "line break or control character"),
        (["revision=" + "x" * 1001], "1001 characters long"),
        (["revision=a", "revision=b"], "given twice"),
        (["flags=novalue"], "object params are written"),
        ([], "needs a value for `revision`"),
    ],
)
def test_param_refusals(args: list[str], fragment: str) -> None:
    with pytest.raises(UserError) as err:
        resolve_params(args, declared=declared_params(PIPELINE))
    assert fragment in err.value.message


def test_protected_and_configured_params() -> None:
    declared = declared_params(PIPELINE)
    with pytest.raises(UserError, match="set by the bot's configuration"):
        resolve_params(
            ["revision=evil"], configured={"revision": "abc"}, declared=declared, protected={"revision"}
        )
    got = resolve_params(
        ["image=web:2"], configured={"revision": "abc", "targets": ["eu"]}, declared=declared
    )
    assert got == {"revision": "abc", "targets": ["eu"], "image": "web:2"}
    with pytest.raises(UserError, match="must be a string"):
        resolve_params([], configured={"revision": 3})


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"timeouts": Timeouts(pipeline="1 hour")}, "Invalid pipeline timeout"),
        ({"timeouts": Timeouts(pipeline="30m", tasks="20m", finally_="20m")}, "at least the tasks timeout"),
        ({"workspaces": [{"name": "w"}]}, "exactly one of"),
        (
            {"workspaces": [{"name": "w", "emptyDir": {}, "hostPath": {"path": "/"}}]},
            "unknown keys: hostPath",
        ),
        ({"labels": {"gitops-bot.io/app": "bad value"}}, "Invalid label value"),
        ({"service_account": "Bad SA"}, "Invalid service account"),
    ],
)
def test_body_refusals(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(UserError, match=fragment):
        pipelinerun_body("deploy-web", "ci", **kwargs)


def test_body_refuses_bad_names_and_zero_timeout_is_allowed() -> None:
    with pytest.raises(UserError, match="Invalid pipeline name"):
        pipelinerun_body("Deploy_Web", "ci")
    with pytest.raises(UserError, match="Invalid namespace name"):
        pipelinerun_body("web", "../ci")
    body = pipelinerun_body("web", "ci", timeouts=Timeouts(pipeline="0", tasks="30m"))
    assert body["spec"]["timeouts"] == {"pipeline": "0", "tasks": "30m"}


def test_cancel_patch_and_finished_runs() -> None:
    assert cancel_patch() == CANCEL_PATCH == {"spec": {"status": "CancelledRunFinally"}}
    assert cancel_patch("StoppedRunFinally") == {"spec": {"status": "StoppedRunFinally"}}
    for name in ("failed.ASSEMBLED.yaml", "cancelled.ASSEMBLED.yaml", "pipelinerun-succeeded.REAL.json"):
        with pytest.raises(UserError, match="already finished execution"):
            ensure_cancellable(example(name)[0])
    ensure_cancellable(example("pipelinerun-running.REAL.json")[0])
    ensure_cancellable({"metadata": {"name": "fresh"}, "spec": {}})  # no status yet: cancellable


# -- log tails ------------------------------------------------------------------------------


def test_failing_container_of_the_failed_example() -> None:
    d = convert.detail(*split("failed.ASSEMBLED.yaml"))
    target = failing_container(d)
    assert target == LogTarget("ci", "deploy-web-run-x7k2p-test-pod", "step-unit", "test", "unit")
    assert failing_container(convert.detail(*split("cancelled.ASSEMBLED.yaml"))) is None
    test = d.task("test")
    assert test is not None
    assert step_container(test, "ci", "lint") == LogTarget(
        "ci", "deploy-web-run-x7k2p-test-pod", "step-lint", "test", "lint"
    )


def test_log_tail_is_scrubbed_and_bounded() -> None:
    secret = "s3cr3t-deploy-token-value"
    lines = [f"line {i}" for i in range(30)]
    lines += [
        f"using token {secret}",
        "export DB_PASSWORD=hunter2hunter2",
        '{"api_key": "abcd1234efgh"}',
        "Authorization: Bearer abcdefghijklmnop",
        "curl -H 'Authorization: Basic dXNlcjpwYXNz' https://x",
        "aws key AKIAABCDEFGHIJKLMNOP found",
        "clone https://bob:pa55word@git.example.com/repo.git",
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEA",
        "-----END RSA PRIVATE KEY-----",
        "\x1b[31mFAIL\x1b[0m TestDeploy \x07<@U999> " + "y" * 400,
        "",
    ]
    target = LogTarget("ci", "p", "step-unit", "test", "unit")
    out = tail("\n".join(lines), target, Redactor([secret]), lines=12)
    assert out.truncated
    assert len(out.lines) == 12
    text = out.text
    leaks = [secret, "hunter2hunter2", "abcd1234efgh", "abcdefghijklmnop", "dXNlcjpwYXNz"]
    leaks += ["AKIAABCDEFGHIJKLMNOP", "pa55word", "MIIEpAIBAAKCAQEA"]
    for leaked in leaks:
        assert leaked not in text
    assert "DB_PASSWORD=" + REDACTED in text
    assert "Bearer " + REDACTED in text
    assert "\x1b" not in text
    assert "\x07" not in text
    last = out.lines[-1]
    assert last.startswith("FAIL TestDeploy <@U999> ")
    assert len(last) == 300
    assert last.endswith("…")
    assert out.lines[0] == "line 28"
