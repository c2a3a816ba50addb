"""The fake GitHub (sandbox/github_fake.py) against its contract: a pull request's whole life over real
HTTP and a real bare repository, every answer validated with jsonschema against the trimmed REST
description (contracts/github/api.github.com.trimmed.json), then the edges: mergeability settling,
a moved head, conflicts, strict checks, merge methods, protection, auth, rate limits and faults."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from sandbox.github_fake import BOT_TOKEN, REVIEWER_TOKEN, FakeGitHub, Settle
from tests.git_support import Remote, make_remote, sh

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "github"
if not CONTRACT.is_dir():  # next to the repository in development; not in every clone
    pytest.skip(
        "the Git host contracts (shared/contracts) are not next to the repository", allow_module_level=True
    )
SPEC = json.loads((CONTRACT / "api.github.com.trimmed.json").read_text())
REPO = "example/deploy"
R = f"/repos/{REPO}"
WEB = "apps/web/deploy.yaml"
BRANCH = "gitops-bot/promote/web-prod-1"
# Not in the trimmed description (requested reviewers); GitHub answers a pull-request-simple.
EXTRA = {("POST", r"/pulls/\d+/requested_reviewers$"): "pull-request-simple"}


# -- OpenAPI 3.0 -> JSON Schema, and the operation each answer belongs to ------------------------------------


def _schema(node: Any, *, names: bool = False) -> Any:
    """OpenAPI 3.0 schema objects as draft-4 JSON Schema: `nullable: true` admits null."""
    if isinstance(node, list):
        return [_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    if names:  # a `properties` mapping: its keys are property names, not keywords
        return {k: _schema(v) for k, v in node.items()}
    out = {k: _schema(v, names=k == "properties") for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


DOC = _schema(SPEC)
REGISTRY = Registry().with_resource("urn:github", Resource.from_contents(DOC, default_specification=DRAFT4))
LONG = {"branch", "ref", "path"}  # parameters that may hold slashes


def _operations() -> list[tuple[str, re.Pattern[str], dict[str, Any]]]:
    found = []
    for template, item in SPEC["paths"].items():
        pattern = re.sub(r"\{(\w+)\}", lambda m: "(.+)" if m.group(1) in LONG else "([^/]+)", template)
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                found.append((method.upper(), re.compile(f"^{pattern}$"), operation))
    return found


OPERATIONS = _operations()


def _response_schema(method: str, path: str, status: int) -> dict[str, Any] | None:
    for verb, pattern, operation in OPERATIONS:
        if verb == method and pattern.match(path):
            response = operation["responses"].get(str(status))
            if response is None:  # auth, rate limits, outages: GitHub's errors are all a basic-error
                assert status >= 400, f"{method} {path}: {status} is not a documented answer"
                return {"$ref": "urn:github#/components/schemas/basic-error"}
            if "$ref" in response:
                response = SPEC["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
            content = response.get("content", {}).get("application/json")
            return None if content is None else dict(content["schema"])
    for (verb, suffix), name in EXTRA.items():
        if verb == method and re.search(suffix, path):
            return {"$ref": f"urn:github#/components/schemas/{name}"}
    raise AssertionError(f"{method} {path} is no operation of the contract")


def assert_valid(response: httpx.Response, api_prefix: str = "") -> None:
    path = response.request.url.path.removeprefix(api_prefix)
    schema = _response_schema(response.request.method, path, response.status_code)
    if response.status_code == 204:
        assert response.content == b""
    if schema is None:  # the description gives no body for this answer
        return
    body = response.json()
    resolved = json.loads(json.dumps(_schema(schema)).replace('"#/components', '"urn:github#/components'))
    errors = sorted(Draft4Validator(resolved, registry=REGISTRY).iter_errors(body), key=str)
    assert not errors, f"{response.request.method} {path} {response.status_code}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in errors[:5]
    )


# -- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return make_remote(tmp_path)[0]


@pytest.fixture
def github(remote: Remote) -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.add_repo(REPO, remote.bare, allow_rebase_merge=False)
        yield fake


class Recorded:
    """httpx clients for both identities; every response kept for validation."""

    def __init__(self, github: FakeGitHub) -> None:
        self.responses: list[httpx.Response] = []
        hooks = {"response": [self._keep]}
        base = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        self.bot = httpx.Client(
            base_url=github.api_url,
            headers={**base, "Authorization": f"Bearer {BOT_TOKEN}"},
            event_hooks=hooks,
        )
        self.reviewer = httpx.Client(
            base_url=github.api_url,
            headers={**base, "Authorization": f"token {REVIEWER_TOKEN}"},
            event_hooks=hooks,
        )

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        self.responses.append(response)


@pytest.fixture
def clients(github: FakeGitHub) -> Iterator[Recorded]:
    recorded = Recorded(github)
    yield recorded
    for response in recorded.responses:
        assert_valid(response)
    recorded.bot.close()
    recorded.reviewer.close()


def push_branch(
    remote: Remote, branch: str = BRANCH, content: str = "image: web:3\n", base: str = "main"
) -> str:
    sh(remote.work, "fetch", "-q", "origin")
    sh(remote.work, "checkout", "-q", "-B", branch, f"origin/{base}")
    (remote.work / WEB).write_text(content)
    sh(remote.work, "commit", "-q", "-am", f"web: {content.strip()}")
    sh(remote.work, "push", "-q", "-f", "origin", f"HEAD:refs/heads/{branch}")
    sh(remote.work, "checkout", "-q", "main")
    return remote.head(branch)


def open_pull(clients: Recorded, branch: str = BRANCH) -> dict[str, Any]:
    body = {"title": "Promote web to prod", "head": f"example:{branch}", "base": "main", "body": "diff …"}
    created = clients.bot.post(f"{R}/pulls", json=body)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


# -- the whole life of a pull request, every answer validated ------------------------------------------------


def test_a_pull_request_from_open_to_merged(github: FakeGitHub, clients: Recorded, remote: Remote) -> None:
    github.protect(REPO, "main", required_approving_review_count=1, required_checks=("ci",))
    bot = clients.bot
    repo = bot.get(R).json()
    assert (repo["default_branch"], repo["allow_rebase_merge"], repo["permissions"]["push"]) == (
        "main",
        False,
        True,
    )
    assert bot.get(f"{R}/branches/main").json()["protected"] is True
    assert bot.get(f"{R}/rules/branches/main").json() == []  # classic protection: no ruleset rules
    assert bot.get(f"{R}/git/ref/heads/main").json()["object"]["sha"] == remote.head()
    head = push_branch(remote)
    query = {"state": "open", "head": f"example:{BRANCH}", "base": "main"}
    assert bot.get(f"{R}/pulls", params=query).json() == []
    pull = open_pull(clients)
    number = pull["number"]
    assert (pull["mergeable"], pull["mergeable_state"], pull["head"]["sha"], pull["user"]["login"]) == (
        None, "unknown", head, "gitops-bot",
    )  # fmt: skip
    duplicate = bot.post(f"{R}/pulls", json={"title": "again", "head": f"example:{BRANCH}", "base": "main"})
    assert duplicate.status_code == 422
    assert duplicate.json()["errors"][0]["message"] == f"A pull request already exists for example:{BRANCH}."
    assert [p["number"] for p in bot.get(f"{R}/pulls", params=query).json()] == [number]
    settled = bot.get(f"{R}/pulls/{number}").json()
    assert (settled["mergeable"], settled["mergeable_state"]) == (True, "blocked")
    assert settled["merge_commit_sha"] == sh(remote.bare, "rev-parse", f"refs/pull/{number}/merge").strip()
    labels = bot.post(f"{R}/issues/{number}/labels", json={"labels": ["gitops-bot", "prod"]})
    assert [item["name"] for item in labels.json()] == ["gitops-bot", "prod"]
    assert bot.post(f"{R}/issues/{number}/comments", json={"body": "Requested by @alice"}).status_code == 201
    asked = bot.post(f"{R}/pulls/{number}/requested_reviewers", json={"reviewers": ["reviewer"]})
    assert [u["login"] for u in asked.json()["requested_reviewers"]] == ["reviewer"]
    own = bot.post(f"{R}/pulls/{number}/reviews", json={"event": "APPROVE", "commit_id": head})
    assert (own.status_code, own.json()["errors"]) == (422, ["Can not approve your own pull request"])
    approval = {"event": "APPROVE", "commit_id": head, "body": "Approved in Slack by @bob"}
    review = clients.reviewer.post(f"{R}/pulls/{number}/reviews", json=approval)
    assert (review.json()["state"], review.json()["commit_id"]) == ("APPROVED", head)
    assert [r["user"]["login"] for r in bot.get(f"{R}/pulls/{number}/reviews").json()] == ["reviewer"]
    assert bot.get(f"{R}/pulls/{number}").json()["mergeable_state"] == "blocked"  # ci still missing
    github.set_check(REPO, head, "ci", status="in_progress", conclusion=None)
    assert bot.get(f"{R}/commits/{head}/check-runs").json()["check_runs"][0]["status"] == "in_progress"
    assert bot.get(f"{R}/pulls/{number}").json()["mergeable_state"] == "blocked"
    github.set_check(REPO, head, "ci", conclusion="success")
    github.set_status(REPO, head, "deploy/preview", "success", target_url="https://ci.example.com/1")
    assert bot.get(f"{R}/commits/{head}/status").json()["state"] == "success"
    assert bot.get(f"{R}/pulls/{number}").json()["mergeable_state"] == "clean"
    stale = bot.put(f"{R}/pulls/{number}/merge", json={"sha": "0" * 40, "merge_method": "merge"})
    assert (stale.status_code, stale.json()["message"]) == (
        409,
        "Head branch was modified. Review and try the merge again.",
    )
    refused = bot.put(f"{R}/pulls/{number}/merge", json={"sha": head, "merge_method": "rebase"})
    assert (refused.status_code, refused.json()["message"]) == (
        405,
        "Rebase merges are not allowed on this repository.",
    )
    merged = bot.put(f"{R}/pulls/{number}/merge", json={"sha": head, "merge_method": "merge"})
    assert merged.json()["merged"] is True
    assert merged.json()["sha"] == remote.head() != head
    parents, subject = sh(remote.bare, "log", "-1", "--format=%P%n%s", "main").splitlines()
    assert parents.split()[1] == head
    assert subject == f"Merge pull request #{number} from example/{BRANCH}"
    done = bot.get(f"{R}/pulls/{number}").json()
    assert (done["state"], done["merged"], done["merge_commit_sha"], done["merged_by"]["login"]) == (
        "closed", True, remote.head(), "gitops-bot",
    )  # fmt: skip
    assert bot.put(f"{R}/pulls/{number}/merge", json={"sha": head}).status_code == 405
    assert bot.delete(f"{R}/git/refs/heads/{BRANCH}").status_code == 204
    assert bot.delete(f"{R}/git/refs/heads/{BRANCH}").status_code == 422
    assert bot.get(f"{R}/pulls", params={"state": "closed"}).json()[0]["merged_at"] is not None
    assert {r.user for r in github.requests(f"{R}/pulls/{number}/reviews")} == {"gitops-bot", "reviewer"}
    assert all("authorization" not in r.headers for r in github.requests())


def test_mergeable_is_null_until_it_settles(remote: Remote) -> None:
    with FakeGitHub(settle=Settle(reads=2)) as github:
        github.add_repo(REPO, remote.bare)
        clients = Recorded(github)
        push_branch(remote)
        number = open_pull(clients)["number"]
        states = [clients.bot.get(f"{R}/pulls/{number}").json()["mergeable"] for _ in range(3)]
        assert states == [None, None, True]
        push_branch(remote, content="image: web:4\n")  # a new head: computing again
        states = [clients.bot.get(f"{R}/pulls/{number}").json()["mergeable_state"] for _ in range(3)]
        assert states == ["unknown", "unknown", "clean"]
        for response in clients.responses:
            assert_valid(response)


def test_a_push_to_head_dismisses_stale_approvals(
    github: FakeGitHub, clients: Recorded, remote: Remote
) -> None:
    github.protect(REPO, required_approving_review_count=1, dismiss_stale_reviews_on_push=True)
    first = push_branch(remote)
    number = open_pull(clients)["number"]
    clients.reviewer.post(f"{R}/pulls/{number}/reviews", json={"event": "APPROVE", "commit_id": first})
    assert clients.bot.get(f"{R}/pulls/{number}").json()["mergeable_state"] == "clean"
    second = push_branch(remote, content="image: web:4\n")
    pull = clients.bot.get(f"{R}/pulls/{number}").json()
    assert (pull["head"]["sha"], pull["mergeable_state"]) == (second, "blocked")
    assert [r["state"] for r in clients.bot.get(f"{R}/pulls/{number}/reviews").json()] == ["DISMISSED"]
    assert clients.bot.put(f"{R}/pulls/{number}/merge", json={"sha": first}).status_code == 409
    assert clients.bot.put(f"{R}/pulls/{number}/merge", json={"sha": second}).json()["message"] == (
        "Pull Request is not mergeable"
    )


def test_a_conflict_is_dirty_and_cannot_merge(github: FakeGitHub, clients: Recorded, remote: Remote) -> None:
    push_branch(remote)
    number = open_pull(clients)["number"]
    remote.commit({WEB: "image: web:hotfix\n"}, "hotfix on main")
    pull = clients.bot.get(f"{R}/pulls/{number}").json()
    assert (pull["mergeable"], pull["mergeable_state"], pull["merge_commit_sha"]) == (False, "dirty", None)
    assert clients.bot.put(f"{R}/pulls/{number}/merge", json={}).status_code == 405


def test_strict_checks_make_it_behind_until_the_branch_is_updated(
    github: FakeGitHub, clients: Recorded, remote: Remote
) -> None:
    github.protect(REPO, strict=True, required_checks=("ci",), refuse_pushes=False)
    head = push_branch(remote)
    number = open_pull(clients)["number"]
    remote.commit({"apps/api/deploy.yaml": "image: api:7\n"}, "api: 7")
    github.set_check(REPO, head, "ci")
    assert clients.bot.get(f"{R}/pulls/{number}").json()["mergeable_state"] == "behind"
    wrong = clients.bot.put(f"{R}/pulls/{number}/update-branch", json={"expected_head_sha": "1" * 40})
    assert wrong.status_code == 422
    updated = clients.bot.put(f"{R}/pulls/{number}/update-branch", json={"expected_head_sha": head})
    assert (updated.status_code, updated.json()["message"]) == (202, "Updating pull request branch.")
    pull = clients.bot.get(f"{R}/pulls/{number}").json()
    assert pull["head"]["sha"] == remote.head(BRANCH) != head
    assert pull["mergeable_state"] == "blocked"  # the new head has no ci yet
    github.set_check(REPO, pull["head"]["sha"], "ci")
    assert clients.bot.get(f"{R}/pulls/{number}").json()["mergeable_state"] == "clean"


@pytest.mark.parametrize("method", ["squash", "rebase"])
def test_squash_and_rebase_write_real_commits(remote: Remote, method: str) -> None:
    with FakeGitHub() as github:
        github.add_repo(REPO, remote.bare, delete_branch_on_merge=True)
        clients = Recorded(github)
        base = remote.head()
        head = push_branch(remote)
        number = open_pull(clients)["number"]
        remote.commit({"apps/api/deploy.yaml": "image: api:5\n"}, "api: 5")
        merged = clients.bot.put(f"{R}/pulls/{number}/merge", json={"merge_method": method, "sha": head})
        assert merged.status_code == 200, merged.text
        tip = remote.head()
        assert merged.json()["sha"] == tip
        assert len(sh(remote.bare, "log", "-1", "--format=%P", tip).split()) == 1  # no merge commit
        assert (remote.show(WEB), remote.show("apps/api/deploy.yaml")) == ("image: web:3\n", "image: api:5\n")
        subject = sh(remote.bare, "log", "-1", "--format=%s", tip).strip()
        assert subject == ("Promote web to prod (#1)" if method == "squash" else "web: image: web:3")
        assert sh(remote.bare, "for-each-ref", f"refs/heads/{BRANCH}") == ""  # delete_branch_on_merge
        assert base != tip
        for response in clients.responses:
            assert_valid(response)


def test_a_protected_branch_refuses_pushes_but_not_the_hosts_merge(
    github: FakeGitHub, clients: Recorded, remote: Remote
) -> None:
    github.protect(REPO, kind="ruleset", required_approving_review_count=1, required_checks=("ci",))
    assert clients.bot.get(f"{R}/branches/main").json()["protected"] is False  # rulesets are elsewhere
    rules = clients.bot.get(f"{R}/rules/branches/main").json()
    assert [r["type"] for r in rules] == ["pull_request", "required_status_checks", "non_fast_forward"]
    assert rules[0]["parameters"]["required_approving_review_count"] == 1
    head = push_branch(remote)
    sh(remote.work, "checkout", "-q", BRANCH)
    pushed = subprocess.run(
        ["git", "push", "origin", "HEAD:main"], cwd=remote.work, capture_output=True, text=True
    )
    assert "GH013: Repository rule violations found for refs/heads/main." in pushed.stderr
    assert "(push declined due to repository rule violations)" in pushed.stderr
    number = open_pull(clients)["number"]
    github.approve(REPO, number)
    github.set_check(REPO, head, "ci")
    assert clients.bot.put(f"{R}/pulls/{number}/merge", json={"sha": head}).status_code == 200
    assert head in sh(remote.bare, "rev-list", "main").split()
    refused = clients.bot.post(f"{R}/git/refs", json={"ref": "refs/heads/main", "sha": head})
    assert refused.status_code == 422


def test_closed_or_deleted_outside_the_api(github: FakeGitHub, clients: Recorded, remote: Remote) -> None:
    push_branch(remote)
    first = open_pull(clients)["number"]
    github.close(REPO, first)
    pull = clients.bot.get(f"{R}/pulls/{first}").json()
    assert (pull["state"], pull["merged"]) == ("closed", False)
    reopened = clients.bot.patch(f"{R}/pulls/{first}", json={"state": "open"}).json()
    assert reopened["state"] == "open"
    sh(remote.bare, "update-ref", "-d", f"refs/heads/{BRANCH}")
    assert clients.bot.get(f"{R}/pulls/{first}").json()["state"] == "closed"  # head branch deleted
    head = push_branch(remote, branch="other")
    second = open_pull(clients, "other")["number"]
    sh(remote.bare, "update-ref", "refs/heads/main", head)  # someone pushed its commits to main
    pull = clients.bot.get(f"{R}/pulls/{second}").json()
    assert (pull["state"], pull["merged"], pull["merge_commit_sha"]) == ("closed", True, head)


def test_auth_version_and_access(github: FakeGitHub, remote: Remote) -> None:
    url = github.api_url + R
    assert httpx.get(url).status_code == 401
    bad = httpx.get(url, headers={"Authorization": "Bearer ghp_nope"})
    assert (bad.status_code, bad.json()["message"]) == (401, "Bad credentials")
    new = httpx.get(
        url, headers={"Authorization": f"Bearer {BOT_TOKEN}", "X-GitHub-Api-Version": "2026-03-10"}
    )
    assert new.status_code == 400
    github.add_user("stranger", "ghp_stranger", permission="none")
    assert httpx.get(url, headers={"Authorization": "token ghp_stranger"}).status_code == 404
    github.add_user("reader", "ghp_reader", permission="read")
    push_branch(remote)
    body = {"title": "t", "head": BRANCH, "base": "main"}
    assert (
        httpx.post(f"{url}/pulls", json=body, headers={"Authorization": "token ghp_reader"}).status_code
        == 403
    )
    typed = httpx.post(
        f"{url}/pulls", json={**body, "draft": "yes"}, headers={"Authorization": f"Bearer {BOT_TOKEN}"}
    )
    assert (typed.status_code, "properties/draft" in typed.json()["message"]) == (422, True)
    assert_valid(bad)


def test_rate_limits_faults_and_the_request_log(remote: Remote) -> None:
    now = [1_700_000_000.0]
    with FakeGitHub(clock=lambda: now[0], rate_limit=100) as github:
        github.add_repo(REPO, remote.bare)
        client = httpx.Client(base_url=github.api_url, headers={"Authorization": f"Bearer {BOT_TOKEN}"})
        first = client.get(R)
        assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == ("100", "99")
        github.secondary_limit(retry_after=30, status=429, method="POST")
        limited = client.post(f"{R}/pulls", json={"title": "t", "head": BRANCH, "base": "main"})
        assert (limited.status_code, limited.headers["retry-after"]) == (429, "30")
        assert "secondary rate limit" in limited.json()["message"]
        github.rate_limited("gitops-bot", reset_in=60)
        exhausted = client.get(R)
        assert (exhausted.status_code, exhausted.headers["x-ratelimit-remaining"]) == (403, "0")
        assert int(exhausted.headers["x-ratelimit-reset"]) == int(now[0] + 60)
        now[0] += 61
        assert client.get(R).status_code == 200
        github.fail_next(503, path=f"{R}/pulls", times=2)
        assert [client.get(f"{R}/pulls").status_code for _ in range(3)] == [503, 503, 200]
        assert [r.status for r in github.requests(f"{R}/pulls")][-3:] == [503, 503, 200]
        assert all(r.user == "gitops-bot" for r in github.requests())


def test_pagination_follows_link_headers(github: FakeGitHub, clients: Recorded, remote: Remote) -> None:
    for index in range(3):
        push_branch(remote, branch=f"b{index}", content=f"image: web:1{index}\n")
        open_pull(clients, f"b{index}")
    page = clients.bot.get(f"{R}/pulls", params={"per_page": 2})
    assert [p["number"] for p in page.json()] == [3, 2]
    assert set(page.links) == {"next", "last"}
    following = clients.bot.get(page.links["next"]["url"])
    assert [p["number"] for p in following.json()] == [1]


def test_enterprise_prefix_and_the_contents_api(remote: Remote) -> None:
    with FakeGitHub(prefix="/api/v3") as github:
        github.add_repo(REPO, remote.bare)
        assert github.api_url.endswith("/api/v3")
        auth = {"Authorization": f"Bearer {BOT_TOKEN}"}
        assert httpx.get(github.base_url + R, headers=auth).status_code == 404
        current = httpx.get(f"{github.api_url}{R}/contents/{WEB}", headers=auth).json()
        body = {
            "message": "web: 8",
            "content": "aW1hZ2U6IHdlYjo4Cg==",
            "sha": current["sha"],
            "branch": "main",
        }
        put = httpx.put(f"{github.api_url}{R}/contents/{WEB}", json=body, headers=auth)
        assert put.status_code == 200, put.text
        assert put.json()["commit"]["sha"] == remote.head()
        assert remote.show(WEB) == "image: web:8\n"
        assert_valid(put, "/api/v3")
        stale = httpx.put(f"{github.api_url}{R}/contents/{WEB}", json=body, headers=auth)
        assert stale.status_code == 409


def test_the_schema_check_is_strict_enough_to_catch_the_contracts_own_quirk() -> None:
    # SOURCE.md: the description's pull-request example has requested_teams[0] without `type`.
    example = json.loads((CONTRACT / "examples" / "pulls-get.200.json").read_text())
    schema = {"$ref": "urn:github#/components/schemas/pull-request"}
    errors = list(Draft4Validator(schema, registry=REGISTRY).iter_errors(example))
    assert [list(e.absolute_path)[:2] for e in errors] == [["requested_teams", 0]]
    example["requested_teams"] = []
    assert list(Draft4Validator(schema, registry=REGISTRY).iter_errors(example)) == []
