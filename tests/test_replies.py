"""How answers read: the bot's own mentions render, user text never pings, `help` comes in the ack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.slack_api import FakeSlack
from tests.test_access_e2e import guarded_bot
from tests.test_argocd_commands import Bot


@pytest.fixture
def guarded(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[Bot]:
    with guarded_bot(tmp_path, fake_slack) as bot:
        yield bot


@pytest.fixture
def grouped(tmp_path: Path, fake_slack: FakeSlack) -> Iterator[Bot]:
    with guarded_bot(tmp_path, fake_slack, "    - role: viewer\n      groups: [S0VIEWERS]\n") as bot:
        yield bot


def test_a_lock_refusal_mentions_the_locker_but_escapes_the_reason(guarded: Bot) -> None:
    guarded.say("lock prod --reason '<!channel> db migration'", user="U0ADMIN")
    guarded.wait_channel("locked `prod`")
    guarded.say("sync api prod", user="U0DEPLOY")
    shown = guarded.wait_ephemeral("is locked", user="U0DEPLOY")
    assert "is locked by <@U0ADMIN>" in shown  # rendered as a mention
    assert "&lt;@U0ADMIN&gt;" not in shown
    assert "<!channel>" not in shown  # the user's text cannot ping anyone
    assert "&lt;!channel&gt;" in shown


def test_help_is_answered_in_the_ack_without_a_working_note(guarded: Bot) -> None:
    ack = guarded.say("help", user="U0VIEW")
    body = json.dumps(ack)
    assert "Only the subcommands you may run" in body
    assert "Working on" not in body
    assert not any("Working on" in m.text for m in guarded.slack.ephemeral("U0VIEW"))
    guarded.audit_rows(1)
    assert [(r.action, r.outcome) for r in guarded.runtime.deps.audit.recent(limit=5)] == [("help", "ok")]


def test_help_that_must_ask_slack_for_groups_shows_no_working_note_either(grouped: Bot) -> None:
    guarded = grouped
    guarded.slack.add_usergroup("S0VIEWERS", "viewers", ["U0GROUPIE"])
    ack = guarded.say("help", user="U0GROUPIE")  # S0VIEWERS was never fetched: answered a moment later
    assert "Working on" not in json.dumps(ack)
    shown = guarded.wait_ephemeral("/gitops status", user="U0GROUPIE")
    assert "/gitops sync" not in shown
    assert not any("Working on" in m.text for m in guarded.slack.ephemeral("U0GROUPIE"))
    again = guarded.say("help", user="U0GROUPIE")  # now the group is known: in the ack
    assert "/gitops status" in json.dumps(again)
