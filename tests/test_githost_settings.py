"""`repositories[]` keys for promotions through a pull/merge request: defaults, the checks that name
the bad key, the warnings, the secrets they name, and the docs and example that list them."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from bot.config import ConfigError, LoadedConfig, load_config, parse_config_text
from services.settings.githost import GitHostKeys
from services.settings.model import GitRepository, Secrets

ROOT = Path(__file__).resolve().parent.parent
GITHUB = """\
mode: pull_request
host: github
api_url: https://api.github.com
project: example/deploy
token_env: GITHUB_TOKEN
"""


def config(keys: str) -> str:
    head = "repositories:\n  - name: deploy\n    url: https://github.com/example/deploy.git\n"
    return head + textwrap.indent(textwrap.dedent(keys), "    ")


def load(keys: str, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    return parse_config_text(config(keys), environ=environ or {})


def problems(keys: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load(keys)
    return info.value.problems


def test_push_is_the_default_and_needs_nothing_else() -> None:
    repo = load("").settings.repositories[0]
    assert (repo.mode, repo.host, repo.api_url, repo.merge_method, repo.delete_branch) == (
        "push", None, None, "merge", True,
    )  # fmt: skip
    assert not repo.uses_pull_requests
    assert (repo.labels, repo.reviewers, repo.token_env, repo.approve_token_env) == ((), (), None, None)


def test_a_github_pull_request_repository() -> None:
    keys = GITHUB + "approve_token_env: GITHUB_APPROVER\nmerge_method: squash\nlabels: [gitops-bot]\n"
    keys += "reviewers: [octo-cat]\ndelete_branch: false\n"
    loaded = load(keys, {"GITHUB_TOKEN": "ghp_bot", "GITHUB_APPROVER": "ghp_rev"})
    repo = loaded.settings.repositories[0]
    assert (repo.mode, repo.host, repo.api_url, repo.project) == (
        "pull_request", "github", "https://api.github.com", "example/deploy",
    )  # fmt: skip
    assert (repo.merge_method, repo.labels, repo.reviewers, repo.delete_branch) == (
        "squash", ("gitops-bot",), ("octo-cat",), False,
    )  # fmt: skip
    assert repo.uses_pull_requests
    assert loaded.secrets.githost_tokens["deploy"].get_secret_value() == "ghp_bot"
    assert loaded.secrets.githost_approve_tokens["deploy"].get_secret_value() == "ghp_rev"
    assert not [w for w in loaded.warnings if "repositories" in w]


def test_a_gitlab_merge_request_repository_with_numbers_for_ids() -> None:
    keys = "mode: auto\nhost: gitlab\napi_url: https://gitlab.example.com/api/v4/\nproject: 4242\n"
    keys += "token_env: GITLAB_TOKEN\nreviewers: [17, 23]\nmerge_method: squash\n"
    repo = load(keys).settings.repositories[0]
    assert (repo.api_url, repo.project, repo.reviewers) == (
        "https://gitlab.example.com/api/v4",
        "4242",
        ("17", "23"),
    )
    path = load(keys.replace("4242", "platform/deploy/prod")).settings.repositories[0]
    assert path.project == "platform/deploy/prod"


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("mode: pull_request\n", [
            "repositories[0].host: required with mode: pull_request (github or gitlab)"]),
        ("mode: merge\n", ["repositories[0].mode: 'merge' is not one of: push, pull_request, auto"]),
        ("mode: auto\nhost: gitea\n", [
            "repositories[0].host: 'gitea' is not one of: github, gitlab (did you mean 'gitlab'?)"]),
        (GITHUB.replace("api_url: https://api.github.com\n", ""), [
            "repositories[0].api_url: required with host: github "
            "(https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server)"]),
        (GITHUB.replace("api.github.com", "github.com"), [
            "repositories[0].api_url: github.com serves the website; the API is https://api.github.com"]),
        (GITHUB.replace("example/deploy", "deploy"), [
            "repositories[0].project: 'deploy' is not a GitHub repository (owner/repo)"]),
        (GITHUB.replace("token_env: GITHUB_TOKEN\n", ""), [
            "repositories[0].token_env: required with host: github (the token that opens and merges)"]),
        (GITHUB + "approve_token_env: GITHUB_TOKEN\n", [
            "repositories[0].approve_token_env: names the same token as token_env; GitHub refuses an "
            "approval from the pull request's author (\"Can not approve your own pull request\"): "
            "give a second identity's token"]),
        (GITHUB + "merge_method: fast-forward\n", [
            "repositories[0].merge_method: 'fast-forward' is not one of: merge, squash, rebase"]),
        (GITHUB + "reviewers: ['not a login']\n", [
            "repositories[0].reviewers: 'not a login' is not a GitHub user name"]),
        (GITHUB + "labels: ['']\n", ["repositories[0].labels: '' is not a label (1 to 50 characters)"]),
        (GITHUB + "token: x\n", ["repositories[0].token: unknown key (did you mean 'token_env'?)"]),
    ],
)  # fmt: skip
def test_problems_name_the_key(keys: str, expected: list[str]) -> None:
    assert list(problems(keys)) == expected


def test_gitlab_rules() -> None:
    gitlab = "mode: pull_request\nhost: gitlab\napi_url: https://gitlab.example.com/api/v4\n"
    gitlab += "project: group/deploy\ntoken_env: GITLAB_TOKEN\n"
    assert problems(gitlab + "merge_method: rebase\n") == (
        "repositories[0].merge_method: 'rebase': GitLab's merge API only supports 'merge' (default) "
        "and 'squash'",
    )
    assert problems(gitlab.replace("/api/v4", "")) == (
        "repositories[0].api_url: 'https://gitlab.example.com' is not a GitLab API root: it ends in /api/v4",
    )
    assert problems(gitlab + "reviewers: [alice]\n") == (
        "repositories[0].reviewers: 'alice': GitLab takes reviewer ids (numbers), not names",
    )
    assert problems(gitlab + "labels: ['a,b']\n") == (
        "repositories[0].labels: 'a,b': GitLab takes labels comma-separated; no commas",
    )
    assert problems(gitlab.replace("group/deploy", "deploy")) == (
        "repositories[0].project: 'deploy' is not a GitLab project "
        "(its path, like group/sub/project, or its id)",
    )
    same = load(gitlab + "approve_token_env: GITLAB_TOKEN\n", {"GITLAB_TOKEN": "t"})
    assert [w for w in same.warnings if w.startswith("repositories")] == [
        "repositories[0].approve_token_env: names the same token as token_env: GitLab accepts it only where "
        "authors may approve their own MR",
    ]


def test_warnings_for_unused_keys_an_odd_root_and_unset_tokens() -> None:
    push = load("host: github\napi_url: https://api.github.com\nproject: example/deploy\ntoken_env: T\n")
    assert "repositories[0].host: is set but mode is push: no pull request is ever opened" in push.warnings
    ghes = load(GITHUB.replace("https://api.github.com", "https://github.example.com"), {"GITHUB_TOKEN": "x"})
    assert [w for w in ghes.warnings if w.startswith("repositories")] == [
        "repositories[0].api_url: GitHub Enterprise Server's REST API is at https://HOST/api/v3",
    ]
    unset = load(GITHUB + "approve_token_env: APPROVER\n")
    assert [w for w in unset.warnings if w.startswith("repositories")] == [
        "repositories[0].token_env: GITHUB_TOKEN is not set; "
        "the bot cannot open or merge pull requests for 'deploy'",
        "repositories[0].approve_token_env: APPROVER is not set; "
        "the bot cannot approve pull requests for 'deploy'",
    ]


def test_one_token_under_two_names_is_a_warning() -> None:
    twice = load(GITHUB + "approve_token_env: APPROVER\n", {"GITHUB_TOKEN": "ghp_x", "APPROVER": "ghp_x"})
    assert [w for w in twice.warnings if w.startswith("repositories")] == [
        "repositories[0].approve_token_env: APPROVER holds the same token as GITHUB_TOKEN; "
        "GitHub refuses an approval from the pull request's author"
    ]


def test_tokens_never_appear_in_renderings() -> None:
    environ = {"GITHUB_TOKEN": "ghp_HIDDEN_one", "APPROVER": "ghp_HIDDEN_two"}
    loaded = load(GITHUB + "approve_token_env: APPROVER\n", environ)
    assert set(loaded.secrets.values()) == set(environ.values())
    for text in (
        repr(loaded),
        repr(loaded.secrets),
        repr(loaded.settings),
        str(loaded.settings.repositories[0]),
    ):
        assert "HIDDEN" not in text
    assert "githost_tokens=['deploy']" in repr(loaded.secrets)
    assert Secrets().values() == ()


def test_the_model_checks_the_same_when_built_in_code() -> None:
    with pytest.raises(ValueError, match="required with mode: auto"):
        GitRepository(name="deploy", url="https://github.com/example/deploy.git", mode="auto")


def test_every_key_is_documented_and_in_the_example() -> None:
    keys = list(GitHostKeys.model_fields)
    docs = (ROOT / "docs" / "configuration.md").read_text()
    assert [k for k in keys if f"`repositories[].{k}`" not in docs] == []
    example = load_config(ROOT / "examples" / "gitops-bot.yaml", explicit=True, environ={})
    protected = next(r for r in example.settings.repositories if r.uses_pull_requests)
    assert (protected.host, protected.api_url) == ("github", "https://github.example.com/api/v3")
    assert protected.approve_token_env != protected.token_env
