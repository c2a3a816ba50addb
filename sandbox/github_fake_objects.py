"""The JSON the fake GitHub answers with, shaped like the schemas of the trimmed REST description
(`contracts/github/api.github.com.trimmed.json`, API version 2022-11-28): every required field, the
nullable ones null where GitHub leaves them so. tests/test_sandbox_github.py validates each of them.

`Links` knows the two roots: `api` (where the API is served: `http://127.0.0.1:PORT` or
`…/api/v3` for an Enterprise-style prefix) and `web` (the server root, where `html_url`s point).
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from typing import Any

from sandbox.github_fake_git import CommitInfo
from sandbox.github_fake_state import (
    CheckRun,
    Comment,
    Label,
    Pull,
    Repo,
    Review,
    Status,
    User,
    World,
    iso,
)

Json = dict[str, Any]
DOCS = "https://docs.github.com/rest"


def node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0:{kind}{number}".encode()).decode()


@dataclass(frozen=True)
class Links:
    api: str
    web: str

    def repo(self, repo: Repo) -> str:
        return f"{self.api}/repos/{repo.full_name}"

    def user(self, user: User) -> Json:
        u = f"{self.api}/users/{user.login}"
        return {
            "login": user.login, "id": user.id, "node_id": node_id("User", user.id),
            "avatar_url": f"{self.web}/avatars/{user.login}", "gravatar_id": "", "url": u,
            "html_url": f"{self.web}/{user.login}", "followers_url": f"{u}/followers",
            "following_url": f"{u}/following{{/other_user}}", "gists_url": f"{u}/gists{{/gist_id}}",
            "starred_url": f"{u}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{u}/subscriptions",
            "organizations_url": f"{u}/orgs", "repos_url": f"{u}/repos",
            "events_url": f"{u}/events{{/privacy}}",
            "received_events_url": f"{u}/received_events", "type": user.kind, "site_admin": False,
            "user_view_type": "public",
        }  # fmt: skip

    def owner(self, world: World, repo: Repo) -> Json:
        owner = world.user_by_login(repo.owner) or User(repo.owner, 1, "", kind="User")
        return self.user(owner)


def _repo_urls(r: str, web: str, full_name: str) -> Json:
    return {
        "archive_url": f"{r}/{{archive_format}}{{/ref}}", "assignees_url": f"{r}/assignees{{/user}}",
        "blobs_url": f"{r}/git/blobs{{/sha}}", "branches_url": f"{r}/branches{{/branch}}",
        "collaborators_url": f"{r}/collaborators{{/collaborator}}",
        "comments_url": f"{r}/comments{{/number}}",
        "commits_url": f"{r}/commits{{/sha}}", "compare_url": f"{r}/compare/{{base}}...{{head}}",
        "contents_url": f"{r}/contents/{{+path}}", "contributors_url": f"{r}/contributors",
        "deployments_url": f"{r}/deployments", "downloads_url": f"{r}/downloads", "events_url": f"{r}/events",
        "forks_url": f"{r}/forks", "git_commits_url": f"{r}/git/commits{{/sha}}",
        "git_refs_url": f"{r}/git/refs{{/sha}}", "git_tags_url": f"{r}/git/tags{{/sha}}",
        "hooks_url": f"{r}/hooks", "issue_comment_url": f"{r}/issues/comments{{/number}}",
        "issue_events_url": f"{r}/issues/events{{/number}}", "issues_url": f"{r}/issues{{/number}}",
        "keys_url": f"{r}/keys{{/key_id}}", "labels_url": f"{r}/labels{{/name}}",
        "languages_url": f"{r}/languages",
        "merges_url": f"{r}/merges", "milestones_url": f"{r}/milestones{{/number}}",
        "notifications_url": f"{r}/notifications{{?since,all,participating}}",
        "pulls_url": f"{r}/pulls{{/number}}",
        "releases_url": f"{r}/releases{{/id}}", "stargazers_url": f"{r}/stargazers",
        "statuses_url": f"{r}/statuses/{{sha}}", "subscribers_url": f"{r}/subscribers",
        "subscription_url": f"{r}/subscription", "tags_url": f"{r}/tags", "teams_url": f"{r}/teams",
        "trees_url": f"{r}/git/trees{{/sha}}", "url": r, "html_url": f"{web}/{full_name}",
        "clone_url": f"{web}/{full_name}.git", "git_url": f"git://{web.split('://', 1)[-1]}/{full_name}.git",
        "ssh_url": f"git@{web.split('://', 1)[-1].split('/')[0]}:{full_name}.git",
        "svn_url": f"{web}/{full_name}",
        "mirror_url": None,
    }  # fmt: skip


def repository(links: Links, world: World, repo: Repo, user: User | None, *, full: bool = False) -> Json:
    """`repository` (inside a pull request's head/base) or, with `full`, `full-repository` (repos/get)."""
    open_count = sum(1 for p in repo.pulls.values() if p.state == "open")
    body: Json = {
        "id": repo.id, "node_id": node_id("Repository", repo.id), "name": repo.name,
        "full_name": repo.full_name,
        "owner": links.owner(world, repo), "private": repo.private, "description": None, "fork": False,
        **_repo_urls(links.repo(repo), links.web, repo.full_name),
        "homepage": None, "language": None, "forks": 0, "forks_count": 0, "stargazers_count": 0,
        "watchers_count": 0, "watchers": 0, "size": 0, "default_branch": repo.default_branch,
        "open_issues": open_count, "open_issues_count": open_count, "is_template": False, "topics": [],
        "has_issues": True, "has_projects": False, "has_wiki": False, "has_pages": False,
        "has_downloads": True,
        "has_discussions": False, "archived": False, "disabled": False,
        "visibility": "private" if repo.private else "public", "license": None,
        "pushed_at": iso(world.clock()), "created_at": iso(repo.created_at),
        "updated_at": iso(repo.created_at),
        "allow_rebase_merge": repo.allow_rebase_merge, "allow_squash_merge": repo.allow_squash_merge,
        "allow_merge_commit": repo.allow_merge_commit, "allow_auto_merge": False,
        "delete_branch_on_merge": repo.delete_branch_on_merge, "allow_update_branch": True,
        "allow_forking": False, "web_commit_signoff_required": False,
    }  # fmt: skip
    if user is not None:
        level = world.permission(repo, user)
        body["permissions"] = {
            "admin": level == "admin", "maintain": level == "admin", "push": level in ("write", "admin"),
            "triage": level in ("write", "admin"), "pull": True,
        }  # fmt: skip
    if full:
        body.update(network_count=0, subscribers_count=0, squash_merge_commit_title="COMMIT_OR_PR_TITLE",
                    squash_merge_commit_message="COMMIT_MESSAGES", merge_commit_title="MERGE_MESSAGE",
                    merge_commit_message="PR_TITLE")  # fmt: skip
    return body


def label(links: Links, repo: Repo, item: Label) -> Json:
    return {
        "id": item.id, "node_id": node_id("Label", item.id), "url": f"{links.repo(repo)}/labels/{item.name}",
        "name": item.name, "description": item.description, "color": item.color, "default": False,
    }  # fmt: skip


def _user_or_ghost(links: Links, world: World, login: str | None) -> Json | None:
    if login is None:
        return None
    found = world.user_by_login(login)
    return links.user(found if found is not None else User(login, 10, "", kind="User"))


def _link(href: str) -> Json:
    return {"href": href}


def pull_request(
    links: Links, world: World, repo: Repo, pull: Pull, mergeability: tuple[bool | None, str] | None = None
) -> Json:
    """`pull-request` (get, create, update: pass `mergeability`, what `mergeable` and
    `mergeable_state` say) or, without it, `pull-request-simple` (list)."""
    r, n = links.repo(repo), pull.number
    html = f"{links.web}/{repo.full_name}/pull/{n}"
    author = _user_or_ghost(links, world, pull.author)

    def side(ref: str, sha: str) -> Json:
        return {"label": f"{repo.owner}:{ref}", "ref": ref, "sha": sha, "user": links.owner(world, repo),
                "repo": repository(links, world, repo, None)}  # fmt: skip

    body: Json = {
        "url": f"{r}/pulls/{n}", "id": pull.id, "node_id": node_id("PullRequest", pull.id), "html_url": html,
        "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "issue_url": f"{r}/issues/{n}",
        "commits_url": f"{r}/pulls/{n}/commits", "review_comments_url": f"{r}/pulls/{n}/comments",
        "review_comment_url": f"{r}/pulls/comments{{/number}}", "comments_url": f"{r}/issues/{n}/comments",
        "statuses_url": f"{r}/statuses/{pull.head_sha}", "number": n, "state": pull.state, "locked": False,
        "title": pull.title, "user": author, "body": pull.body,
        "labels": [label(links, repo, repo.labels[name]) for name in pull.labels],
        "milestone": None, "active_lock_reason": None, "created_at": iso(pull.created_at),
        "updated_at": iso(pull.updated_at), "closed_at": iso(pull.closed_at) if pull.closed_at else None,
        "merged_at": iso(pull.merged_at) if pull.merged_at else None,
        "merge_commit_sha": pull.merge_commit_sha,
        "assignee": None, "assignees": [],
        "requested_reviewers": [_user_or_ghost(links, world, login) for login in pull.requested_reviewers],
        "requested_teams": [], "head": side(pull.head_ref, pull.head_sha),
        "base": side(pull.base_ref, pull.base_sha),
        "_links": {
            "self": _link(f"{r}/pulls/{n}"), "html": _link(html), "issue": _link(f"{r}/issues/{n}"),
            "comments": _link(f"{r}/issues/{n}/comments"),
            "review_comments": _link(f"{r}/pulls/{n}/comments"),
            "review_comment": _link(f"{r}/pulls/comments{{/number}}"),
            "commits": _link(f"{r}/pulls/{n}/commits"),
            "statuses": _link(f"{r}/statuses/{pull.head_sha}"),
        },
        "author_association": "MEMBER", "auto_merge": None, "draft": pull.draft,
    }  # fmt: skip
    if mergeability is not None:
        mergeable, state = mergeability
        stats = repo.bare.stats(pull.base_sha, pull.head_sha)
        body.update({
            "merged": pull.merged, "mergeable": mergeable, "rebaseable": mergeable, "mergeable_state": state,
            "merged_by": _user_or_ghost(links, world, pull.merged_by), "comments": len(pull.comments),
            "review_comments": 0, "maintainer_can_modify": pull.maintainer_can_modify,
            "commits": stats.commits,
            "additions": stats.additions, "deletions": stats.deletions, "changed_files": stats.changed_files,
        })  # fmt: skip
    return body


def review(links: Links, world: World, repo: Repo, pull: Pull, item: Review) -> Json:
    html = f"{links.web}/{repo.full_name}/pull/{pull.number}#pullrequestreview-{item.id}"
    body: Json = {
        "id": item.id, "node_id": node_id("PullRequestReview", item.id),
        "user": _user_or_ghost(links, world, item.user), "body": item.body, "state": item.state,
        "html_url": html, "pull_request_url": f"{links.repo(repo)}/pulls/{pull.number}",
        "_links": {"html": _link(html), "pull_request": _link(f"{links.repo(repo)}/pulls/{pull.number}")},
        "commit_id": item.commit_id, "author_association": "MEMBER",
    }  # fmt: skip
    if item.submitted_at is not None:
        body["submitted_at"] = iso(item.submitted_at)
    return body


def comment(links: Links, world: World, repo: Repo, number: int, item: Comment) -> Json:
    r = links.repo(repo)
    return {
        "id": item.id, "node_id": node_id("IssueComment", item.id), "url": f"{r}/issues/comments/{item.id}",
        "html_url": f"{links.web}/{repo.full_name}/pull/{number}#issuecomment-{item.id}", "body": item.body,
        "user": _user_or_ghost(links, world, item.user), "created_at": iso(item.created_at),
        "updated_at": iso(item.created_at), "issue_url": f"{r}/issues/{number}",
        "author_association": "MEMBER",
    }  # fmt: skip


def check_run(links: Links, repo: Repo, run: CheckRun) -> Json:
    url = f"{links.repo(repo)}/check-runs/{run.id}"
    return {
        "id": run.id, "head_sha": run.head_sha, "node_id": node_id("CheckRun", run.id), "external_id": None,
        "url": url, "html_url": f"{links.web}/{repo.full_name}/runs/{run.id}", "details_url": None,
        "status": run.status, "conclusion": run.conclusion, "started_at": iso(run.started_at),
        "completed_at": iso(run.completed_at) if run.completed_at else None, "name": run.name,
        "output": {"title": None, "summary": None, "text": None, "annotations_count": 0,
                   "annotations_url": f"{url}/annotations"},
        "check_suite": {"id": run.id}, "app": None, "pull_requests": [],
    }  # fmt: skip


def commit_status(links: Links, repo: Repo, sha: str, item: Status) -> Json:
    return {
        "url": f"{links.repo(repo)}/statuses/{sha}", "avatar_url": None, "id": item.id,
        "node_id": node_id("StatusContext", item.id), "state": item.state, "description": item.description,
        "target_url": item.target_url, "context": item.context, "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
    }  # fmt: skip


def combined_status(links: Links, world: World, repo: Repo, sha: str) -> Json:
    statuses = sorted(repo.statuses.get(sha, {}).values(), key=lambda s: s.id)
    minimal = {k: v for k, v in repository(links, world, repo, None).items() if k in _MINIMAL}
    return {
        "state": world.combined_state(repo, sha),
        "statuses": [commit_status(links, repo, sha, s) for s in statuses],
        "sha": sha, "total_count": len(statuses), "repository": minimal,
        "commit_url": f"{links.repo(repo)}/commits/{sha}", "url": f"{links.repo(repo)}/commits/{sha}/status",
    }  # fmt: skip


_MINIMAL = frozenset(
    [
        "id",
        "node_id",
        "name",
        "full_name",
        "owner",
        "private",
        "html_url",
        "description",
        "fork",
        "url",
        "archive_url",
        "assignees_url",
        "blobs_url",
        "branches_url",
        "collaborators_url",
        "comments_url",
        "commits_url",
        "compare_url",
        "contents_url",
        "contributors_url",
        "deployments_url",
        "downloads_url",
        "events_url",
        "forks_url",
        "git_commits_url",
        "git_refs_url",
        "git_tags_url",
        "hooks_url",
        "issue_comment_url",
        "issue_events_url",
        "issues_url",
        "keys_url",
        "labels_url",
        "languages_url",
        "merges_url",
        "milestones_url",
        "notifications_url",
        "pulls_url",
        "releases_url",
        "stargazers_url",
        "statuses_url",
        "subscribers_url",
        "subscription_url",
        "tags_url",
        "teams_url",
        "trees_url",
    ]
)


def commit(links: Links, repo: Repo, info: CommitInfo) -> Json:
    r = links.repo(repo)

    def person(p: Any, date: str) -> Json:
        return {"name": p.name, "email": p.email, "date": date}

    return {
        "url": f"{r}/commits/{info.sha}", "sha": info.sha,
        "node_id": node_id("Commit", int(info.sha[:7], 16)),
        "html_url": f"{links.web}/{repo.full_name}/commit/{info.sha}",
        "comments_url": f"{r}/commits/{info.sha}/comments",
        "commit": {
            "url": f"{r}/git/commits/{info.sha}", "author": person(info.author, info.author_date),
            "committer": person(info.committer, info.committer_date), "message": info.message,
            "comment_count": 0,
            "tree": {"sha": info.tree, "url": f"{r}/git/trees/{info.tree}"},
        },
        "author": None, "committer": None,
        "parents": [{"sha": p, "url": f"{r}/commits/{p}",
        "html_url": f"{links.web}/{repo.full_name}/commit/{p}"}
                    for p in info.parents],
    }  # fmt: skip


def branch(links: Links, repo: Repo, name: str, info: CommitInfo) -> Json:
    r, rules = links.repo(repo), repo.rules_for(name)
    classic = rules is not None and rules.kind == "classic"
    protection_url = f"{r}/branches/{name}/protection"
    protection: Json = {"enabled": classic, "required_status_checks": {
        "enforcement_level": "non_admins" if classic and rules and rules.required_checks else "off",
        "contexts": list(rules.required_checks) if classic and rules else [],
        "checks": [{"context": c,
        "app_id": None} for c in (rules.required_checks if classic and rules else ())],
    }}  # fmt: skip
    return {
        "name": name, "commit": commit(links, repo, info),
        "_links": {"html": f"{links.web}/{repo.full_name}/tree/{name}", "self": f"{r}/branches/{name}"},
        "protected": classic, "protection": protection, "protection_url": protection_url,
    }  # fmt: skip


def branch_rules(repo: Repo, name: str) -> list[Json]:
    """`repository-rule-detailed` items: what a ruleset applies to `name` (classic protection shows none)."""
    rules = repo.rules_for(name)
    if rules is None or rules.kind != "ruleset":
        return []
    source = {
        "ruleset_source_type": "Repository",
        "ruleset_source": repo.full_name,
        "ruleset_id": rules.ruleset_id,
    }
    found: list[Json] = [{"type": "pull_request", "parameters": {
        "allowed_merge_methods": list(rules.allowed_merge_methods),
        "dismiss_stale_reviews_on_push": rules.dismiss_stale_reviews_on_push,
        "require_code_owner_review": False,
        "require_last_push_approval": rules.require_last_push_approval,
        "required_approving_review_count": rules.required_approving_review_count,
        "required_review_thread_resolution": False,
    }, **source}]  # fmt: skip
    if rules.required_checks:
        found.append({"type": "required_status_checks", "parameters": {
            "required_status_checks": [{"context": c} for c in rules.required_checks],
            "strict_required_status_checks_policy": rules.strict,
        }, **source})  # fmt: skip
    found.append({"type": "non_fast_forward", **source})
    return found


def git_ref(links: Links, repo: Repo, ref: str, sha: str) -> Json:
    r = links.repo(repo)
    return {
        "ref": ref, "node_id": node_id("Ref", zlib.crc32(ref.encode())), "url": f"{r}/git/{ref}",
        "object": {"type": "commit", "sha": sha, "url": f"{r}/git/commits/{sha}"},
    }  # fmt: skip


def error(message: str, status: int, doc: str = DOCS) -> Json:
    return {"message": message, "documentation_url": doc, "status": str(status)}


def validation(errors: list[Json] | list[str], doc: str = DOCS, message: str = "Validation Failed") -> Json:
    return {"message": message, "errors": errors, "documentation_url": doc, "status": "422"}
