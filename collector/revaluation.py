"""Scenario P&L by full revaluation: pure arithmetic and QuantLib, `now` passed in.

What a trader reads in `scenario_pnl` (docs/scenarios.md has the meaning and the sources):
- The grid: the P&L in base currency of every position if its underlying moved by each of
  `MOVES_PCT`, at each implied-vol shift of `VOL_SHIFTS_PTS`, now and one day later
  (`DAYS_LATER`): 60 numbers, laid out by `scenario_index`. The unmoved scenario of today is 0
  by construction: each option is revalued against its own model value now, so the gap between
  the model and the market price is no P&L.
- Two ways of moving: each underlying by the move itself (`grid`); or each by its beta times
  the benchmark's move (`beta_grid`, the Risk Navigator view; a position without beta is
  missing with `no_beta`).
- Options are repriced with QuantLib, the model following the contract (`option_model`): an
  equity or ETF option as American (QD+ fixed-point engine), a futures option with Black-76, a
  cash-settled index option as European (both closed form). Inputs: the gateway's implied vol,
  the strike, the expiry (16:00 New York on its last trading day), the underlying's price and
  `Market`'s rate and dividend yield. Linear positions are exact: dollar delta x move.
- Money conventions (multiplier, magnifier, fx) are collector/greeks.py's, through
  `greeks.position_figures` and `greeks.value_per_price_unit`, not restated here.
- `delta_gamma_10`: at -10 % and +10 % the delta-gamma approximation (dollar delta x move +
  ½ x gamma x (move x price)²), beside the grid's full revaluation of the same moves.
- Completeness: every position with a quantity contributes or is missing with one reason
  (`REASONS` order); a grid nothing contributed to is None, never zeros.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import QuantLib as ql  # type: ignore[import-untyped]  # noqa: N813  # QuantLib's own idiom

from collector import greeks
from collector.greeks import AccountContext, Holding
from shared import records

MOVES_PCT: Final = (-20.0, -10.0, -5.0, -2.0, -1.0, 1.0, 2.0, 5.0, 10.0, 20.0)
VOL_SHIFTS_PTS: Final = (-5.0, 0.0, 5.0)
DAYS_LATER: Final = (0, 1)
GRID_SIZE: Final = len(MOVES_PCT) * len(VOL_SHIFTS_PTS) * len(DAYS_LATER)
# The moves of the delta-gamma comparison, each also a column of the grid.
DELTA_GAMMA_MOVES_PCT: Final = (-10.0, 10.0)
# The reasons a position is missing, in the order they are looked for.
REASONS: Final = (
    *greeks.REASONS[:5],  # unsupported_type, no_quantity, no_multiplier, no_magnifier, no_fx_rate
    "no_terms",  # strike, expiry or right not stated by the gateway yet
    "no_model",  # exercise style and underlying type do not say which model prices it
    "no_implied_vol",
    "expired",  # past 16:00 New York on its last trading day
    "no_price",
    "prior_close",
    "halted",
    "no_beta",  # beta grid only
    "pricing_failed",  # QuantLib refused the inputs (its error is not a price)
)
# A vol shift never takes the vol below one point: a volatility of 0 or less has no price.
_MIN_VOL: Final = 0.01
_DAYS_PER_YEAR: Final = 365.0
# Listed US options stop trading at 16:00 New York on their last trading day.
_EXPIRY_TIME: Final = time(16, 0)
_NEW_YORK: Final = ZoneInfo("America/New_York")
# QuantLib's global evaluation date: fixed, since every option's time is rescaled to whole
# days from it (`_American`), so the result does not depend on the calendar date.
_REFERENCE: Final = ql.Date(1, 1, 2001)

OptionModel = Literal["american", "european", "black76"]
Grid = list[float]


@dataclass(frozen=True)
class Market:
    """What the gateway does not state: the risk-free rate and the dividend yield, annual and
    continuously compounded (0.04 for 4 %)."""

    rate: float
    dividend_yield: float = 0.0


def scenario_index(days_later: int, vol_shift: int, move: int) -> int:
    """Where a scenario sits in a grid: indexes into DAYS_LATER, VOL_SHIFTS_PTS, MOVES_PCT."""
    return (days_later * len(VOL_SHIFTS_PTS) + vol_shift) * len(MOVES_PCT) + move


def scenario(index: int) -> tuple[int, float, float]:
    """(days later, vol shift in points, move in %) of a grid index."""
    per_day = len(VOL_SHIFTS_PTS) * len(MOVES_PCT)
    day, rest = divmod(index, per_day)
    vol, move = divmod(rest, len(MOVES_PCT))
    return DAYS_LATER[day], VOL_SHIFTS_PTS[vol], MOVES_PCT[move]


def expires_at(terms: greeks.OptionTerms) -> datetime:
    """16:00 New York on the last trading day."""
    return datetime.combine(terms.expiry, _EXPIRY_TIME, tzinfo=_NEW_YORK)


def option_model(terms: greeks.OptionTerms, sec_type: str) -> OptionModel | None:
    """The contract's model: Black-76 for a futures option, European for a European (or, when
    unstated, an index) option, American for an American (or unstated equity or ETF) option."""
    underlying = terms.underlying_sec_type
    if sec_type == "FOP" or underlying == "FUT":
        return "black76"
    if terms.exercise == "european" or (terms.exercise is None and underlying == "IND"):
        return "european"
    if terms.exercise == "american" or underlying in ("STK", "ETF"):
        return "american"
    return None


def option_value(
    model: OptionModel,
    *,
    call: bool,
    underlying: float,
    strike: float,
    years: float,
    vol: float,
    market: Market,
) -> float:
    """One option's value in the underlying's quoted units; at or past expiry its intrinsic."""
    if years <= 0:
        return max(underlying - strike, 0.0) if call else max(strike - underlying, 0.0)
    kind = ql.Option.Call if call else ql.Option.Put
    discount = math.exp(-market.rate * years)
    std_dev = vol * math.sqrt(years)
    if model == "black76":  # the underlying is the future: it is the forward
        return float(ql.blackFormula(kind, strike, underlying, std_dev, discount))
    growth = math.exp((market.rate - market.dividend_yield) * years)
    if model == "european" or (call and market.dividend_yield <= 0):
        # Without dividends an American call is never exercised early (Merton 1973): European.
        return float(ql.blackFormula(kind, strike, underlying * growth, std_dev, discount))
    return _American(call=call, strike=strike, years=years, market=market).value(underlying, vol)


class _American:
    """One American option at one time to expiry, repriced by QuantLib's QD+ fixed-point
    engine (Andersen-Lake-Offengenden) as its spot and vol quotes are set.

    QuantLib counts time in whole days, so the option is set N = ceil(days) days out and vol²,
    rate and yield are scaled by days / N: with constant parameters the Black-Scholes equation,
    exercise boundary included, depends only on vol² x T, rate x T and yield x T, so this is
    exact, not rounded to a day."""

    def __init__(self, *, call: bool, strike: float, years: float, market: Market) -> None:
        days = years * _DAYS_PER_YEAR
        whole = max(1, math.ceil(days))
        self._scale = days / whole
        ql.Settings.instance().evaluationDate = _REFERENCE
        counter = ql.Actual365Fixed()
        self._spot = ql.SimpleQuote(strike)
        self._vol = ql.SimpleQuote(0.2)

        def flat(value: float) -> Any:
            return ql.YieldTermStructureHandle(
                ql.FlatForward(_REFERENCE, value * self._scale, counter)
            )

        process = ql.BlackScholesMertonProcess(
            ql.QuoteHandle(self._spot),
            flat(market.dividend_yield),
            flat(market.rate),
            ql.BlackVolTermStructureHandle(
                ql.BlackConstantVol(
                    _REFERENCE, ql.NullCalendar(), ql.QuoteHandle(self._vol), counter
                )
            ),
        )
        self._option = ql.VanillaOption(
            ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, strike),
            ql.AmericanExercise(_REFERENCE, _REFERENCE + whole),
        )
        self._option.setPricingEngine(
            ql.QdFpAmericanEngine(process, ql.QdFpAmericanEngine.fastScheme())
        )

    def value(self, underlying: float, vol: float) -> float:
        self._spot.setValue(underlying)
        self._vol.setValue(vol * math.sqrt(self._scale))
        return float(self._option.NPV())


@dataclass(frozen=True)
class _Priced:
    """An option ready to revalue: its model, terms and today's inputs."""

    model: OptionModel
    call: bool
    strike: float
    underlying: float
    years: float
    vol: float

    def values(self, moves: Sequence[float], market: Market) -> list[float]:
        """Its value at today's inputs, then at each scenario (grid order)."""
        points = [(0, 0.0, 0.0)] + [
            (days, vol_shift, move)
            for days in DAYS_LATER
            for vol_shift in VOL_SHIFTS_PTS
            for move in moves
        ]
        american = self.model == "american" and not (self.call and market.dividend_yield <= 0)
        pricers: dict[int, _American] = {}
        result = []
        for days, vol_shift, move in points:
            years = self.years - days / _DAYS_PER_YEAR
            underlying = self.underlying * (1 + move / 100)
            vol = max(_MIN_VOL, self.vol + vol_shift / 100)
            if american and years > 0:
                if days not in pricers:
                    pricers[days] = _American(
                        call=self.call, strike=self.strike, years=years, market=market
                    )
                result.append(pricers[days].value(underlying, vol))
            else:
                result.append(option_value(self.model, call=self.call, underlying=underlying,
                                           strike=self.strike, years=years, vol=vol,
                                           market=market))  # fmt: skip
        return result


