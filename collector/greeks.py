"""An account's figures from its holdings: pure arithmetic, `now` passed in.

What a trader reads in `portfolio_greeks` (docs/ibkr-conventions.md has the sources):
- All money is in the account's base currency: a position in another currency is converted at
  the gateway's own exchange rate (`fx`, base units per unit of the position's currency).
- `net_dollar_delta` = Σ delta x qty x multiplier x (underlying price / magnifier) x fx; delta is
  1 for stocks, ETFs, futures and CFDs, priced at their own price.
- `net_dollar_gamma` = Σ gamma x qty x multiplier x (underlying price / magnifier)² x magnifier
  x 0.01 x fx: the delta a 1 % rise adds (gamma x 1 % of the price, in share-equivalents),
  valued at today's price, summed as if every underlying rose 1 % together. It is not the whole
  change of dollar delta for that move (which also holds 1 % of dollar delta itself), and not
  the gamma P&L of it (½ gamma (0.01 price)², which is 0.005 x this). A cents-quoted option's
  gamma is per cent of underlying move, hence the extra x magnifier.
- `net_theta`, `net_vega` = Σ Greek x qty x multiplier / magnifier x fx (per day, per vol point).
- `net_beta_delta` = Σ dollar delta x beta / (benchmark price x fx of the benchmark's currency):
  exposure in shares of the benchmark. An underlying without a beta is left out and counted.
- Inside each underlying only: `net_delta` and `net_gamma` in share-equivalents (Σ Greek x qty x
  multiplier; a stock's delta is its share count), with their completeness like the five
  figures' (every position counts in delta, every option in gamma). Across underlyings they add
  unlike units, so the account level has none.
- Completeness per figure: every position with a quantity either contributes or is missing with
  a reason (the first that applies, in the order of `REASONS`; for beta delta a benchmark price
  unknown in the base currency is `no_price`); linear instruments are not counted at all for
  gamma, theta and vega. A sum nothing contributed to is null, never 0.
- Warrants, bonds, FX, crypto and any other type: missing with `unsupported_type`, never dropped.
- Nothing unknown becomes a number: an unreadable quantity is `no_quantity` (not 0), an unknown
  magnifier `no_magnifier` (not 1), a Portal price that is only a prior close or a halted last
  `prior_close` or `halted` (not a live price).
- `stalest_greek_age_s`: the longest time since an input of a contributing position last
  changed, an option's Greeks or a linear instrument's own price.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal

from shared import records

OPTION_TYPES: Final = frozenset({"OPT", "FOP"})
# Delta 1, valued at their own price. A CFD is priced and margined like its underlying share.
LINEAR_TYPES: Final = frozenset({"STK", "ETF", "FUT", "CFD", "IND"})
# Types whose missing (null or 0) multiplier means 1: one share, one CFD on one share.
ONE_PER_UNIT: Final = frozenset({"STK", "ETF", "CFD"})
FIGURES: Final = records.FIGURES
# Inside each underlying only: delta and gamma in the underlying's own units.
SHARE_EQUIVALENTS: Final = ("net_delta", "net_gamma")
# The order in which a position's missing inputs are looked for; the first found is its reason.
REASONS: Final = (
    "unsupported_type",
    "no_quantity",
    "no_multiplier",
    "no_magnifier",
    "no_fx_rate",
    "no_greek",
    "no_price",
    "prior_close",  # PORTAL: only yesterday's close is known (a "C" last)
    "halted",  # PORTAL: only a halted last price is known (an "H" last)
    "no_beta",
)
# A figure of one position: its value, the reason it is missing, or None (not applicable).
Part = float | str | None

# Any magnitude this large is a sentinel (IB's UNSET_DOUBLE is sys.float_info.max), not a price.
_UNSET_ABOVE: Final = 1e300
# The socket API's "not computed" markers: -2 for delta, gamma, vega, theta; -1 for IV and prices.
_NOT_COMPUTED_GREEK: Final = -2.0
_NOT_COMPUTED_PRICE: Final = -1.0
# Dollar gamma: the delta a 1 % rise of the underlying adds, valued at its price (module doc).
_ONE_PERCENT: Final = 0.01


def note_bars_source(
    sources: dict[str, int], symbol: str, sec_type: str, conid: int, underlying_conid: int
) -> None:
    """Which conid's daily bars give `symbol`'s beta: the instrument's own for a linear one,
    else (an option) its underlying's, unless a linear holding named it already."""
    if sec_type in OPTION_TYPES and underlying_conid:
        sources.setdefault(symbol, underlying_conid)
    elif sec_type in LINEAR_TYPES:
        sources[symbol] = conid


