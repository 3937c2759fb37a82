"""Market data over the socket: quotes, model Greeks per option, cancellation, PnL."""

from __future__ import annotations

import math

import pytest
from ib_async import IB, Contract, Ticker

from simulator.model import Instrument, Market
from simulator.tws import SocketGateway
from tests.simulator.ib_clients import qualify, until


def _option_instruments(market: Market) -> list[Instrument]:
    return [
        item.instrument
        for account in market.accounts()
        for item in market.positions(account)
        if item.instrument.sec_type in ("OPT", "FOP")
    ]


async def _subscribe(ib: IB, conid: int, generic_ticks: str = "") -> Ticker:
    return ib.reqMktData(await qualify(ib, Contract(conId=conid)), generic_ticks)


async def test_model_greeks_arrive_for_every_option_position(ib: IB, market: Market) -> None:
    """Each option with Greeks gets tick 13 with the model's values; the one without gets none."""
    market.freeze()
    options = {instrument.conid: instrument for instrument in _option_instruments(market)}
    tickers = {conid: await _subscribe(ib, conid) for conid in options}
    with_greeks = [conid for conid, instrument in options.items() if instrument.has_greeks]
    without_greeks = [conid for conid, instrument in options.items() if not instrument.has_greeks]
    assert with_greeks
    assert without_greeks

    def complete() -> bool:
        return all(tickers[c].modelGreeks for c in with_greeks) and all(
            not math.isnan(tickers[c].bid) for c in without_greeks
        )

    await until(ib, complete)
    for conid in with_greeks:
        quote = market.quote(conid)
        greeks = tickers[conid].modelGreeks
        assert greeks is not None
        assert greeks.delta == pytest.approx(quote.delta)
        assert greeks.gamma == pytest.approx(quote.gamma)
        assert greeks.theta == pytest.approx(quote.theta)
        assert greeks.vega == pytest.approx(quote.vega)
        assert greeks.impliedVol == pytest.approx(quote.implied_vol)
        assert greeks.undPrice == pytest.approx(quote.underlying_price)
        assert tickers[conid].bidGreeks is not None
        assert tickers[conid].askGreeks is not None
    for conid in without_greeks:
        ticker = tickers[conid]
        assert ticker.modelGreeks is None
        assert ticker.bidGreeks is None
        assert ticker.bid == pytest.approx(market.quote(conid).bid)


async def test_quotes_match_the_model(ib: IB, market: Market, option_conid: int) -> None:
    """Bid, ask, last and sizes are the model's quote; the data is live (type 1)."""
    market.freeze()
    ticker = await _subscribe(ib, option_conid, "221")
    quote = market.quote(option_conid)
    await until(ib, lambda: not math.isnan(ticker.markPrice) and ticker.modelGreeks is not None)
    assert (ticker.bid, ticker.ask, ticker.last) == pytest.approx(
        (quote.bid, quote.ask, quote.last)
    )
    assert (ticker.bidSize, ticker.askSize) == pytest.approx((quote.bid_size, quote.ask_size))
    assert ticker.markPrice == pytest.approx(quote.mark)
    assert ticker.marketDataType == 1


async def test_greeks_stream_while_subscribed(ib: IB, market: Market, option_conid: int) -> None:
    """An unfrozen market keeps sending fresh model Greeks to a subscribed ticker."""
    market.thaw()
    ticker = await _subscribe(ib, option_conid)
    seen: list[float] = []

    def three_updates() -> bool:
        if ticker.modelGreeks is not None and ticker.modelGreeks.delta not in seen:
            seen.append(ticker.modelGreeks.delta or 0.0)
        return len(seen) >= 3

    await until(ib, three_updates)


async def test_cancel_mkt_data_stops_the_stream(
    ib: IB, market: Market, gateway: SocketGateway, option_conid: int
) -> None:
    """After cancelMktData the gateway drops the line and that ticker gets no more ticks."""
    market.thaw()
    options = [i.conid for i in _option_instruments(market) if i.has_greeks]
    other_conid = next(conid for conid in options if conid != option_conid)
    cancelled = await _subscribe(ib, option_conid)
    cancelled_contract = cancelled.contract
    assert cancelled_contract is not None
    kept = await _subscribe(ib, other_conid)
    await until(ib, lambda: cancelled.modelGreeks is not None and kept.modelGreeks is not None)
    ib.cancelMktData(cancelled_contract)
    await ib.reqCurrentTimeAsync()  # answered after the cancel: the gateway has seen it
    [session] = gateway.sessions
    assert session.market_data_req_ids == [ib.wrapper.ticker2ReqId["mktData"][kept]]
    ticks_at_cancel = len(cancelled.ticks)
    greeks_at_cancel = cancelled.modelGreeks
    kept_updates: list[object] = []

    def kept_moved_twice() -> bool:
        if kept.modelGreeks is not None and kept.modelGreeks not in kept_updates:
            kept_updates.append(kept.modelGreeks)
        return len(kept_updates) >= 3

    await until(ib, kept_moved_twice)
    assert len(cancelled.ticks) == ticks_at_cancel
    assert cancelled.modelGreeks == greeks_at_cancel
    assert gateway.state.market_data_lines == 1


async def test_snapshot_ends_with_tick_snapshot_end(
    ib: IB, market: Market, gateway: SocketGateway, option_conid: int
) -> None:
    """reqTickers (snapshots) completes and leaves no market data line behind."""
    market.freeze()
    [ticker] = await ib.reqTickersAsync(await qualify(ib, Contract(conId=option_conid)))
    assert ticker.bid == pytest.approx(market.quote(option_conid).bid)
    assert ticker.modelGreeks is not None
    assert gateway.state.market_data_lines == 0


async def test_pnl_for_an_account(ib: IB, market: Market) -> None:
    """reqPnL streams the account's unrealized PnL (the portfolio's sum, to the cent) and its
    daily PnL since yesterday's close, both as /truth states them."""
    market.freeze()
    account = market.accounts()[0]
    pnl = ib.reqPnL(account)
    await until(ib, lambda: not math.isnan(pnl.unrealizedPnL))
    await ib.reqAccountUpdatesAsync(account)
    expected = sum(item.unrealizedPNL for item in ib.portfolio(account))
    assert pnl.unrealizedPnL == pytest.approx(expected, abs=0.005)
    assert pnl.realizedPnL == 0
    truth = market.truth()[account]
    assert (pnl.dailyPnL, pnl.unrealizedPnL) == (truth["daily_pnl"], truth["unrealized_pnl"])


async def test_pnl_single_for_a_position(ib: IB, market: Market) -> None:
    """reqPnLSingle reports the position's size and value."""
    market.freeze()
    account = market.accounts()[0]
    item = market.positions(account)[0]
    pnl = ib.reqPnLSingle(account, "", item.instrument.conid)
    await until(ib, lambda: not math.isnan(pnl.value))
    assert pnl.position == pytest.approx(item.quantity)