def _option_inputs(holding: Holding, now: datetime) -> _Priced | str:
    terms = holding.terms
    if terms is None or not terms.strike > 0:
        return "no_terms"
    model = option_model(terms, holding.sec_type)
    if model is None:
        return "no_model"
    vol = greeks.known(terms.implied_vol)
    if vol is None or vol <= 0:
        return "no_implied_vol"
    years = (expires_at(terms) - now).total_seconds() / (_DAYS_PER_YEAR * 86400)
    if years <= 0:
        return "expired"
    underlying = greeks.known_price(
        holding.greeks.underlying_price if holding.greeks is not None else None
    )
    if underlying is None:
        return holding.price_reason or "no_price"
    return _Priced(model, terms.right == "C", terms.strike, underlying, years, vol)


@dataclass(frozen=True)
class ModelGreeks:
    """One option's Greeks by its model, in the gateway's units: per unit of quoted underlying
    (delta, gamma), per calendar day (theta), per vol point (vega); and what each can be off by
    from the rounding of the model's inputs (the implied vol's and the underlying price's, as
    the gateway stated them), not from the model itself."""

    delta: float
    gamma: float
    theta: float
    vega: float
    errors: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    @property
    def values(self) -> tuple[float, float, float, float]:
        return (self.delta, self.gamma, self.theta, self.vega)


