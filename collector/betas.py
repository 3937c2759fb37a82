"""Betas against the benchmark: the regression, the overrides file, and when to refresh. Pure.

beta = cov(r_u, r_b) / var(r_b), the OLS slope of the underlying's daily simple close-to-close
returns on the benchmark's, both in the benchmark's currency (an underlying in another
currency is converted with the daily rate, `fx`). A return counts only between two consecutive
days of the joint calendar on which both series have a close: no return spans a day either is
missing, and both returns of a pair span the same day. The benchmark's own beta is exactly 1.
An underlying with fewer than MIN_RETURNS (60) aligned daily returns, or a benchmark that
never moved, has no beta: it is missing (`no_beta`), never 1.0 (why 60:
docs/ibkr-conventions.md, "The betas' minimum sample").
`BRIDGE_BETAS_FILE` (TOML, `[betas] SYMBOL = 1.23`) overrides any computed beta.
With `lagged` (`BRIDGE_BETA_LAGGED`), the beta is Dimson's (1979): the sum of the slopes of a
regression on the benchmark's same-day and previous-day returns, which an underlying whose
exchange closes before the benchmark's needs (its close misses the end of the benchmark's day,
which shows in its next return; docs/ibkr-conventions.md, "Closing times").
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Final

# Fewest aligned daily returns a beta is regressed from. The slope's standard error is about
# (residual vol / benchmark vol) / sqrt(n): for a typical stock (residual vol near the
# market's) 0.13 at 60, a 95 % interval of about +-0.25; at 2 points any line fits exactly and
# the error cannot even be estimated. 60 is about three months of trading days.
MIN_RETURNS: Final = 60
# A slope needs two points; `ols_beta` is the bare regression, `beta_of` applies MIN_RETURNS.
_MIN_POINTS: Final = 2


class BetasFileError(ValueError):
    """The overrides file is not `[betas] SYMBOL = number`."""


@dataclass(frozen=True)
class Bar:
    day: date
    close: float


@dataclass(frozen=True)
class BetaEstimate:
    beta: float
    sample_size: int  # aligned daily returns used


def aligned_returns(
    underlying: Iterable[Bar], benchmark: Iterable[Bar], fx: Iterable[Bar] | None = None
) -> list[tuple[float, float]]:
    """(underlying return, benchmark return) per day both series moved over, oldest first.

    With `fx` (the rate of one unit of the underlying's currency in the benchmark's, one close
    a day), the underlying's closes are converted first: close x that day's rate; a day
    without a rate has no converted close. The calendar is every day either series has a close;
    a return counts only between two consecutive days of it on which both have a close, so no
    return spans a day one of them is missing (a holiday on one exchange drops the returns into
    and out of it, for both)."""
    closes_u = {bar.day: bar.close for bar in underlying if _usable(bar.close)}
    if fx is not None:
        rates = {bar.day: bar.close for bar in fx if _usable(bar.close)}
        closes_u = {day: close * rates[day] for day, close in closes_u.items() if day in rates}
    return [(mine, theirs) for _, _, mine, theirs in _aligned_rows(closes_u, benchmark)]


def _aligned_rows(
    closes_u: Mapping[date, float], benchmark: Iterable[Bar]
) -> list[tuple[date, date, float, float]]:
    """(day before, day, underlying return, benchmark return): `aligned_returns` with the days
    each return spans, so that consecutive ones can be told apart from ones a gap separates."""
    closes_b = {bar.day: bar.close for bar in benchmark if _usable(bar.close)}
    calendar = sorted(closes_u.keys() | closes_b.keys())
    return [
        (prev, day, closes_u[day] / closes_u[prev] - 1.0, closes_b[day] / closes_b[prev] - 1.0)
        for prev, day in itertools.pairwise(calendar)
        if prev in closes_u and day in closes_u and prev in closes_b and day in closes_b
    ]


def lagged_returns(
    underlying: Iterable[Bar], benchmark: Iterable[Bar], fx: Iterable[Bar] | None = None
) -> list[tuple[float, float, float]]:
    """(underlying return, benchmark return, the benchmark's return the step before) for each
    aligned return (`aligned_returns`) whose previous step is aligned too and ends the day it
    starts: a gap in either calendar breaks the chain, never pairs returns days apart."""
    closes_u = {bar.day: bar.close for bar in underlying if _usable(bar.close)}
    if fx is not None:
        rates = {bar.day: bar.close for bar in fx if _usable(bar.close)}
        closes_u = {day: close * rates[day] for day, close in closes_u.items() if day in rates}
    rows = _aligned_rows(closes_u, benchmark)
    return [
        (mine, theirs, theirs_before)
        for (_, ended, _, theirs_before), (started, _, mine, theirs) in itertools.pairwise(rows)
        if ended == started
    ]


def dimson_beta(rows: list[tuple[float, float, float]]) -> BetaEstimate | None:
    """Dimson's beta: y regressed on x and x's previous value (with an intercept), the sum of
    the two slopes. None with fewer than three rows or when the two regressors are collinear."""
    n = len(rows)
    if n < _MIN_POINTS + 1:
        return None
    mean_y, mean_x, mean_lag = (math.fsum(column) / n for column in zip(*rows, strict=True))
    sxx = math.fsum((x - mean_x) ** 2 for _, x, _ in rows)
    sll = math.fsum((lag - mean_lag) ** 2 for _, _, lag in rows)
    sxl = math.fsum((x - mean_x) * (lag - mean_lag) for _, x, lag in rows)
    sxy = math.fsum((x - mean_x) * (y - mean_y) for y, x, _ in rows)
    sly = math.fsum((lag - mean_lag) * (y - mean_y) for y, _, lag in rows)
    determinant = sxx * sll - sxl * sxl
    if determinant <= 0:
        return None
    same_day = (sxy * sll - sly * sxl) / determinant
    day_before = (sly * sxx - sxy * sxl) / determinant
    return BetaEstimate(same_day + day_before, n)


def ols_beta(pairs: list[tuple[float, float]]) -> BetaEstimate | None:
    """The slope of y on x (cov / var); None with fewer than two points or no variance in x."""
    n = len(pairs)
    if n < _MIN_POINTS:
        return None
    mean_y = math.fsum(y for y, _ in pairs) / n
    mean_x = math.fsum(x for _, x in pairs) / n
    covariance = math.fsum((y - mean_y) * (x - mean_x) for y, x in pairs)
    variance = math.fsum((x - mean_x) ** 2 for _, x in pairs)
    if variance == 0:
        return None
    return BetaEstimate(covariance / variance, n)


def beta_of(
    underlying: Iterable[Bar],
    benchmark: Iterable[Bar],
    *,
    fx: Iterable[Bar] | None = None,
    min_returns: int = MIN_RETURNS,
    lagged: bool = False,
) -> BetaEstimate | None:
    """The beta the figures use: None below `min_returns` aligned daily returns (`fx`: see
    `aligned_returns`); `lagged`: Dimson's, over `lagged_returns`."""
    if lagged:
        rows = lagged_returns(underlying, benchmark, fx)
        return dimson_beta(rows) if len(rows) >= min_returns else None
    pairs = aligned_returns(underlying, benchmark, fx)
    return ols_beta(pairs) if len(pairs) >= min_returns else None


def parse_betas_file(text: str) -> dict[str, float]:
    """`[betas]` with `SYMBOL = number` lines; anything else is a BetasFileError."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BetasFileError(f"not TOML: {exc}") from None
    unknown = sorted(set(document) - {"betas"})
    if unknown:
        raise BetasFileError(f"unknown table or key {unknown[0]!r} (only [betas] is read)")
    table = document.get("betas", {})
    if not isinstance(table, dict):
        raise BetasFileError("betas must be a table: [betas] SYMBOL = 1.23")
    betas: dict[str, float] = {}
    for symbol, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BetasFileError(f"the beta of {symbol} is not a number")
        if not math.isfinite(value):
            raise BetasFileError(f"the beta of {symbol} is not finite")
        betas[symbol] = float(value)
    return betas


def _usable(close: float) -> bool:
    return math.isfinite(close) and close > 0


class BetaBook:
    """The betas in force: overrides first, then the day's regressions; which are due."""

    def __init__(self, benchmark: str, overrides: Mapping[str, float]) -> None:
        self.benchmark = benchmark
        self.overrides = dict(overrides)
        self._computed: dict[str, tuple[date, BetaEstimate | None]] = {}

    def due(self, symbols: Iterable[str], today: date) -> list[str]:
        """Symbols to regress now: not overridden, not the benchmark, not done today."""
        return sorted(
            symbol
            for symbol in set(symbols)
            if symbol not in self.overrides
            and symbol != self.benchmark
            and self._computed.get(symbol, (None, None))[0] != today
        )

    def record(self, symbol: str, today: date, estimate: BetaEstimate | None) -> None:
        """The day's result for `symbol` (None: the gateway's history gave no beta)."""
        self._computed[symbol] = (today, estimate)

    def betas(self) -> dict[str, float]:
        """symbol -> beta; the benchmark is 1 by the formula, overrides win."""
        found = {
            symbol: estimate.beta
            for symbol, (_, estimate) in self._computed.items()
            if estimate is not None
        }
        found[self.benchmark] = 1.0
        found.update(self.overrides)
        return found
