"""A refused push, classified (githost-api.md §4.2): the hosts' texts, then real pushes refused by the
sandbox's protected branches (sandbox/git_protect.py) through the git service."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from sandbox import git_protect
from services.git import GitUnavailable, RepoCache
from services.git.errors import ProtectedBranch, PushRejected
from services.git.refusal import PushRefusal, classify_push_refusal
from services.settings.model import GitRepository
from tests.git_support import DANA, Remote, clone_state, make_remote, sh

WEB = "apps/web/deploy.yaml"

# What `git push` prints, laid out as git does (the host's lines behind `remote: `), built from the
# texts quoted in githost-api.md §4.2.
GH006 = """\
remote: error: GH006: Protected branch update failed for refs/heads/main.
remote:
remote: - Changes must be made through a pull request.
remote:
remote: - 4 of 4 required status checks are expected.
To https://github.com/example/deploy
 ! [remote rejected] main -> main (protected branch hook declined)
error: failed to push some refs to 'https://github.com/example/deploy'
"""
GH006_OLDER = """\
remote: error: GH006: Protected branch update failed for refs/heads/main.        \n\
remote: error: Changes must be made through the merge queue        \n\
To https://github.com/example/deploy
 ! [remote rejected] main -> main (protected branch hook declined)
"""
GH006_NOT_AUTHORIZED = """\
remote: error: GH006: Protected branch update failed for refs/heads/main.
remote:
remote: - You're not authorized to push to this branch.
 ! [remote rejected] HEAD -> main (protected branch hook declined)
"""
GH013 = """\
remote: error: GH013: Repository rule violations found for refs/heads/main.
remote: Review all repository rules at https://github.com/example/deploy/rules?ref=refs%2Fheads%2Fmain
remote:
remote: - Changes must be made through a pull request.
remote:
remote: - Cannot force-push to this branch
remote:
To github.com:example/deploy.git
 ! [remote rejected]     main -> main (push declined due to repository rule violations)
"""
GITLAB = """\
remote: GitLab: You are not allowed to push code to protected branches on this project.
To ssh://gitlab.example.com/group/deploy.git
 ! [remote rejected] main -> main (pre-receive hook declined)
error: failed to push some refs to 'ssh://gitlab.example.com/group/deploy.git'
"""
GITLAB_FORCE = """\
remote: GitLab: You are not allowed to force push code to a protected branch on this project.
 ! [remote rejected] main -> main (pre-receive hook declined)
"""
CUSTOM_HOOK = """\
remote: GitLab: You are not allowed to access some of the refs!
To git@gitlab.example.com:group/deploy.git
 ! [remote rejected] main -> main (pre-receive hook declined)
"""
FETCH_FIRST = """\
To https://github.com/example/deploy.git
 ! [rejected]        main -> main (fetch first)
error: failed to push some refs to 'https://github.com/example/deploy.git'
hint: Updates were rejected because the remote contains work that you do not
"""
NON_FAST_FORWARD = """\
 ! [rejected]        main -> main (non-fast-forward)
