"""The figures a trader reads, summed from per-position inputs: pure arithmetic, no I/O.

The simulator's own statement of the figures' conventions, written apart from the collector's so
that neither can agree with the other on a wrong one (docs/simulator.md lists them):

- dollar delta = delta * qty * multiplier * (price / magnifier) * fx, with delta 1 for linear
  instruments (stocks, ETFs, futures, CFDs) and price the underlying's for options;
- dollar gamma = gamma * qty * multiplier * price^2 / magnifier * 0.01 * fx (gamma per quoted
  unit of the underlying, so per currency unit it is gamma * magnifier);
- theta, vega = Greek * qty * multiplier / magnifier * fx; options only;
- beta delta = dollar delta * beta / benchmark price in the base currency (benchmark shares).

A position that cannot contribute to a figure is counted as missing with one reason, the first
that applies in `REASONS` order. Warrants, bonds, FX and crypto are `unsupported_type`
everywhere; linear instruments are not counted at all for gamma, theta and vega.

Greeks by expiry: each option's dollar delta, dollar gamma, theta and vega go to
the bucket of its calendar days to expiry (0-7, 8-30, 31-90, 91-365, over 365) from the day
given; linear instruments' dollar delta to a line of its own; a bucket nothing reached is None.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

FIGURES = ("net_dollar_delta", "net_dollar_gamma", "net_theta", "net_vega", "net_beta_delta")
REASONS = ("unsupported_type", "no_multiplier", "no_fx_rate", "no_greek", "no_price", "no_beta")
OPTIONS = frozenset({"OPT", "FOP"})
LINEAR = frozenset({"STK", "ETF", "FUT", "CFD", "IND"})


@dataclass(frozen=True)
class Exposure:
    """One position as a client sees it; None is what the gateway did not give."""

    symbol: str  # the underlying's symbol: the key of `underlyings`
    sec_type: str
    quantity: float
    multiplier: float | None
    magnifier: float
    fx: float | None  # one unit of the position's currency in the base currency
    price: float | None  # the underlying's price for options, its own otherwise (quoted units)
    delta: float | None = None
    gamma: float | None = None
    theta: float | None = None
    vega: float | None = None
    beta: float | None = None
    conid: int = 0
    expiry: date | None = None  # an option's last trading day


# Greeks by expiry: each bucket's first and last day to expiry (the last one open-ended).
EXPIRY_BUCKETS = ((0, 7), (8, 30), (31, 90), (91, 365), (366, None))
EXPIRY_FIGURES = ("net_dollar_delta", "net_dollar_gamma", "net_theta", "net_vega")


class _Figure:
    def __init__(self) -> None:
        self.total: float | None = None
        self.contributing = 0
        self.reasons: dict[str, int] = {}

    def add(self, value: float) -> None:
        self.total = (self.total or 0.0) + value
        self.contributing += 1

    def miss(self, reason: str) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def completeness(self) -> dict[str, Any]:
        missing = sum(self.reasons.values())
        return {"contributing": self.contributing, "missing": missing, "reasons": self.reasons}


def _first_missing(checks: Iterable[tuple[str, bool]]) -> str | None:
    return next((reason for reason, missing in checks if missing), None)


def contributions(item: Exposure, benchmark_price: float | None) -> dict[str, float | str]:
    """What one position adds to each figure it counts in: a number, or the reason it cannot
    (figures it does not count in are absent)."""
    if item.sec_type not in OPTIONS and item.sec_type not in LINEAR:
        return dict.fromkeys(FIGURES, "unsupported_type")
    is_option = item.sec_type in OPTIONS
    delta = item.delta if is_option else 1.0
    base = [("no_multiplier", item.multiplier is None), ("no_fx_rate", item.fx is None)]
    # Each figure: its reason checks, then its value from numbers the checks proved present.
    size = item.quantity * (item.multiplier or 0.0) / item.magnifier * (item.fx or 0.0)
    price = item.price or 0.0
    figures: dict[str, tuple[list[tuple[str, bool]], float]] = {
        "net_dollar_delta": (
            [*base, ("no_greek", delta is None), ("no_price", item.price is None)],
            (delta or 0.0) * size * price,
        ),
    }
    dollar_delta = figures["net_dollar_delta"][1]
    figures["net_beta_delta"] = (
        [*figures["net_dollar_delta"][0], ("no_price", benchmark_price is None),
         ("no_beta", item.beta is None)],
        dollar_delta * (item.beta or 0.0) / (benchmark_price or 1.0),
    )  # fmt: skip
    if is_option:
        figures["net_dollar_gamma"] = (
            [*base, ("no_greek", item.gamma is None), ("no_price", item.price is None)],
            (item.gamma or 0.0) * size * price**2 * 0.01,
        )
        figures["net_theta"] = ([*base, ("no_greek", item.theta is None)],
                                (item.theta or 0.0) * size)  # fmt: skip
        figures["net_vega"] = ([*base, ("no_greek", item.vega is None)], (item.vega or 0.0) * size)
    return {name: _first_missing(checks) or value for name, (checks, value) in figures.items()}


def aggregate(exposures: Iterable[Exposure], benchmark_price: float | None) -> dict[str, Any]:
    """The five figures with their completeness, the share-equivalent net delta and gamma, and
    the counts, over `exposures`; `benchmark_price` is in the base currency."""
    figures = {name: _Figure() for name in FIGURES}
    share = {"net_delta": _Figure(), "net_gamma": _Figure()}
    positions = options = with_greeks = 0
    for item in exposures:
        if item.quantity == 0:
            continue
        positions += 1
        if item.sec_type in OPTIONS:
            options += 1
            greeks = (item.delta, item.gamma, item.theta, item.vega)
            with_greeks += all(greek is not None for greek in greeks)
        for name, added in contributions(item, benchmark_price).items():
            if isinstance(added, str):
                figures[name].miss(added)
            else:
                figures[name].add(added)
        for name, added in _share_equivalents(item).items():
            if isinstance(added, str):
                share[name].miss(added)
            else:
                share[name].add(added)
    return {
        **{name: figure.total for name, figure in figures.items()},
        "completeness": {
            name: figure.completeness() for name, figure in {**figures, **share}.items()
        },
        **{name: figure.total for name, figure in share.items()},
        "position_count": positions,
        "option_count": options,
        "options_with_greeks": with_greeks,
    }


def _share_equivalents(item: Exposure) -> dict[str, float | str]:
    """Delta and gamma held, in the underlying's own units (shares, bushels...), or the reason
    one is unknown: every position counts in delta, every option (and unsupported type) in
    gamma; neither needs a price or a rate."""
    if item.sec_type not in OPTIONS and item.sec_type not in LINEAR:
        return {"net_delta": "unsupported_type", "net_gamma": "unsupported_type"}
    per_unit = (
        {"net_delta": item.delta, "net_gamma": item.gamma}
        if item.sec_type in OPTIONS
        else {"net_delta": 1.0}
    )
    if item.multiplier is None:
        return dict.fromkeys(per_unit, "no_multiplier")
    return {
        name: "no_greek" if value is None else value * item.quantity * item.multiplier
        for name, value in per_unit.items()
    }


def account_truth(
    exposures: list[Exposure], benchmark_price: float | None, *, currency: str,
    net_liquidation: float | None, unrealized_pnl: float | None, daily_pnl: float | None,
    expiry_day: date | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The account's figures: totals without share-equivalents, and each underlying's; with
    `expiry_day`, also by expiry from that day (`expiry`); each position's part (`legs`, by
    conid)."""
    total = aggregate(exposures, benchmark_price)
    # Unlike units do not add across underlyings: no share-equivalents, nor their completeness.
    del total["net_delta"], total["net_gamma"]
    del total["completeness"]["net_delta"], total["completeness"]["net_gamma"]
    symbols = sorted({item.symbol for item in exposures if item.quantity != 0})
    expiry = None
    if expiry_day is not None:
        expiry = expiry_figures(exposures, expiry_day)
        expiry["underlyings"] = {
            symbol: expiry_figures([e for e in exposures if e.symbol == symbol], expiry_day)
            for symbol in symbols
        }
    return {
        "currency": currency,
        **total,
        "net_liquidation": net_liquidation,
        "unrealized_pnl": unrealized_pnl,
        "daily_pnl": daily_pnl,
        "underlyings": {
            symbol: aggregate([e for e in exposures if e.symbol == symbol], benchmark_price)
            for symbol in symbols
        },
        "expiry": expiry,
        "legs": {str(e.conid): leg_truth(e) for e in exposures if e.quantity != 0},
    }


