"""DORA figures on a hand-computed history, band boundaries, `--since` parsing, and invariants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.stats import (
    BANDS_SOURCE,
    Bands,
    Deploy,
    Figures,
    Incident,
    Report,
    Rollback,
    compute,
    daily_series,
    parse_since,
)
from services.stats.bands import (
    change_failure_band,
    classify,
    frequency_band,
    lead_time_band,
    restore_band,
    worst,
)

H = timedelta(hours=1)
DAY = timedelta(days=1)
SINCE = datetime(2024, 3, 1, tzinfo=UTC)  # Friday
UNTIL = datetime(2024, 3, 8, tzinfo=UTC)  # 7 days
WINDOW = 2 * H


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2024, month, day, hour, minute, tzinfo=UTC)


def ok(app: str, env: str, finished: datetime, commit: datetime | None = None, rev: str = "r") -> Deploy:
    return Deploy(app, env, finished, "succeeded", rev, commit)


def failed(app: str, env: str, finished: datetime) -> Deploy:
    return Deploy(app, env, finished, "failed", "bad")


# The fixture history. Period [Mar 1 00:00, Mar 8 00:00) UTC, failure window 2 h.
#
# web/prod
#   D0  ok   Feb 29 22:00                  before the period: not counted; D1's predecessor
#   D1  ok   Mar 1 10:00, commit 08:00      lead 2 h; rollback Mar 1 11:00 is inside (10:00, min(12:00,
#                                          D2 11:30)] → failed change
#   D2  ok   Mar 1 11:30, commit Feb 28 11:30  lead 48 h (the rollback's deploy); nothing until 13:30
#   D3  ok   Mar 3 09:00, no commit time    no lead; rollback Mar 3 12:00 is 3 h later, outside the
#                                          window → not a failed change
#   F1  fail Mar 4 10:00, F2 fail Mar 4 10:20   one failure episode (a retry), starts in the period
#   D4  ok   Mar 4 11:00, commit 10:30      lead 30 min; ends the episode: restore 11:00 - 10:00 = 1 h;
#                                          incident opened Mar 4 12:30 (≤ 13:00) → failed change;
#                                          it is resolved 13:00 → restore 30 min
#   D5  ok   Mar 7 23:00, commit 22:00      lead 1 h; F3 failed Mar 8 00:30, after `until` but inside
#                                          (23:00, min(01:00, D6 01:00)] → failed change
#   F3  fail Mar 8 00:30 (outside: not a failed deploy of the period; its episode starts outside)
#   D6  ok   Mar 8 01:00 (outside)
#   → deploys 5 (D1..D5), failed deploys 2 (F1, F2), failed changes 3 (D1, D4, D5): rate 0.6 → low
#     lead [0.5, 1, 2, 48] h: median 1.5 h → elite, p90 (nearest rank ceil(3.6) = 4th) 48 h
#     restore [0.5, 1] h: median 45 min → elite; frequency 5/7 = 0.714/day → high; overall low
#
# api/prod
#   A1  ok   Mar 2 12:00, commit Mar 2 13:00   negative lead (clock skew) → ignored
#   A2  ok   Mar 5 12:00, commit Mar 4 12:00   lead exactly 24 h → high (elite is < 1 day)
#   incident opened Mar 6 08:00, still open     no restore sample; 44 h after A2 → not a failure of it
#   → deploys 2, rate 0/2 = 0 → elite, lead median 24 h (p90 24 h), restore None, freq 2/7 → high;
#     overall worst(high, high, elite, None) = high
#
# api/staging
#   S0  ok   Feb 20 (outside)              does not count
#   incident opened Mar 2 08:00, resolved Mar 3 08:00   restore 24 h → low (elite < 1 h, high < 1 d)
#   → deploys 0 (freq 0 → low), rate None, lead None, restore 24 h → low; overall low
#
# edge/prod (period edges)
#   E1  ok   exactly Mar 1 00:00 (= since)  counted; no commit time
#   E2  ok   exactly Mar 8 00:00 (= until)  not counted
#   → deploys 1, rate 0 → elite, freq 1/7 = the high floor → high, lead None, restore None → high
#
# worker/dev: one deploy on Feb 15 only → no Figures at all.
#
# Overall: deploys 5+2+0+1 = 8 → 8/7 = 1.14/day → elite; failed deploys 2; failed changes 3 → 3/8 =
#   0.375 → low; lead [0.5, 1, 2, 24, 48] h → median 2 h (elite), p90 ceil(4.5) = 5th = 48 h;
#   restore [0.5, 1, 24] h → median exactly 1 h → high (elite is < 1 h); overall low.
DEPLOYS = [
    ok("web", "prod", at(29, 22, month=2), at(29, 20, month=2)),
    ok("web", "prod", at(1, 10), at(1, 8)),
    ok("web", "prod", at(1, 11, 30), at(28, 11, 30, month=2)),
    ok("web", "prod", at(3, 9)),
    failed("web", "prod", at(4, 10)),
    failed("web", "prod", at(4, 10, 20)),
    ok("web", "prod", at(4, 11), at(4, 10, 30)),
    ok("web", "prod", at(7, 23), at(7, 22)),
    failed("web", "prod", at(8, 0, 30)),
    ok("web", "prod", at(8, 1)),
    ok("api", "prod", at(2, 12), at(2, 13)),
    ok("api", "prod", at(5, 12), at(4, 12)),
    ok("api", "staging", at(20, 0, month=2)),
    ok("edge", "prod", SINCE),
    ok("edge", "prod", UNTIL),
    ok("worker", "dev", at(15, 0, month=2)),
]
INCIDENTS = [
    Incident("web", "prod", at(4, 12, 30), at(4, 13)),
    Incident("api", "prod", at(6, 8), None),
    Incident("api", "staging", at(2, 8), at(3, 8)),
]
ROLLBACKS = [Rollback("web", "prod", at(1, 11)), Rollback("web", "prod", at(3, 12))]


@pytest.fixture(scope="module")
def report() -> Report:
    # Shuffled order on purpose: compute must not rely on its input being sorted.
    return compute(
        list(reversed(DEPLOYS)),
        list(reversed(INCIDENTS)),
        ROLLBACKS,
        since=SINCE,
        until=UNTIL,
        failure_window=WINDOW,
    )


def figures(report: Report, app: str, env: str) -> Figures:
    found = report.for_app(app, env)
    assert found is not None, f"no figures for {app}/{env}"
    return found


def test_one_figures_per_app_env_present_in_the_period(report: Report) -> None:
    assert [(f.app, f.env) for f in report.figures] == [
        ("api", "prod"),
        ("api", "staging"),
        ("edge", "prod"),
        ("web", "prod"),
    ]
    assert report.for_app("worker", "dev") is None
    assert report.bands_source == BANDS_SOURCE == "DORA, Accelerate State of DevOps Report 2024"
    assert report.tz == "UTC"


def test_web_prod_rollback_failed_deploy_and_incident(report: Report) -> None:
    web = figures(report, "web", "prod")
    assert (web.deploys, web.failed_deploys, web.failed_changes) == (5, 2, 3)
    assert web.deploys_per_day == pytest.approx(5 / 7)
    assert web.deploys_per_week == pytest.approx(5)
    assert web.change_failure_rate == pytest.approx(0.6)
    assert web.lead_time_samples == 4
    assert web.lead_time_median == timedelta(minutes=90)
    assert web.lead_time_p90 == 48 * H
    assert web.restore_samples == 2
    assert web.time_to_restore_median == timedelta(minutes=45)
    assert web.bands == Bands("high", "elite", "low", "elite", overall="low")


def test_api_prod_negative_lead_time_ignored_and_open_incident(report: Report) -> None:
    api = figures(report, "api", "prod")
    assert (api.deploys, api.failed_deploys, api.failed_changes) == (2, 0, 0)
    assert api.change_failure_rate == 0.0
    assert (api.lead_time_samples, api.lead_time_median, api.lead_time_p90) == (1, 24 * H, 24 * H)
    assert (api.restore_samples, api.time_to_restore_median) == (0, None)
    assert api.bands == Bands("high", "high", "elite", None, overall="high")


def test_api_staging_incident_only(report: Report) -> None:
    staging = figures(report, "api", "staging")
    assert (staging.deploys, staging.deploys_per_day, staging.change_failure_rate) == (0, 0.0, None)
    assert (staging.lead_time_median, staging.lead_time_p90) == (None, None)
    assert staging.time_to_restore_median == 24 * H
    assert staging.bands == Bands("low", None, None, "low", overall="low")


def test_period_edges_since_included_until_excluded(report: Report) -> None:
    edge = figures(report, "edge", "prod")
    assert edge.deploys == 1
    assert edge.deploys_per_day == 1 / 7
    assert edge.bands == Bands("high", None, "elite", None, overall="high")


def test_overall_pools_every_app(report: Report) -> None:
    overall = report.overall
    assert overall.is_overall
    assert (overall.app, overall.env) == (None, None)
    assert (overall.deploys, overall.failed_deploys, overall.failed_changes) == (8, 2, 3)
    assert overall.change_failure_rate == pytest.approx(0.375)
    assert (overall.lead_time_median, overall.lead_time_p90) == (2 * H, 48 * H)
    assert (overall.restore_samples, overall.time_to_restore_median) == (3, H)
    assert overall.bands == Bands("elite", "elite", "low", "high", overall="low")


def test_daily_series_in_utc(report: Report) -> None:
    # Mar 1: E1, D1, D2 (leads 2 h and 48 h → 25 h); Mar 2: A1 (negative lead: none); Mar 3: D3;
    # Mar 4: D4 (30 min); Mar 5: A2 (24 h); Mar 6: nothing; Mar 7: D5 (1 h).
    assert [(p.day.day, p.deploys, p.lead_time_median) for p in report.series] == [
        (1, 3, 25 * H),
        (2, 1, None),
        (3, 1, None),
        (4, 1, timedelta(minutes=30)),
        (5, 1, 24 * H),
        (6, 0, None),
        (7, 1, H),
    ]


def test_daily_series_cut_in_another_zone() -> None:
    # Berlin is UTC+1 in early March: the period is Mar 1 01:00 → Mar 8 01:00 local, 8 calendar days,
    # and D5 (Mar 7 23:00 UTC) lands on Mar 8 local.
    berlin = ZoneInfo("Europe/Berlin")
    series = daily_series(DEPLOYS, since=SINCE, until=UNTIL, tz=berlin)
    assert [p.day for p in series] == [date(2024, 3, d) for d in range(1, 9)]
    assert [p.deploys for p in series] == [3, 1, 1, 1, 1, 0, 0, 1]
    assert series[-1].lead_time_median == H
    assert compute(DEPLOYS, [], [], since=SINCE, until=UNTIL, failure_window=WINDOW, tz=berlin).tz == (
        "Europe/Berlin"
    )


def test_failure_window_boundaries() -> None:
    # An event exactly at the end of the window counts; one microsecond later does not; one at the
    # deploy's own instant does not (it happened with the deploy, not after it).
    base = at(2, 10)
    deploys = [ok("a", "e", base)]

    def rate(event: datetime) -> float | None:
        result = compute(
            deploys, [], [Rollback("a", "e", event)], since=SINCE, until=UNTIL, failure_window=WINDOW
        )
        return result.overall.change_failure_rate

    assert rate(base + WINDOW) == 1.0
    assert rate(base + WINDOW + timedelta(microseconds=1)) == 0.0
    assert rate(base) == 0.0


def test_failure_after_the_next_deploy_belongs_to_the_next_deploy() -> None:
    deploys = [ok("a", "e", at(2, 10)), ok("a", "e", at(2, 10, 30))]
    incidents = [Incident("a", "e", at(2, 10, 45))]
    result = compute(deploys, incidents, [], since=SINCE, until=UNTIL, failure_window=WINDOW)
    assert (result.overall.deploys, result.overall.failed_changes) == (2, 1)


def test_failed_deploy_never_recovered_gives_no_restore_sample() -> None:
    result = compute([failed("a", "e", at(2, 10))], [], [], since=SINCE, until=UNTIL, failure_window=WINDOW)
    assert (result.overall.failed_deploys, result.overall.restore_samples) == (1, 0)
    assert result.overall.time_to_restore_median is None
    assert result.overall.bands.time_to_restore is None


def test_frequency_band_through_compute_at_one_per_week() -> None:
    one = [ok("a", "e", at(2, 10))]
    week = compute(one, [], [], since=SINCE, until=SINCE + 7 * DAY, failure_window=WINDOW)
    longer = compute(
        one, [], [], since=SINCE, until=SINCE + 7 * DAY + timedelta(seconds=1), failure_window=WINDOW
    )
    assert week.overall.bands.deployment_frequency == "high"
    assert longer.overall.bands.deployment_frequency == "medium"


def test_empty_inputs_give_an_overall_with_no_rates() -> None:
    result = compute([], [], [], since=SINCE, until=UNTIL, failure_window=WINDOW)
    assert result.figures == ()
    assert (result.overall.deploys, result.overall.change_failure_rate) == (0, None)
    assert result.overall.bands == Bands("low", None, None, None, overall="low")
    assert len(result.series) == 7
    assert all(p.deploys == 0 for p in result.series)


@pytest.mark.parametrize(
    ("since", "until", "window", "message"),
    [
        (UNTIL, SINCE, WINDOW, "period is empty"),
        (SINCE, SINCE, WINDOW, "period is empty"),
        (SINCE.replace(tzinfo=None), UNTIL, WINDOW, "timezone-aware"),
        (SINCE, UNTIL, -H, "must not be negative"),
    ],
)
def test_compute_refuses_a_bad_period(
    since: datetime, until: datetime, window: timedelta, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compute([], [], [], since=since, until=until, failure_window=window)


def test_records_refuse_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="finished_at must be timezone-aware"):
        Deploy("a", "e", datetime(2024, 3, 1), "succeeded", "r")
    with pytest.raises(ValueError, match="commit_time must be timezone-aware"):
        Deploy("a", "e", SINCE, "succeeded", "r", datetime(2024, 3, 1))
    with pytest.raises(ValueError, match="resolved_at must be timezone-aware"):
        Incident("a", "e", SINCE, datetime(2024, 3, 2))
    with pytest.raises(ValueError, match="at must be timezone-aware"):
        Rollback("a", "e", datetime(2024, 3, 2))
    with pytest.raises(ValueError, match="result must be"):
        Deploy("a", "e", SINCE, "running", "r")  # type: ignore[arg-type]


# Band boundaries, both sides of each threshold (DORA 2024 levels; see services/stats/bands.py).
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("per_day", "band"),
    [
        (3.0, "elite"),
        (1.0, "elite"),
        (0.999, "high"),
        (1 / 7, "high"),
        (1 / 7 - 1e-9, "medium"),
        (1 / 30, "medium"),
        (1 / 30 - 1e-9, "low"),
        (0.0, "low"),
    ],
)
def test_frequency_band(per_day: float, band: str) -> None:
    assert frequency_band(per_day) == band


@pytest.mark.parametrize(
    ("lead", "band"),
    [
        (timedelta(0), "elite"),
        (DAY - TICK, "elite"),
        (DAY, "high"),
        (7 * DAY - TICK, "high"),
        (7 * DAY, "medium"),
        (30 * DAY - TICK, "medium"),
        (30 * DAY, "low"),
        (200 * DAY, "low"),
        (None, None),
    ],
)
def test_lead_time_band(lead: timedelta | None, band: str | None) -> None:
    assert lead_time_band(lead) == band


@pytest.mark.parametrize(
    ("rate", "band"),
    [
        (0.0, "elite"),
        (0.05, "elite"),
        (0.0501, "high"),
        (0.10, "high"),  # medium's published 10 % is shadowed by high's 20 %: best band met
        (0.20, "high"),
        (0.2001, "low"),
        (1.0, "low"),
        (None, None),
    ],
)
def test_change_failure_band(rate: float | None, band: str | None) -> None:
    assert change_failure_band(rate) == band


@pytest.mark.parametrize(
    ("restore", "band"),
    [
        (H - TICK, "elite"),
        (H, "high"),
        (DAY - TICK, "high"),
        (DAY, "low"),
        (3 * DAY, "low"),
        (None, None),
    ],
)
def test_restore_band(restore: timedelta | None, band: str | None) -> None:
    assert restore_band(restore) == band


def test_overall_band_is_the_worst_known_key() -> None:
    assert worst(["elite", None, "medium", "high"]) == "medium"
    assert worst([None, None]) is None
    assert classify(2.0, H, 0.0, H - TICK) == Bands("elite", "elite", "elite", "elite", overall="elite")
    assert classify(2.0, None, None, None).overall == "elite"


# --since
@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("30d", 30 * DAY),
        ("2w", 14 * DAY),
        ("12h", 12 * H),
        ("90d", 90 * DAY),
        (" 7D ", 7 * DAY),
        ("365d", 365 * DAY),
        ("52w", 364 * DAY),
        ("8760h", 365 * DAY),
        ("1h", H),
    ],
)
def test_parse_since_accepts(text: str, period: timedelta) -> None:
    assert parse_since(text) == period


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a number and a unit"),
        ("30", "a number and a unit"),
        ("d", "a number and a unit"),
        ("30m", "h \\(hours\\), d \\(days\\) or w \\(weeks\\)"),
        ("-5d", "a number and a unit"),
        ("1.5d", "a number and a unit"),
        ("30 d", "a number and a unit"),
        ("\u0663d", "a number and a unit"),  # ARABIC-INDIC DIGIT THREE: not a number here
        ("0d", "more than zero"),
        ("366d", "at most 365d"),
        ("53w", "at most 365d"),
        ("8761h", "at most 365d"),
        ("9" * 5000 + "d", "at most 365d"),
    ],
)
def test_parse_since_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_since(text)


def test_parse_since_error_echoes_a_bounded_value() -> None:
    with pytest.raises(ValueError, match="got '") as caught:
        parse_since("x" * 500)
    assert len(str(caught.value)) < 160


# Invariants over random histories.
APPS = st.sampled_from([("web", "prod"), ("web", "dev"), ("api", "prod")])
MINUTES = st.integers(min_value=-3 * 24 * 60, max_value=10 * 24 * 60)  # some before, some after


def _time(minutes: int) -> datetime:
    return SINCE + timedelta(minutes=minutes)


deploy_st = st.builds(
    lambda key, minutes, result, lead: Deploy(
        key[0], key[1], _time(minutes), result, "r", None if lead is None else _time(minutes - lead)
    ),
    APPS,
    MINUTES,
    st.sampled_from(["succeeded", "failed"]),
    st.none() | st.integers(min_value=-120, max_value=5000),
)
incident_st = st.builds(
    lambda key, minutes, duration: Incident(
        key[0], key[1], _time(minutes), None if duration is None else _time(minutes + duration)
    ),
    APPS,
    MINUTES,
    st.none() | st.integers(min_value=0, max_value=3000),
)
rollback_st = st.builds(lambda key, minutes: Rollback(key[0], key[1], _time(minutes)), APPS, MINUTES)


@settings(max_examples=80, deadline=None)
@given(
    deploys=st.lists(deploy_st, max_size=40),
    incidents=st.lists(incident_st, max_size=8),
    rollbacks=st.lists(rollback_st, max_size=8),
    window_minutes=st.integers(min_value=0, max_value=3000),
)
def test_rates_stay_in_range_and_counts_add_up(
    deploys: list[Deploy], incidents: list[Incident], rollbacks: list[Rollback], window_minutes: int
) -> None:
    result = compute(
        deploys,
        incidents,
        rollbacks,
        since=SINCE,
        until=UNTIL,
        failure_window=timedelta(minutes=window_minutes),
    )
    for fig in (*result.figures, result.overall):
        assert 0 <= fig.failed_changes <= fig.deploys
        if fig.deploys:
            assert fig.change_failure_rate is not None
            assert 0.0 <= fig.change_failure_rate <= 1.0
        else:
            assert fig.change_failure_rate is None
        for lead in (fig.lead_time_median, fig.lead_time_p90):
            assert lead is None or lead >= timedelta(0)
        if fig.lead_time_median is not None and fig.lead_time_p90 is not None:
            assert fig.lead_time_median <= fig.lead_time_p90
    for count in ("deploys", "failed_deploys", "failed_changes", "lead_time_samples", "restore_samples"):
        assert sum(getattr(f, count) for f in result.figures) == getattr(result.overall, count), count
    in_period = [d for d in deploys if d.result == "succeeded" and SINCE <= d.finished_at < UNTIL]
    assert result.overall.deploys == len(in_period) == sum(p.deploys for p in result.series)
