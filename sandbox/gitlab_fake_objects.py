"""The JSON the fake GitLab answers with, field for field like GitLab's doc examples
(contracts/gitlab/examples/*.json): a merge request (single, created, merged, listed), approvals,
pipelines, protected branches. tests/test_sandbox_gitlab.py compares them key by key."""

from __future__ import annotations

from typing import Any

from sandbox.gitlab_fake_state import (
    ACCESS_NAMES,
    MergeRequest,
    Pipeline,
    Project,
    ProtectedBranch,
    User,
    World,
    iso,
)

Json = dict[str, Any]


def user(web: str, item: User) -> Json:
    return {
        "id": item.id, "username": item.username, "name": item.name, "state": "active",
        "avatar_url": f"{web}/uploads/-/system/user/avatar/{item.id}/avatar.png",
        "web_url": f"{web}/{item.username}",
    }  # fmt: skip


def _user(web: str, world: World, username: str | None) -> Json | None:
    found = world.user(username) if username else None
    return user(web, found) if found is not None else None


def pipeline(web: str, project: Project, item: Pipeline, *, full: bool = False) -> Json:
    body: Json = {
        "id": item.id, "iid": item.iid, "project_id": project.id, "sha": item.sha, "ref": item.ref,
        "status": item.status, "source": "merge_request_event", "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at), "web_url": f"{web}/{project.path}/-/pipelines/{item.id}",
    }  # fmt: skip
    if full:  # head_pipeline carries the detailed form
        finished = item.status not in ("created", "pending", "running")
        body.update({
            "before_sha": item.sha, "tag": False, "yaml_errors": None, "user": None,
            "started_at": iso(item.created_at), "finished_at": iso(item.updated_at) if finished else None,
            "committed_at": None, "duration": int(item.updated_at - item.created_at) if finished else None,
            "queued_duration": 0, "coverage": None, "archived": False,
            "detailed_status": {
                "icon": f"status_{item.status}", "text": item.status, "label": item.status,
                "group": item.status,
                "tooltip": item.status, "has_details": True,
                "details_path": f"/{project.path}/-/pipelines/{item.id}", "illustration": None,
                "favicon": f"/assets/ci_favicons/favicon_status_{item.status}.png",
            },
        })  # fmt: skip
    return body


