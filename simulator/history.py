"""Daily bars the gateways serve, and the regression a beta is: pure functions, no clock.

Each underlying's daily returns are made of the benchmark's (times the scenario's `beta`) and its
own noise, both drawn from (seed, conid, day), so a year of bars is the same on every run and on
both gateway sides. The bars end on the last weekday before today, whose close is the scenario's
`spot`: the close the day's P&L is measured from, and the centre of today's price path.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from simulator.rounding import PRICE_DECIMALS  # bars, like quotes, to the cent

TRADING_DAYS_PER_YEAR = 252


@dataclass(frozen=True)
class Bar:
    day: date
    open: float
    high: float
    low: float
    close: float
    volume: float


def trading_days(before: date, count: int) -> list[date]:
    """The `count` weekdays before `before` (exclusive), oldest first."""
    days: list[date] = []
    day = before
    while len(days) < count:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days[::-1]


def _rng(name: str) -> random.Random:
    # Reproducible draws from a name, not secrets: the standard generator is the right one.
    return random.Random(name)  # noqa: S311


def _normal(seed: int, key: int, day: date) -> float:
    return _rng(f"{seed}/{key}/{day.isoformat()}").gauss(0.0, 1.0)


def daily_returns(
    *, seed: int, key: int, days: Sequence[date], vol: float, benchmark: Sequence[float] | None,
    beta: float,
) -> list[float]:  # fmt: skip
    """Simple daily returns for `days`: beta * the benchmark's plus noise of annual vol `vol`
    (the benchmark itself passes benchmark=None and its own vol)."""
    scale = vol / math.sqrt(TRADING_DAYS_PER_YEAR)
    own = [scale * _normal(seed, key, day) for day in days]
    if benchmark is None:
        return own
    return [beta * market + noise for market, noise in zip(benchmark, own, strict=True)]


def bars_from_returns(
    days: Sequence[date], returns: Sequence[float], *, last_close: float, seed: int, key: int,
    decimals: int = PRICE_DECIMALS,
) -> list[Bar]:  # fmt: skip
    """Bars whose closes end at `last_close` and move by `returns` (the first return is the
    move into the first day, so it is not visible in the closes)."""
    closes = [last_close]
    for move in reversed(returns[1:]):
        closes.append(closes[-1] / (1.0 + move))
    closes.reverse()
    bars: list[Bar] = []
    previous = closes[0] / (1.0 + returns[0])
    for day, close in zip(days, closes, strict=True):
        wiggle = abs(close - previous) * 0.5 + close * 0.002
        open_ = previous
        high = max(open_, close) + wiggle
        low = min(open_, close) - wiggle
        volume = 1_000_000 + _rng(f"{seed}/{key}/v/{day}").randrange(1_000_000)
        o, h, lo, c = (round(x, decimals) for x in (open_, high, low, close))
        bars.append(Bar(day, o, h, lo, c, volume))
        previous = close
    return bars


def close_returns(bars: Sequence[Bar]) -> dict[date, float]:
    """Close-to-close simple returns keyed by the later bar's date."""
    return {
        later.day: later.close / earlier.close - 1.0 for earlier, later in itertools.pairwise(bars)
    }


def common_returns(underlying: Sequence[Bar], benchmark: Sequence[Bar]) -> int:
    """How many dates both have a close-to-close return for."""
    return len(set(close_returns(underlying)) & set(close_returns(benchmark)))


def in_currency(returns: Sequence[float], rate_returns: Sequence[float]) -> list[float]:
    """Returns in the benchmark's currency turned into the local currency's, where the rate
    (benchmark currency per local unit) moved by `rate_returns`: (1 + r) / (1 + f) - 1."""
    return [(1.0 + r) / (1.0 + f) - 1.0 for r, f in zip(returns, rate_returns, strict=True)]


def slope(pairs: Sequence[tuple[float, float]]) -> float | None:
    """cov(y, x) / var(x) of (y, x) pairs; None below two pairs or with no variance in x."""
    if len(pairs) < 2:
        return None
    mean_y = sum(y for y, _ in pairs) / len(pairs)
    mean_x = sum(x for _, x in pairs) / len(pairs)
    var = sum((x - mean_x) ** 2 for _, x in pairs)
    if var == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for y, x in pairs) / var


def ols_beta(underlying: Sequence[Bar], benchmark: Sequence[Bar]) -> float | None:
    """cov(r_u, r_b) / var(r_b) over the dates both have a return for; None below two dates or
    with a benchmark that never moved."""
    mine, theirs = close_returns(underlying), close_returns(benchmark)
    common = sorted(set(mine) & set(theirs))
    if len(common) < 2:
        return None
    xs = [theirs[day] for day in common]
    ys = [mine[day] for day in common]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var
