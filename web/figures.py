"""Which figures the page and `/metrics` show, decided in one place from the table's own columns.
Pure.

`FIGURES` is the one list of the figures the bridge knows how to name, in the trader's words and
units. It is checked against the columns `portfolio_greeks` has (read from information_schema),
so a figure a migration has not added yet is simply not shown, and appears once it lands; a
numeric column this list does not know is still shown, under its own name. The chart panels
are decided here too; the chart windows are `web/chart_windows.py`, the event axis's lanes
`web/event_lanes.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
    # The same in ours' unit (x SPX's price / the benchmark's, migration 013): the page sets
    # it against ours (`payload.beta_delta_gap`).
    Figure(
        "gateway_beta_delta_benchmark_shares",
        "IBKR beta-weighted delta (7696), in benchmark shares",
        "benchmark shares",
        None,
    ),
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