# Central differences: the spot moved by this share of itself, the vol by this many (annual)
# units, the time by an hour. Small enough that the truncation error is below 1e-5 of gamma at
# a month to expiry (tests/collector/test_recompute.py), large enough that QD+'s own noise (its
# fixed-point iteration) does not reach the second difference.
_SPOT_BUMP: Final = 1e-4
_VOL_BUMP: Final = 1e-4
_TIME_BUMP_YEARS: Final = 1 / (_DAYS_PER_YEAR * 24)


def model_greeks(
    holding: Holding,
    market: Market,
    now: datetime,
    wanted: frozenset[str] = frozenset(greeks.GREEKS),
) -> ModelGreeks | str:
    """An option's Greeks from its own terms (implied vol, strike, expiry, right, exercise) and
    its underlying's price, priced by the model `option_model` picks (the grid's pricer, so the
    two never disagree), by central differences; or the reason they cannot be. Only the
    `wanted` ones (names of `greeks.GREEKS`) are computed, the others are NaN. Their errors:
    each Greek's change when the implied vol moves by its rounding (`terms.implied_vol_error`)
    plus its change when the underlying's price moves by its own (`greeks.errors`), to first
    order."""
    priced = _option_inputs(holding, now)
    if isinstance(priced, str):
        return priced
    american = priced.model == "american" and not (priced.call and market.dividend_yield <= 0)
    pricers: dict[float, _American] = {}

    def value(years: float, underlying: float, vol: float) -> float:
        if not american:
            return option_value(priced.model, call=priced.call, underlying=underlying,
                                strike=priced.strike, years=years, vol=vol,
                                market=market)  # fmt: skip
        if years not in pricers:
            pricers[years] = _American(
                call=priced.call, strike=priced.strike, years=years, market=market
            )
        return pricers[years].value(underlying, vol)

    years = priced.years
    # Never past expiry: near it the time step shrinks to half the time left.
    dt = min(_TIME_BUMP_YEARS, years / 2)
    nothing = math.nan

    def at(spot: float, vol: float) -> tuple[float, float, float, float]:
        delta = gamma = theta = vega = nothing
        if wanted & {"delta", "gamma"}:
            step = spot * _SPOT_BUMP
            down, middle, up = (value(years, spot + k * step, vol) for k in (-1, 0, 1))
            delta, gamma = (up - down) / (2 * step), (up - 2 * middle + down) / step**2
        if "vega" in wanted:
            vega = (value(years, spot, vol + _VOL_BUMP) - value(years, spot, vol - _VOL_BUMP)) / (
                2 * _VOL_BUMP * 100
            )
        if "theta" in wanted:
            # The value's change as time passes (time to expiry falls), per calendar day.
            theta = (value(years - dt, spot, vol) - value(years + dt, spot, vol)) / (
                2 * dt * _DAYS_PER_YEAR
            )
        return delta, gamma, theta, vega

    terms, stated = holding.terms, holding.greeks
    vol_error = terms.implied_vol_error if terms is not None else 0.0
    price_error = stated.errors[4] if stated is not None else 0.0
    try:
        greeks_now = at(priced.underlying, priced.vol)
        by_vol = at(priced.underlying, priced.vol + vol_error) if vol_error else greeks_now
        by_price = at(priced.underlying + price_error, priced.vol) if price_error else greeks_now
    except RuntimeError:  # QuantLib refused the inputs
        return "pricing_failed"
    errors = [
        abs(shifted_v - greek) + abs(shifted_p - greek)
        for greek, shifted_v, shifted_p in zip(greeks_now, by_vol, by_price, strict=True)
    ]
    return ModelGreeks(*greeks_now, errors=(errors[0], errors[1], errors[2], errors[3]))