def known(value: float | None) -> float | None:
    """A finite, non-sentinel number, or None."""
    if value is None or isinstance(value, bool):
        return None
    number = float(value)
    if not math.isfinite(number) or abs(number) >= _UNSET_ABOVE:
        return None
    return number


def known_socket_greek(value: float | None) -> float | None:
    """A Greek from the socket API: its -2 means "not computed" (ib_async 2.1.0 passes theta and
    vega of -2 through as numbers). Client Portal values have no such marker: a real theta of
    -2.000 is a theta, so Portal values go through `known` only."""
    number = known(value)
    return None if number == _NOT_COMPUTED_GREEK else number


def known_price(value: float | None) -> float | None:
    """Prices of -1 (IB's empty price) or below are unknown; 0 is a price only for nothing."""
    number = known(value)
    return None if number is None or number <= _NOT_COMPUTED_PRICE or number == 0 else number


def parse_multiplier(raw: str | float | None) -> float | None:
    """'100', 100, '' , None, '0' -> 100.0 or None (a multiplier of 0 is unknown, not zero)."""
    if raw is None or raw == "":
        return None
    try:
        number = known(float(raw))
    except (TypeError, ValueError):
        return None
    return number if number is not None and number > 0 else None


@dataclass(frozen=True)
class OptionGreeks:
    """The latest model Greeks of one option, per unit of quoted underlying, and when they last
    changed (not when the last tick of the instrument arrived)."""

    delta: float | None
    gamma: float | None
    theta: float | None
    vega: float | None
    underlying_price: float | None
    changed_at: datetime

    @property
    def values(self) -> tuple[float | None, ...]:
        return (self.delta, self.gamma, self.theta, self.vega)


