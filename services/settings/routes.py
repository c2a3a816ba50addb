"""Alert routing: which channel an alert about one app goes to (`drift.routes`, and the pipeline
monitor's `pipeline_monitor.routes`, which default to drift's).

Kept in the settings kernel so every family that posts alerts routes alike without importing
another: `handlers/drift/job.py` and `handlers/pipelines/monitor.py` both call `route_channel`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.settings.base import Section
from services.settings.types import ChannelId


class DriftRoute(Section):
    channel: ChannelId
    environments: tuple[str, ...] = ()  # empty = any
    apps: tuple[str, ...] = ()  # configured app names or backend object names; empty = any
    labels: tuple[str, ...] = ()  # "key=value" pairs that must all match the app's labels

    def matches(self, env: str | None, names: Iterable[str | None], labels: Iterable[str]) -> bool:
        """An unknown environment (None) matches only a route that names none."""
        if self.environments and env not in self.environments:
            return False
        if self.apps and not set(names) & set(self.apps):
            return False
        return set(self.labels) <= set(labels)


def route_channel(
    routes: Sequence[DriftRoute],
    default: str | None,
    *,
    env: str | None,
    names: Iterable[str | None],
    labels: Iterable[str] = (),
) -> str | None:
    """The first matching route's channel, else `default` (None: nowhere to post).

    `names` are what `routes[].apps` may name (the configured app, the backend object or the
    pipeline); `labels` are "key=value" texts.
    """
    names, labels = tuple(names), tuple(labels)
    for route in routes:
        if route.matches(env, names, labels):
            return route.channel
    return default