error: failed to push some refs to 'git@gitlab.example.com:group/deploy.git'
"""
# GitPython reports a failed ref from `git push --porcelain`: "[remote rejected] (reason)".
PORCELAIN_GH006 = "! refs/heads/main [remote rejected] (protected branch hook declined)"
PORCELAIN_GH013 = "! refs/heads/main [remote rejected] (push declined due to repository rule violations)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GH006, PushRefusal("protected", "github", "GH006", (
            "Changes must be made through a pull request.", "4 of 4 required status checks are expected.",
        ), "protected branch hook declined")),
        (GH006_OLDER, PushRefusal("protected", "github", "GH006", (
            "Changes must be made through the merge queue",), "protected branch hook declined")),
        (GH006_NOT_AUTHORIZED, PushRefusal("protected", "github", "GH006", (
            "You're not authorized to push to this branch.",), "protected branch hook declined")),
        (GH013, PushRefusal("protected", "github", "GH013", (
            "Changes must be made through a pull request.", "Cannot force-push to this branch",
        ), "push declined due to repository rule violations")),
        (GITLAB, PushRefusal("protected", "gitlab", None, (
            "You are not allowed to push code to protected branches on this project.",
        ), "pre-receive hook declined")),
        (GITLAB_FORCE, PushRefusal("protected", "gitlab", None, (
            "You are not allowed to force push code to a protected branch on this project.",
        ), "pre-receive hook declined")),
        (PORCELAIN_GH006, PushRefusal("protected", "github", "GH006", (), "protected branch hook declined")),
        (PORCELAIN_GH013, PushRefusal(
            "protected", "github", "GH013", (), "push declined due to repository rule violations")),
        (FETCH_FIRST, PushRefusal("non_fast_forward")),
        (NON_FAST_FORWARD, PushRefusal("non_fast_forward")),
    ],
)  # fmt: skip
def test_the_hosts_texts_are_classified(text: str, expected: PushRefusal) -> None:
    assert classify_push_refusal(text) == expected


def test_pre_receive_declined_alone_is_an_unknown_rejection_not_protection() -> None:
    refusal = classify_push_refusal(CUSTOM_HOOK)
    assert refusal.kind == "rejected"
    assert not refusal.protected
    assert refusal.host is None
    assert refusal.ref_reason == "pre-receive hook declined"
    assert refusal.reasons == ("GitLab: You are not allowed to access some of the refs!",)
    plain = classify_push_refusal("! refs/heads/main [remote rejected] (pre-receive hook declined)")
    assert (plain.kind, plain.reasons) == ("rejected", ())


def test_a_race_is_never_protection_even_next_to_a_hint() -> None:
    refusal = classify_push_refusal(FETCH_FIRST + "hint: the branch is protected? no: fetch first\n")
    assert refusal.kind == "non_fast_forward"


# -- the sandbox's protected branches, pushed to by the git service --------------------------------


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    made, _ = make_remote(tmp_path)
    git_protect.install(made.bare)
    return made


def cache_for(tmp_path: Path, remote: Remote, token: str | None = None) -> RepoCache:
    repo = GitRepository(name="deploy", url=str(remote.bare))
    credentials = {"deploy": SecretStr(token)} if token else {}
    return RepoCache(tmp_path / "cache", [repo], credentials)


def bump(tag: str) -> Callable[[Path], list[str]]:
    def edit(worktree: Path) -> list[str]:
        (worktree / WEB).write_text(f"image: web:{tag}\n")
        return [WEB]

    return edit


def push(cache: RepoCache, tag: str) -> str:
    return cache.edit_and_push("deploy", bump(tag), author=DANA, message=f"web: {tag}").sha


def test_github_protection_refuses_with_gh006_and_nothing_is_pushed(tmp_path: Path, remote: Remote) -> None:
    before = remote.head()
    git_protect.protect(
        remote.bare,
        "main",
        style="github",
        reasons=[
            "Changes must be made through a pull request.",
            "2 of 2 required status checks are expected.",
        ],
    )
    cache = cache_for(tmp_path, remote)
    with pytest.raises(ProtectedBranch) as info:
        push(cache, "3")
    error = info.value
    assert isinstance(error, GitUnavailable)  # callers that catch today's error still do
    assert (error.repository, error.branch) == ("deploy", "main")
    assert error.refusal == PushRefusal(
        "protected",
        "github",
        "GH006",
        ("Changes must be made through a pull request.", "2 of 2 required status checks are expected."),
        "protected branch hook declined",
    )
    assert error.message.startswith("push to main refused: ")
    assert "GH006" in error.message
    assert remote.head() == before
    status, head, origin = clone_state(cache)
    assert (status, head, origin) == ("", before, before)  # the refused commit is gone from the clone


def test_ruleset_protection_refuses_with_gh013(tmp_path: Path, remote: Remote) -> None:
    git_protect.protect(
        remote.bare, "main", style="github-ruleset", html_url="https://github.com/example/deploy"
    )
    with pytest.raises(ProtectedBranch) as info:
        push(cache_for(tmp_path, remote), "3")
    refusal = info.value.refusal
    assert (refusal.host, refusal.code, refusal.ref_reason) == (
        "github",
        "GH013",
        "push declined due to repository rule violations",
    )
    assert refusal.reasons == ("Changes must be made through a pull request.",)


def test_gitlab_protection_refuses_with_gitlabs_text(tmp_path: Path, remote: Remote) -> None:
    git_protect.protect(remote.bare, "ma*", style="gitlab")  # GitLab rules may be wildcards
    with pytest.raises(ProtectedBranch) as info:
        push(cache_for(tmp_path, remote), "3")
    refusal = info.value.refusal
    assert (refusal.host, refusal.code, refusal.ref_reason) == ("gitlab", None, "pre-receive hook declined")
    assert refusal.reasons == ("You are not allowed to push code to protected branches on this project.",)


def test_a_custom_hook_refusal_is_rejected_but_not_protection(tmp_path: Path, remote: Remote) -> None:
    git_protect.protect(remote.bare, "main", style="hook", reasons=["Commits must reference a ticket."])
    with pytest.raises(PushRejected) as info:
        push(cache_for(tmp_path, remote), "3")
    assert not isinstance(info.value, ProtectedBranch)
    assert info.value.refusal.kind == "rejected"
    assert info.value.refusal.ref_reason == "pre-receive hook declined"
    assert "Commits must reference a ticket." in info.value.message


def test_unprotecting_lets_the_next_push_through(tmp_path: Path, remote: Remote) -> None:
    git_protect.protect(remote.bare, "main", style="github")
    cache = cache_for(tmp_path, remote)
    with pytest.raises(ProtectedBranch):
        push(cache, "3")
    git_protect.unprotect(remote.bare, "main")
    assert git_protect.protections(remote.bare) == {}
    sha = push(cache, "3")
    assert remote.head() == sha
    assert remote.show(WEB) == "image: web:3\n"


def test_other_branches_and_server_side_updates_are_not_refused(tmp_path: Path, remote: Remote) -> None:
    git_protect.protect(remote.bare, "main", style="github")
    sh(remote.work, "push", "-q", "origin", "HEAD:refs/heads/gitops-bot/promote/web-prod-1")
    assert remote.head("gitops-bot/promote/web-prod-1") == remote.head()
    # What a host's merge does: update the ref inside the repository; no receive hook runs.
    parent = sh(remote.bare, "rev-parse", "main~1").strip()
    sh(remote.bare, "update-ref", "refs/heads/main", parent)
    assert remote.head() == parent


def test_force_push_only_protection_lets_ordinary_pushes_through(tmp_path: Path, remote: Remote) -> None:
    git_protect.protect(remote.bare, "main", style="gitlab", force_push_only=True)
    sha = push(cache_for(tmp_path, remote), "3")
    assert remote.head() == sha
    sh(remote.work, "fetch", "-q", "origin")
    sh(remote.work, "reset", "-q", "--hard", "origin/main~1")
    forced = subprocess.run(
        ["git", "push", "--force", "origin", "HEAD:main"], cwd=remote.work, capture_output=True, text=True
    )
    assert forced.returncode != 0
    assert "GitLab: You are not allowed to force push code to a protected branch" in forced.stderr
    assert "(pre-receive hook declined)" in forced.stderr
    assert remote.head() == sha


def test_a_race_under_protection_hooks_is_still_retried(tmp_path: Path, remote: Remote) -> None:
    git_protect.protect(remote.bare, "release/*", style="github")  # the hooks run; main is free
    cache = cache_for(tmp_path, remote)
    tips: list[str] = []

    def edit(worktree: Path) -> list[str]:
        tips.append(sh(worktree, "rev-parse", "HEAD").strip())
        if len(tips) == 1:  # someone else pushes after we fetched, before we push
            remote.commit({"apps/api/deploy.yaml": "image: api:9\n"}, "api: 9")
        (worktree / WEB).write_text("image: web:4\n")
        return [WEB]

    result = cache.edit_and_push("deploy", edit, author=DANA, message="web: 4")
    assert result.attempts == 2  # a race, retried: not mistaken for a refusal
    assert remote.subjects()[:2] == ["web: 4", "api: 9"]


def test_a_flux_rollback_revert_is_refused_the_same_way(tmp_path: Path, remote: Remote) -> None:
    head = remote.head()
    git_protect.protect(remote.bare, "main", style="gitlab")
    with pytest.raises(ProtectedBranch) as info:
        cache_for(tmp_path, remote).revert("deploy", head, author=DANA, message="Revert")
    assert info.value.refusal.host == "gitlab"
    assert remote.head() == head


def test_the_refusal_shown_to_users_is_scrubbed(tmp_path: Path, remote: Remote) -> None:
    token = "s3cr3t-t0ken-value"
    git_protect.protect(remote.bare, "main", style="github", reasons=[f"token {token} may not push here"])
    with pytest.raises(ProtectedBranch) as info:
        push(cache_for(tmp_path, remote, token), "3")
    error = info.value
    assert token not in str(error)
    assert token not in " ".join(error.refusal.reasons)
    assert error.refusal.reasons == ("token [REDACTED] may not push here",)
