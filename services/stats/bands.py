"""DORA performance bands (elite/high/medium/low) for each of the four keys, and overall.

Levels are those of the software delivery performance clusters in the DORA "Accelerate State of
DevOps Report 2024" (figures only):

    cluster   deployment frequency                 change lead time    change fail rate  recovery time
    elite     on demand (multiple deploys a day)   < 1 day             5 %               < 1 hour
    high      between once a day and once a week   1 day – 1 week      20 %              < 1 day
    medium    between once a week and once a month 1 week – 1 month    10 %              < 1 day
    low       between once a month and once every  1 month – 6 months  40 %              1 week – 1 month
              six months

Why this table: secondary sources disagree. One blog quotes, under the 2024 name, ranges that belong
to older reports ("elite lead time < 1 hour", change fail rate bands 0–5/5–10/10–15 %); an extraction
of the 2024 report's cluster table (with its 19/22/35/25 % cluster shares) gives the figures above,
including that year's widely noted oddity (medium's fail rate below high's). We use the latter: it
is the one tied to the 2024 data.

The clusters are survey results, not a graded scale: the 2024 change fail rate is not monotonic
(medium 10 % < high 20 %) and high and medium share "< 1 day" recovery. To give every figure one band
we use one rule for all keys: **a figure gets the best band whose published level it meets**, with
the boundaries below (a figure exactly on a boundary takes the better band where the level says
"at least"/"at most", the worse one where it says "less than"). So medium cannot be reached on
change fail rate or recovery time alone; that is the data, not a bug.

    deployment frequency (succeeded deploys/day)  elite ≥ 1      high ≥ 1/7    medium ≥ 1/30   low below
    lead time (median)                            elite < 1 d    high < 7 d    medium < 30 d   low ≥ 30 d
    change failure rate                           elite ≤ 5 %    high ≤ 20 %   (medium 10 %)   low > 20 %
    time to restore (median)                      elite < 1 h    high < 1 d    (medium < 1 d)  low ≥ 1 d

Overall: DORA publishes no rule combining the keys; we take the **worst** band among the keys that
have a figure (a team is as fast as its slowest key), None when no key has one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from services.stats.model import Band, Bands

BANDS_SOURCE: Final = "DORA, Accelerate State of DevOps Report 2024"

ORDER: Final[tuple[Band, ...]] = ("elite", "high", "medium", "low")  # best first

DAY: Final = timedelta(days=1)
WEEK: Final = timedelta(days=7)
MONTH: Final = timedelta(days=30)  # "once a month" / "one month": 30 days, written out once here

# Deploys per day at or above which a band is reached (frequency: higher is better).
FREQUENCY_AT_LEAST: Final[tuple[tuple[Band, float], ...]] = (
    ("elite", 1.0),
    ("high", 1 / 7),
    ("medium", 1 / 30),
)
# Lead time strictly below which a band is reached.
LEAD_TIME_BELOW: Final[tuple[tuple[Band, timedelta], ...]] = (
    ("elite", DAY),
    ("high", WEEK),
    ("medium", MONTH),
)
# Change failure rate at or below which a band is reached (medium's 10 % is shadowed by high's 20 %).
CHANGE_FAILURE_AT_MOST: Final[tuple[tuple[Band, float], ...]] = (
    ("elite", 0.05),
    ("high", 0.20),
    ("medium", 0.10),
)
# Time to restore strictly below which a band is reached (medium shares high's level).
RESTORE_BELOW: Final[tuple[tuple[Band, timedelta], ...]] = (
    ("elite", timedelta(hours=1)),
    ("high", DAY),
    ("medium", DAY),
)

# The published wording, for output next to a band ("elite — DORA 2024: on demand").
PUBLISHED: Final[dict[str, dict[Band, str]]] = {
    "deployment_frequency": {
        "elite": "on demand (multiple deploys per day)",
        "high": "between once per day and once per week",
        "medium": "between once per week and once per month",
        "low": "between once per month and once every six months",
    },
    "lead_time": {
        "elite": "less than one day",
        "high": "between one day and one week",
        "medium": "between one week and one month",
        "low": "between one month and six months",
    },
    "change_failure_rate": {"elite": "5%", "high": "20%", "medium": "10%", "low": "40%"},
    "time_to_restore": {
        "elite": "less than one hour",
        "high": "less than one day",
        "medium": "less than one day",
        "low": "between one week and one month",
    },
}


def frequency_band(per_day: float) -> Band:
    for band, floor in FREQUENCY_AT_LEAST:
        if per_day >= floor:
            return band
    return "low"


def lead_time_band(median: timedelta | None) -> Band | None:
    if median is None:
        return None
    for band, ceiling in LEAD_TIME_BELOW:
        if median < ceiling:
            return band
    return "low"


def change_failure_band(rate: float | None) -> Band | None:
    if rate is None:
        return None
    for band, ceiling in CHANGE_FAILURE_AT_MOST:
        if rate <= ceiling:
            return band
    return "low"


def restore_band(median: timedelta | None) -> Band | None:
    if median is None:
        return None
    for band, ceiling in RESTORE_BELOW:
        if median < ceiling:
            return band
    return "low"


def worst(bands: list[Band | None]) -> Band | None:
    known = [b for b in bands if b is not None]
    return max(known, key=ORDER.index) if known else None


def classify(
    per_day: float,
    lead_time: timedelta | None,
    change_failure_rate: float | None,
    time_to_restore: timedelta | None,
) -> Bands:
    keys = (
        frequency_band(per_day),
        lead_time_band(lead_time),
        change_failure_band(change_failure_rate),
        restore_band(time_to_restore),
    )
    return Bands(*keys, overall=worst(list(keys)))