class ChangeClock:
    """When each option's Greeks last changed: a new time only when the values differ, so a
    tick that repeats the same Greeks does not make them look fresh. No clock of its own."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[tuple[float | None, ...], datetime]] = {}

    def observe(self, conid: int, values: tuple[float | None, ...], at: datetime) -> datetime:
        """Record `values` seen at `at`; the time they last changed."""
        previous = self._seen.get(conid)
        if previous is not None and previous[0] == values:
            return previous[1]
        self._seen[conid] = (values, at)
        return at

    def forget(self, conid: int) -> None:
        self._seen.pop(conid, None)


@dataclass(frozen=True)
class OptionTerms:
    """What revaluing an option needs beyond its Greeks, as the gateway states it (issue #16:
    scenario P&L, Greeks by expiry, the P&L explain). None in a field: the gateway did not say."""

    right: Literal["C", "P"]
    strike: float  # in the underlying's quoted units (cents for a cents-quoted future)
    expiry: date  # the last trading day
    exercise: Literal["american", "european"] | None
    underlying_sec_type: str | None  # STK, ETF, IND or FUT: with `exercise`, picks the model
    implied_vol: float | None  # annualised, 0.25 for 25 %
    option_price: float | None  # the option's own price, quoted units


@dataclass(frozen=True)
class Holding:
    """One position of one account, with what is known about it right now."""

    conid: int
    symbol: str  # the underlying's symbol: the per-underlying breakdown is keyed by it
    sec_type: str
    quantity: float | None  # None: the gateway sent one that cannot be read (no_quantity)
    multiplier: float | None
    currency: str | None
    # ContractDetails.priceMagnifier: 100 for contracts quoted in cents; None when the gateway
    # did not say (the position is then missing with no_magnifier: a guess of 1 can be 100x off)
    magnifier: float | None = 1.0
    price: float | None = None  # the instrument's own price (linear instruments)
    # Why the price the figures need (own, or the option's underlying's) is unknown, when the
    # gateway said more than nothing: "prior_close" or "halted". None: "no_price".
    price_reason: str | None = None
    price_changed_at: datetime | None = None  # when `price` last changed (linear instruments)
    greeks: OptionGreeks | None = None
    terms: OptionTerms | None = None  # options only: None until the gateway has stated them
    # The gateway's own daily P&L of this position (SOCKET reqPnLSingle), taken to be in the
    # position's currency (docs/pnl-explain.md, "Actual"); None: not given (PORTAL, or not yet)
    daily_pnl: float | None = None

    @property
    def is_option(self) -> bool:
        return self.sec_type in OPTION_TYPES


@dataclass(frozen=True)
class AccountContext:
    """What the figures of one account need beyond its holdings, as the gateway reports it."""

    base_currency: str | None
    fx_rates: Mapping[str, float] = field(default_factory=dict)  # currency -> base per unit
    betas: Mapping[str, float] = field(default_factory=dict)  # underlying symbol -> beta
    benchmark_price: float | None = None
    benchmark_currency: str = "USD"
    net_liquidation: float | None = None
    unrealized_pnl: float | None = None
    daily_pnl: float | None = None

    def fx(self, currency: str | None) -> float | None:
        """Base-currency units per unit of `currency`; exactly 1 for the base itself."""
        if self.base_currency is None or not currency:
            return None
        if currency == self.base_currency:
            return 1.0
        rate = known(self.fx_rates.get(currency))
        return rate if rate is not None and rate > 0 else None


def position_figures(holding: Holding, context: AccountContext) -> dict[str, Part]:
    """Each figure of one position: a number, the reason it is missing, or None (n/a)."""
    if holding.sec_type not in OPTION_TYPES | LINEAR_TYPES:
        return dict.fromkeys(FIGURES, "unsupported_type")
    if holding.quantity is None:
        # Unreadable is not 0: the position is counted missing, never dropped from the sums.
        if holding.sec_type in OPTION_TYPES:
            return dict.fromkeys(FIGURES, "no_quantity")
        return {**dict.fromkeys(FIGURES), "net_dollar_delta": "no_quantity",
                "net_beta_delta": "no_quantity"}  # fmt: skip
    if holding.sec_type in OPTION_TYPES:
        parts = _option_parts(holding, holding.quantity, context)
    else:
        parts = _linear_parts(holding, holding.quantity, context)
    parts["net_beta_delta"] = _beta_part(parts["net_dollar_delta"], holding.symbol, context)
    return parts


def share_equivalent_parts(holding: Holding) -> dict[str, Part]:
    """A position's share-equivalent delta and gamma (Σ Greek x qty x multiplier, in the
    underlying's own units; kept per underlying only): a number, the reason it is missing, or
    None where it does not count (a linear instrument's gamma). Neither needs a price or a rate;
    every position counts in delta, every option in gamma, like dollar delta and gamma."""
    if holding.sec_type not in OPTION_TYPES | LINEAR_TYPES:
        return dict.fromkeys(SHARE_EQUIVALENTS, "unsupported_type")
    counted: dict[str, Part] = {"net_delta": None, "net_gamma": None}
    names = SHARE_EQUIVALENTS if holding.is_option else ("net_delta",)
    if holding.quantity is None:
        return {**counted, **dict.fromkeys(names, "no_quantity")}
    if holding.multiplier is None:
        return {**counted, **dict.fromkeys(names, "no_multiplier")}
    size = holding.quantity * holding.multiplier
    if not holding.is_option:
        return {**counted, "net_delta": size}
    greeks = holding.greeks
    delta = greeks.delta if greeks is not None else None
    gamma = greeks.gamma if greeks is not None else None
    return {
        "net_delta": "no_greek" if delta is None else size * delta,
        "net_gamma": "no_greek" if gamma is None else size * gamma,
    }


def _option_parts(holding: Holding, quantity: float, context: AccountContext) -> dict[str, Part]:
    greeks = holding.greeks
    if holding.multiplier is None:
        return dict.fromkeys(FIGURES[:4], "no_multiplier")
    if holding.magnifier is None:
        return dict.fromkeys(FIGURES[:4], "no_magnifier")
    # Quoted prices, theta and vega of a cents-quoted contract are in cents: / magnifier. Its
    # gamma is per cent of move, so gamma x size x und² already equals gamma x qty x mult x und²
    # / magnifier, the contract's dollar gamma (docs/ibkr-conventions.md, "Magnifiers").
    size = quantity * money_per_point(holding.multiplier, holding.magnifier)
    fx = context.fx(holding.currency)
    und = greeks.underlying_price if greeks is not None else None

    def part(greek: float | None, *, priced: bool, value: float | None) -> Part:
        if fx is None:
            return "no_fx_rate"
        if greeks is None or greek is None:
            return "no_greek"
        if priced and und is None:
            return holding.price_reason or "no_price"
        return value

    delta = greeks.delta if greeks else None
    gamma = greeks.gamma if greeks else None
    theta = greeks.theta if greeks else None
    vega = greeks.vega if greeks else None
    return {
        "net_dollar_delta": part(delta, priced=True, value=_product(delta, size, und, fx)),
        "net_dollar_gamma": part(
            gamma,
            priced=True,
            value=_product(gamma, size, und, und, _ONE_PERCENT, fx),
        ),
        "net_theta": part(theta, priced=False, value=_product(theta, size, fx)),
        "net_vega": part(vega, priced=False, value=_product(vega, size, fx)),
    }


def money_per_point(multiplier: float, magnifier: float) -> float:
    """What one contract makes, in its currency, when its quoted price (or an option's quoted
    underlying) moves by one quoted unit: multiplier / magnifier, since a cents-quoted contract
    (magnifier 100) is quoted in cents. The one place the two conventions meet: the P&L explain
    (collector/explain.py) uses it too, and its tests replace it to break one of them."""
    return multiplier / magnifier


def _linear_parts(holding: Holding, quantity: float, context: AccountContext) -> dict[str, Part]:
    parts: dict[str, Part] = dict.fromkeys(FIGURES[1:4])
    price = known_price(holding.price)
    fx = context.fx(holding.currency)
    if holding.multiplier is None:
        parts["net_dollar_delta"] = "no_multiplier"
    elif holding.magnifier is None:
        parts["net_dollar_delta"] = "no_magnifier"
    elif fx is None:
        parts["net_dollar_delta"] = "no_fx_rate"
    elif price is None:
        parts["net_dollar_delta"] = holding.price_reason or "no_price"
    else:
        units = money_per_point(holding.multiplier, holding.magnifier)
        parts["net_dollar_delta"] = quantity * units * price * fx
    return parts


def _beta_part(dollar_delta: Part, symbol: str, context: AccountContext) -> Part:
    if not isinstance(dollar_delta, float):
        return dollar_delta
    benchmark = known_price(context.benchmark_price)
    fx = context.fx(context.benchmark_currency)
    if benchmark is None or fx is None:
        return "no_price"  # the benchmark's price in the base currency is unknown
    beta = known(context.betas.get(symbol))
    if beta is None:
        return "no_beta"
    return dollar_delta * beta / (benchmark * fx)


def _product(*factors: float | None) -> float | None:
    result = 1.0
    for factor in factors:
        if factor is None:
            return None
        result *= factor
    return result


class _Sums:
    """Running sums of one scope (an account or an underlying) with their completeness."""

    def __init__(self, *, share_equivalents: bool) -> None:
        self.share_equivalents = share_equivalents
        names = (*FIGURES, *SHARE_EQUIVALENTS) if share_equivalents else FIGURES
        self.figures: dict[str, float | None] = dict.fromkeys(names)
        self.completeness: dict[str, dict[str, Any]] = {
            name: {"contributing": 0, "missing": 0, "reasons": {}} for name in names
        }
        self.position_count = 0
        self.option_count = 0
        self.options_with_greeks = 0

    def add(self, holding: Holding, parts: Mapping[str, Part]) -> None:
        self.position_count += 1
        self.option_count += holding.is_option
        greeks = holding.greeks
        if holding.is_option and greeks is not None and None not in greeks.values:
            self.options_with_greeks += 1  # all four Greeks known
        if self.share_equivalents:
            parts = {**parts, **share_equivalent_parts(holding)}
        for name, part in parts.items():
            counts = self.completeness[name]
            if isinstance(part, float):
                self.figures[name] = (self.figures[name] or 0.0) + part
                counts["contributing"] += 1
            elif isinstance(part, str):
                counts["missing"] += 1
                counts["reasons"][part] = counts["reasons"].get(part, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.figures,
            "completeness": self.completeness,
            "position_count": self.position_count,
            "option_count": self.option_count,
            "options_with_greeks": self.options_with_greeks,
        }


@dataclass(frozen=True)
class AccountFigures:
    net: Mapping[str, Any]  # the five figures, completeness and counts
    underlyings: Mapping[str, Mapping[str, Any]]
    # Seconds since the stalest input of a contributing position last changed: option Greeks
    # and linear instruments' prices (the name is the stored column's, from before prices).
    stalest_greek_age_s: float | None


def aggregate(
    holdings: Iterable[Holding], context: AccountContext, now: datetime
) -> AccountFigures:
    total = _Sums(share_equivalents=False)
    per_underlying: dict[str, _Sums] = {}
    oldest: datetime | None = None
    for holding in holdings:
        if holding.quantity == 0:
            continue  # a closed position, still listed by the gateway until the next day
        parts = position_figures(holding, context)
        total.add(holding, parts)
        per_underlying.setdefault(holding.symbol, _Sums(share_equivalents=True)).add(holding, parts)
        used = any(isinstance(part, float) for part in parts.values())
        # The stalest input of any position that contributed: an option's Greeks, a linear
        # instrument's own price (each as of when its value last changed).
        changed = None
        if holding.is_option and used and holding.greeks is not None:
            changed = holding.greeks.changed_at
        elif holding.sec_type in LINEAR_TYPES and used:
            changed = holding.price_changed_at
        if changed is not None:
            oldest = changed if oldest is None or changed < oldest else oldest
    stalest = max(0.0, (now - oldest).total_seconds()) if oldest is not None else None
    return AccountFigures(
        total.as_dict(),
        {symbol: sums.as_dict() for symbol, sums in sorted(per_underlying.items())},
        stalest,
    )


def snapshot(
    account: str,
    tick_ts: datetime,
    mode: records.Mode,
    context: AccountContext,
    figures: AccountFigures,
) -> records.Snapshot:
    """The spool record (the current format) of one account at one tick."""
    net = figures.net
    return records.Snapshot(
        id=records.snapshot_id(account, tick_ts),
        ts=tick_ts,
        account=account,
        mode=mode,
        net_delta=None,
        net_gamma=None,
        net_theta=net["net_theta"],
        net_vega=net["net_vega"],
        net_dollar_delta=net["net_dollar_delta"],
        position_count=net["position_count"],
        option_count=net["option_count"],
        options_with_greeks=net["options_with_greeks"],
        stalest_greek_age_s=figures.stalest_greek_age_s,
        underlyings=figures.underlyings,
        version=records.FORMAT_VERSION,
        currency=context.base_currency,
        net_dollar_gamma=net["net_dollar_gamma"],
        net_beta_delta=net["net_beta_delta"],
        completeness=net["completeness"],
        net_liquidation=known(context.net_liquidation),
        unrealized_pnl=known(context.unrealized_pnl),
        daily_pnl=known(context.daily_pnl),
    )
