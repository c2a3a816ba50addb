"""`drift.git_grace` for Argo CD: an undeployed Git change is alerted only once the bot has seen it for
that long, measured from its first sighting across scans and restarts (the real drift job and SQLite,
the fake Argo CD, an injected clock for the bot)."""

from __future__ import annotations

from services.backend import AppRef, SyncRequest
from tests.drift_support import ALERTS, Clock, Drift, drift

__all__ = ["drift"]

GRACE = "git_grace: 15s"


def _alerts(d: Drift, app: str) -> list[str]:
    return [m.text for m in d.top_level() if app in m.text]


def test_git_ahead_waits_for_the_grace_across_scans_and_a_restart_then_posts_once(drift: Drift) -> None:
    clock = Clock()
    with drift.bot(drift_yaml=GRACE, clock=clock):
        drift.scan()
        drift.argocd.push_revision("app-00001", replicas=5, message="scale app-00001 to 5")
        drift.scan()  # first seen: t0
        clock.advance(10)
        drift.scan()
        assert drift.posts() == []  # 10 s < 15 s: held back
    clock.advance(4)
    with drift.bot(drift_yaml=GRACE, clock=clock):  # a restart remembers when it was first seen
        drift.scan()
        assert drift.posts() == []  # 14 s: still inside the grace, although this process just started
        clock.advance(2)
        drift.scan()  # 16 s since first seen
        [card] = _alerts(drift, "app-00001")
        assert card.startswith("Undeployed Git change")
        for _ in range(3):
            clock.advance(30)
            drift.scan()
        assert len(drift.posts()) == 1  # never posted twice
        assert len(_alerts(drift, "app-00001")) == 1


def test_a_change_deployed_within_the_grace_is_never_posted_and_the_next_one_waits_again(
    drift: Drift,
) -> None:
    clock = Clock()
    with drift.bot(drift_yaml=GRACE, clock=clock) as runtime:
        assert runtime.deps.ops is not None
        backend = runtime.deps.ops.resolver.backends[0]
        ref = AppRef("argocd", "main", "app-00002", namespace="argocd", project="default")
        drift.argocd.push_revision("app-00002", replicas=4, message="first change")
        drift.scan()
        clock.advance(10)
        backend.sync(ref, SyncRequest())
        backend.wait(ref, timeout=20)
        drift.scan()  # caught up within the grace: nothing to say, not even "resolved"
        clock.advance(60)
        drift.argocd.push_revision("app-00002", replicas=6, message="second change")
        drift.scan()  # a new sighting: its own grace, not the first change's
        clock.advance(10)
        drift.scan()
        assert drift.slack.messages(ALERTS) == []
        clock.advance(6)
        drift.scan()
        assert len(_alerts(drift, "app-00002")) == 1
