"""The simulator's one portfolio, served to both gateway sides: instruments, positions, quotes.

Prices follow deterministic paths (seed, instrument, time); options are priced with
Black-Scholes, so their Greeks move with the underlying. `truth()` gives the exact net Greeks at
the instant it is called, computed here independently of the bridge's own code, so tests can
compare what a client computed with it; `freeze()` holds every price and Greek still.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from simulator.faults import Faults
from simulator.pricing import black_scholes, path
from simulator.scenario import Scenario

_SPREAD = 0.0005  # half the bid/ask spread, as a fraction of the price
_EXPIRY_HOUR_UTC = 21  # options expire at 16:00 New York, near enough


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
        self._spot: dict[int, float] = {}
        self._build_instruments()
        self._positions = {
            account: dict(holdings) for account, holdings in scenario.positions.items()
        }
        self._avg_cost = {conid: self._price(conid, clock()) for conid in self._instruments}

    def _build_instruments(self) -> None:
        for item in self.scenario.underlyings:
            expiry = (
                self.scenario.expiry(item.expiry_days, self._start) if item.expiry_days else None
            )
            local = f"{item.symbol}{expiry[2:6]}" if expiry else item.symbol
            self._instruments[item.conid] = Instrument(
                item.conid, item.symbol, item.sec_type, item.exchange, item.primary_exchange,
                "USD", item.multiplier, local, item.symbol, expiry=expiry,
            )  # fmt: skip
            self._spot[item.conid] = item.spot
            self._vol[item.conid] = item.vol
        for option in self.scenario.options:
            base = self._instruments[option.underlying]
            expiry = self.scenario.expiry(option.expiry_days, self._start)
            exchange = "SMART" if base.sec_type in ("STK", "IND") else base.exchange
            self._instruments[option.conid] = Instrument(
                option.conid, base.symbol, option.sec_type, exchange, base.primary_exchange,
                "USD", option.multiplier,
                _occ_symbol(base.symbol, expiry, option.right, option.strike),
                option.trading_class or base.symbol, option.right, option.strike, expiry,
                base.conid, option.has_greeks,
            )  # fmt: skip

    # The portfolio -------------------------------------------------------------------------

    def accounts(self) -> list[str]:
        return list(self.scenario.accounts)

    def positions(self, account: str) -> list[Position]:
        return [
            Position(account, self._instruments[conid], quantity, self._cost(conid))
            for conid, quantity in self._positions.get(account, {}).items()
        ]

    def _cost(self, conid: int) -> float:
        return self._avg_cost[conid] * self._instruments[conid].multiplier

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

    def _option(self, item: Instrument, at_s: float) -> tuple[float, float, Any]:
        assert item.underlying_conid is not None
        assert item.expiry is not None
        assert item.strike is not None
        spot = self._price(item.underlying_conid, at_s)
        expires = datetime.strptime(item.expiry, "%Y%m%d").replace(
            hour=_EXPIRY_HOUR_UTC, tzinfo=UTC
        )
        years = (expires.timestamp() - at_s) / (365.0 * 86400)
        vol = self._vol[item.underlying_conid] * (1 + 0.1 * (item.strike / spot - 1))
        value = black_scholes(
            spot=spot, strike=item.strike, years=years, vol=vol, call=item.right == "C"
        )
        return value.price, spot, (value, vol)

    def quote(self, conid: int) -> Quote:
        at_s = self.now()
        item = self._instruments[conid]
        if item.underlying_conid is None:
            price = self._price(conid, at_s)
            return Quote(
                price * (1 - _SPREAD), price * (1 + _SPREAD), price, price,
                100.0, 100.0, 1.0, 10_000.0, None, None, None, None, None, None, None, None,
            )  # fmt: skip
        price, spot, (value, vol) = self._option(item, at_s)
        greeks = item.has_greeks
        return Quote(
            round(price * (1 - 10 * _SPREAD), 2), round(price * (1 + 10 * _SPREAD), 2),
            round(price, 2), price, 10.0, 10.0, 1.0, 500.0,
            spot if greeks else None, vol if greeks else None,
            value.delta if greeks else None, value.gamma if greeks else None,
            value.theta if greeks else None, value.vega if greeks else None,
            value.price if greeks else None, 0.0 if greeks else None,
        )  # fmt: skip

    # Truth ---------------------------------------------------------------------------------

    def truth(self) -> dict[str, dict[str, Any]]:
        """Per account: exact net Greeks now, overall and per underlying symbol."""
        result: dict[str, dict[str, Any]] = {}
        for account in self.accounts():
            positions = self.positions(account)
            symbols = sorted({position.instrument.symbol for position in positions})
            result[account] = {
                "net": asdict(self._net(positions)),
                "underlyings": {
                    symbol: asdict(
                        self._net([p for p in positions if p.instrument.symbol == symbol])
                    )
                    for symbol in symbols
                },
            }
        return result

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
                add("dollar_delta", size * self.quote(item.conid).last)  # type: ignore[operator]
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
