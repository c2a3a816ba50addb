"""The fake GitLab (sandbox/gitlab_fake.py) against its contract: a merge request's life over real HTTP
and a real bare repository, each answer compared key by key with GitLab's doc examples
(contracts/gitlab/examples/*.json), then conflicts, resets, rebases, protection, auth and throttling."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.gitlab_fake import BOT_TOKEN, REVIEWER_TOKEN, FakeGitLab, Settle
from sandbox.gitlab_fake_state import MAINTAINER
from tests.git_support import Remote, make_remote, sh

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "gitlab" / "examples"
if not EXAMPLES.is_dir():  # next to the repository in development; not in every clone
    pytest.skip(
        "the Git host contracts (shared/contracts) are not next to the repository", allow_module_level=True
    )
PATH = "platform/deploy"
P = f"/projects/{urllib.parse.quote(PATH, safe='')}"
WEB = "apps/web/deploy.yaml"
BRANCH = "gitops-bot/promote/web-prod-1"
# Keys the doc examples fill in that a fresh sandbox merge request legitimately leaves null.
MR_NULLABLE = {
    "merge_after", "prepared_at", "latest_build_started_at", "latest_build_finished_at",
    "pipeline", "head_pipeline", "milestone", "assignee", "merged_by", "merge_user", "merged_at", "closed_by",
    "closed_at", "merge_commit_sha", "squash_commit_sha", "should_remove_source_branch", "changes_count",
    "diff_refs", "first_deployed_to_production_at", "approvals_before_merge", "yaml_errors", "user",
    "committed_at", "coverage", "finished_at", "duration", "illustration", "avatar_url",
}  # fmt: skip


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


def assert_like(
    expected: Any, actual: Any, path: str = "", nullable: frozenset[str] | set[str] = frozenset()
) -> None:
    """Every key of GitLab's example is in the fake's answer, with the same JSON type (or null
    where listed); nested objects and the first items of lists are compared the same way."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} is missing"
            got = actual[key]
            if value is None or (got is None and key in nullable):
                continue
            assert got is not None, f"{path}.{key} is null, GitLab shows {value!r}"
            assert_like(value, got, f"{path}.{key}", nullable)
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        if expected and actual:
            assert_like(expected[0], actual[0], f"{path}[0]", nullable)
    else:
        assert _kind(actual) == _kind(expected), f"{path}: {actual!r} is not like GitLab's {expected!r}"


def _kind(value: Any) -> str:
    return (
        "bool"
        if isinstance(value, bool)
        else "number"
        if isinstance(value, int | float)
        else type(value).__name__
    )


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return make_remote(tmp_path)[0]


@pytest.fixture
def gitlab(remote: Remote) -> Iterator[FakeGitLab]:
    with FakeGitLab() as fake:
        fake.add_project(PATH, remote.bare)
        yield fake


def clients(gitlab: FakeGitLab) -> tuple[httpx.Client, httpx.Client]:
    bot = httpx.Client(base_url=gitlab.api_url, headers={"PRIVATE-TOKEN": BOT_TOKEN})
    reviewer = httpx.Client(base_url=gitlab.api_url, headers={"Authorization": f"Bearer {REVIEWER_TOKEN}"})
    return bot, reviewer


def push_branch(remote: Remote, branch: str = BRANCH, content: str = "image: web:3\n") -> str:
    sh(remote.work, "fetch", "-q", "origin")
    sh(remote.work, "checkout", "-q", "-B", branch, "origin/main")
    (remote.work / WEB).write_text(content)
    sh(remote.work, "commit", "-q", "-am", f"web: {content.strip()}")
    sh(remote.work, "push", "-q", "-f", "origin", f"HEAD:refs/heads/{branch}")
    sh(remote.work, "checkout", "-q", "main")
    return remote.head(branch)


def open_mr(bot: httpx.Client, branch: str = BRANCH, **extra: Any) -> dict[str, Any]:
    body = {"source_branch": branch, "target_branch": "main", "title": "Promote web to prod", **extra}
    created = bot.post(f"{P}/merge_requests", json=body)
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


