"""Buttons on a drift alert never delete or replace the alert: "Sync now" answers in its thread, and
the alert is still there to be edited to "resolved" by the next scan."""

from __future__ import annotations

from sandbox.slack_client import SlackSender
from tests.conftest import SIGNING_SECRET
from tests.drift_support import ALERTS, Drift, drift

__all__ = ["drift"]

DEPLOYERS = """
access:
  grants:
    - role: deployer
      users: [U0BOB]
"""


def test_sync_now_answers_in_the_thread_and_the_alert_lives_on_to_resolve(drift: Drift) -> None:
    with drift.bot(extra_yaml=DEPLOYERS) as runtime:
        drift.argocd.drift("app-00005", replicas=4)
        drift.scan()
        [alert] = drift.top_level()
        sender = SlackSender(
            f"http://127.0.0.1:{runtime.server.port}/slack/events", SIGNING_SECRET, drift.slack
        )
        sender.click(alert, "drift_sync", user_id="U0BOB", user_name="bob")

        def synced(fake: object) -> bool:
            return any(
                m.thread_ts == alert.ts and "Succeeded" in m.text for m in drift.slack.messages(ALERTS)
            )

        drift.slack.wait_for(synced, timeout=20)
        kept = drift.slack.find_message(ALERTS, alert.ts)
        assert kept is not None, "the alert was deleted by its own button"
        assert "Live state changed outside Git" in kept.text  # not replaced by the sync card either
        replies = drift.slack.recorded("response_url")
        assert not any(c.args.get("delete_original") for c in replies)
        assert not any(c.args.get("replace_original") in (True, "true") for c in replies)

        drift.scan()  # the sync put the live state back: the next scan resolves the same message
        resolved = drift.slack.find_message(ALERTS, alert.ts)
        assert resolved is not None
        assert resolved.text.startswith("Resolved")
        thread = [m for m in drift.slack.messages(ALERTS) if m.thread_ts == alert.ts and m.ts != alert.ts]
        assert any("Resolved after" in m.text for m in thread)
        assert not drift.slack.missing_text_warnings
