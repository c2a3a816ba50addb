"""A drift digest keeps listing every incident it announced as they resolve one by one (the real drift
job against the fake Argo CD and the fake Slack)."""

from __future__ import annotations

from typing import Any

from tests.drift_support import ALERTS, Drift, drift

__all__ = ["drift"]

STORM = [f"app-{i:05d}" for i in range(10, 15)]


def _shown(message: Any) -> str:
    """What a reader sees: the notification text and every text in the blocks."""
    texts = [message.text]
    for block in message.blocks:
        text = block.get("text")
        if isinstance(text, dict):
            texts.append(text.get("text", ""))
        texts += [e.get("text", "") for e in block.get("elements", []) if isinstance(e, dict)]
    return "\n".join(texts)


def _item(shown: str, app: str) -> str:
    [line] = [line for line in shown.splitlines() if f"/{app}*" in line]
    return line


def test_a_digest_lists_all_its_incidents_as_they_resolve_and_ends_all_resolved(drift: Drift) -> None:
    with drift.bot(drift_yaml="digest_threshold: 4"):
        for app in STORM:
            drift.argocd.set_health(app, "Degraded", "CrashLoopBackOff")
        drift.scan()
        [digest] = drift.top_level()
        assert "5 new drift incidents" in digest.text
        for resolved, app in enumerate(STORM, start=1):
            drift.argocd.set_health(app, "Healthy")
            drift.scan()
            [digest] = drift.top_level()  # still the one digest message, edited in place
            shown = _shown(digest)
            for other in STORM:  # every incident stays listed
                line = _item(shown, other)
                done = STORM.index(other) < resolved
                assert ("resolved after" in line) is done, line
        assert "all resolved" in shown
        assert "5 drift incidents" in shown
        replies = [m for m in drift.slack.messages(ALERTS) if m.thread_ts == digest.ts and m.ts != digest.ts]
        assert sorted(app for app in STORM for m in replies if app in m.text) == STORM  # one per incident
        assert len(drift.posts()) == 1 + len(STORM)  # the digest, then only thread replies