def test_a_merge_request_from_open_to_merged(remote: Remote) -> None:
    with FakeGitLab(settle=Settle(reads=1)) as gitlab:
        project = gitlab.add_project(
            PATH, remote.bare, approvals_required=1, only_allow_merge_if_pipeline_succeeds=True
        )
        gitlab.protect(PATH, "main")
        gitlab.protect(PATH, "release/*", merge_access_level=MAINTAINER)
        bot, reviewer = clients(gitlab)
        assert bot.get(f"/projects/{project.id}").json()["path_with_namespace"] == PATH
        protected = bot.get(f"{P}/protected_branches").json()
        assert_like(example("protected-branches.200.json"), protected)
        assert [p["name"] for p in protected] == ["main", "release/*"]
        one = bot.get(f"{P}/protected_branches/{urllib.parse.quote('release/*', safe='')}").json()
        assert_like(example("protected-branch.200.json"), one)
        assert one["merge_access_levels"][0]["access_level"] == MAINTAINER
        query = {"state": "opened", "source_branch": BRANCH, "target_branch": "main"}
        assert bot.get(f"{P}/merge_requests", params=query).json() == []
        head = push_branch(remote)
        created = open_mr(
            bot, labels="gitops-bot,prod", remove_source_branch=True, reviewer_ids=[gitlab.reviewer.id]
        )
        assert_like(example("mr-create.201.json"), created, nullable=MR_NULLABLE)
        assert (created["detailed_merge_status"], created["diff_refs"], created["sha"]) == (
            "preparing",
            None,
            head,
        )
        assert (created["labels"], [r["username"] for r in created["reviewers"]]) == (
            ["gitops-bot", "prod"],
            ["reviewer"],
        )
        iid = created["iid"]
        again = bot.post(
            f"{P}/merge_requests", json={"source_branch": BRANCH, "target_branch": "main", "title": "x"}
        )
        assert (again.status_code, again.json()["message"]) == (
            409, [f"Another open merge request already exists for this source branch: !{iid}"],
        )  # fmt: skip
        statuses = [bot.get(f"{P}/merge_requests/{iid}").json()["detailed_merge_status"] for _ in range(2)]
        assert statuses == ["checking", "not_approved"]
        assert (
            bot.post(f"{P}/merge_requests/{iid}/approve", json={"sha": head}).status_code == 401
        )  # the author
        stale = reviewer.post(f"{P}/merge_requests/{iid}/approve", json={"sha": "0" * 40})
        assert (stale.status_code, stale.json()["message"]) == (
            409,
            f"SHA does not match HEAD of source branch: {head}",
        )
        approved = reviewer.post(f"{P}/merge_requests/{iid}/approve", json={"sha": head})
        assert approved.status_code == 201
        assert_like(example("mr-approve.201.json"), approved.json())
        approvals = bot.get(f"{P}/merge_requests/{iid}/approvals").json()
        assert_like(example("mr-approvals.200.json"), approvals)
        assert (approvals["approvals_left"], approvals["approved_by"][0]["user"]["username"]) == (
            0,
            "reviewer",
        )
        bot.get(f"{P}/merge_requests/{iid}")  # checking again after the approval
        assert bot.get(f"{P}/merge_requests/{iid}").json()["detailed_merge_status"] == "ci_must_pass"
        gitlab.set_pipeline(PATH, head, "running", ref=f"refs/merge-requests/{iid}/head")
        bot.get(f"{P}/merge_requests/{iid}")
        running = bot.get(f"{P}/merge_requests/{iid}").json()
        assert (running["detailed_merge_status"], running["head_pipeline"]["status"]) == (
            "ci_still_running",
            "running",
        )
        assert bot.put(f"{P}/merge_requests/{iid}/merge", json={"sha": head}).status_code == 405
        gitlab.set_pipeline(PATH, head, "success")
        pipelines = bot.get(f"{P}/merge_requests/{iid}/pipelines").json()
        assert_like(example("mr-pipelines.200.json"), pipelines)
        assert [(p["sha"], p["status"]) for p in pipelines] == [(head, "success")]
        bot.get(f"{P}/merge_requests/{iid}")
        ready = bot.get(f"{P}/merge_requests/{iid}").json()
        assert_like(example("mr-get.200.json"), ready, nullable=MR_NULLABLE)
        assert (ready["detailed_merge_status"], ready["diff_refs"]["head_sha"]) == ("mergeable", head)
        moved = bot.put(f"{P}/merge_requests/{iid}/merge", json={"sha": "1" * 40})
        assert (moved.status_code, moved.json()["message"]) == (
            409,
            "SHA does not match HEAD of source branch",
        )
        merged = bot.put(
            f"{P}/merge_requests/{iid}/merge", json={"sha": head, "should_remove_source_branch": True}
        )
        assert merged.status_code == 200, merged.text
        body = merged.json()
        assert_like(example("mr-merge.200.json"), body, nullable=MR_NULLABLE)
        assert (body["state"], body["merge_commit_sha"], body["merged_by"]["username"]) == (
            "merged", remote.head(), "gitops-bot",
        )  # fmt: skip
        assert sh(remote.bare, "log", "-1", "--format=%P", "main").split()[1] == head
        assert sh(remote.bare, "for-each-ref", f"refs/heads/{BRANCH}") == ""
        assert bot.put(f"{P}/merge_requests/{iid}/merge", json={}).status_code == 405
        listed = bot.get(f"{P}/merge_requests", params={"state": "merged"}).json()
        assert [m["iid"] for m in listed] == [iid]
        assert {r.user for r in gitlab.requests(f"/api/v4{P}/merge_requests/{iid}/approve")} == {
            "gitops-bot",
            "reviewer",
        }
        assert all(
            "private-token" not in r.headers and "authorization" not in r.headers for r in gitlab.requests()
        )


