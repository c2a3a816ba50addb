"""The records delivery metrics are computed from, and the figures they produce.

Inputs (`Deploy`, `Incident`, `Rollback`) are what the lead's store reads back; outputs (`Figures`,
`Report`, `DayPoint`) are what `/gitops stats`, the weekly digest and the chart render. All
datetimes are timezone-aware (UTC by convention); a naive one is refused at construction, because a
naive/aware mix would otherwise fail much later, deep inside a comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

DeployResult = Literal["succeeded", "failed"]
Band = Literal["elite", "high", "medium", "low"]


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got {value.isoformat()})")


@dataclass(frozen=True, slots=True)
class Deploy:
    """One completed deploy of app/env: a sync or reconcile that changed the running revision, or failed.

    `commit_time` is the deployed commit's date; None when unknown (excluded from lead time).
    """

    app: str
    env: str
    finished_at: datetime
    result: DeployResult
    revision: str
    commit_time: datetime | None = None

    def __post_init__(self) -> None:
        _aware("finished_at", self.finished_at)
        _aware("commit_time", self.commit_time)
        if self.result not in ("succeeded", "failed"):
            raise ValueError(f"result must be 'succeeded' or 'failed' (got {self.result!r})")


@dataclass(frozen=True, slots=True)
class Incident:
    """A drift or failing-app incident on app/env; open while `resolved_at` is None."""

    app: str
    env: str
    opened_at: datetime
    resolved_at: datetime | None = None

    def __post_init__(self) -> None:
        _aware("opened_at", self.opened_at)
        _aware("resolved_at", self.resolved_at)


@dataclass(frozen=True, slots=True)
class Rollback:
    """A rollback of app/env, done through the bot or seen in the deploy history."""

    app: str
    env: str
    at: datetime

    def __post_init__(self) -> None:
        _aware("at", self.at)


@dataclass(frozen=True, slots=True)
class Bands:
    """DORA performance band of each key and overall; None where the figure is None."""

    deployment_frequency: Band | None
    lead_time: Band | None
    change_failure_rate: Band | None
    time_to_restore: Band | None
    overall: Band | None


@dataclass(frozen=True, slots=True)
class Figures:
    """The four keys for one app/env (or for everything: `app` and `env` None) over the period."""

    app: str | None
    env: str | None
    deploys: int  # succeeded deploys finished in [since, until)
    failed_deploys: int  # failed deploys finished in [since, until)
    deploys_per_day: float
    deploys_per_week: float
    lead_time_median: timedelta | None
    lead_time_p90: timedelta | None
    lead_time_samples: int  # succeeded deploys in the period with a usable commit time
    failed_changes: int
    change_failure_rate: float | None  # failed_changes / deploys; None when no deploys
    time_to_restore_median: timedelta | None
    restore_samples: int
    bands: Bands

    @property
    def is_overall(self) -> bool:
        return self.app is None


@dataclass(frozen=True, slots=True)
class DayPoint:
    """One calendar day (in the report's time zone) of the chart series."""

    day: date
    deploys: int  # succeeded deploys that finished that day
    lead_time_median: timedelta | None  # of those deploys with a usable commit time


@dataclass(frozen=True, slots=True)
class Report:
    since: datetime
    until: datetime
    failure_window: timedelta
    tz: str  # IANA name of the zone the series' days are cut in
    figures: tuple[Figures, ...]  # one per (app, env) present in the period, sorted by app then env
    overall: Figures
    series: tuple[DayPoint, ...]  # every day of the period, oldest first, over all inputs
    bands_source: str

    def for_app(self, app: str, env: str) -> Figures | None:
        return next((f for f in self.figures if f.app == app and f.env == env), None)
