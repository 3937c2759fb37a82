"""The simulator's one portfolio, served to both gateway sides: instruments, positions, quotes,
the accounts' money and a year of daily bars.

Prices follow deterministic paths (seed, instrument, time) around yesterday's close; options are
priced with Black-Scholes, so their Greeks move with the underlying. Each position's P&L is
marked to market from those prices (`valuation`: price minus yesterday's close), never from
its Greeks. `truth()` gives every figure
of a snapshot at the instant it is called, summed by `simulator.truth` independently of the
bridge's own code, so tests can compare what a client computed with it; `portal_truth()` gives
the same from the values as the Portal writes them (rounded). `freeze()` holds everything still.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from simulator import history, rounding
from simulator.faults import Faults
from simulator.history import Bar
from simulator.pricing import black_76_greeks, black_scholes, path
from simulator.scenario import Scenario, Underlying
from simulator.scenario_truth import Revaluable, account_scenarios
from simulator.truth import Exposure, account_truth

_SPREAD = 0.0005  # half the bid/ask spread, as a fraction of the price
# The fewest common daily returns the truth regresses a beta from; below, the symbol has none
# (docs/simulator.md; the bridge states the same minimum on its own in collector/betas.py).
MIN_RETURNS = 60
# Exchange rates' bars to five decimals (1.08253), as FX is quoted: to the cent they would move
# in steps of about 1 %.
FX_DECIMALS = 5
_EXPIRY_HOUR_UTC = 21  # options expire at 16:00 New York, near enough
_NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Instrument:
    conid: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    multiplier: float
    local_symbol: str
    trading_class: str
    right: str | None = None
    strike: float | None = None
    expiry: str | None = None
    underlying_conid: int | None = None
    has_greeks: bool = True
    price_magnifier: int = 1
    history: bool = True
    quotes: bool = True
    portal_multiplier: bool = True
    portal_last_prefix: str = ""
    portal_last_only: bool = False
    fixed_greeks: tuple[float, float, float, float] | None = None  # delta, gamma, theta, vega


@dataclass(frozen=True)
class Valuation:
    """A position's worth in its own currency; the price is in the quoted units."""

    market_price: float
    market_value: float
    unrealized_pnl: float
    daily_pnl: float


@dataclass
class CurrencyLedger:
    """One currency's line of an account, in that currency (BASE: in the base currency)."""

    cash: float = 0.0
    stock_value: float = 0.0
    option_value: float = 0.0
    future_option_value: float = 0.0
    net_liquidation: float = 0.0
    unrealized_pnl: float = 0.0
    daily_pnl: float = 0.0
    exchange_rate: float = 1.0


@dataclass
class Ledger:
    base_currency: str
    currencies: dict[str, CurrencyLedger] = field(default_factory=dict)  # each and "BASE"

    @property
    def base(self) -> CurrencyLedger:
        return self.currencies["BASE"]


@dataclass(frozen=True)
class Position:
    account: str
    instrument: Instrument
    quantity: float
    avg_cost: float


@dataclass(frozen=True)
class Quote:
    bid: float | None
    ask: float | None
    last: float | None
    mark: float | None
    bid_size: float | None
    ask_size: float | None
    last_size: float | None
    volume: float | None
    underlying_price: float | None
    implied_vol: float | None
    delta: float | None
    gamma: float | None
    theta: float | None
    vega: float | None
    option_price: float | None
    pv_dividend: float | None


@dataclass(frozen=True)
class NetGreeks:
    net_delta: float | None
    net_gamma: float | None
    net_theta: float | None
    net_vega: float | None
    net_dollar_delta: float | None
    position_count: int
    option_count: int
    options_with_greeks: int


def _occ_symbol(symbol: str, expiry: str, right: str, strike: float) -> str:
    return f"{symbol:<6}{expiry[2:]}{right}{round(strike * 1000):08d}"


# Margin products: their notional is not the account's; only their P&L since cost is.
_PNL_VALUED = frozenset({"FUT", "CFD"})


def cents(amount: float) -> float:
    """Money as the gateways write it (account values, summaries, P&L): to the cent."""
    return round(amount, 2)


