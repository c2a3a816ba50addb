"""The feed benchmark's core with tiny numbers: the real bot as its own process follows the fake
Argo CD's stream while 30 auto-sync deploys land on 50 apps in 10 team channels, and posts each
deploy exactly once (latency and memory are the full benchmark's business, not this test's)."""

from __future__ import annotations

from bench.feed import Options, run


def test_every_deploy_under_load_is_posted_exactly_once_in_its_team_channel() -> None:
    figures = run(Options(apps=50, rate=180, minutes=1 / 6, teams=10, operation_seconds=0.5, drain=30))
    assert figures.pushed == 30
    assert figures.made == 30
    assert figures.posted == 30
    assert (figures.duplicates, figures.missing, figures.unexpected) == (0, 0, 0)
    assert figures.misrouted == 0  # each in its team's channel (feed.routes by the `team` label)
    assert len(figures.latencies) == 30
    assert figures.streams == 1  # one stream connection, never cut