def test_a_conflict_blocks_the_merge(gitlab: FakeGitLab, remote: Remote) -> None:
    bot, _ = clients(gitlab)
    push_branch(remote)
    iid = open_mr(bot)["iid"]
    remote.commit({WEB: "image: web:hotfix\n"}, "hotfix")
    mr = bot.get(f"{P}/merge_requests/{iid}").json()
    assert (mr["detailed_merge_status"], mr["has_conflicts"], mr["merge_status"]) == (
        "conflict", True, "cannot_be_merged",
    )  # fmt: skip
    assert bot.put(f"{P}/merge_requests/{iid}/merge", json={}).status_code == 405


def test_a_push_to_the_source_resets_approvals(gitlab: FakeGitLab, remote: Remote) -> None:
    gitlab.configure(PATH, approvals_required=1)
    bot, reviewer = clients(gitlab)
    first = push_branch(remote)
    iid = open_mr(bot)["iid"]
    assert reviewer.post(f"{P}/merge_requests/{iid}/approve", json={"sha": first}).status_code == 201
    assert bot.get(f"{P}/merge_requests/{iid}").json()["detailed_merge_status"] == "mergeable"
    second = push_branch(remote, content="image: web:4\n")
    mr = bot.get(f"{P}/merge_requests/{iid}").json()
    assert (mr["sha"], mr["detailed_merge_status"]) == (second, "not_approved")
    assert bot.get(f"{P}/merge_requests/{iid}/approvals").json()["approved_by"] == []
    assert reviewer.post(f"{P}/merge_requests/{iid}/approve", json={"sha": first}).status_code == 409


def test_close_and_reopen_with_state_event(gitlab: FakeGitLab, remote: Remote) -> None:
    bot, _ = clients(gitlab)
    push_branch(remote)
    iid = open_mr(bot)["iid"]
    closed = bot.put(f"{P}/merge_requests/{iid}", json={"state_event": "close"}).json()
    assert (closed["state"], closed["detailed_merge_status"], closed["closed_by"]["username"]) == (
        "closed", "not_open", "gitops-bot",
    )  # fmt: skip
    assert bot.put(f"{P}/merge_requests/{iid}", json={}).status_code == 400
    assert bot.put(f"{P}/merge_requests/{iid}", json={"state_event": "reopen"}).json()["state"] == "opened"
    gitlab.close(PATH, iid)
    assert bot.get(f"{P}/merge_requests/{iid}").json()["state"] == "closed"