def _bucket(days: int) -> int:
    for index, (first, last) in enumerate(EXPIRY_BUCKETS):
        if days >= first and (last is None or days <= last):
            return index
    raise ValueError(f"{days} days to expiry fall in no bucket")


def expiry_figures(exposures: Iterable[Exposure], today: date) -> dict[str, Any]:
    """Dollar delta, dollar gamma, theta and vega per expiry bucket (rows of EXPIRY_FIGURES),
    the linear positions' dollar delta apart, and each figure's completeness: an option with no
    expiry is missing with `no_expiry`, one past it with `expired`."""
    buckets: list[list[float | None]] = [[None] * len(EXPIRY_FIGURES) for _ in EXPIRY_BUCKETS]
    linear: float | None = None
    figures = {name: _Figure() for name in EXPIRY_FIGURES}
    for item in exposures:
        if item.quantity == 0:
            continue
        added = contributions(item, None)
        for column, name in enumerate(EXPIRY_FIGURES):
            if name not in added:
                continue
            value = added[name]
            if isinstance(value, float) and item.sec_type in OPTIONS:
                if item.expiry is None:
                    value = "no_expiry"
                elif item.expiry < today:
                    value = "expired"
            if isinstance(value, str):
                figures[name].miss(value)
                continue
            figures[name].add(value)
            if item.sec_type in OPTIONS:
                assert item.expiry is not None
                row = buckets[_bucket((item.expiry - today).days)]
                row[column] = (row[column] or 0.0) + value
            else:
                linear = (linear or 0.0) + value
    return {
        "buckets": buckets,
        "linear_dollar_delta": linear,
        "completeness": {name: figure.completeness() for name, figure in figures.items()},
    }


def leg_truth(item: Exposure) -> dict[str, Any]:
    """What one position adds to each of the four figures (None where it adds nothing), and
    the first reason among them one is missing."""
    added = contributions(item, None)
    values = [added.get(name) for name in EXPIRY_FIGURES]
    return {
        **{name: value if isinstance(value, float) else None
           for name, value in zip(EXPIRY_FIGURES, values, strict=True)},
        "missing_reason": next((value for value in values if isinstance(value, str)), None),
    }  # fmt: skip
