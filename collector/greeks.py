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
- Precision: a figure built from rounded inputs (the Portal writes Greeks to three decimals)
  carries in its completeness `rounding_bound`, how far it can be from the exact figure (Σ over
  its positions), and `imprecise` when that bound exceeds IMPRECISE_SHARE of it. Exact inputs
  (the socket's) add neither. A Greek the rounding destroyed (`destroyed_by_rounding`) may be
  the model's instead (`with_model_greeks`, applied by collector/recompute.py): counted per
  figure as `recomputed`, or as `model_disagrees` where the model contradicted the stated one.
- Market data: a figure any contributing position of which had an input from market data that
  is not live (delayed, frozen) carries in its completeness `market_data`, {kind: positions}.
- `gateway_beta_delta` (PORTAL): the gateway's own beta-weighted delta, Σ field 7696 x qty x
  multiplier over the positions in `net_beta_delta`, in SPX units, to compare with
  ours; null unless every one of those positions had a 7696. `gateway_beta_delta_benchmark_shares`
  is the same exposure in ours' unit: x SPX's price x fx of USD / (benchmark price x fx of the
  benchmark's currency); null when any of them is unknown (never a ratio of 10 assumed).
- `stalest_greek_age_s`: the longest time since an input of a contributing position last
  changed, an option's Greeks or a linear instrument's own price.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
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
# A figure whose rounding bound exceeds this share of it is `imprecise` in its completeness:
# 1 %, the precision promised of every PORTAL figure (docs/ibkr-conventions.md).
IMPRECISE_SHARE: Final = 0.01
# Dollar gamma: the delta a 1 % rise of the underlying adds, valued at its price (module doc).
_ONE_PERCENT: Final = 0.01
# The Greeks of OptionGreeks.values, in its order.
GREEKS: Final = ("delta", "gamma", "theta", "vega")
# The Greek each figure of an option is built from.
_GREEK_OF: Final = {
    "net_dollar_delta": "delta", "net_beta_delta": "delta", "net_delta": "delta",
    "net_dollar_gamma": "gamma", "net_gamma": "gamma",
    "net_theta": "theta", "net_vega": "vega",
}  # fmt: skip


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
    # What each of (delta, gamma, theta, vega, underlying_price) can be off by from the
    # gateway's rounding: half a unit of its last stated decimal on the Portal, 0 on the socket
    # (its doubles are the model's own).
    errors: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    # The names (GREEKS) of the Greeks that are the model's, not the gateway's
    # (`with_model_greeks`): their error above is the model's from its rounded inputs.
    recomputed: frozenset[str] = frozenset()
    # The names of those the rounding destroyed whose model value lay outside the stated one's
    # rounding: the model contradicts the gateway there, so the stated Greek was kept.
    disagreed: frozenset[str] = frozenset()

    @property
    def values(self) -> tuple[float | None, ...]:
        return (self.delta, self.gamma, self.theta, self.vega)


def destroyed_by_rounding(value: float | None, error: float) -> bool:
    """Whether a stated Greek's rounding `error` exceeds IMPRECISE_SHARE of it: the rounding
    leaves it fewer than two significant digits ("0.022" +- 0.0005 is 2.3 % off), so every
    figure it goes into is imprecise for its sake. A stated 0 with an error always is."""
    return value is not None and error > IMPRECISE_SHARE * abs(value)


def with_model_greeks(
    stated: OptionGreeks,
    model: tuple[float, float, float, float],
    model_errors: tuple[float, float, float, float],
) -> OptionGreeks:
    """`stated` with each Greek its rounding destroys (`destroyed_by_rounding`) replaced by the
    model's (`model`: delta, gamma, theta, vega, in the gateway's units), where the model's lies
    within the stated value's rounding: the gateway's own rounded figure proves a model outside
    it wrong (its rate, dividends or exercise differ from the gateway's), and then the stated
    one is kept, imprecise, its name in `disagreed`. A replaced Greek's error becomes the
    model's from its rounded inputs (`model_errors`: the implied vol's and the price's); its
    name is in `recomputed`."""
    values, errors = list(stated.values), list(stated.errors)
    names, disagreed = set(), set()
    for index, name in enumerate(GREEKS):
        value, error = values[index], errors[index]
        if value is None or not destroyed_by_rounding(value, error):
            continue
        if abs(model[index] - value) <= error:
            values[index], errors[index] = model[index], model_errors[index]
            names.add(name)
        else:
            disagreed.add(name)
    if not names and not disagreed:
        return stated
    delta, gamma, theta, vega = values
    return replace(
        stated,
        delta=delta,
        gamma=gamma,
        theta=theta,
        vega=vega,
        errors=(errors[0], errors[1], errors[2], errors[3], errors[4]),
        recomputed=stated.recomputed | names,
        disagreed=stated.disagreed | disagreed,
    )


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
    """What revaluing an option needs beyond its Greeks, as the gateway states it (for
    scenario P&L, Greeks by expiry, the P&L explain). None in a field: the gateway did not say."""

    right: Literal["C", "P"]
    strike: float  # in the underlying's quoted units (cents for a cents-quoted future)
    expiry: date  # the last trading day
    exercise: Literal["american", "european"] | None
    underlying_sec_type: str | None  # STK, ETF, IND or FUT: with `exercise`, picks the model
    implied_vol: float | None  # annualised, 0.25 for 25 %
    option_price: float | None  # the option's own price, quoted units
    # What `implied_vol` can be off by from the gateway's rounding (annualised; 0 on the socket)
    implied_vol_error: float = 0.0


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
    price_error: float = 0.0  # what `price` can be off by from the gateway's rounding
    greeks: OptionGreeks | None = None
    terms: OptionTerms | None = None  # options only: None until the gateway has stated them
    # The kinds of market data that is not live its inputs came from (its own quote, an
    # option's underlying's): "frozen", "delayed", "delayed_frozen" (reqMarketDataType 2, 3,
    # 4 by the socket API's names); empty: live, or the gateway did not say.
    market_data: frozenset[str] = frozenset()
    # PORTAL field 7696, the gateway's beta-weighted delta per unit in SPX units; None: not sent
    gateway_spx_delta: float | None = None
    # The gateway's own daily P&L of this position (SOCKET reqPnLSingle), in a currency IBKR
    # does not state (docs/pnl-explain.md, "Actual"); None: not given (PORTAL, or not yet)
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
    benchmark_price_error: float = 0.0  # from the gateway's rounding, in its own currency
    # SPX's price in USD: the index field 7696 is stated in (PORTAL); None: not known
    spx_price: float | None = None
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


def value_per_price_unit(holding: Holding, context: AccountContext) -> float | str:
    """What a move of one quoted unit of an option's price is worth to the position, in base
    currency: quantity x multiplier / magnifier x fx; or the reason it is unknown."""
    if holding.quantity is None:
        return "no_quantity"
    if holding.multiplier is None:
        return "no_multiplier"
    if holding.magnifier is None:
        return "no_magnifier"
    fx = context.fx(holding.currency)
    if fx is None:
        return "no_fx_rate"
    return holding.quantity * holding.multiplier / holding.magnifier * fx


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
    # A Greek the Portal's rounding destroyed may be the model's here (`with_model_greeks`,
    # docs/ibkr-conventions.md "PORTAL mode: the gateway's rounding"): used like the stated one.
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


def position_rounding_bounds(
    holding: Holding, context: AccountContext, parts: Mapping[str, Part]
) -> dict[str, float]:
    """How far each figure of one position that has a value (`parts`, from `position_figures`)
    can be from the exact one because the gateway rounded its inputs: the product of the stated
    magnitudes, each widened by its error, less the product as stated (a bound for any signs).
    Greeks and prices only: sizes, multipliers and exchange rates are not rounded. 0 for
    exact inputs (the socket's)."""
    quantity, multiplier, magnifier = holding.quantity, holding.multiplier, holding.magnifier
    fx = context.fx(holding.currency)
    if quantity is None or multiplier is None or magnifier is None or fx is None:
        return {}
    size = abs(quantity * multiplier / magnifier * fx)
    errors: dict[str, float] = {}
    greeks = holding.greeks
    if holding.is_option and greeks is not None:
        delta_error, gamma_error, theta_error, vega_error, price_error = greeks.errors
        price = (greeks.underlying_price or 0.0, price_error)
        errors["net_dollar_delta"] = _widened((greeks.delta or 0.0, delta_error), price)
        errors["net_dollar_gamma"] = _ONE_PERCENT * _widened(
            (greeks.gamma or 0.0, gamma_error), price, price
        )
        errors["net_theta"], errors["net_vega"] = theta_error, vega_error
    elif not holding.is_option:
        errors["net_dollar_delta"] = holding.price_error
    bounds = {
        name: size * error for name, error in errors.items() if isinstance(parts.get(name), float)
    }
    dollar_delta, beta = parts.get("net_dollar_delta"), known(context.betas.get(holding.symbol))
    benchmark, benchmark_fx = (
        known_price(context.benchmark_price),
        context.fx(context.benchmark_currency),
    )
    if (
        isinstance(parts.get("net_beta_delta"), float)
        and isinstance(dollar_delta, float)
        and beta is not None
        and benchmark is not None
        and benchmark_fx is not None
    ):
        # dollar delta x beta / (benchmark x fx): the dollar delta's bound, and the benchmark's
        # own rounding through 1 / price (which a price lower by its error raises the most; a
        # price within its rounding of 0 is no benchmark, and an infinite bound no JSON)
        low = benchmark - context.benchmark_price_error
        per_benchmark = (1 / benchmark, 1 / low - 1 / benchmark if low > 0 else 0.0)
        bounds["net_beta_delta"] = (
            abs(beta)
            / benchmark_fx
            * _widened((dollar_delta, bounds.get("net_dollar_delta", 0.0)), per_benchmark)
        )
    return bounds


def share_equivalent_rounding_bounds(
    holding: Holding, parts: Mapping[str, Part]
) -> dict[str, float]:
    """The rounding bounds of a position's share-equivalent delta and gamma (`parts`, from
    `share_equivalent_parts`): the Greek's error x |qty x multiplier|."""
    greeks = holding.greeks
    if not holding.is_option or greeks is None or holding.quantity is None:
        return {}
    size = abs(holding.quantity * (holding.multiplier or 0.0))
    errors = {"net_delta": greeks.errors[0], "net_gamma": greeks.errors[1]}
    return {name: size * error for name, error in errors.items() if isinstance(parts[name], float)}


def _widened(*factors: tuple[float, float]) -> float:
    """Π(|stated| + error) - Π|stated|: how far a product of stated values, each within its
    error of the true one, can be from the true product."""
    stated = widened = 1.0
    for value, error in factors:
        stated *= abs(value)
        widened *= abs(value) + error
    return widened - stated


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
        self.bounds: dict[str, float] = dict.fromkeys(names, 0.0)
        self.position_count = 0
        self.option_count = 0
        self.options_with_greeks = 0

    def add(self, holding: Holding, parts: Mapping[str, Part], bounds: Mapping[str, float]) -> None:
        self.position_count += 1
        self.option_count += holding.is_option
        greeks = holding.greeks
        if holding.is_option and greeks is not None and None not in greeks.values:
            self.options_with_greeks += 1  # all four Greeks known
        recomputed = greeks.recomputed if holding.is_option and greeks is not None else ()
        disagreed = greeks.disagreed if holding.is_option and greeks is not None else ()
        if self.share_equivalents:
            shares = share_equivalent_parts(holding)
            parts = {**parts, **shares}
            bounds = {**bounds, **share_equivalent_rounding_bounds(holding, shares)}
        for name, part in parts.items():
            counts = self.completeness[name]
            if isinstance(part, float):
                self.figures[name] = (self.figures[name] or 0.0) + part
                self.bounds[name] += bounds.get(name, 0.0)
                counts["contributing"] += 1
                if _GREEK_OF[name] in recomputed:
                    counts["recomputed"] = counts.get("recomputed", 0) + 1
                if _GREEK_OF[name] in disagreed:
                    counts["model_disagrees"] = counts.get("model_disagrees", 0) + 1
                for kind in holding.market_data:
                    not_live = counts.setdefault("market_data", {})
                    not_live[kind] = not_live.get(kind, 0) + 1
            elif isinstance(part, str):
                counts["missing"] += 1
                counts["reasons"][part] = counts["reasons"].get(part, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.figures,
            "completeness": {
                name: {**counts, **_precision(self.figures[name], self.bounds[name])}
                for name, counts in self.completeness.items()
            },
            "position_count": self.position_count,
            "option_count": self.option_count,
            "options_with_greeks": self.options_with_greeks,
        }


def _precision(figure: float | None, bound: float) -> dict[str, Any]:
    """A figure's completeness additions for rounding: its bound when its inputs were rounded,
    and `imprecise` when that bound exceeds IMPRECISE_SHARE of the figure (a figure of 0 with a
    bound is imprecise: "0.000" is not a known zero). Nothing for exact inputs, so the
    completeness of a socket figure is unchanged."""
    if bound <= 0 or figure is None:
        return {}
    if bound > IMPRECISE_SHARE * abs(figure):
        return {"rounding_bound": bound, "imprecise": True}
    return {"rounding_bound": bound}


class _GatewaySum:
    """Σ 7696 x qty x multiplier over the positions our beta delta counts: a total only when
    every one of them had a 7696 (a partial sum is never shown as a total). 7696 is in SPX
    units per unit of the instrument, its price already weighed against SPX's ("Delta x
    dollar-adjusted beta"), so a cents-quoted contract takes no magnifier."""

    def __init__(self) -> None:
        self._sum: float | None = None
        self._incomplete = False

    def add(self, holding: Holding) -> None:
        per_unit = known(holding.gateway_spx_delta)
        quantity, multiplier = holding.quantity, holding.multiplier
        if per_unit is None or quantity is None or multiplier is None:
            self._incomplete = True
            return
        self._sum = (self._sum or 0.0) + per_unit * quantity * multiplier

    @property
    def total(self) -> float | None:
        return None if self._incomplete else self._sum


@dataclass(frozen=True)
class AccountFigures:
    net: Mapping[str, Any]  # the five figures, completeness and counts
    underlyings: Mapping[str, Mapping[str, Any]]
    # Seconds since the stalest input of a contributing position last changed: option Greeks
    # and linear instruments' prices (the name is the stored column's, from before prices).
    stalest_greek_age_s: float | None
    # The gateway's own beta-weighted delta (`gateway_beta_delta`) over the positions in
    # net_beta_delta; None unless every one of them had it.
    gateway_beta_delta: float | None = None
    # The same in shares of our benchmark (`gateway_in_benchmark_shares`), to set against ours.
    gateway_beta_delta_benchmark_shares: float | None = None


def gateway_in_benchmark_shares(spx_units: float | None, context: AccountContext) -> float | None:
    """The gateway's beta-weighted delta (SPX units) in shares of our benchmark: SPX units x
    SPX's price is beta-weighted dollars, x the rate of USD in the base currency is base
    money, / (benchmark price x the rate of its currency) is benchmark shares. None when any
    of them is unknown: the ratio of SPX to SPY is near 10 but not 10."""
    spx = known_price(context.spx_price)
    benchmark = known_price(context.benchmark_price)
    usd, benchmark_fx = context.fx("USD"), context.fx(context.benchmark_currency)
    if spx_units is None or spx is None or benchmark is None or usd is None or benchmark_fx is None:
        return None
    return spx_units * spx * usd / (benchmark * benchmark_fx)


def aggregate(
    holdings: Iterable[Holding], context: AccountContext, now: datetime
) -> AccountFigures:
    total = _Sums(share_equivalents=False)
    per_underlying: dict[str, _Sums] = {}
    oldest: datetime | None = None
    gateway = _GatewaySum()
    for holding in holdings:
        if holding.quantity == 0:
            continue  # a closed position, still listed by the gateway until the next day
        parts = position_figures(holding, context)
        bounds = position_rounding_bounds(holding, context, parts)
        total.add(holding, parts, bounds)
        per_underlying.setdefault(holding.symbol, _Sums(share_equivalents=True)).add(
            holding, parts, bounds
        )
        if isinstance(parts["net_beta_delta"], float):
            gateway.add(holding)
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
        gateway.total,
        gateway_in_benchmark_shares(gateway.total, context),
    )


def snapshot(
    account: str,
    tick_ts: datetime,
    mode: records.Mode,
    context: AccountContext,
    figures: AccountFigures,
) -> records.Snapshot:
    """The spool record (the current format) of one account at one tick, its figures as a
    snapshot states them (`records.kept`: money to the cent, share-equivalents to 9 significant
    digits, the inputs' age to the millisecond)."""
    net = figures.net
    kept = records.kept
    underlyings = {
        symbol: {
            **values,
            **{name: kept(name, values.get(name)) for name in records.UNDERLYING_FIGURES},
        }
        for symbol, values in figures.underlyings.items()
    }
    age = figures.stalest_greek_age_s
    return records.Snapshot(
        id=records.snapshot_id(account, tick_ts),
        ts=tick_ts,
        account=account,
        mode=mode,
        net_delta=None,
        net_gamma=None,
        net_theta=kept("net_theta", net["net_theta"]),
        net_vega=kept("net_vega", net["net_vega"]),
        net_dollar_delta=kept("net_dollar_delta", net["net_dollar_delta"]),
        position_count=net["position_count"],
        option_count=net["option_count"],
        options_with_greeks=net["options_with_greeks"],
        stalest_greek_age_s=None if age is None else round(age, 3),
        underlyings=underlyings,
        version=records.FORMAT_VERSION,
        currency=context.base_currency,
        net_dollar_gamma=kept("net_dollar_gamma", net["net_dollar_gamma"]),
        net_beta_delta=kept("net_beta_delta", net["net_beta_delta"]),
        completeness=net["completeness"],
        net_liquidation=kept("net_liquidation", known(context.net_liquidation)),
        unrealized_pnl=kept("unrealized_pnl", known(context.unrealized_pnl)),
        daily_pnl=kept("daily_pnl", known(context.daily_pnl)),
        gateway_beta_delta=kept("gateway_beta_delta", figures.gateway_beta_delta),
        gateway_beta_delta_benchmark_shares=kept(
            "gateway_beta_delta_benchmark_shares", figures.gateway_beta_delta_benchmark_shares
        ),
    )