def test_protection_refuses_pushes_and_merges_by_too_low_a_role(gitlab: FakeGitLab, remote: Remote) -> None:
    gitlab.protect(PATH, "main", merge_access_level=MAINTAINER)
    bot, reviewer = clients(gitlab)
    head = push_branch(remote)
    sh(remote.work, "checkout", "-q", BRANCH)
    pushed = subprocess.run(
        ["git", "push", "origin", "HEAD:main"], cwd=remote.work, capture_output=True, text=True
    )
    assert (
        "remote: GitLab: You are not allowed to push code to protected branches on this project."
        in pushed.stderr
    )
    assert "(pre-receive hook declined)" in pushed.stderr
    iid = open_mr(bot)["iid"]
    refused = bot.put(f"{P}/merge_requests/{iid}/merge", json={"sha": head})
    assert (refused.status_code, refused.json()) == (401, {"message": "401 Unauthorized"})
    assert (
        reviewer.put(f"{P}/merge_requests/{iid}/merge", json={"sha": head}).status_code == 200
    )  # a Maintainer
    branch = bot.get(f"{P}/repository/branches/main").json()
    assert (branch["protected"], branch["can_push"]) == (True, False)


def test_fast_forward_projects_need_a_rebase(gitlab: FakeGitLab, remote: Remote) -> None:
    gitlab.configure(PATH, merge_method="ff")
    bot, _ = clients(gitlab)
    push_branch(remote)
    iid = open_mr(bot)["iid"]
    remote.commit({"apps/api/deploy.yaml": "image: api:9\n"}, "api: 9")
    assert bot.get(f"{P}/merge_requests/{iid}").json()["detailed_merge_status"] == "need_rebase"
    rebased = bot.put(f"{P}/merge_requests/{iid}/rebase")
    assert (rebased.status_code, rebased.json()) == (202, {"rebase_in_progress": True})
    mr = bot.get(f"{P}/merge_requests/{iid}").json()
    assert (mr["detailed_merge_status"], mr["sha"]) == ("mergeable", remote.head(BRANCH))
    merged = bot.put(f"{P}/merge_requests/{iid}/merge", json={"sha": mr["sha"]}).json()
    assert merged["merge_commit_sha"] == remote.head() == mr["sha"]  # fast-forward: no merge commit


def test_squash_merges_record_both_commits(gitlab: FakeGitLab, remote: Remote) -> None:
    bot, _ = clients(gitlab)
    head = push_branch(remote)
    iid = open_mr(bot, squash=True)["iid"]
    merged = bot.put(f"{P}/merge_requests/{iid}/merge", json={"sha": head, "squash": True}).json()
    squash, tip = merged["squash_commit_sha"], merged["merge_commit_sha"]
    assert tip == remote.head()
    assert sh(remote.bare, "log", "-1", "--format=%P", tip).split()[1] == squash != head
    assert remote.show(WEB) == "image: web:3\n"


def test_auth_rate_limit_headers_and_throttling(gitlab: FakeGitLab) -> None:
    bot, _ = clients(gitlab)
    missing = httpx.get(gitlab.api_url + P)
    assert (missing.status_code, missing.json()) == (401, {"message": "401 Unauthorized"})
    assert httpx.get(gitlab.api_url + P, headers={"PRIVATE-TOKEN": "glpat-wrong"}).status_code == 401
    assert bot.get("/projects/other%2Fproject").json() == {"message": "404 Project Not Found"}
    ok = bot.get(P)
    assert ok.headers["RateLimit-Name"] == "throttle_authenticated_api"
    assert int(ok.headers["RateLimit-Remaining"]) < int(ok.headers["RateLimit-Limit"])
    gitlab.throttle(retry_after=17)
    throttled = bot.get(P)
    assert (throttled.status_code, throttled.text, throttled.headers["Retry-After"]) == (
        429,
        "Retry later\n",
        "17",
    )
    assert throttled.headers["content-type"].startswith("text/plain")
    assert "RateLimit-ResetTime" in throttled.headers
    assert bot.get(P).status_code == 200
    bad = bot.post(f"{P}/merge_requests", json={"source_branch": BRANCH})
    assert (bad.status_code, bad.json()) == (400, {"error": "target_branch is missing, title is missing"})
