"""Every command the demo tour shows — and so the bot shows a real team — runs as written there: it
parses, and a configured app that lives in several environments is named with one."""

from __future__ import annotations

from bot.demo.script import parse_script
from tests.suggestions import suggested, unrunnable
from tests.test_demo import TOUR, replayed

# Beyond the tour: answers that suggest commands (a suspend, a history with an earlier deployment, a
# promotion the Tekton gate blocks, a pipeline run missing its revision).
EXTRA = """
/as alice
/gitops suspend api prod
expect: /gitops resume api prod
/gitops resume api prod
expect: RESUME API-PROD
/gitops history web prod
expect: goes back to
/gitops promote web --to staging
expect: start one with
/gitops pipeline web
expect: --param revision=
"""


def test_every_command_the_demo_suggests_runs_as_written() -> None:
    steps = parse_script(TOUR.read_text())
    steps = [s for s in steps if s.text not in ("quit", "exit")] + parse_script(EXTRA)
    with replayed(steps) as (world, _):
        shown = suggested(world.slack)
        problems = unrunnable(world.slack, world.runtime.loaded.settings)
    assert "/gitops resume api prod" in shown
    assert any(c.startswith("/gitops rollback web prod --to ") for c in shown)
    assert any(c.startswith("/gitops pipeline web-ci --param revision=") for c in shown)  # the Tekton gate
    assert problems == []
