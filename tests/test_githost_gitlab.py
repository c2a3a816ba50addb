"""GitLabClient against a scripted HTTP stub answering with GitLab's documented bodies (githost-api.md §6)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from services.errors import BackendUnavailable, PermissionDenied, UserError
from services.githost import (
    ApprovalRefused,
    GitLabClient,
    HeadMoved,
    HostError,
    HostPermissionDenied,
    HostRateLimited,
    HostUnauthorized,
    HostUserError,
    NotMergeable,
    WriteOutcomeUnknown,
    build_host,
    settle,
)
from services.githost import gitlab_convert as convert
from services.githost import readiness as ready
from tests.githost_stub import Reply, Sleeps, Stub, gitlab_example, gl, merge_request

TOKEN = "glpat-Qw3rTy8uIoP1aSdFgHjK"
APPROVER = "glpat-Zx9cVb7nMlKjHgFdSaQw"
P = "/api/v4/projects/platform%2Fsub%2Fdeploy"
SOURCE = "gitops-bot/promote/web-prod-1"
NOW = 1_800_000_000.0


@pytest.fixture
def stub() -> Iterator[Stub]:
    with Stub() as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make(stub: Stub, sleeps: Sleeps, project: str | int = "platform/sub/deploy", **options) -> GitLabClient:
    return GitLabClient(
        stub.url + "/api/v4", project, SecretStr(TOKEN), sleep=sleeps, clock=lambda: NOW, **options
    )


@pytest.fixture
def client(stub: Stub, sleeps: Sleeps) -> Iterator[GitLabClient]:
    with make(stub, sleeps) as gitlab:
        yield gitlab


def mr_reply(status: int = 200, **fields) -> Reply:
    return gl("mr-get.200.json", status, merge_request(**fields))


def test_private_token_header_and_the_project_path_encoded_as_one_segment(stub, client):
    stub.on("GET", f"{P}/merge_requests/133", mr_reply())

    mr = client.get(133)

    assert (mr.host, mr.number, mr.state, mr.mergeable, mr.merge_state) == (
        "gitlab",
        133,
        "open",
        True,
        "mergeable",
    )
    assert mr.url.endswith("/merge_requests/133")
    seen = stub.seen[0]
    assert seen.path == f"{P}/merge_requests/133"  # group%2Fsub%2Fproject, not three path segments
    assert seen.headers["private-token"] == TOKEN
    assert "authorization" not in seen.headers


def test_a_numeric_project_id_is_used_as_is(stub, sleeps):
    stub.on("GET", "/api/v4/projects/15513260/merge_requests/133", mr_reply())

    with make(stub, sleeps, project=15513260) as gitlab:
        assert gitlab.get(133).number == 133


def test_find_open_queries_by_branches_and_follows_link_pages(stub, client):
    page2 = f"{stub.url}{P}/merge_requests?state=opened&per_page=100&page=2"
    other = merge_request(7, source="someone/else")
    stub.on(
        "GET",
        f"{P}/merge_requests",
        gl("mr-get.200.json", 200, [other], {"Link": f'<{page2}>; rel="next"', "X-Next-Page": "2"}),
        gl("mr-get.200.json", 200, [merge_request(9, detailed="checking")]),
    )
    stub.on("GET", f"{P}/merge_requests/9", mr_reply(iid=9, detailed="not_approved"))

    mr = client.find_open(SOURCE, "main")

    assert mr is not None
    assert (mr.number, mr.merge_state) == (9, "not_approved")  # the single GET, fresher than the list
    first, second = stub.calls("GET", f"{P}/merge_requests")
    assert (first.q("state"), first.q("source_branch"), first.q("target_branch")) == (
        "opened",
        SOURCE,
        "main",
    )
    assert second.q("page") == "2"


def test_create_sends_labels_as_one_string_and_removes_the_source_branch(stub, client):
    created = gitlab_example("mr-create.201.json")
    created.update(state="opened", detailed_merge_status="preparing", source_branch=SOURCE, iid=12)
    stub.on("POST", f"{P}/merge_requests", gl("mr-create.201.json", 201, created))

    mr = client.create(
        SOURCE, "main", "Promote web to prod", "diff…", labels=["gitops", "prod"], reviewers=["12"]
    )

    assert (mr.number, mr.state, mr.mergeable) == (12, "open", None)
    assert stub.seen[0].body == {
        "source_branch": SOURCE,
        "target_branch": "main",
        "title": "Promote web to prod",
        "description": "diff…",
        "remove_source_branch": True,
        "labels": "gitops,prod",
        "reviewer_ids": [12],
    }


def test_create_409_adopts_the_open_mr(stub, client):
    stub.on(
        "POST",
        f"{P}/merge_requests",
        gl(None, 409, {"message": ["Another open merge request already exists for this source branch: !38"]}),
    )
    stub.on("GET", f"{P}/merge_requests", gl("mr-get.200.json", 200, [merge_request(38)]))
    stub.on("GET", f"{P}/merge_requests/38", mr_reply(iid=38))

    assert client.create(SOURCE, "main", "t", "b").number == 38
    assert len(stub.calls("POST", f"{P}/merge_requests")) == 1


def test_usernames_as_reviewers_are_refused_before_any_call(stub, client):
    with pytest.raises(HostUserError, match="numeric"):
        client.create(SOURCE, "main", "t", "b", reviewers=["alice"])
    assert stub.seen == []


def test_checking_then_mergeable_is_waited_for(stub, client, sleeps):
    stub.on(
        "GET",
        f"{P}/merge_requests/133",
        mr_reply(detailed="preparing"),
        mr_reply(detailed="checking"),
        mr_reply(detailed="mergeable"),
    )

    mr, readiness = settle(client, 133, sleep=sleeps, clock=lambda: 0.0)

    assert (readiness.kind, mr.mergeable) == ("ready", True)
    assert sleeps == [1.0, 2.0]


def test_not_approved_says_how_many_approvals_are_left(stub, client):
    approvals = gl("mr-approvals.200.json", 200, gitlab_example("mr-approvals.200.json"))
    stub.on("GET", f"{P}/merge_requests/5/approvals", approvals)
    mr = convert.merge_request(merge_request(5, detailed="not_approved"))

    readiness = client.readiness(mr)

    assert (readiness.kind, readiness.missing) == ("blocked", ("1 more approval(s) on GitLab (1/2)",))


def test_ci_must_pass_shows_the_head_pipeline(stub, client):
    stub.on("GET", f"{P}/merge_requests/133", mr_reply(detailed="ci_must_pass"))
    mr = convert.merge_request(merge_request(detailed="ci_must_pass"))

    readiness = client.readiness(mr)
    checks = client.checks(mr)

    assert readiness.missing == ("the pipeline must pass (now `failed`)",)
    assert [(c.name, c.outcome, c.url) for c in checks] == [
        (
            "pipeline #538317940",
            "failure",
            "https://gitlab.com/marcel.amirault/test-project/-/pipelines/538317940",
        )
    ]


@pytest.mark.parametrize(
    ("fields", "kind", "needs_update"),
    [
        ({"detailed": "mergeable"}, "ready", False),
        ({"detailed": "unchecked"}, "wait", False),
        ({"detailed": "approvals_syncing"}, "wait", False),
        ({"detailed": "ci_still_running"}, "wait", False),
        ({"detailed": "need_rebase"}, "blocked", True),
        ({"detailed": "conflict"}, "conflict", False),
        ({"detailed": "draft_status", "draft": True}, "blocked", False),
        ({"detailed": "discussions_not_resolved"}, "blocked", False),
        ({"detailed": "mergeable", "state": "locked"}, "ready", False),
        ({"detailed": "not_open", "state": "closed"}, "closed", False),
        ({"detailed": "not_open", "state": "merged"}, "merged", False),
    ],
)
def test_detailed_merge_status_maps_to_what_the_bot_does(fields, kind, needs_update):
    readiness = ready.gitlab(convert.merge_request(merge_request(**fields)))

    assert (readiness.kind, readiness.needs_update) == (kind, needs_update)


def test_without_detailed_merge_status_the_legacy_field_is_read():
    body = merge_request()
    del body["detailed_merge_status"]
    body["merge_status"] = "cannot_be_merged"

    mr = convert.merge_request(body)

    assert (mr.mergeable, ready.gitlab(mr).kind) == (False, "conflict")


def test_approve_binds_the_head_sha_and_uses_the_approving_identity(stub, sleeps):
    approved = gl("mr-approve.201.json", 201, gitlab_example("mr-approve.201.json"))
    stub.on("POST", f"{P}/merge_requests/5/approve", approved)
    host = build_host(
        "gitlab", stub.url + "/api/v4", "platform/sub/deploy", SecretStr(TOKEN), SecretStr(APPROVER)
    )

    host.approve(5, "e82eb4a0")
    host.shutdown()

    assert stub.seen[0].body == {"sha": "e82eb4a0"}
    assert stub.seen[0].headers["private-token"] == APPROVER


def test_approve_409_means_the_head_moved_and_401_is_a_refused_approval(stub, client):
    stub.on(
        "POST",
        f"{P}/merge_requests/5/approve",
        gl(None, 409, {"message": "SHA does not match HEAD of source branch"}),
        gl(None, 401, {"message": "401 Unauthorized"}),
    )

    with pytest.raises(HeadMoved):
        client.approve(5, "old")
    with pytest.raises(ApprovalRefused) as caught:
        client.approve(5, "new")
    assert isinstance(caught.value, UserError)
    assert "second identity" in (caught.value.hint or "")


def test_merge_sends_the_sha_squash_and_branch_removal(stub, client):
    merged = gitlab_example("mr-merge.200.json")
    merged["merge_commit_sha"] = "d" * 40
    stub.on("PUT", f"{P}/merge_requests/1/merge", gl("mr-merge.200.json", 200, merged))

    result = client.merge(1, "8888", method="squash", title="Promote web", remove_branch=True)

    assert (result.merged, result.sha) == (True, "d" * 40)
    assert stub.seen[0].body == {
        "sha": "8888",
        "should_remove_source_branch": True,
        "squash": True,
        "squash_commit_message": "Promote web",
    }


@pytest.mark.parametrize(
    ("status", "body", "error", "reason"),
    [
        (405, {"message": "405 Method Not Allowed"}, NotMergeable, "not_ready"),
        (406, {"message": "406 Not Acceptable"}, NotMergeable, "not_ready"),
        (409, {"message": "SHA does not match HEAD of source branch"}, HeadMoved, None),
        (422, {"message": "Branch cannot be merged"}, NotMergeable, "failed"),
        (401, {"message": "401 Unauthorized"}, HostPermissionDenied, None),
    ],
)
def test_merge_refusals_per_the_status_table(stub, client, status, body, error, reason):
    stub.on("PUT", f"{P}/merge_requests/1/merge", gl(None, status, body))

    with pytest.raises(error) as caught:
        client.merge(1, "8888")
    if reason is not None:
        assert caught.value.reason == reason
    assert len(stub.seen) == 1


def test_merge_with_rebase_is_a_config_error(stub, client):
    with pytest.raises(UserError, match="merge` and `squash"):
        client.merge(1, "8888", method="rebase")
    assert stub.seen == []


def test_merge_with_an_unknown_outcome_rereads_the_mr(stub, client):
    stub.on(
        "PUT", f"{P}/merge_requests/133/merge", Reply(502, b"<html>502</html>", {"Content-Type": "text/html"})
    )
    stub.on("GET", f"{P}/merge_requests/133", mr_reply(detailed="mergeable"))

    with pytest.raises(WriteOutcomeUnknown):
        client.merge(133, "e82eb4a0")  # still open after the re-read: the caller decides
    assert len(stub.calls("PUT", f"{P}/merge_requests/133/merge")) == 1


def test_a_429_plain_text_body_is_never_parsed_and_retry_after_is_honoured(stub, client):
    headers = {
        "Retry-After": "17",
        "RateLimit-Name": "throttle_authenticated_api",
        "RateLimit-Remaining": "0",
    }
    stub.on("GET", f"{P}/merge_requests/1", gl(None, 429, "Retry later\n", headers))

    with pytest.raises(HostRateLimited) as caught:
        client.get(1)
    assert (caught.value.kind, caught.value.retry_after) == ("gitlab", 17.0)
    assert "Retry later" not in str(caught.value)
    with pytest.raises(HostRateLimited):
        client.get(1)  # paused: not asked again
    assert len(stub.seen) == 1


def test_a_429_without_retry_after_uses_ratelimit_reset(stub, client):
    stub.on(
        "GET", f"{P}/merge_requests/1", gl(None, 429, "{not json", {"RateLimit-Reset": str(int(NOW) + 42)})
    )

    with pytest.raises(HostRateLimited) as caught:
        client.get(1)
    assert caught.value.retry_after == 42.0


def test_401_and_a_hidden_project(stub, client):
    stub.on("GET", f"{P}/merge_requests/1", gl(None, 401, {"message": "401 Unauthorized"}))
    stub.on("GET", f"{P}/merge_requests", gl(None, 404, {"message": "404 Project Not Found"}))

    with pytest.raises(HostUnauthorized) as unauthorized:
        client.get(1)
    assert isinstance(unauthorized.value, BackendUnavailable)
    with pytest.raises(HostPermissionDenied) as hidden:
        client.find_open(SOURCE, "main")
    assert isinstance(hidden.value, PermissionDenied)
    assert "cannot see or write `platform/sub/deploy`" in hidden.value.reason


def test_a_get_is_retried_on_5xx_a_put_is_not(stub, client, sleeps):
    stub.on(
        "GET",
        f"{P}/merge_requests/1",
        gl(None, 500, {"message": "500 Internal Server Error"}),
        mr_reply(iid=1),
    )
    stub.on("PUT", f"{P}/merge_requests/1", gl(None, 503, {"message": "503"}))

    assert client.get(1).number == 1
    with pytest.raises(WriteOutcomeUnknown):
        client.close(1)
    assert len(stub.calls("GET", f"{P}/merge_requests/1")) == 2
    assert len(stub.calls("PUT", f"{P}/merge_requests/1")) == 1
    assert len(sleeps) == 1


def test_close_sends_the_state_event(stub, client):
    closed = merge_request(1, state="closed", detailed="not_open")
    stub.on("PUT", f"{P}/merge_requests/1", gl("mr-get.200.json", 200, closed))

    assert client.close(1).state == "closed"
    assert stub.seen[0].body == {"state_event": "close"}


def test_protection_exact_then_wildcard(stub, client):
    one, listed = "protected-branch.200.json", "protected-branches.200.json"
    stub.on("GET", f"{P}/protected_branches/main", gl(one, 200, gitlab_example(one)))
    stub.on("GET", f"{P}/protected_branches/release%2F2026", gl(None, 404, {"message": "404 Not found"}))
    stub.on("GET", f"{P}/protected_branches", gl(listed, 200, gitlab_example(listed)))
    stub.on("GET", f"{P}/protected_branches/feature%2Fx", gl(None, 404, {"message": "404 Not found"}))

    main = client.protection("main")
    release = client.protection("release/2026")
    feature = client.protection("feature/x")

    assert (main.protected, main.sources) == (True, ("protected_branch",))
    assert release.protected is True  # matched `release/*`
    assert feature.protected is False


def test_no_token_in_any_error_text_repr_or_log(stub, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    gitlab = make(stub, sleeps, approve_token=SecretStr(APPROVER))
    stub.on("GET", f"{P}/merge_requests/1", gl(None, 400, {"message": {"token": [f"{TOKEN} is invalid"]}}))
    stub.on(
        "POST", f"{P}/merge_requests/1/approve", gl(None, 403, {"message": f"403 Forbidden for {APPROVER}"})
    )
    stub.on(
        "PUT", f"{P}/merge_requests/1/merge", gl(None, 422, {"message": f"Branch cannot be merged {TOKEN}"})
    )
    stub.on("PUT", f"{P}/merge_requests/1", gl(None, 403, {"message": f"403 Forbidden {TOKEN}"}))
    errors: list[HostError] = []
    for call in (
        lambda: gitlab.get(1),
        lambda: gitlab.approve(1, "abc"),
        lambda: gitlab.merge(1, "abc"),
        lambda: gitlab.close(1),
    ):
        with pytest.raises(HostError) as caught:
            call()
        errors.append(caught.value)

    texts = [repr(gitlab), caplog.text]
    for exc in errors:
        texts += [str(exc), repr(exc), repr(exc.args), str(getattr(exc, "hint", "")), str(vars(exc))]
    for text in texts:
        assert TOKEN not in text
        assert APPROVER not in text
    assert "[REDACTED]" in str(errors[0])
    gitlab.shutdown()


def test_build_host_needs_the_api_root_for_gitlab():
    with pytest.raises(ValueError, match="api_url"):
        build_host("gitlab", None, "platform/deploy", SecretStr(TOKEN))


def test_a_promotion_mr_from_open_to_merged_against_the_fake_gitlab(tmp_path):
    fake_gitlab = pytest.importorskip("sandbox.gitlab_fake")
    from tests.git_support import make_remote, sh

    remote, _ = make_remote(tmp_path)
    sh(remote.work, "checkout", "-q", "-b", SOURCE)
    (remote.work / "apps/web/deploy.yaml").write_text("image: web:3\n")
    sh(remote.work, "commit", "-qam", "web: 3")
    sh(remote.work, "push", "-q", "origin", f"HEAD:refs/heads/{SOURCE}")
    with fake_gitlab.FakeGitLab() as fake:
        settings = {"approvals_required": 1, "only_allow_merge_if_pipeline_succeeds": True}
        fake.add_project("platform/deploy", remote.bare, **settings)
        fake.protect("platform/deploy", "main")
        bot, reviewer = SecretStr(fake_gitlab.BOT_TOKEN), SecretStr(fake_gitlab.REVIEWER_TOKEN)
        with GitLabClient(fake.api_url, "platform/deploy", bot, approve_token=reviewer) as gitlab:
            assert gitlab.protection("main").requires_pull_request is True  # nobody may push
            opened = gitlab.create(SOURCE, "main", "Promote web to prod", "diff…", labels=["gitops"])
            assert opened.mergeable is None
            assert gitlab.create(SOURCE, "main", "Promote web to prod", "diff…").number == opened.number

            mr, readiness = settle(gitlab, opened.number, sleep=lambda _: None)
            assert readiness.missing == ("1 more approval(s) on GitLab (0/1)",)
            with GitLabClient(fake.api_url, "platform/deploy", bot) as alone, pytest.raises(ApprovalRefused):
                alone.approve(mr.number, mr.head_sha)  # the author may not approve its own MR
            gitlab.approve(mr.number, mr.head_sha, "Approved in Slack by @alice")
            mr, readiness = settle(gitlab, mr.number, sleep=lambda _: None)
            assert readiness.missing == ("the pipeline must pass",)
            fake.set_pipeline("platform/deploy", mr.head_sha, "success")
            mr, readiness = settle(gitlab, mr.number, sleep=lambda _: None)
            assert readiness.kind == "ready"

            result = gitlab.merge(mr.number, mr.head_sha, method="squash", remove_branch=True)

            assert (result.merged, remote.head()) == (True, result.sha)
            assert remote.show("apps/web/deploy.yaml") == "image: web:3\n"
            assert gitlab.get(mr.number).state == "merged"
            assert sh(remote.bare, "for-each-ref", f"refs/heads/{SOURCE}") == ""
        approvals = [r for r in fake.requests() if r.path.endswith("/approve")]
        assert [(r.user, r.status) for r in approvals] == [("gitops-bot", 401), ("reviewer", 201)]