def merge_request(web: str, world: World, project: Project, mr: MergeRequest, status: str) -> Json:
    """One merge request; `status` is the `detailed_merge_status` to show (`preparing` when new)."""
    head = world.head_pipeline(project, mr)
    preparing = status == "preparing"
    stats = None if preparing else project.bare.stats(mr.base_sha, mr.sha)
    conflicted = status == "conflict"
    old_status = {"preparing": "unchecked", "checking": "checking"}.get(
        status, "cannot_be_merged" if conflicted else "can_be_merged"
    )
    ref = f"!{mr.iid}"
    return {
        "id": mr.id, "iid": mr.iid, "project_id": project.id, "title": mr.title,
        "description": mr.description,
        "state": mr.state, "imported": False, "imported_from": "none", "created_at": iso(mr.created_at),
        "updated_at": iso(mr.updated_at), "merged_by": _user(web, world, mr.merged_by),
        "merge_user": _user(web, world, mr.merged_by),
        "merged_at": iso(mr.merged_at) if mr.merged_at else None,
        "merge_after": None, "prepared_at": None if preparing else iso(mr.created_at),
        "closed_by": _user(web, world, mr.closed_by),
        "closed_at": iso(mr.closed_at) if mr.closed_at else None,
        "target_branch": mr.target_branch, "source_branch": mr.source_branch, "user_notes_count": mr.notes,
        "upvotes": 0, "downvotes": 0, "author": _user(web, world, mr.author), "assignees": [],
        "assignee": None,
        "reviewers": [user(web, u) for i in mr.reviewers if (u := world.user_by_id(i)) is not None],
        "source_project_id": project.id, "target_project_id": project.id, "labels": list(mr.labels),
        "draft": mr.draft, "work_in_progress": mr.draft, "milestone": None,
        "merge_when_pipeline_succeeds": False,
        "merge_status": old_status, "detailed_merge_status": status, "sha": mr.sha,
        "merge_commit_sha": mr.merge_commit_sha, "squash_commit_sha": mr.squash_commit_sha,
        "discussion_locked": None, "should_remove_source_branch": mr.remove_source_branch,
        "force_remove_source_branch": bool(mr.remove_source_branch), "allow_collaboration": False,
        "allow_maintainer_to_push": False, "reference": ref,
        "references": {"short": ref, "relative": ref, "full": f"{project.path}{ref}"},
        "web_url": f"{web}/{project.path}/-/merge_requests/{mr.iid}",
        "time_stats": {"time_estimate": 0, "total_time_spent": 0, "human_time_estimate": None,
                       "human_total_time_spent": None},
        "squash": mr.squash, "squash_on_merge": mr.squash,
        "task_completion_status": {"count": 0, "completed_count": 0},
        "has_conflicts": conflicted, "blocking_discussions_resolved": True, "approvals_before_merge": None,
        "subscribed": True, "changes_count": None if stats is None else str(stats.changed_files),
        "latest_build_started_at": iso(head.created_at) if head else None,
        "latest_build_finished_at": None, "first_deployed_to_production_at": None,
        "pipeline": pipeline(web, project, head) if head else None,
        "head_pipeline": pipeline(web, project, head, full=True) if head else None,
        "diff_refs": None if preparing else {"base_sha": mr.base_sha, "head_sha": mr.sha,
        "start_sha": mr.base_sha},
        "merge_error": mr.merge_error, "first_contribution": False, "diverged_commits_count": 0,
        "user": {"can_merge": True},
    }  # fmt: skip


def approvals(web: str, world: World, project: Project, mr: MergeRequest) -> Json:
    left = world.approvals_left(project, mr)
    return {
        "id": mr.id, "iid": mr.iid, "project_id": project.id, "title": mr.title,
        "description": mr.description,
        "state": mr.state, "created_at": iso(mr.created_at), "updated_at": iso(mr.updated_at),
        "merge_status": "can_be_merged" if left == 0 else "cannot_be_merged",
        "approvals_required": project.approvals_required, "approvals_left": left,
        "approved_by": [{"user": u, "approved_at": iso(a.at)} for a in mr.approvals
                        if (u := _user(web, world, a.user)) is not None],
    }  # fmt: skip


def protected_branch(item: ProtectedBranch, ids: tuple[int, int]) -> Json:
    def level(access: int, at: int) -> list[Json]:
        return [
            {"id": at, "access_level": access, "access_level_description": ACCESS_NAMES.get(access, "Custom")}
        ]

    return {
        "id": item.id, "name": item.name, "push_access_levels": level(item.push_access_level, ids[0]),
        "merge_access_levels": level(item.merge_access_level, ids[1]),
        "allow_force_push": item.allow_force_push,
        "code_owner_approval_required": item.code_owner_approval_required,
    }  # fmt: skip


def project_body(web: str, project: Project) -> Json:
    name = project.path.rsplit("/", 1)[-1]
    return {
        "id": project.id, "name": name, "path": name, "path_with_namespace": project.path,
        "name_with_namespace": project.path.replace("/", " / "), "default_branch": project.default_branch,
        "web_url": f"{web}/{project.path}", "http_url_to_repo": f"{web}/{project.path}.git",
        "created_at": iso(project.created_at), "merge_method": project.merge_method,
        "only_allow_merge_if_pipeline_succeeds": project.only_allow_merge_if_pipeline_succeeds,
        "approvals_before_merge": project.approvals_required, "squash_option": "default_off",
    }  # fmt: skip
