"""Every option's terms (right, strike, expiry, underlying type, exercise style, implied vol,
its own price) arrive in both modes equal to the simulator's instruments and quotes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from collector.collector import Collector
from collector.greeks import Holding
from collector.socket_source import SocketSource
from simulator.app import Simulator
from simulator.model import Market

# The documented rule (docs/ibkr-conventions.md, "Exercise style") applied by hand to the
# default scenario's underlyings: SPY is a stock (ETFs are STK at IBKR), SPX a Cboe index,
# ES a future.
EXERCISE = {"SPY": "american", "SPX": "european", "ES": None}


def _check(holdings: list[Holding], market: Market, price_of: Callable[[int], float | None]) -> int:
    """Assert each holding's terms equal the simulator's; the number of options checked."""
    checked = 0
    for holding in holdings:
        item = market.instrument(holding.conid)
        assert item is not None
        if not holding.is_option:
            assert holding.terms is None, holding.symbol
            continue
        terms = holding.terms
        assert terms is not None, holding.conid
        assert item.underlying_conid is not None
        assert item.expiry is not None
        underlying = market.instrument(item.underlying_conid)
        assert underlying is not None
        quote = market.quote(holding.conid)
        assert (terms.right, terms.strike) == (item.right, item.strike)
        assert terms.expiry.strftime("%Y%m%d") == item.expiry
        assert terms.underlying_sec_type == underlying.sec_type
        assert terms.exercise == EXERCISE[holding.symbol]
        if quote.implied_vol is None:
            assert terms.implied_vol is None
        else:
            # Portal writes the percent to two decimals: half a hundredth of a vol point.
            assert terms.implied_vol == pytest.approx(quote.implied_vol, abs=0.00005)
        expected_price = price_of(holding.conid)
        if expected_price is None:
            assert terms.option_price is None
        else:
            assert terms.option_price == pytest.approx(expected_price, abs=0.005)
        checked += 1
    return checked


async def test_socket_terms_equal_the_simulators_instruments(
    collector: Collector, market: Market
) -> None:
    """SOCKET: right, strike and expiry from the position's contract, the underlying's type
    from its contract details, implied vol from the model's computation tick, the price the
    option's ticker gives (its last, inside bid and ask)."""
    assert await collector.connect_once()
    source = collector.source
    assert isinstance(source, SocketSource)
    await collector.tick_once(100)  # subscribes every instrument

    held = market.positions("DU1234567") + market.positions("DU7654321")
    options = {p.instrument.conid for p in held if p.instrument.underlying_conid}
    # A far out-of-the-money option quoted 0.00 has no price (unknown, not 0).
    priced = {conid for conid in options if market.quote(conid).last}

    async def every_option_priced() -> None:
        while not priced <= set(source.prices) or len(source.greeks) < len(options) - 1:
            await source.ib.updateEvent

    await asyncio.wait_for(every_option_priced(), 10)
    views = await source.read(datetime.now(UTC))

    def last(conid: int) -> float | None:
        return market.quote(conid).last or None

    checked = sum(_check(view.holdings, market, last) for view in views.values())
    assert checked == 4 + 3  # DU1234567 holds four options, DU7654321 three


async def test_portal_terms_equal_the_simulators_instruments(
    make_collector: Callable[..., Collector], portal_simulator: Simulator
) -> None:
    """PORTAL: right, strike and expiry from the position, the underlying's type from a held
    position or /trsrv/secdef, implied vol from field 7633 ("17.93%"), the option's mark."""
    collector = make_collector()
    assert await collector.connect_once()
    await collector.tick_once(10)  # opens the streams
    await collector.tick_once(11)
    market = portal_simulator.market
    market.freeze()
    views = await collector.source.read(datetime.now(UTC))

    def mark(conid: int) -> float | None:
        return market.quote(conid).mark or None

    checked = sum(_check(view.holdings, market, mark) for view in views.values())
    assert checked == 4 + 3
