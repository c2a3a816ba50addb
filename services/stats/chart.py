"""The `/gitops stats` chart: deploys per day (bars) over median lead time per day (line), as PNG bytes.

matplotlib is imported inside `render_png`: it costs ~0.5 s and tens of MB, and most processes never
draw a chart. No pyplot: its global figure registry is neither thread-safe nor freed without an
explicit close, while a bare `Figure` on an Agg canvas belongs to the caller and dies with it.
"""

from __future__ import annotations

import gc
import io
import math
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final

from services.stats.model import DayPoint

if TYPE_CHECKING:
    from matplotlib.axes import Axes

WIDTH_IN: Final = 8.0
HEIGHT_IN: Final = 4.0
DPI: Final = 100  # 800 × 400 px: readable inline in Slack, small to upload
BAR_COLOUR: Final = "#2f6fb0"
LINE_COLOUR: Final = "#d9822b"
NOTE_COLOUR: Final = "#666666"
SMALL_MARKERS_FROM: Final = 60  # days; beyond that full-size dots merge into a smear
MARGINS: Final = {"left": 0.085, "right": 0.985, "top": 0.91, "bottom": 0.1, "hspace": 0.12}
DAILY_TICKS_UP_TO: Final = 14  # days; the automatic locator would tick hours on short periods


def render_png(series: Sequence[DayPoint], *, title: str) -> bytes:
    """Two stacked panels sharing the day axis; a note in a panel that has nothing to show."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    try:
        # Fixed margins, not a layout engine: the labels are ours and short, and constrained layout
        # doubles the drawing time.
        deploys_ax, lead_ax = fig.subplots(2, 1, sharex=True, gridspec_kw=MARGINS)
        fig.suptitle(title, fontsize=11)
        days = [point.day for point in series]
        counts = [point.deploys for point in series]
        hours = [
            point.lead_time_median.total_seconds() / 3600 if point.lead_time_median is not None else math.nan
            for point in series
        ]

        deploys_ax.bar(days, counts, width=0.8, color=BAR_COLOUR)
        deploys_ax.set_ylabel("deploys / day", fontsize=9)
        deploys_ax.yaxis.get_major_locator().set_params(integer=True)
        if not any(counts):
            _note(deploys_ax, "No deploys in this period")

        # Days without a figure are NaN: the line breaks there instead of inventing a value.
        # Always a marker: a day between two empty days has no line segment to show it.
        size = 3.0 if len(days) < SMALL_MARKERS_FROM else 1.2
        lead_ax.plot(days, hours, color=LINE_COLOUR, marker="o", markersize=size, linewidth=1.5)
        lead_ax.set_ylabel("median lead time (h)", fontsize=9)
        known = [h for h in hours if not math.isnan(h)]
        # Headroom above the highest point, so markers at the top are not cut in half by the frame.
        lead_ax.set_ylim(0, max(known) * 1.15 if known and max(known) > 0 else 1.0)
        if not known:
            _note(lead_ax, "No lead time: no deploy with a known commit time")

        for ax in (deploys_ax, lead_ax):
            ax.tick_params(labelsize=8)
            ax.grid(axis="y", alpha=0.3)
        if days:
            _day_axis(lead_ax, days)
        else:
            lead_ax.set_xticks([])

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI)
        return buffer.getvalue()
    finally:
        # A figure is a web of reference cycles (figure, canvas, axes, callbacks): left to the
        # generational GC, ~20 MB of dead figures piled up over 50 renders before a full collection.
        # Charts are rare (a command, a weekly digest), so collect now.
        fig.clear()
        del fig
        gc.collect()


def _day_axis(ax: Axes, days: list[date]) -> None:
    from matplotlib import dates as mdates

    # (matplotlib leaves its date helpers unannotated: hence the ignores.)
    # Half a day of margin each side so the first and last bars are whole.
    ax.set_xlim(
        mdates.date2num(datetime.combine(days[0], time()) - timedelta(hours=12)),  # type: ignore[no-untyped-call]
        mdates.date2num(datetime.combine(days[-1], time()) + timedelta(hours=12)),  # type: ignore[no-untyped-call]
    )
    if len(days) <= DAILY_TICKS_UP_TO:
        ax.xaxis.set_major_locator(mdates.DayLocator())  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))  # type: ignore[no-untyped-call]
    else:
        locator = mdates.AutoDateLocator(maxticks=10)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=NOTE_COLOUR, fontsize=10)
    ax.set_yticks([])
