"""A chart's window and where its rows are read from, with `now` as an argument. Pure.

A window (`1h`, `today` in New York, `5d`) ends now and is cut into the smallest readable bucket
width that draws at most `MAX_POINTS` buckets; a chart whose buckets are whole rollup buckets
reads the widest rollup that divides them (`source`), and raw rows for the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from web.figures import Columns

WINDOWS = ("1h", "today", "5d")
# The trading day: IBKR's reset windows are in New York time, and so is "today".
TRADING_TZ = ZoneInfo("America/New_York")
MAX_POINTS = 720
# Bucket widths a person reads easily; the smallest is the poll interval.
STEPS_S = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)


@dataclass(frozen=True)
class Window:
    name: str
    start: datetime
    end: datetime
    step_s: int


def step_for(span_s: float) -> int:
    """The smallest readable bucket width that draws at most MAX_POINTS buckets."""
    wanted = math.ceil(span_s / MAX_POINTS)
    return next((step for step in STEPS_S if step >= wanted), STEPS_S[-1])


def window(name: str, now: datetime) -> Window:
    """`1h`, `today` (since midnight in New York) or `5d`, ending now; ValueError otherwise."""
    if name == "1h":
        start = now - timedelta(hours=1)
    elif name == "5d":
        start = now - timedelta(days=5)
    elif name == "today":
        local = now.astimezone(TRADING_TZ)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        raise ValueError(f"unknown window {name!r}: one of {', '.join(WINDOWS)}")
    return Window(name, start, now, step_for((now - start).total_seconds()))


# ---- where a chart reads its rows ----------------------------------------------------------

# The account rollups (migration 004), widest first: a bucket of at least an hour reads hours.
ROLLUPS: tuple[tuple[str, int], ...] = (("portfolio_greeks_1h", 3600), ("portfolio_greeks_1m", 60))
# date_bin's origin in the chart query: a multiple of every rollup width, so a chart bucket
# holds whole rollup buckets.
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Source:
    """Where a chart's rows come from: `rollup` (a table) for its whole buckets in
    [`covered_start`, `covered_end`), raw rows for the rest of the window; `rollup` None: raw
    rows only. Which of the covered buckets are not rolled up yet is the database's to say."""

    rollup: str | None
    width_s: int = 0
    covered_start: datetime | None = None
    covered_end: datetime | None = None


def rollup_usable(columns: Columns, table: str, names: list[str]) -> bool:
    """Does `table` exist with the last, `_min` and `_max` of every charted figure?"""
    held = columns.rollups.get(table)
    if held is None:
        return False
    return all({name, f"{name}_min", f"{name}_max"} <= held for name in names)


def source(span: Window, usable: set[str]) -> Source:
    """The widest rollup in `usable` whose width divides the chart's bucket width, over the
    rollup buckets that lie wholly inside the window; raw rows when none fits (a bucket under a
    minute, a window holding no whole rollup bucket). The window's partial first and last
    rollup buckets are read raw, so the rollups change no figure."""
    for table, width_s in ROLLUPS:
        if table not in usable or span.step_s < width_s or span.step_s % width_s:
            continue
        width = timedelta(seconds=width_s)
        first = ORIGIN - ((ORIGIN - span.start) // width) * width  # start, rounded up
        last = ORIGIN + ((span.end - ORIGIN) // width) * width  # end, rounded down
        if first < last:
            return Source(table, width_s, first, last)
    return Source(None)