class Market:
    def __init__(self, scenario: Scenario | None, clock: Callable[[], float] = time.time) -> None:
        if scenario is None:
            from simulator.scenario import load  # noqa: PLC0415  # default only when asked

            scenario = load(None)
        self.scenario = scenario
        self.faults = Faults()
        self._clock = clock
        self._frozen_at: float | None = clock() if scenario.frozen else None
        self._listeners: list[Callable[[str], None]] = []
        self._start = datetime.fromtimestamp(clock(), UTC).date()
        self._instruments: dict[int, Instrument] = {}
        self._vol: dict[int, float] = {}
        self._sizes: dict[int, tuple[float, float]] = {}  # conid -> (quote size, day's volume)
        self._spot: dict[int, float] = {}
        self._build_instruments()
        self._positions = {
            account: dict(holdings) for account, holdings in scenario.positions.items()
        }
        self._start_price = {conid: self._price(conid, clock()) for conid in self._instruments}
        self._bars: dict[tuple[int, date], list[Bar]] = {}

    def _build_instruments(self) -> None:
        for item in self.scenario.underlyings:
            expiry = (
                self.scenario.expiry(item.expiry_days, self._start) if item.expiry_days else None
            )
            local = f"{item.symbol}{expiry[2:6]}" if expiry else item.symbol
            self._instruments[item.conid] = Instrument(
                item.conid, item.symbol, item.sec_type, item.exchange, item.primary_exchange,
                item.currency, item.multiplier, local, item.symbol, expiry=expiry,
                price_magnifier=item.price_magnifier, history=item.history, quotes=item.quotes,
                portal_multiplier=item.portal_multiplier,
                portal_last_prefix=item.portal_last_prefix,
                portal_last_only=item.portal_last_only,
            )  # fmt: skip
            self._spot[item.conid] = item.spot
            self._vol[item.conid] = item.vol
            self._sizes[item.conid] = (item.quote_size, item.volume)
        for option in self.scenario.options:
            base = self._instruments[option.underlying]
            expiry = self.scenario.expiry(option.expiry_days, self._start)
            exchange = option.exchange or (
                "SMART" if base.sec_type in ("STK", "IND") else base.exchange
            )
            fixed = option.fixed_greeks
            self._instruments[option.conid] = Instrument(
                option.conid, base.symbol, option.sec_type, exchange, base.primary_exchange,
                base.currency, option.multiplier,
                _occ_symbol(base.symbol, expiry, option.right, option.strike),
                option.trading_class or base.symbol, option.right, option.strike, expiry,
                base.conid, option.has_greeks, price_magnifier=base.price_magnifier,
                fixed_greeks=None if fixed is None else (
                    float(fixed["delta"]), float(fixed["gamma"]), float(fixed["theta"]),
                    float(fixed["vega"]),
                ),
            )  # fmt: skip

    # The portfolio -------------------------------------------------------------------------

    def accounts(self) -> list[str]:
        return list(self.scenario.accounts)

    def positions(self, account: str) -> list[Position]:
        return [
            Position(account, self._instruments[conid], quantity, self._cost(account, conid))
            for conid, quantity in self._positions.get(account, {}).items()
        ]

    def _cost(self, account: str, conid: int) -> float:
        """Average cost per contract in its currency (IB's avgCost), from the price paid in
        quoted units: the scenario's, else the price when the simulator started."""
        item = self._instruments[conid]
        paid = self.scenario.costs.get(account, {}).get(conid, self._start_price[conid])
        return paid / item.price_magnifier * item.multiplier

    def base_currency(self, account: str) -> str:
        return self.scenario.currency_of(account)

    def exchange_rate(self, account: str, currency: str) -> float | None:
        """One unit of `currency` in the account's base currency, as the gateway quotes it."""
        base = self.base_currency(account)
        if currency == base:
            return 1.0
        return self.scenario.exchange_rates.get(base, {}).get(currency)

    def instrument(self, conid: int) -> Instrument | None:
        return self._instruments.get(conid)

    def find_instruments(
        self,
        *,
        symbol: str | None = None,
        sec_type: str | None = None,
        expiry: str | None = None,
        strike: float | None = None,
        right: str | None = None,
        exchange: str | None = None,
        local_symbol: str | None = None,
        conid: int | None = None,
    ) -> list[Instrument]:
        wanted: dict[str, Any] = {
            "symbol": symbol, "sec_type": sec_type, "expiry": expiry, "strike": strike,
            "right": right, "local_symbol": local_symbol, "conid": conid,
        }  # fmt: skip
        found = [
            item
            for item in self._instruments.values()
            if all(value is None or getattr(item, key) == value for key, value in wanted.items())
        ]
        if exchange not in (None, "", "SMART"):
            found = [item for item in found if exchange in (item.exchange, item.primary_exchange)]
        return found

    def set_position(self, account: str, conid: int, quantity: float) -> None:
        if conid not in self._instruments:
            raise KeyError(conid)
        holdings = self._positions.setdefault(account, {})
        if quantity == 0:
            holdings.pop(conid, None)
        else:
            holdings[conid] = quantity
        for callback in list(self._listeners):
            callback("positions")

    def subscribe(self, callback: Callable[[str], None]) -> None:
        self._listeners.append(callback)

    # Time ----------------------------------------------------------------------------------

    def now(self) -> float:
        return self._frozen_at if self._frozen_at is not None else self._clock()

    def freeze(self) -> None:
        self._frozen_at = self._clock()

    def thaw(self) -> None:
        self._frozen_at = None

    def advance(self, seconds: float) -> float:
        """Move the frozen market's time on by `seconds` (prices, Greeks and P&L follow their
        paths to it at once): a test steps through hours of market in no time. The new time."""
        if self._frozen_at is None:
            raise ValueError("only a frozen market's time can be advanced")
        if not seconds >= 0:  # also refuses NaN
            raise ValueError("time only moves forward")
        self._frozen_at += seconds
        return self._frozen_at

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    # Prices --------------------------------------------------------------------------------

    def _price(self, conid: int, at_s: float) -> float:
        item = self._instruments[conid]
        if item.underlying_conid is None:
            start = self._spot[conid]
            return path(start=start, seed=self.scenario.seed, key=conid, at_s=at_s)
        return self._option(item, at_s)[0]

    def _option(
        self, item: Instrument, at_s: float, spot: float | None = None
    ) -> tuple[float, float, Any]:
        assert item.underlying_conid is not None
        assert item.expiry is not None
        assert item.strike is not None
        if spot is None:
            spot = self._price(item.underlying_conid, at_s)
        expires = datetime.strptime(item.expiry, "%Y%m%d").replace(
            hour=_EXPIRY_HOUR_UTC, tzinfo=UTC
        )
        years = (expires.timestamp() - at_s) / (365.0 * 86400)
        vol = self._vol[item.underlying_conid] * (1 + 0.1 * (item.strike / spot - 1))
        # An option on a future is priced on the future as its forward (Black-76), like the
        # gateway's and the collector's model: not Black-Scholes, which would grow it at the rate
        on_future = self._instruments[item.underlying_conid].sec_type == "FUT"
        call = item.right == "C"
        value = (
            black_76_greeks(future=spot, strike=item.strike, years=years, vol=vol, call=call)
            if on_future
            else black_scholes(spot=spot, strike=item.strike, years=years, vol=vol, call=call)
        )
        return value.price, spot, (value, vol)

    def quote(self, conid: int) -> Quote:
        at_s = self.now()
        item = self._instruments[conid]
        if not item.quotes:
            return Quote(*(None,) * 16)
        if item.underlying_conid is None:
            price = self._price(conid, at_s)
            return Quote(
                price * (1 - _SPREAD), price * (1 + _SPREAD), price, price,
                *self._sizes[conid][:1] * 2, 1.0, self._sizes[conid][1],
                None, None, None, None, None, None, None, None,
            )  # fmt: skip
        price, spot, (value, vol) = self._option(item, at_s)
        greeks = item.has_greeks
        if item.fixed_greeks is not None:
            delta, gamma, theta, vega = item.fixed_greeks
            value = replace(value, delta=delta, gamma=gamma, theta=theta, vega=vega)
        return Quote(
            round(price * (1 - 10 * _SPREAD), 2), round(price * (1 + 10 * _SPREAD), 2),
            round(price, 2), price, 10.0, 10.0, 1.0, 500.0,
            spot if greeks else None, vol if greeks else None,
            value.delta if greeks else None, value.gamma if greeks else None,
            value.theta if greeks else None, value.vega if greeks else None,
            value.price if greeks else None, 0.0 if greeks else None,
        )  # fmt: skip

    # History and money ---------------------------------------------------------------------

    def new_york_day(self) -> date:
        """Today in New York, where US options expire: the day Greeks by expiry count from."""
        return datetime.fromtimestamp(self.now(), _NEW_YORK).date()

    def today(self) -> date:
        return datetime.fromtimestamp(self.now(), UTC).date()

    def prior_close(self, conid: int) -> float:
        """Yesterday's close in quoted units: the path's centre, and for an option its model
        price at that close, the last weekday before today at 16:00 New York."""
        item = self._instruments[conid]
        if item.underlying_conid is None:
            return self._spot[conid]
        [day] = history.trading_days(self.today(), 1)
        closed_at = datetime(day.year, day.month, day.day, _EXPIRY_HOUR_UTC, tzinfo=UTC)
        spot = self._spot[item.underlying_conid]
        return self._option(item, closed_at.timestamp(), spot)[0]

    def bars(self, conid: int) -> list[Bar] | None:
        """A year of daily bars ending yesterday, or None when the gateway has no history for
        the instrument (options, or the scenario says so). An underlying with `fx_bars` is in
        its own currency (its benchmark-currency path at the day's rate); `closed_days` have
        no bar."""
        item = self._instruments.get(conid)
        if item is None or item.underlying_conid is not None or not item.history:
            return None
        key = (conid, self.today())
        if key not in self._bars:
            spec = self._spec(conid)
            days, returns = self._path(conid)
            if spec.fx_bars:
                returns = history.in_currency(returns, self._path(self._fx_spec(spec).conid)[1])
            bars = history.bars_from_returns(
                days, returns, last_close=spec.spot, seed=self.scenario.seed, key=conid,
                decimals=FX_DECIMALS if spec.sec_type == "CASH" else rounding.PRICE_DECIMALS,
            )  # fmt: skip
            closed = self._closed(spec, days)
            latest = bars[len(bars) - spec.history_days :]  # the latest only
            self._bars[key] = [bar for bar in latest if bar.day not in closed]
        return self._bars[key]

    def _spec(self, conid: int) -> Underlying:
        return next(u for u in self.scenario.underlyings if u.conid == conid)

    def _fx_spec(self, spec: Underlying) -> Underlying:
        """The CASH underlying quoting one unit of `spec`'s currency in the benchmark's."""
        return next(
            u
            for u in self.scenario.underlyings
            if u.sec_type == "CASH" and u.symbol == spec.currency
        )

    @staticmethod
    def _closed(spec: Underlying, days: list[date]) -> set[date]:
        return {days[-k] for k in spec.closed_days}

    def _path(self, conid: int, *, synchronous: bool = False) -> tuple[list[date], list[float]]:
        """The year's weekdays and the daily returns the scenario makes for `conid`: the
        benchmark's own, or `beta` times them plus its own noise (in the benchmark's
        currency). An underlying that closes before the benchmark sees, on day t, the share of
        the benchmark's day-t move made before its close and the rest of day t-1's
        (`close_before_benchmark`), unless `synchronous`: the returns it would show if it
        closed with the benchmark, what its true beta is measured on."""
        days = history.trading_days(self.today(), history.TRADING_DAYS_PER_YEAR)
        spec = self._spec(conid)
        benchmark = self._benchmark_spec()
        seed = self.scenario.seed
        market = (
            None
            if benchmark is None
            else history.daily_returns(
                seed=seed, key=benchmark.conid, days=days, vol=benchmark.vol,
                benchmark=None, beta=1.0,
            )
        )  # fmt: skip
        if benchmark is not None and conid == benchmark.conid:
            assert market is not None
            return days, market
        early = spec.close_before_benchmark
        if market is not None and early and not synchronous:
            market = [
                (1 - early) * move + early * previous
                for previous, move in zip([0.0, *market[:-1]], market, strict=True)
            ]
        return days, history.daily_returns(
            seed=seed, key=conid, days=days, vol=spec.idiosyncratic_vol,
            benchmark=market, beta=spec.beta,
        )  # fmt: skip

    def _sample_size(self, spec: Underlying, bars: list[Bar] | None) -> int:
        """The daily returns a beta rests on: the pairs of the paths for an underlying in
        another currency or calendar, else its bars' returns."""
        benchmark = self._benchmark_spec()
        from_paths = benchmark is not None and (
            spec.fx_bars
            or bool(spec.closed_days)
            or bool(benchmark.closed_days)
            or bool(spec.close_before_benchmark)
        )
        if bars and benchmark is not None and spec.conid != benchmark.conid and from_paths:
            return len(self._path_pairs(spec.conid, benchmark))
        return max(len(bars) - 1, 0) if bars else 0

    def _beta_from_paths(self, conid: int, benchmark: Underlying) -> float | None:
        """The beta of an underlying whose bars are in another currency, on another calendar or
        closed at another time, from the returns the scenario made rather than from the bars
        (`_path_pairs`: as if it closed with the benchmark)."""
        pairs = self._path_pairs(conid, benchmark)
        return history.slope(pairs) if len(pairs) >= MIN_RETURNS else None

    def _path_pairs(self, conid: int, benchmark: Underlying) -> list[tuple[float, float]]:
        """(its return in the benchmark's currency, the benchmark's) on each weekday of its
        window that both exchanges are open on, as is the weekday before."""
        spec = self._spec(conid)
        days, mine = self._path(conid, synchronous=True)
        _, theirs = self._path(benchmark.conid)
        window = len(days) - min(spec.history_days, benchmark.history_days)
        closed = self._closed(spec, days) | self._closed(benchmark, days)
        return [
            (mine[index], theirs[index])
            for index in range(window + 1, len(days))
            if days[index] not in closed and days[index - 1] not in closed
        ]

    def _benchmark_spec(self) -> Underlying | None:
        return next(
            (
                u
                for u in self.scenario.underlyings
                if u.symbol == self.scenario.benchmark and u.sec_type in ("STK", "ETF", "IND")
            ),
            None,
        )

    def _symbol_conid(self, symbol: str) -> int | None:
        """The instrument whose bars stand for `symbol` (options take their underlying's)."""
        return next(
            (
                conid
                for conid, item in self._instruments.items()
                if item.symbol == symbol and item.underlying_conid is None
            ),
            None,
        )

    def beta(self, symbol: str) -> float | None:
        """OLS beta of `symbol`'s daily close returns on the benchmark's, over the served bars."""
        conid, benchmark = self._symbol_conid(symbol), self._benchmark_spec()
        if conid is None or benchmark is None:
            return None
        mine, theirs = self.bars(conid), self.bars(benchmark.conid)
        if mine is None or theirs is None:
            return None
        spec = self._spec(conid)
        if spec.fx_bars or spec.closed_days or benchmark.closed_days or spec.close_before_benchmark:
            return self._beta_from_paths(conid, benchmark)
        if history.common_returns(mine, theirs) < MIN_RETURNS:
            return None
        return history.ols_beta(mine, theirs)

    def spx_delta(self, conid: int) -> float | None:
        """Portal field 7696, "SPX Delta" (beta-weighted delta: delta x beta x the underlying's
        price over SPX's), as the simulator computes it: delta (1 for a linear instrument) x
        this model's beta x the underlying's price in dollars, per unit of the quote
        (/ magnifier), / SPX's price. None without a delta, a beta, a price, a dollar rate or
        an SPX in the scenario."""
        item, spx = self.instrument(conid), self._symbol_conid("SPX")
        if item is None or spx is None:
            return None
        underlying = self.instrument(item.underlying_conid or conid)
        if underlying is None:
            return None
        delta = self.quote(conid).delta if item.underlying_conid else 1.0
        beta = self.beta(item.symbol)
        price, spx_price = self.quote(underlying.conid).mark, self.quote(spx).mark
        dollars = 1.0 if item.currency == "USD" else self._usd_per(item.currency)
        if delta is None or beta is None or price is None or not spx_price or dollars is None:
            return None
        return delta * beta * price / underlying.price_magnifier * dollars / spx_price

    def _usd_per(self, currency: str) -> float | None:
        """Dollars per unit of `currency`, from the scenario's rates either way round."""
        rates = self.scenario.exchange_rates
        direct = rates.get("USD", {}).get(currency)
        if direct is not None:
            return direct
        inverse = rates.get(currency, {}).get("USD")
        return 1 / inverse if inverse else None

    def betas(self) -> dict[str, dict[str, Any]]:
        """Per symbol with a price path: its beta on the benchmark, the number of daily
        returns it rests on and the date of the last bar (null without history)."""
        result: dict[str, dict[str, Any]] = {}
        for item in self.scenario.underlyings:
            bars = self.bars(item.conid)
            result[item.symbol] = {
                "beta": self.beta(item.symbol),
                "sample_size": self._sample_size(item, bars),
                "as_of": bars[-1].day.isoformat() if bars else None,
            }
        return result

    def valuation(self, position: Position) -> Valuation:
        """Mark, else last, else mid; with none of them the position is worth its cost and made
        nothing today (the gateway has nothing to value it with)."""
        item, quote = position.instrument, self.quote(position.instrument.conid)
        size = position.quantity * item.multiplier / item.price_magnifier
        price = quote.mark if quote.mark is not None else quote.last
        if price is None and quote.bid is not None and quote.ask is not None:
            price = (quote.bid + quote.ask) / 2
        if price is None:
            price = position.avg_cost / item.multiplier * item.price_magnifier
            return Valuation(price, size * price, 0.0, 0.0)
        market_value = size * price
        daily = size * (price - self.prior_close(item.conid))
        return Valuation(price, market_value, market_value - position.quantity * position.avg_cost,
                         daily)  # fmt: skip

    def ledger(self, account: str) -> Ledger:
        """Cash and positions per currency, and BASE: everything converted at the gateway's
        rates. Net liquidation counts futures and CFDs by their P&L, not their notional."""
        ledger = Ledger(self.base_currency(account))
        lines = ledger.currencies
        for currency, amount in self.scenario.cash.get(account, {}).items():
            line = lines.setdefault(currency, CurrencyLedger())
            line.cash += amount
            line.net_liquidation += amount
        for position in self.positions(account):
            item = position.instrument
            value = self.valuation(position)
            line = lines.setdefault(item.currency, CurrencyLedger())
            if item.sec_type in ("STK", "ETF", "WAR"):
                line.stock_value += value.market_value
            elif item.sec_type == "OPT":
                line.option_value += value.market_value
            elif item.sec_type == "FOP":
                line.future_option_value += value.market_value
            pnl_valued = item.sec_type in _PNL_VALUED
            line.net_liquidation += value.unrealized_pnl if pnl_valued else value.market_value
            line.unrealized_pnl += value.unrealized_pnl
            line.daily_pnl += value.daily_pnl
        base = CurrencyLedger()
        for currency, line in lines.items():
            rate = self.exchange_rate(account, currency)
            assert rate is not None, f"{account}: no exchange rate for {currency}"
            line.exchange_rate = rate
            for name in ("cash", "stock_value", "option_value", "future_option_value",
                         "net_liquidation", "unrealized_pnl", "daily_pnl"):  # fmt: skip
                setattr(base, name, getattr(base, name) + getattr(line, name) * rate)
        lines.setdefault(ledger.base_currency, CurrencyLedger())
        lines["BASE"] = base
        return ledger

    # Truth ---------------------------------------------------------------------------------

    def truth(self) -> dict[str, dict[str, Any]]:
        """Per account: every figure now, exactly, overall and per underlying symbol; `net`
        keeps format 1's account-level sums for readers of rows stored in format 1."""
        result = self._truth(portal=False)
        for account, figures in result.items():
            figures["net"] = asdict(self._net(self.positions(account)))
        return result

    def portal_truth(self) -> dict[str, dict[str, Any]]:
        """The same figures from the values as the Portal writes them: what a Portal client can
        at best reach (equal to `truth()` unless the scenario's Portal rounds)."""
        return self._truth(portal=self.scenario.portal_values == "as_gateway")

    def scenario_truth(self) -> dict[str, dict[str, Any]]:
        """Per account: the scenario P&L grids now (`simulator.scenario_truth`, its own pricing),
        from the exact values; asked for apart from `truth()`, whose figures it would slow down
        (an American option's tree takes milliseconds, its grid about a second)."""
        result = {}
        for account in self.accounts():
            items = []
            for position in self.positions(account):
                exposure = self._exposure(position, lambda value, _write: value)
                item = position.instrument
                if item.underlying_conid is None:
                    items.append(Revaluable(exposure))
                    continue
                quote = self.quote(item.conid)
                assert item.expiry is not None
                expires = datetime.strptime(item.expiry, "%Y%m%d").replace(
                    hour=_EXPIRY_HOUR_UTC, tzinfo=UTC
                )
                items.append(Revaluable(
                    exposure, self._instruments[item.underlying_conid].sec_type, item.right,
                    item.strike, (expires.timestamp() - self.now()) / (365.0 * 86400),
                    quote.implied_vol,
                ))  # fmt: skip
            result[account] = account_scenarios(items)
        return result

    def _truth(self, *, portal: bool) -> dict[str, dict[str, Any]]:
        def seen(value: float | None, write: Any) -> float | None:
            return value if value is None or not portal else rounding.as_read(write(value))

        result: dict[str, dict[str, Any]] = {}
        benchmark = self._benchmark_spec()
        for account in self.accounts():
            benchmark_price = None
            if benchmark is not None:
                rate = self.exchange_rate(account, benchmark.currency)
                mark = seen(self.quote(benchmark.conid).mark, rounding.price)
                benchmark_price = None if rate is None or mark is None else mark * rate
            exposures = [self._exposure(position, seen) for position in self.positions(account)]
            money = self.ledger(account).base
            result[account] = account_truth(
                exposures, benchmark_price, currency=self.base_currency(account),
                net_liquidation=cents(money.net_liquidation),
                unrealized_pnl=cents(money.unrealized_pnl), daily_pnl=cents(money.daily_pnl),
                expiry_day=self.new_york_day(),
            )  # fmt: skip
        return result

    def _exposure(self, position: Position, seen: Any) -> Exposure:
        item = position.instrument
        quote = self.quote(item.conid)
        if item.underlying_conid is None:
            price = seen(quote.mark, rounding.price)
            greeks: list[float | None] = [None] * 4
        else:
            price = seen(self.quote(item.underlying_conid).mark, rounding.price)
            greeks = [
                seen(value, rounding.greek)
                for value in (quote.delta, quote.gamma, quote.theta, quote.vega)
            ]
        delta, gamma, theta, vega = greeks
        expiry = (
            datetime.strptime(item.expiry, "%Y%m%d").date()
            if item.expiry is not None and item.underlying_conid is not None
            else None
        )
        return Exposure(
            item.symbol, item.sec_type, position.quantity, item.multiplier,
            item.price_magnifier, self.exchange_rate(position.account, item.currency), price,
            delta, gamma, theta, vega, beta=self.beta(item.symbol), conid=item.conid,
            expiry=expiry,
        )  # fmt: skip

    def _net(self, positions: list[Position]) -> NetGreeks:
        sums: dict[str, float | None] = dict.fromkeys(
            ("delta", "gamma", "theta", "vega", "dollar_delta")
        )

        def add(name: str, value: float) -> None:
            sums[name] = (sums[name] or 0.0) + value

        options = with_greeks = 0
        for position in positions:
            item, size = position.instrument, position.quantity * position.instrument.multiplier
            if item.underlying_conid is None:
                add("delta", size)
                last = self.quote(item.conid).last
                if last is not None:
                    add("dollar_delta", size * last)
                continue
            options += 1
            quote = self.quote(item.conid)
            if quote.delta is None:
                continue
            with_greeks += 1
            assert quote.gamma is not None
            assert quote.theta is not None
            assert quote.vega is not None
            assert quote.underlying_price is not None
            add("delta", size * quote.delta)
            add("gamma", size * quote.gamma)
            add("theta", size * quote.theta)
            add("vega", size * quote.vega)
            add("dollar_delta", size * quote.delta * quote.underlying_price)
        return NetGreeks(
            sums["delta"], sums["gamma"], sums["theta"], sums["vega"], sums["dollar_delta"],
            len(positions), options, with_greeks,
        )  # fmt: skip
