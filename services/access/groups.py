"""Slack user-group membership, cached, for the access policy.

The fetch function (which talks to Slack) is injected by the bot layer, so this module stays
free of Slack packages. It should raise `BackendUnavailable` when Slack does not answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

log = logging.getLogger(__name__)

# After a failed refresh with a stale copy at hand, wait this long (at most the TTL) before
# asking Slack again, so an outage does not add a timeout to every command.
RETRY_AFTER_SECONDS = 30.0


class GroupDirectory(Protocol):
    def members(self, group_id: str) -> frozenset[str]:
        """User ids in the Slack user group; may raise `BackendUnavailable`."""
        ...


@dataclass(frozen=True)
class _Entry:
    members: frozenset[str]
    fetched_at: float
    fresh_until: float


class _Flight:
    """One fetch in progress; callers asking for the same group meanwhile wait for its outcome."""

    __slots__ = ("done", "error", "members")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.members: frozenset[str] | None = None
        self.error: BaseException | None = None

    def outcome(self) -> frozenset[str]:
        self.done.wait()
        if self.members is None:
            assert self.error is not None  # set by the leader before `done`
            raise self.error
        return self.members


class CachedGroupDirectory:
    """Caches each group's members for `ttl`; serves a stale copy (with a warning) when a refresh fails.

    Thread-safe. At most one fetch per group is in flight; concurrent callers share its result.
    """

    def __init__(
        self,
        fetch: Callable[[str], Iterable[str]],
        *,
        ttl: timedelta,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl.total_seconds()
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._flights: dict[str, _Flight] = {}

    def cached(self, group_id: str) -> frozenset[str] | None:
        """The members as last fetched (fresh or stale) without asking Slack; None if never fetched."""
        with self._lock:
            entry = self._entries.get(group_id)
        return entry.members if entry is not None else None

    def members(self, group_id: str) -> frozenset[str]:
        with self._lock:
            now = self._clock()
            entry = self._entries.get(group_id)
            if entry is not None and now < entry.fresh_until:
                return entry.members
            flight = self._flights.get(group_id)
            if flight is not None:
                leader = False
            else:
                leader = True
                flight = self._flights[group_id] = _Flight()
        if not leader:
            return flight.outcome()
        try:
            self._refresh(group_id, entry, flight)
        except BaseException as exc:  # e.g. KeyboardInterrupt mid-fetch: waiters must not hang or guess
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[group_id]
            flight.done.set()
        return flight.outcome()

    def _refresh(self, group_id: str, stale: _Entry | None, flight: _Flight) -> None:
        try:
            members = frozenset(self._fetch(group_id))
        except Exception as exc:
            if stale is None:
                flight.error = exc
                return
            now = self._clock()
            log.warning(
                "could not refresh members of Slack user group %s (%s); using the copy from %.0fs ago",
                group_id,
                exc,
                now - stale.fetched_at,
            )
            retry = min(self._ttl, RETRY_AFTER_SECONDS)
            entry = _Entry(stale.members, stale.fetched_at, now + retry)
        else:
            now = self._clock()
            entry = _Entry(members, now, now + self._ttl)
        with self._lock:
            self._entries[group_id] = entry
        flight.members = entry.members
