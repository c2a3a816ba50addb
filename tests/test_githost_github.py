"""GitHubClient against a scripted HTTP stub speaking the trimmed GitHub description (githost-api.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from services.errors import BackendUnavailable, PermissionDenied, UserError
from services.githost import (
    DuplicateChangeRequest,
    GitHubClient,
    HeadMoved,
    HostNotFound,
    HostPermissionDenied,
    HostRateLimited,
    HostUnauthorized,
    NotMergeable,
    SelfApproval,
    build_host,
    settle,
)
from services.githost import github_convert as convert
from services.githost import readiness as ready
from tests.githost_stub import (
    DOCS,
    Reply,
    Sleeps,
    Stub,
    classic_branch,
    gh,
    gh_error,
    github_example,
    oas_example,
    pull,
    pull_simple,
    repository,
    ruleset_rule,
)

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


def test_every_call_sends_bearer_json_accept_and_the_pinned_api_version(stub, client):
    stub.on("GET", R, gh("repos/get", 200, repository(allow_rebase_merge=False, delete_branch_on_merge=True)))

    info = client.get_repo()

    assert info.merge_methods == frozenset({"merge", "squash"})
    assert info.delete_branch_on_merge is True
    assert info.default_branch == "master"
    headers = stub.seen[0].headers
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"].startswith("gitops-bot/")


def test_find_open_follows_the_link_header_verbatim_and_reads_the_pr_in_full(stub, client):
    page2 = f"{stub.url}{R}/pulls?state=open&head=octo-org%3A{HEAD}&per_page=100&page=2"
    link = f'<{page2}>; rel="next", <{page2}>; rel="last"'
    stub.on(
        "GET",
        f"{R}/pulls",
        gh("pulls/list", 200, [pull_simple(3, "someone-else/branch")], {"Link": link}),
        gh("pulls/list", 200, [pull_simple(7, HEAD)]),
    )
    stub.on("GET", f"{R}/pulls/7", gh("pulls/get", 200, pull(7, mergeable=True, mergeable_state="clean")))

    pr = client.find_open(HEAD, "main")

    assert pr is not None
    assert (pr.number, pr.head_branch, pr.mergeable, pr.merge_state) == (7, HEAD, True, "clean")
    first, second = stub.calls("GET", f"{R}/pulls")
    assert first.q("head") == f"octo-org:{HEAD}"
    assert (first.q("base"), first.q("state")) == ("main", "open")
    assert second.q("page") == "2"  # the next URL was followed as given, not rebuilt
    assert second.headers["authorization"] == f"Bearer {TOKEN}"


def test_create_opens_the_pr_then_labels_it(stub, client):
    stub.on("POST", f"{R}/pulls", gh("pulls/create", 201, pull(12)))
    stub.on("POST", f"{R}/issues/12/labels", gh("issues/add-labels", 200, oas_example("label-items")))

    pr = client.create(HEAD, "main", "Promote web to prod", "diff…", labels=["bug", "enhancement"])

    assert (pr.number, pr.state, pr.mergeable) == (12, "open", None)
    sent = stub.calls("POST", f"{R}/pulls")[0].body
    assert sent == {
        "title": "Promote web to prod",
        "head": HEAD,
        "base": "main",
        "body": "diff…",
        "draft": False,
        "maintainer_can_modify": False,
    }
    assert stub.calls("POST", f"{R}/issues/12/labels")[0].body == {"labels": ["bug", "enhancement"]}


def test_a_duplicate_422_adopts_the_open_pr_for_the_same_head(stub, client):
    stub.on("POST", f"{R}/pulls", gh("pulls/create", 422, github_example("pulls-create.422.SYNTHETIC.json")))
    stub.on("GET", f"{R}/pulls", gh("pulls/list", 200, [pull_simple(41, HEAD)]))
    stub.on("GET", f"{R}/pulls/41", gh("pulls/get", 200, pull(41)))

    pr = client.create(HEAD, "main", "t", "b", labels=["never-sent"])

    assert pr.number == 41
    assert len(stub.calls("POST", f"{R}/pulls")) == 1
    assert not stub.calls("POST", f"{R}/issues/41/labels")  # adopted, not decorated again


def test_a_duplicate_with_nothing_open_to_adopt_is_reported(stub, client):
    stub.on("POST", f"{R}/pulls", gh("pulls/create", 422, github_example("pulls-create.422.SYNTHETIC.json")))
    stub.on("GET", f"{R}/pulls", gh("pulls/list", 200, []))

    with pytest.raises(DuplicateChangeRequest) as caught:
        client.create(HEAD, "main", "t", "b")
    assert isinstance(caught.value, UserError)


def test_mergeable_null_then_settled_is_waited_for_with_backoff(stub, client, sleeps):
    stub.on(
        "GET",
        f"{R}/pulls/5",
        gh("pulls/get", 200, pull(5, mergeable=None, mergeable_state="unknown")),
        gh("pulls/get", 200, pull(5, mergeable=None, mergeable_state="unknown")),
        gh("pulls/get", 200, pull(5, mergeable=True, mergeable_state="clean")),
    )

    pr, readiness = settle(client, 5, sleep=sleeps, clock=lambda: 0.0)

    assert readiness.kind == "ready"
    assert pr.mergeable is True
    assert sleeps == [1.0, 2.0]
    assert len(stub.calls("GET", f"{R}/pulls/5")) == 3


def test_a_blocked_pr_says_which_reviews_and_required_checks_are_missing(stub, client):
    required = [{"context": "mighty_readme"}]
    rules = [
        ruleset_rule(
            "required_status_checks",
            required_status_checks=required,
            strict_required_status_checks_policy=False,
        )
    ]
    runs = oas_example("check-run-paginated")
    runs["check_runs"][0].update(status="in_progress", conclusion=None)
    status = oas_example("combined-commit-status")
    status["statuses"][0].update(state="failure", context="ci/build")
    reviews = oas_example("pull-request-review-items")
    reviews[0]["user"]["login"] = "alice"
    sha = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
    stub.on(
        "GET",
        f"{R}/branches/main",
        gh("repos/get-branch", 200, classic_branch(reviews=2, contexts=("ci/build",))),
    )
    stub.on("GET", f"{R}/rules/branches/main", gh("repos/get-branch-rules", 200, rules))
    stub.on("GET", f"{R}/pulls/9/reviews", gh("pulls/list-reviews", 200, reviews))
    stub.on("GET", f"{R}/commits/{sha}/check-runs", gh("checks/list-for-ref", 200, runs))
    stub.on("GET", f"{R}/commits/{sha}/status", gh("repos/get-combined-status-for-ref", 200, status))
    pr = convert.pull_request(pull(9, sha=sha, mergeable=True, mergeable_state="blocked"))

    readiness = client.readiness(pr)

    assert readiness.kind == "blocked"
    assert readiness.missing == (
        "1 more approving review(s) on GitHub (1/2)",
        "required check `ci/build` failed",
        "required check `mighty_readme` is still running",
    )


@pytest.mark.parametrize(
    ("fields", "kind", "needs_update"),
    [
        ({"mergeable": True, "mergeable_state": "clean"}, "ready", False),
        ({"mergeable": True, "mergeable_state": "unstable"}, "ready", False),
        ({"mergeable": True, "mergeable_state": "has_hooks"}, "ready", False),
        ({"mergeable": None, "mergeable_state": "unknown"}, "wait", False),
        ({"mergeable": False, "mergeable_state": "dirty"}, "conflict", False),
        ({"mergeable": True, "mergeable_state": "behind"}, "blocked", True),
        ({"mergeable": True, "mergeable_state": "draft", "draft": True}, "blocked", False),
        ({"state": "closed", "mergeable": True, "mergeable_state": "clean"}, "closed", False),
        (
            {"state": "closed", "merged": True, "mergeable": None, "mergeable_state": "unknown"},
            "merged",
            False,
        ),
    ],
)
def test_mergeable_state_maps_to_what_the_bot_does(fields, kind, needs_update):
    readiness = ready.github(convert.pull_request(pull(1, **fields)))

    assert (readiness.kind, readiness.needs_update) == (kind, needs_update)


def test_merge_sends_method_and_sha_and_returns_the_merge_commit(stub, client):
    stub.on("PUT", f"{R}/pulls/3/merge", gh("pulls/merge", 200, github_example("pulls-merge.200.json")))

    result = client.merge(3, "abc123", method="squash", title="Promote web", message="by alice")

    assert (result.merged, result.sha) == (True, "6dcb09b5b57875f334f61aebed695e2e4193db5e")
    assert stub.seen[0].body == {
        "merge_method": "squash",
        "sha": "abc123",
        "commit_title": "Promote web",
        "commit_message": "by alice",
    }


@pytest.mark.parametrize(
    ("status", "message", "error", "reason"),
    [
        (409, github_example("pulls-merge.409.json")["message"], HeadMoved, None),
        (405, github_example("pulls-merge.405.json")["message"], NotMergeable, "not_ready"),
        (405, "Base branch was modified. Review and try the merge again.", NotMergeable, "base_modified"),
        (405, "Squash merges are not allowed on this repository.", NotMergeable, "method_not_allowed"),
    ],
)
def test_merge_refusals_are_read_as_kargo_does(stub, client, status, message, error, reason):
    stub.on("PUT", f"{R}/pulls/3/merge", gh("pulls/merge", status, {"message": message}))

    with pytest.raises(error) as caught:
        client.merge(3, "abc123", method="squash")
    assert isinstance(caught.value, UserError)
    assert getattr(caught.value, "reason", None) == reason
    assert getattr(caught.value, "transient", False) is (reason in ("not_ready", "base_modified"))


def test_approving_as_the_author_is_a_user_error_with_the_two_identities_hint(stub, client):
    body = github_example("pulls-create-review.422.SYNTHETIC.json")
    stub.on("POST", f"{R}/pulls/3/reviews", gh("pulls/create-review", 422, body))

    with pytest.raises(SelfApproval) as caught:
        client.approve(3, "abc123", "Approved in Slack by @alice")
    assert isinstance(caught.value, UserError)
    assert "second identity" in (caught.value.hint or "")
    assert stub.seen[0].body == {
        "event": "APPROVE",
        "commit_id": "abc123",
        "body": "Approved in Slack by @alice",
    }


def test_the_approve_token_signs_only_the_review(stub, sleeps):
    stub.on(
        "POST", f"{R}/pulls/3/reviews", gh("pulls/create-review", 200, oas_example("pull-request-review"))
    )
    stub.on("GET", f"{R}/pulls/3", gh("pulls/get", 200, pull(3)))
    host = build_host(
        "github", stub.url + "/api/v3", "octo-org/deploy", SecretStr(TOKEN), SecretStr(APPROVER)
    )

    host.approve(3, "abc123")
    host.get(3)
    host.shutdown()

    review, read = stub.seen
    assert review.headers["authorization"] == f"Bearer {APPROVER}"
    assert review.headers["x-github-api-version"] == "2022-11-28"
    assert read.headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("status", "headers", "kind", "retry_after"),
    [
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 120)}, "primary", 120.0),
        (429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 5)}, "primary", 5.0),
        (429, {"Retry-After": "30", "x-ratelimit-remaining": "4000"}, "secondary", 30.0),
    ],
)
def test_rate_limits_say_when_to_come_back_and_pause_the_next_call(
    stub, client, status, headers, kind, retry_after
):
    stub.on(
        "GET",
        f"{R}/pulls/1",
        gh("pulls/get", status, gh_error("API rate limit exceeded for user ID 1."), headers),
    )
    stub.on("POST", f"{R}/issues/1/comments", gh("issues/create-comment", 201, oas_example("issue-comment")))

    with pytest.raises(HostRateLimited) as caught:
        client.get(1)
    assert (caught.value.kind, caught.value.retry_after) == (kind, retry_after)
    assert isinstance(caught.value, BackendUnavailable)
    with pytest.raises(HostRateLimited):
        client.comment(1, "hello")  # held back without asking
    assert len(stub.seen) == 1


def test_401_asks_for_a_new_token_and_404_on_the_repository_means_it_cannot_see_it(stub, client):
    stub.on("GET", f"{R}/pulls/1", gh("pulls/get", 401, gh_error("Bad credentials")))
    stub.on("GET", R, gh("repos/get", 404, gh_error("Not Found")))
    stub.on("GET", f"{R}/pulls/99", gh("pulls/get", 404, gh_error("Not Found")))

    with pytest.raises(HostUnauthorized) as unauthorized:
        client.get(1)
    assert isinstance(unauthorized.value, BackendUnavailable)
    assert "rotate" in str(unauthorized.value)
    assert len(stub.seen) == 1  # not retried
    with pytest.raises(HostPermissionDenied) as hidden:
        client.get_repo()
    assert isinstance(hidden.value, PermissionDenied)
    assert "cannot see or write `octo-org/deploy`" in hidden.value.reason
    with pytest.raises(HostNotFound):
        client.get(99)


def test_create_with_an_unknown_outcome_rereads_and_adopts(stub, client):
    stub.on("POST", f"{R}/pulls", Reply(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"}))
    stub.on("GET", f"{R}/pulls", gh("pulls/list", 200, [pull_simple(8, HEAD)]))
    stub.on("GET", f"{R}/pulls/8", gh("pulls/get", 200, pull(8)))

    assert client.create(HEAD, "main", "t", "b").number == 8
    assert len(stub.calls("POST", f"{R}/pulls")) == 1


def test_merge_with_an_unknown_outcome_is_confirmed_by_rereading(stub, client):
    stub.on("PUT", f"{R}/pulls/3/merge", Reply(504, b"", {}))
    merged = pull(3, state="closed", merged=True, mergeable=None, mergeable_state="unknown")
    merged["merge_commit_sha"] = "f" * 40
    stub.on("GET", f"{R}/pulls/3", gh("pulls/get", 200, merged))

    result = client.merge(3, "abc123")

    assert (result.merged, result.sha) == (True, "f" * 40)
    assert len(stub.calls("PUT", f"{R}/pulls/3/merge")) == 1


def test_checks_merge_check_runs_and_commit_statuses(stub, client):
    sha = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
    stub.on(
        "GET",
        f"{R}/commits/{sha}/check-runs",
        gh("checks/list-for-ref", 200, oas_example("check-run-paginated")),
    )
    combined = gh("repos/get-combined-status-for-ref", 200, oas_example("combined-commit-status"))
    stub.on("GET", f"{R}/commits/{sha}/status", combined)

    checks = client.checks_for(sha)

    assert [(c.name, c.kind, c.outcome) for c in checks] == [
        ("mighty_readme", "check_run", "neutral"),
        ("continuous-integration/jenkins", "status", "success"),
        ("security/brakeman", "status", "success"),
    ]
    assert checks[1].url == "https://ci.example.com/1000/output"


def test_close_update_branch_and_delete_branch(stub, client):
    stub.on("PATCH", f"{R}/pulls/4", gh("pulls/update", 200, pull(4, state="closed")))
    moved = {"message": "expected head sha didn't match current head ref.", "documentation_url": DOCS}
    stub.on("PUT", f"{R}/pulls/4/update-branch", gh("pulls/update-branch", 422, moved))
    gone = {"message": "Reference does not exist"}
    stub.on(
        "DELETE", f"{R}/git/refs/heads/{HEAD}", gh("git/delete-ref", 204), gh("git/delete-ref", 422, gone)
    )

    closed = client.close(4)
    assert closed.state == "closed"
    assert stub.calls("PATCH", f"{R}/pulls/4")[0].body == {"state": "closed"}
    with pytest.raises(HeadMoved):
        client.update_branch(closed)
    assert client.delete_branch(HEAD) is True
    assert client.delete_branch(HEAD) is False  # already gone: GitHub deleted it on merge


def test_protection_merges_classic_protection_and_rulesets(stub, client):
    rule = ruleset_rule(
        "pull_request",
        dismiss_stale_reviews_on_push=False,
        require_code_owner_review=False,
        require_last_push_approval=True,
        required_approving_review_count=1,
        required_review_thread_resolution=False,
        allowed_merge_methods=["squash"],
    )
    unprotected = classic_branch()
    stub.on("GET", f"{R}/branches/prod", gh("repos/get-branch", 200, unprotected))
    stub.on("GET", f"{R}/rules/branches/prod", gh("repos/get-branch-rules", 200, [rule]))

    prod = client.protection("prod")

    assert prod.protected is True  # a ruleset alone protects it, whatever `protected` says
    assert prod.requires_pull_request is True
    assert (prod.required_approvals, prod.allowed_merge_methods) == (1, frozenset({"squash"}))
    assert (prod.require_last_push_approval, prod.sources) == (True, ("ruleset",))


# -- end to end against the stateful fake GitHub (sandbox/github_fake.py) over a real bare repo ----------


def test_a_promotion_pr_from_open_to_merged_against_the_fake_github(tmp_path):
    fake_github = pytest.importorskip("sandbox.github_fake")
    from tests.git_support import make_remote, sh

    remote, _ = make_remote(tmp_path)
    promo = "gitops-bot/promote/web-prod-1"
    sh(remote.work, "checkout", "-q", "-b", promo)
    (remote.work / "apps/web/deploy.yaml").write_text("image: web:3\n")
    sh(remote.work, "commit", "-qam", "web: 3")
    sh(remote.work, "push", "-q", "origin", f"HEAD:refs/heads/{promo}")
    with fake_github.FakeGitHub(prefix="/api/v3") as fake:
        fake.add_repo("example/deploy", remote.bare)
        fake.protect("example/deploy", "main", required_approving_review_count=1, required_checks=("ci",))
        bot, reviewer = SecretStr(fake_github.BOT_TOKEN), SecretStr(fake_github.REVIEWER_TOKEN)
        with GitHubClient(fake.api_url, "example/deploy", bot, approve_token=reviewer) as github:
            assert github.protection("main").protected is True
            opened = github.create(promo, "main", "Promote web to prod", "diff…")
            assert opened.mergeable is None  # GitHub computes it in the background
            again = github.create(promo, "main", "Promote web to prod", "diff…")  # a double click
            assert again.number == opened.number

            pr, readiness = settle(github, opened.number, sleep=lambda _: None)
            assert readiness.kind == "blocked"
            assert "required check `ci` has not reported yet" in readiness.missing

            with GitHubClient(fake.api_url, "example/deploy", bot) as alone, pytest.raises(SelfApproval):
                alone.approve(pr.number, pr.head_sha)
            github.approve(pr.number, pr.head_sha, "Approved in Slack by @alice")
            fake.set_check("example/deploy", pr.head_sha, "ci")
            pr, readiness = settle(github, pr.number, sleep=lambda _: None)
            assert readiness.kind == "ready"

            result = github.merge(pr.number, pr.head_sha, method="squash", remove_branch=True)

            assert result.merged is True
            assert remote.head() == result.sha
            assert remote.show("apps/web/deploy.yaml") == "image: web:3\n"
            assert github.get(pr.number).state == "merged"
            assert github.find_open(promo, "main") is None
            assert sh(remote.bare, "for-each-ref", f"refs/heads/{promo}") == ""  # branch cleaned up
        reviews = [r for r in fake.requests() if r.method == "POST" and r.path.endswith("/reviews")]
        assert [r.user for r in reviews] == ["gitops-bot", "reviewer"]
        assert all(r.headers.get("x-github-api-version") == "2022-11-28" for r in fake.requests())
