"""The scenario P&L grid, computed by the simulator on its own: pure arithmetic, no I/O.

The simulator's statement of the scenario grid (docs/scenarios.md), apart from the collector's
QuantLib revaluation so neither can agree with the other on a wrong one:
- 10 moves of the underlying (`MOVES_PCT`) x 3 vol shifts (`VOL_SHIFTS_PTS`) x now and a day
  later: 60 P&Ls, day first, then vol shift, then move;
- an option's P&L = (its value in the scenario - its value now) x qty x multiplier / magnifier
  x fx; its value from `simulator.pricing`: Black-76 for a futures option, Black-Scholes for an
  index option, the BBSR binomial tree for an equity or ETF option (no dividends, rate RATE);
  at or past expiry its intrinsic value; the vol never below one point;
- a linear position's P&L = qty x multiplier x price / magnifier x fx x move;
- beta-weighted: each underlying moved by its beta x the benchmark's move;
- delta-gamma at -10 % and +10 %: dollar delta x m + 50 m² x dollar gamma (simulator.truth's).
A position that cannot be valued is missing with a reason; a grid nothing contributed to is None.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from simulator.pricing import american, black_76, european
from simulator.truth import LINEAR, OPTIONS, Exposure, contributions

MOVES_PCT = (-20.0, -10.0, -5.0, -2.0, -1.0, 1.0, 2.0, 5.0, 10.0, 20.0)
VOL_SHIFTS_PTS = (-5.0, 0.0, 5.0)
DAYS_LATER = (0, 1)
DELTA_GAMMA_MOVES_PCT = (-10.0, 10.0)
_YEAR_DAYS = 365.0
_MIN_VOL = 0.01


@dataclass(frozen=True)
class Revaluable:
    """One position with what its revaluation needs; None is what the gateway did not give."""

    exposure: Exposure  # price: the underlying's for an option
    underlying_sec_type: str | None = None
    right: str | None = None
    strike: float | None = None
    years: float | None = None  # to expiry, from now
    implied_vol: float | None = None


def _value(item: Revaluable, price: float, years: float, vol: float) -> float:
    assert item.strike is not None
    call = item.right == "C"
    sec_type = item.exposure.sec_type
    if sec_type == "FOP" or item.underlying_sec_type == "FUT":
        return black_76(future=price, strike=item.strike, years=years, vol=vol, call=call)
    if item.underlying_sec_type == "IND":
        return european(spot=price, strike=item.strike, years=years, vol=vol, call=call)
    return american(spot=price, strike=item.strike, years=years, vol=vol, call=call)


def _missing(item: Revaluable) -> str | None:
    """The first reason the position cannot be revalued, in the collector's order."""
    exposure = item.exposure
    option = exposure.sec_type in OPTIONS
    checks = [
        ("unsupported_type", not option and exposure.sec_type not in LINEAR),
        ("no_multiplier", exposure.multiplier is None),
        ("no_fx_rate", exposure.fx is None),
        ("no_terms", option and None in (item.strike, item.years, item.right)),
        ("no_implied_vol", option and item.implied_vol is None),
        ("expired", option and item.years is not None and item.years <= 0),
        ("no_price", exposure.price is None),
    ]
    return next((reason for reason, missing in checks if missing), None)


def position_grid(item: Revaluable, moves: Sequence[float] = MOVES_PCT) -> list[float] | str:
    """The position's 60 P&Ls in base currency, or why it has none."""
    reason = _missing(item)
    if reason is not None:
        return reason
    exposure = item.exposure
    assert exposure.multiplier is not None
    assert exposure.fx is not None
    assert exposure.price is not None
    size = exposure.quantity * exposure.multiplier / exposure.magnifier * exposure.fx
    price = exposure.price
    if exposure.sec_type in LINEAR:
        row = [size * price * move / 100 for move in moves]
        return row * (len(VOL_SHIFTS_PTS) * len(DAYS_LATER))
    assert item.years is not None
    assert item.implied_vol is not None
    years, vol = item.years, item.implied_vol
    now = _value(item, price, years, vol)
    return [
        (
            _value(item, price * (1 + move / 100), years - days / _YEAR_DAYS,
                   max(_MIN_VOL, vol + shift / 100)) - now
        ) * size
        for days in DAYS_LATER
        for shift in VOL_SHIFTS_PTS
        for move in moves
    ]  # fmt: skip


def _delta_gamma(item: Revaluable) -> list[float] | str:
    parts = contributions(item.exposure, benchmark_price=None)
    dollar_delta = parts["net_dollar_delta"]
    dollar_gamma = parts.get("net_dollar_gamma", 0.0)
    if isinstance(dollar_delta, str):
        return dollar_delta
    if isinstance(dollar_gamma, str):
        return dollar_gamma
    return [dollar_delta * m / 100 + 50 * (m / 100) ** 2 * dollar_gamma
            for m in DELTA_GAMMA_MOVES_PCT]  # fmt: skip


class _Sum:
    def __init__(self) -> None:
        self.total: list[float] | None = None
        self.contributing = 0
        self.reasons: dict[str, int] = {}

    def add(self, part: list[float] | str) -> None:
        if isinstance(part, str):
            self.reasons[part] = self.reasons.get(part, 0) + 1
            return
        self.contributing += 1
        self.total = (
            part if self.total is None else [a + b for a, b in zip(self.total, part, strict=True)]
        )

    def counts(self) -> dict[str, Any]:
        return {"contributing": self.contributing, "missing": sum(self.reasons.values()),
                "reasons": self.reasons}  # fmt: skip


def _scope(items: Iterable[Revaluable], *, with_beta: bool) -> dict[str, Any]:
    grid, beta_grid, delta_gamma = _Sum(), _Sum(), _Sum()
    for item in items:
        if item.exposure.quantity == 0:
            continue
        own = position_grid(item)
        grid.add(own)
        delta_gamma.add(_delta_gamma(item))
        if with_beta:
            beta = item.exposure.beta
            if isinstance(own, str):
                beta_grid.add(own)
            elif beta is None:
                beta_grid.add("no_beta")
            else:
                beta_grid.add(position_grid(item, [beta * move for move in MOVES_PCT]))
    result: dict[str, Any] = {
        "grid": grid.total,
        "delta_gamma_10": delta_gamma.total,
        "completeness": {"grid": grid.counts(), "delta_gamma": delta_gamma.counts()},
    }
    if with_beta:
        result["beta_grid"] = beta_grid.total
        result["completeness"]["beta_grid"] = beta_grid.counts()
    return result


def account_scenarios(items: list[Revaluable]) -> dict[str, Any]:
    """The account's grids (own moves and beta-weighted) and each underlying's own-move grid."""
    symbols = sorted({item.exposure.symbol for item in items if item.exposure.quantity != 0})
    return {
        **_scope(items, with_beta=True),
        "underlyings": {
            symbol: _scope([i for i in items if i.exposure.symbol == symbol], with_beta=False)
            for symbol in symbols
        },
    }
