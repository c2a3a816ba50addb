"""The stats chart: a real PNG from matplotlib, read back with Pillow and looked at pixel by pixel."""

from __future__ import annotations

import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from services.stats import DayPoint, render_png
from services.stats.chart import BAR_COLOUR, LINE_COLOUR

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parent.parent


def series(days: int, *, deploys: bool = True, leads: bool = True) -> list[DayPoint]:
    start = date(2024, 3, 1)
    return [
        DayPoint(
            start + timedelta(days=i),
            (i % 4) if deploys else 0,
            timedelta(hours=1 + i % 5) if leads and i % 3 else None,
        )
        for i in range(days)
    ]


def pixels(png: bytes) -> NDArray[np.uint8]:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = int(hex_colour.lstrip("#"), 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def count(image: NDArray[np.uint8], colour: str) -> int:
    return int(np.all(image == rgb(colour), axis=-1).sum())


def note_pixels(image: NDArray[np.uint8], panel: str) -> int:
    """Mid-grey pixels (the no-data note's colour, anti-aliased) in the middle of a panel.

    The middle of each panel holds no tick label or axis title, so grey there is the note.
    """
    height, width = image.shape[:2]
    rows = (
        slice(int(height * 0.20), int(height * 0.35))
        if panel == "top"
        else slice(int(height * 0.65), int(height * 0.80))
    )
    middle = image[rows, int(width * 0.19) : int(width * 0.81)].astype(int)
    red, green, blue = middle[..., 0], middle[..., 1], middle[..., 2]
    grey = (red == green) & (green == blue) & (red >= 60) & (red <= 140)
    return int(grey.sum())


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def test_chart_is_a_png_of_800_by_400() -> None:
    png = render_png(series(30), title="web / prod — last 30 days")
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        assert image.size == (800, 400)


def test_chart_draws_the_bars_and_the_lead_time_line() -> None:
    image = pixels(render_png(series(14), title="web / prod"))
    assert count(image, BAR_COLOUR) > 1000  # 10 of 14 days have bars
    assert count(image, LINE_COLOUR) > 50
    assert note_pixels(image, "top") == 0
    assert note_pixels(image, "bottom") == 0


def test_chart_without_deploys_says_so_in_both_panels() -> None:
    png = render_png(series(7, deploys=False, leads=False), title="web / prod")
    image = pixels(png)
    assert count(image, BAR_COLOUR) == 0
    assert count(image, LINE_COLOUR) == 0
    assert note_pixels(image, "top") > 100
    assert note_pixels(image, "bottom") > 100


def test_chart_with_deploys_but_no_commit_times_notes_the_lead_time_panel_only() -> None:
    image = pixels(render_png(series(7, leads=False), title="web / prod"))
    assert count(image, BAR_COLOUR) > 500
    assert note_pixels(image, "top") == 0
    assert note_pixels(image, "bottom") > 100


@pytest.mark.parametrize("days", [0, 1, 366])
def test_chart_handles_an_empty_a_single_day_and_a_year_long_series(days: int) -> None:
    with Image.open(io.BytesIO(render_png(series(days), title="edge"))) as image:
        assert image.size == (800, 400)


def test_rendering_does_not_leak_memory() -> None:
    points = series(14)
    for _ in range(3):  # font cache, matplotlib's first-use tables
        render_png(points, title="warm-up")
    before = rss_kib()
    # No gc.collect() here: what is measured is what a bot process sees render after render.
    for i in range(50):
        render_png(points, title=f"render {i}")
    growth = rss_kib() - before
    assert growth < 4 * 1024, f"RSS grew {growth} KiB over 50 renders"


def test_renders_from_several_threads_are_identical_to_lone_ones() -> None:
    # Two different charts interleaved on four threads: any shared drawing state would show as
    # bytes that differ from the same chart drawn alone.
    charts = [(series(21), "threads"), (series(9, leads=False), "other")]
    alone = [render_png(points, title=title) for points, title in charts]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: render_png(charts[i % 2][0], title=charts[i % 2][1]), range(8)))
    assert alone[0] != alone[1]
    assert all(result == alone[i % 2] for i, result in enumerate(results))


def test_importing_stats_leaves_matplotlib_unloaded() -> None:
    # matplotlib costs ~0.5 s and tens of MB at import: only a process that draws should pay.
    probe = "import sys, services.stats; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
