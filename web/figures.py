"""What the page and `/metrics` show, decided in one place from the table's own columns. Pure.

`FIGURES` is the one list of the figures the bridge knows how to name, in the trader's words and
units. It is checked against the columns `portfolio_greeks` has (read from information_schema),
so a figure a migration has not added yet is simply not shown, and appears once it lands; a
numeric column this list does not know is still shown, under its own name. The chart panels,
the chart windows and their bucket widths, and the lanes of the event axis are decided here too,
with `now` as an argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

# Money figures are in the account's base currency: the `currency` column once it exists.
Unit = Literal[
    "money", "money/day", "money/vol point", "benchmark shares", "share-equivalents", "SPX units"
]


@dataclass(frozen=True)
class Figure:
    column: str
    label: str
    unit: Unit | None
    # The chart panel it is drawn in; None: shown in the table only.
    panel: str | None


FIGURES: tuple[Figure, ...] = (
    Figure("net_dollar_delta", "Dollar delta", "money", "Dollar delta"),
    Figure("net_beta_delta", "Beta-weighted delta", "benchmark shares", "Beta-weighted delta"),
    # Unlike units never share an axis: rows before the trader-grade migration have share-
    # equivalent gamma, rows after it dollar gamma; a panel with no data in a window is not drawn.
    Figure("net_dollar_gamma", "Dollar gamma (1 % move)", "money", "Dollar gamma"),
    Figure("net_gamma", "Gamma", "share-equivalents", "Gamma"),
    Figure("net_theta", "Theta", "money/day", "Theta"),
    Figure("net_vega", "Vega", "money/vol point", "Vega"),
    Figure("net_delta", "Delta", "share-equivalents", None),
    # PORTAL: IBKR's own (field 7696, its betas, against SPX), beside ours (migration 009).
    Figure("gateway_beta_delta", "IBKR beta-weighted delta (7696)", "SPX units", None),
    Figure("net_liquidation", "Net liquidation", "money", None),
    Figure("unrealized_pnl", "Unrealized P&L", "money", None),
    Figure("daily_pnl", "Daily P&L", "money", None),
)

# Numeric columns that describe a snapshot rather than a figure (completeness, freshness).
COMPLETENESS_COLUMNS = ("options_with_greeks", "option_count", "position_count")
AGE_COLUMN = "stalest_greek_age_s"
_NUMERIC_TYPES = {"double precision", "real", "numeric", "integer", "bigint", "smallint"}


@dataclass(frozen=True)
class Columns:
    """The columns of `portfolio_greeks` as information_schema lists them: name -> data type;
    `rollups`: the account rollup tables there are (migration 004), each with its columns;
    `full`: the columns of the view `snapshots` (migration 005), which shows every snapshot in
    full whatever format stored it (empty before it exists)."""

    types: dict[str, str]
    rollups: dict[str, frozenset[str]] = field(default_factory=dict)
    full: tuple[str, ...] = ()

    def has(self, name: str) -> bool:
        return name in self.types

    @property
    def numeric(self) -> list[str]:
        """Every numeric column, in table order: what /metrics exports, one gauge each."""
        return [name for name, kind in self.types.items() if kind in _NUMERIC_TYPES]


def figures(columns: Columns) -> list[Figure]:
    """The figures to show: the known ones the table has, then any other float column."""
    known = [figure for figure in FIGURES if columns.has(figure.column)]
    named = {figure.column for figure in FIGURES} | set(COMPLETENESS_COLUMNS) | {AGE_COLUMN}
    others = [
        Figure(name, name, None, None)
        for name, kind in columns.types.items()
        if kind in ("double precision", "real", "numeric") and name not in named
    ]
    return known + others


def panels(columns: Columns) -> dict[str, list[Figure]]:
    """Chart panel -> its figures, in the order of `FIGURES`; panels without a column vanish."""
    found: dict[str, list[Figure]] = {}
    for figure in figures(columns):
        if figure.panel is not None:
            found.setdefault(figure.panel, []).append(figure)
    return found


def charted(columns: Columns) -> list[str]:
    """The columns the chart query aggregates (min, max and last per bucket)."""
    return [figure.column for panel in panels(columns).values() for figure in panel]


# ---- chart windows -------------------------------------------------------------------------

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


# ---- the event axis ------------------------------------------------------------------------

Lane = Literal["gap", "connection", "reset window", "breaker", "alert", "other"]

_LANES: dict[str, Lane] = {
    "gap": "gap",
    "connected": "connection",
    "disconnected": "connection",
    "reconnect_attempt": "connection",
    "stalled": "connection",
    "client_id_in_use": "connection",
    "session_required": "connection",
    "connectivity_lost": "connection",
    "connectivity_restored": "connection",
    "connectivity_restored_data_lost": "connection",
    "reset_window_entered": "reset window",
    "reset_window_left": "reset window",
    "breaker_opened": "breaker",
    "breaker_closed": "breaker",
    "alert_fired": "alert",
    "alert_resolved": "alert",
}


def lane(event: str, level: str) -> Lane | None:
    """Which lane of the event axis shows an api_logs event; None: routine, not drawn."""
    if event in _LANES:
        return _LANES[event]
    return "other" if level in ("warning", "error", "critical") else None


EVENTS_SHOWN: tuple[str, ...] = tuple(_LANES)
