"""Delivery metrics: DORA's four keys, their performance bands, and the chart of `/gitops stats`.

Pure computation over records the caller reads from its store: `model` (inputs and results),
`compute` (the four keys per app/env and overall, the per-day series), `bands` (DORA 2024 levels and
how a figure maps to one), `period` (`--since` parsing, calendar days), `chart` (PNG, matplotlib
imported lazily). Knows no other feature package, no Slack, no database.
"""

from __future__ import annotations

from services.stats.bands import BANDS_SOURCE
from services.stats.chart import render_png
from services.stats.compute import compute, daily_series
from services.stats.model import Band, Bands, DayPoint, Deploy, Figures, Incident, Report, Rollback
from services.stats.period import MAX_SINCE, parse_since

__all__ = [
    "BANDS_SOURCE",
    "MAX_SINCE",
    "Band",
    "Bands",
    "DayPoint",
    "Deploy",
    "Figures",
    "Incident",
    "Report",
    "Rollback",
    "compute",
    "daily_series",
    "parse_since",
    "render_png",
]