def position_grid(
    holding: Holding,
    context: AccountContext,
    market: Market,
    now: datetime,
    moves: Sequence[float] = MOVES_PCT,
) -> Grid | str:
    """One position's P&L in base currency at each scenario (`moves` in % of its underlying,
    MOVES_PCT's order), or the reason it is missing."""
    dollar_delta = greeks.position_figures(holding, context)["net_dollar_delta"]
    if not holding.is_option:
        if not isinstance(dollar_delta, float):
            return str(dollar_delta)  # not None: every position counts in dollar delta
        # Exact: a linear position's P&L is its dollar delta times the move, whatever the vol.
        row = [dollar_delta * move / 100 for move in moves]
        return row * (len(VOL_SHIFTS_PTS) * len(DAYS_LATER))
    size = greeks.value_per_price_unit(holding, context)
    if isinstance(size, str):
        return size
    priced = _option_inputs(holding, now)
    if isinstance(priced, str):
        return priced
    try:
        today, *scenarios = priced.values(moves, market)
    except RuntimeError:  # QuantLib's errors; the position is missing, the others go on
        return "pricing_failed"
    return [(value - today) * size for value in scenarios]


def delta_gamma_pnl(holding: Holding, context: AccountContext) -> list[float] | str:
    """At each of DELTA_GAMMA_MOVES_PCT: dollar delta x move + ½ gamma (move x price)², in
    base currency, from the gateway's Greeks; or the reason it is missing."""
    parts = greeks.position_figures(holding, context)
    dollar_delta, dollar_gamma = parts["net_dollar_delta"], parts["net_dollar_gamma"]
    if not isinstance(dollar_delta, float):
        return str(dollar_delta)
    if dollar_gamma is None:  # a linear position: no gamma, the approximation is exact
        dollar_gamma = 0.0
    if not isinstance(dollar_gamma, float):
        return dollar_gamma
    # Dollar gamma is gamma x price² x 0.01 (x size, fx): ½ gamma (m price)² = 50 m² x it.
    return [
        dollar_delta * move / 100 + 50 * (move / 100) ** 2 * dollar_gamma
        for move in DELTA_GAMMA_MOVES_PCT
    ]


class _Sum:
    """A running sum of grids (or rows) with its completeness."""

    def __init__(self) -> None:
        self.values: list[float] | None = None
        self.contributing = 0
        self.reasons: dict[str, int] = {}

    def add(self, part: list[float] | str) -> None:
        if isinstance(part, str):
            self.reasons[part] = self.reasons.get(part, 0) + 1
            return
        self.contributing += 1
        if self.values is None:
            self.values = list(part)
        else:
            self.values = [a + b for a, b in zip(self.values, part, strict=True)]

    def completeness(self) -> dict[str, Any]:
        missing = sum(self.reasons.values())
        return {"contributing": self.contributing, "missing": missing, "reasons": self.reasons}


