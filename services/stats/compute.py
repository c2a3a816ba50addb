"""DORA's four keys from deploy, incident and rollback records: pure computation, no I/O, no clock.

Definitions (each decision the issue left open is written here once):
- In the period means `since <= t < until`, with t = a deploy's `finished_at`, an incident's
  `opened_at`, a rollback's `at`. An (app, env) gets `Figures` when any of its records is in the period.
- Deployment frequency: succeeded deploys in the period; per day = count / period length in days.
- Lead time: `finished_at - commit_time` of succeeded deploys in the period that have a commit time;
  negative values (clock skew, a rebuilt old commit) are dropped. Median, and p90 by nearest rank.
- Change failure: a succeeded deploy in the period is a failed change when a rollback, a failed deploy
  or an opened incident of the same app/env falls in (finished_at, end], end = the earlier of
  finished_at + failure_window and the next succeeded deploy. The next deploy is included because a
  rollback is recorded as it lands; events after `until` count when the caller passes them (the window
  belongs to the deploy, not to the period).
- Time to restore: (a) incidents opened in the period and resolved: resolved_at - opened_at; (b) each
  failure episode starting in the period (the first failed deploy after a succeeded one, or ever) and
  ended by a succeeded deploy: that gap. Retries inside one episode are one outage, not several, so they
  do not pull the median down.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.stats.bands import BANDS_SOURCE, classify
from services.stats.model import DayPoint, Deploy, Figures, Incident, Report, Rollback
from services.stats.period import days_in

UTC_ZONE = ZoneInfo("UTC")
Key = tuple[str, str]


@dataclass
class _Tally:
    """Raw samples of one app/env (or of all of them), before medians and bands."""

    deploys: int = 0
    failed_deploys: int = 0
    failed_changes: int = 0
    lead_times: list[timedelta] = field(default_factory=list)
    restores: list[timedelta] = field(default_factory=list)

    def add(self, other: _Tally) -> None:
        self.deploys += other.deploys
        self.failed_deploys += other.failed_deploys
        self.failed_changes += other.failed_changes
        self.lead_times.extend(other.lead_times)
        self.restores.extend(other.restores)


@dataclass
class _History:
    """Everything known about one app/env, each list in time order."""

    deploys: list[Deploy] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    rollbacks: list[Rollback] = field(default_factory=list)


def compute(
    deploys: Iterable[Deploy],
    incidents: Iterable[Incident],
    rollbacks: Iterable[Rollback],
    *,
    since: datetime,
    until: datetime,
    failure_window: timedelta,
    tz: ZoneInfo = UTC_ZONE,
) -> Report:
    """The four keys per (app, env) present in [since, until), overall, and the per-day chart series.

    Records outside the period are welcome: they give the next deploy after one, the failure after a
    deploy near `until`, the recovery of a failure in the period.
    """
    _check_period(since, until, failure_window)
    histories = _histories(deploys, incidents, rollbacks)
    days = (until - since) / timedelta(days=1)
    figures: list[Figures] = []
    total = _Tally()
    for key in sorted(histories):
        history = histories[key]
        if not _present(history, since, until):
            continue
        tally = _tally(history, since, until, failure_window)
        total.add(tally)
        figures.append(_figures(key, tally, days))
    everything = [d for h in histories.values() for d in h.deploys]
    return Report(
        since=since,
        until=until,
        failure_window=failure_window,
        tz=tz.key,
        figures=tuple(figures),
        overall=_figures(None, total, days),
        series=daily_series(everything, since=since, until=until, tz=tz),
        bands_source=BANDS_SOURCE,
    )


def daily_series(
    deploys: Iterable[Deploy], *, since: datetime, until: datetime, tz: ZoneInfo = UTC_ZONE
) -> tuple[DayPoint, ...]:
    """Succeeded deploys and median lead time per calendar day in `tz`, for every day of the period."""
    counts: dict[date, int] = defaultdict(int)
    leads: dict[date, list[timedelta]] = defaultdict(list)
    for deploy in deploys:
        if deploy.result != "succeeded" or not since <= deploy.finished_at < until:
            continue
        day = deploy.finished_at.astimezone(tz).date()
        counts[day] += 1
        lead = _lead_time(deploy)
        if lead is not None:
            leads[day].append(lead)
    return tuple(
        DayPoint(day, counts.get(day, 0), _median(leads.get(day, []))) for day in days_in(since, until, tz)
    )


def _check_period(since: datetime, until: datetime, failure_window: timedelta) -> None:
    if since.utcoffset() is None or until.utcoffset() is None:
        raise ValueError("since and until must be timezone-aware")
    if until <= since:
        raise ValueError(f"the period is empty: until ({until.isoformat()}) <= since ({since.isoformat()})")
    if failure_window < timedelta(0):
        raise ValueError("failure_window must not be negative")


def _histories(
    deploys: Iterable[Deploy], incidents: Iterable[Incident], rollbacks: Iterable[Rollback]
) -> dict[Key, _History]:
    histories: dict[Key, _History] = defaultdict(_History)
    for deploy in deploys:
        histories[deploy.app, deploy.env].deploys.append(deploy)
    for incident in incidents:
        histories[incident.app, incident.env].incidents.append(incident)
    for rollback in rollbacks:
        histories[rollback.app, rollback.env].rollbacks.append(rollback)
    for history in histories.values():
        # Failed before succeeded at the same instant: a retry that lands at once is still a recovery.
        history.deploys.sort(key=lambda d: (d.finished_at, d.result != "failed"))
        history.incidents.sort(key=lambda i: i.opened_at)
        history.rollbacks.sort(key=lambda r: r.at)
    return histories


def _present(history: _History, since: datetime, until: datetime) -> bool:
    return (
        any(since <= d.finished_at < until for d in history.deploys)
        or any(since <= i.opened_at < until for i in history.incidents)
        or any(since <= r.at < until for r in history.rollbacks)
    )


def _tally(history: _History, since: datetime, until: datetime, failure_window: timedelta) -> _Tally:
    tally = _Tally()
    succeeded = [d for d in history.deploys if d.result == "succeeded"]
    failure_events = sorted(
        [r.at for r in history.rollbacks]
        + [d.finished_at for d in history.deploys if d.result == "failed"]
        + [i.opened_at for i in history.incidents]
    )
    for index, deploy in enumerate(succeeded):
        if not since <= deploy.finished_at < until:
            continue
        tally.deploys += 1
        lead = _lead_time(deploy)
        if lead is not None:
            tally.lead_times.append(lead)
        end = deploy.finished_at + failure_window
        if index + 1 < len(succeeded):
            end = min(end, succeeded[index + 1].finished_at)
        first_after = bisect_right(failure_events, deploy.finished_at)
        if first_after < len(failure_events) and failure_events[first_after] <= end:
            tally.failed_changes += 1
    tally.failed_deploys = sum(
        1 for d in history.deploys if d.result == "failed" and since <= d.finished_at < until
    )
    tally.restores.extend(
        i.resolved_at - i.opened_at
        for i in history.incidents
        if since <= i.opened_at < until and i.resolved_at is not None and i.resolved_at >= i.opened_at
    )
    tally.restores.extend(_episode_recoveries(history.deploys, since, until))
    return tally


def _episode_recoveries(deploys: list[Deploy], since: datetime, until: datetime) -> list[timedelta]:
    recoveries: list[timedelta] = []
    broken_since: datetime | None = None
    for deploy in deploys:
        if deploy.result == "failed":
            if broken_since is None:
                broken_since = deploy.finished_at
        elif broken_since is not None:
            if since <= broken_since < until:
                recoveries.append(deploy.finished_at - broken_since)
            broken_since = None
    return recoveries


def _lead_time(deploy: Deploy) -> timedelta | None:
    if deploy.commit_time is None:
        return None
    lead = deploy.finished_at - deploy.commit_time
    return lead if lead >= timedelta(0) else None


def _median(samples: list[timedelta]) -> timedelta | None:
    if not samples:
        return None
    return timedelta(seconds=statistics.median(s.total_seconds() for s in samples))


def _p90(samples: list[timedelta]) -> timedelta | None:
    """Nearest rank: the smallest sample with at least 90 % of the samples at or below it."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def _figures(key: Key | None, tally: _Tally, days: float) -> Figures:
    per_day = tally.deploys / days
    lead_median = _median(tally.lead_times)
    restore_median = _median(tally.restores)
    rate = tally.failed_changes / tally.deploys if tally.deploys else None
    return Figures(
        app=key[0] if key else None,
        env=key[1] if key else None,
        deploys=tally.deploys,
        failed_deploys=tally.failed_deploys,
        deploys_per_day=per_day,
        deploys_per_week=per_day * 7,
        lead_time_median=lead_median,
        lead_time_p90=_p90(tally.lead_times),
        lead_time_samples=len(tally.lead_times),
        failed_changes=tally.failed_changes,
        change_failure_rate=rate,
        time_to_restore_median=restore_median,
        restore_samples=len(tally.restores),
        bands=classify(per_day, lead_median, rate, restore_median),
    )
