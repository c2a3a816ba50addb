"""The HTTP layer both host clients share (services/githost/transport.py), driven through GitHubClient
against the scripted stub: retries, unknown write outcomes, timeouts, rate-limit pauses, serialised
writes, pagination safety, metrics, and tokens kept out of every error and log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from services.githost import (
    GitHubClient,
    HostError,
    HostNotFound,
    HostRateLimited,
    HostUnavailable,
    WriteGate,
    WriteOutcomeUnknown,
)
from services.metrics import Metrics
from tests.githost_stub import DOCS, Reply, Sleeps, Stub, gh, gh_error, oas_example, pull, together

TOKEN = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
APPROVER = "ghp_Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"
R = "/api/v3/repos/octo-org/deploy"
HEAD = "gitops-bot/promote/web-prod-1"
NOW = 1_800_000_000.0


@pytest.fixture
def stub() -> Iterator[Stub]:
    with Stub() as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make(stub: Stub, sleeps: Sleeps, **options) -> GitHubClient:
    options.setdefault("clock", lambda: NOW)
    return GitHubClient(stub.url + "/api/v3", "octo-org/deploy", SecretStr(TOKEN), sleep=sleeps, **options)


@pytest.fixture
def client(stub: Stub, sleeps: Sleeps) -> Iterator[GitHubClient]:
    with make(stub, sleeps) as github:
        yield github


def test_calls_are_timed_and_failures_counted_in_the_metrics(stub, sleeps):
    metrics = Metrics()
    stub.on("GET", f"{R}/pulls/1", gh("pulls/get", 200, pull(1)))
    stub.on("GET", f"{R}/pulls/2", gh("pulls/get", 404, {"message": "Not Found", "documentation_url": DOCS}))
    with make(stub, sleeps, metrics=metrics) as github:
        github.get(1)
        with pytest.raises(HostNotFound):
            github.get(2)

    labels = {"backend": "github:octo-org/deploy", "operation": "get pull request"}
    sample = metrics.registry.get_sample_value
    assert sample("gitops_bot_backend_request_seconds_count", labels) == 2
    assert sample("gitops_bot_backend_errors_total", {**labels, "kind": "HostNotFound"}) == 1


def test_pagination_never_follows_a_link_to_another_origin(stub, client):
    evil = '<https://collector.example.net/steal?page=2>; rel="next"'
    stub.on("GET", f"{R}/pulls", gh("pulls/list", 200, [], {"Link": evil}))

    with pytest.raises(HostUnavailable, match="another host"):
        client.find_open(HEAD, "main")

    assert len(stub.seen) == 1


def test_secondary_rate_limit_backs_off_a_minute_then_more_and_pauses_writes_only(stub, sleeps):
    clock = [NOW]
    github = make(stub, sleeps, clock=lambda: clock[0])
    body = {
        "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
    }
    stub.on("POST", f"{R}/issues/1/comments", gh("issues/create-comment", 403, body))
    stub.on("GET", f"{R}/pulls/1", gh("pulls/get", 200, pull(1)))

    with pytest.raises(HostRateLimited) as first:
        github.comment(1, "hello")
    assert (first.value.kind, first.value.retry_after) == ("secondary", 60.0)
    github.get(1)  # reads still go
    with pytest.raises(HostRateLimited):
        github.comment(1, "again")  # writes wait out the pause without asking
    assert len(stub.calls("POST", f"{R}/issues/1/comments")) == 1

    clock[0] += 61
    with pytest.raises(HostRateLimited) as second:
        github.comment(1, "later")
    assert second.value.retry_after == 120.0  # exponential without a retry-after header
    github.shutdown()


def test_a_get_is_retried_on_5xx_with_backoff_then_reported_unavailable(stub, client, sleeps):
    busy, crash = (
        gh("pulls/get", 503, gh_error("Service unavailable")),
        gh("pulls/get", 500, gh_error("Oops")),
    )
    stub.on("GET", f"{R}/pulls/1", busy, crash, gh("pulls/get", 200, pull(1)))
    stub.on("GET", f"{R}/pulls/2", busy)

    assert client.get(1).number == 1
    assert len(sleeps) == 2
    assert sleeps[1] > sleeps[0] * 0.3  # grows (with jitter)
    with pytest.raises(HostUnavailable) as caught:
        client.get(2)
    assert not isinstance(caught.value, WriteOutcomeUnknown)
    assert (len(stub.calls("GET", f"{R}/pulls/1")), len(stub.calls("GET", f"{R}/pulls/2"))) == (3, 3)


def test_a_write_that_gets_a_5xx_is_sent_once_and_reported_as_unknown(stub, client):
    stub.on("POST", f"{R}/issues/1/comments", gh("issues/create-comment", 502, {"message": "Bad gateway"}))

    with pytest.raises(WriteOutcomeUnknown):
        client.comment(1, "hello")
    assert len(stub.seen) == 1


def test_timeouts_retry_reads_but_not_writes(stub, sleeps):
    github = make(stub, sleeps, timeout=0.3)
    stub.on("GET", f"{R}/pulls/1", Reply(200, b"{}", delay=0.8), gh("pulls/get", 200, pull(1)))
    stub.on("POST", f"{R}/issues/1/comments", Reply(201, b"{}", delay=0.8))

    assert github.get(1).number == 1
    with pytest.raises(WriteOutcomeUnknown):
        github.comment(1, "hello")
    assert len(stub.calls("POST", f"{R}/issues/1/comments")) == 1
    github.shutdown()


def test_writes_to_one_repository_are_serialised_reads_are_not(stub, sleeps):
    gate = WriteGate()
    first, second = make(stub, sleeps, gate=gate), make(stub, sleeps, gate=gate)
    stub.on(
        "POST",
        f"{R}/issues/1/comments",
        Reply(201, json.dumps(oas_example("issue-comment")).encode(), delay=0.2),
    )
    stub.on("GET", f"{R}/pulls/1", Reply(200, json.dumps(pull(1)).encode(), delay=0.2))

    together(lambda: first.comment(1, "a"), lambda: second.comment(1, "b"))
    assert stub.max_in_flight == 1
    together(lambda: first.get(1), lambda: second.get(1))
    assert stub.max_in_flight == 2


def test_no_token_in_any_error_text_repr_or_log(stub, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    echo = {
        "message": f"Bad credentials: Bearer {TOKEN}",
        "errors": [f"token {APPROVER} refused"],
        "documentation_url": DOCS,
    }
    stub.on("GET", f"{R}/pulls/1", gh("pulls/get", 401, echo))
    stub.on("GET", f"{R}/pulls/2", gh("pulls/get", 503, {"message": f"upstream saw {TOKEN}"}))
    stub.on("POST", f"{R}/pulls/3/reviews", gh("pulls/create-review", 422, echo))
    stub.on("PUT", f"{R}/pulls/3/merge", gh("pulls/merge", 405, {"message": f"not allowed for {TOKEN}"}))
    stub.on(
        "POST", f"{R}/issues/3/comments", gh("issues/create-comment", 403, {"message": f"{TOKEN} forbidden"})
    )
    github = make(stub, sleeps, approve_token=SecretStr(APPROVER))
    errors: list[HostError] = []
    for call in (
        lambda: github.get(1),
        lambda: github.get(2),
        lambda: github.approve(3, "abc"),
        lambda: github.merge(3, "abc"),
        lambda: github.comment(3, "x"),
    ):
        with pytest.raises(HostError) as caught:
            call()
        errors.append(caught.value)

    texts = [repr(github), caplog.text]
    for exc in errors:
        texts += [str(exc), repr(exc), repr(exc.args), str(getattr(exc, "hint", "")), str(vars(exc))]
    for text in texts:
        assert TOKEN not in text
        assert APPROVER not in text
    assert "[REDACTED]" in str(errors[2]) or "[REDACTED]" in str(errors[3])
    github.shutdown()