@dataclass(frozen=True)
class ScopeScenarios:
    """The scenario figures of an account or of one underlying."""

    grid: Grid | None  # None: nothing contributed
    beta_grid: Grid | None
    delta_gamma_10: list[float] | None  # at DELTA_GAMMA_MOVES_PCT
    completeness: Mapping[str, records.Counts]  # grid, beta_grid, delta_gamma


@dataclass(frozen=True)
class AccountScenarios:
    account: ScopeScenarios
    underlyings: Mapping[str, ScopeScenarios]


class _Scope:
    def __init__(self) -> None:
        self.grid, self.beta_grid, self.delta_gamma = _Sum(), _Sum(), _Sum()

    def result(self) -> ScopeScenarios:
        return ScopeScenarios(
            self.grid.values,
            self.beta_grid.values,
            self.delta_gamma.values,
            {
                "grid": self.grid.completeness(),
                "beta_grid": self.beta_grid.completeness(),
                "delta_gamma": self.delta_gamma.completeness(),
            },
        )


class Revaluation:
    """One account's scenarios, summed a position at a time."""

    def __init__(self, context: AccountContext, market: Market, now: datetime) -> None:
        self._context, self._market, self._now = context, market, now
        self._total = _Scope()
        self._scopes: dict[str, _Scope] = {}

    def add(self, holding: Holding) -> None:
        if holding.quantity == 0:
            return  # a closed position, still listed by the gateway until the next day
        context, market, now = self._context, self._market, self._now
        grid = position_grid(holding, context, market, now)
        beta = greeks.known(context.betas.get(holding.symbol))
        beta_grid: Grid | str
        if isinstance(grid, str):
            beta_grid = grid
        elif beta is None:
            beta_grid = "no_beta"
        else:
            beta_grid = position_grid(
                holding, context, market, now, [beta * move for move in MOVES_PCT]
            )
        delta_gamma = delta_gamma_pnl(holding, context)
        for scope in (self._total, self._scopes.setdefault(holding.symbol, _Scope())):
            scope.grid.add(grid)
            scope.beta_grid.add(beta_grid)
            scope.delta_gamma.add(delta_gamma)

    def result(self) -> AccountScenarios:
        return AccountScenarios(
            self._total.result(),
            {symbol: scope.result() for symbol, scope in sorted(self._scopes.items())},
        )


def revalue(
    holdings: Iterable[Holding], context: AccountContext, market: Market, now: datetime
) -> AccountScenarios:
    """Every scenario figure of one account, overall and per underlying symbol."""
    revaluation = Revaluation(context, market, now)
    for holding in holdings:
        revaluation.add(holding)
    return revaluation.result()


def scenario_record(
    account: str,
    tick_ts: datetime,
    mode: records.Mode,
    context: AccountContext,
    scenarios: AccountScenarios,
) -> records.Scenario:
    """The spool record of one account's scenarios at one tick."""

    def row(values: list[float] | None) -> tuple[float, ...] | None:
        return None if values is None else tuple(values)

    total = scenarios.account
    return records.Scenario(
        id=records.scenario_id(account, tick_ts),
        ts=tick_ts,
        account=account,
        mode=mode,
        currency=context.base_currency,
        grid=row(total.grid),
        beta_grid=row(total.beta_grid),
        delta_gamma_10=row(total.delta_gamma_10),
        completeness=total.completeness,
        underlyings={
            symbol: records.UnderlyingScenario(
                grid=row(scope.grid),
                delta_gamma_10=row(scope.delta_gamma_10),
                completeness={name: scope.completeness[name] for name in ("grid", "delta_gamma")},
            )
            for symbol, scope in scenarios.underlyings.items()
        },
    )


def account_lines(
    accounts: Sequence[tuple[str, Sequence[Holding], AccountContext]],
    tick_ts: datetime,
    mode: records.Mode,
    market: Market,
    now: datetime,
) -> list[bytes]:
    """The spool lines of every account's scenarios at one tick: what the collector's worker
    process computes (a top-level function, so it can be sent there)."""
    return [
        records.encode(
            scenario_record(
                account, tick_ts, mode, context, revalue(holdings, context, market, now)
            )
        )
        for account, holdings, context in accounts
    ]
