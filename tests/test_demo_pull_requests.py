"""The demo's protected prod: web's prod overlay lives on branch `prod`, which the fake GitHub protects
(pushes refused with GH006, pull requests need the check ci/web and one approving review). The tour
shows the happy path (tests/test_demo.py); here the console's host commands and the other endings."""

from __future__ import annotations

import io
import subprocess
import time

import pytest

from bot.demo.config import GITHUB_PROJECT, REQUIRED_CHECK, SHOWN_CHANNELS
from bot.demo.console import Console
from bot.demo.feed import Feed, Output
from bot.demo.host import CHECK_SECONDS
from bot.demo.render import PLAIN
from bot.demo.script import parse_script
from bot.demo.world import DemoWorld
from sandbox.flux_git import git
from tests.suggestions import suggested, unrunnable
from tests.test_demo import replayed

OPEN_PR = """
timeout: 30
/gitops sync web staging
expect: Now ✅ Synced
/gitops promote web --to prod
expect: [1] Approve  [2] Reject
expect: GitHub PR: PR #1
"""


def _prod(world: DemoWorld) -> str:
    return git("--git-dir", str(world.bare), "rev-parse", "prod").strip()


def test_a_failing_check_holds_the_merge_and_a_pr_closed_outside_slack_ends_the_promotion() -> None:
    script = (
        OPEN_PR
        + """
check-fail
expect: ci/web ❌ failed on PR #1
/as bob
1
expect: Approved by @bob
expect: required check `ci/web` failed
pr-close
expect: PR #1 closed on GitHub without merging
expect: closed on GitHub outside Slack; nothing was merged
prs
expect: PR #1 [closed]
"""
    )
    with replayed(parse_script(script)) as (world, stream):
        overlay = git("--git-dir", str(world.bare), "show", "prod:apps/web/overlays/prod/kustomization.yaml")
        merges = git("--git-dir", str(world.bare), "rev-list", "--merges", "prod")
        history = world.argocd.app("web-prod")["status"]["history"]
        branches = git("--git-dir", str(world.bare), "for-each-ref", "--format=%(refname)", "refs/heads/")
        shown = suggested(world.slack)
        problems = unrunnable(world.slack, world.runtime.loaded.settings)
        actions = [r.action for r in world.runtime.deps.audit.recent(limit=100)]
    out = stream.getvalue()
    assert "Merged PR" not in out
    assert "Deploy: Succeeded" not in out
    assert 'newTag: "1.4.1"' in overlay  # nothing reached prod …
    assert not merges.strip()  # … no merge either
    assert len(history) == 3  # web-prod was never deployed again
    assert "gitops-bot/promote/" not in branches  # the PR's branch was cleaned up
    assert "promotion.closed" in actions
    assert "/gitops promote web --to prod --from staging" in shown  # "ask again with …"
    assert problems == []


def test_the_prod_branch_refuses_pushes_as_github_does_and_main_takes_them() -> None:
    with DemoWorld.start() as world:
        prod = _prod(world)
        refused = subprocess.run(
            ["git", "-C", str(world.work), "push", "origin", "HEAD:refs/heads/prod"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert refused.returncode != 0
        assert "GH006: Protected branch update failed for refs/heads/prod." in refused.stderr
        assert "(protected branch hook declined)" in refused.stderr
        assert _prod(world) == prod
        pushed = subprocess.run(
            ["git", "-C", str(world.work), "push", "origin", "HEAD:refs/heads/main"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert pushed.returncode == 0, pushed.stderr


def test_the_made_up_ci_passes_each_new_head_by_itself_unless_autocheck_is_off() -> None:
    with replayed(parse_script(OPEN_PR)) as (world, _):
        [pull] = world.github.pulls()
        world.github.tick(time.monotonic() + CHECK_SECONDS + 1)
        assert world.github.check_state(pull.head_sha) == "running"  # autocheck off: it waits
        world.github.auto = True
        world.github.tick(time.monotonic() + CHECK_SECONDS + 1)
        assert world.github.check_state(pull.head_sha) == "success"
        runs = world.github.fake.pull(GITHUB_PROJECT, pull.number)["mergeable_state"]
        assert runs == "blocked"  # the check passed; the approving review is still missing


def test_the_host_commands_say_what_is_wrong_and_stop_a_script() -> None:
    stream = io.StringIO()
    output = Output(stream, PLAIN)
    with DemoWorld.start() as world:
        feed = Feed(world.slack, output, world.names(), SHOWN_CHANNELS).start()
        try:
            console = Console(world, feed, output)
            assert console.handle("prs")
            assert not console.handle("check-pass")
            assert not console.handle("check-fail 7")
            assert not console.handle("pr-close abc")
            assert not console.handle("autocheck maybe")
            assert console.handle("autocheck off")
            assert console.handle("world")
        finally:
            feed.stop()
    out = stream.getvalue()
    assert "no pull request yet: /gitops promote web --to prod opens one" in out
    assert "no pull request is open (promote web to prod to open one)" in out
    assert "there is no PR #7 (none was opened yet)" in out
    assert "a PR number, like 1 or #1 (not 'abc')" in out
    assert "ci/web waits for check-pass / check-fail" in out
    assert f"PRs need check {REQUIRED_CHECK} and one approving review" in out


@pytest.mark.parametrize("line", ["check-pass", "check-fail", "pr-close", "prs", "autocheck"])
def test_help_lists_every_host_command(line: str) -> None:
    from bot.demo.console import HELP

    assert any(entry.strip().startswith(line) for entry in HELP)
