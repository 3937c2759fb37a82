"""Injected faults, seen by ib_async as a real IB Gateway shows them."""

from __future__ import annotations

import asyncio
import math
import time

import pytest
from ib_async import IB, Contract

from simulator.model import Market
from simulator.tws import SocketGateway
from tests.simulator.ib_clients import qualify, until


def _record_errors(ib: IB) -> list[tuple[int, int, str]]:
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    return errors


def _codes(errors: list[tuple[int, int, str]]) -> list[int]:
    return [code for _req_id, code, _text in errors]


async def test_drop_connections_disconnects_every_client(
    ib: IB, market: Market, gateway_port: int
) -> None:
    """ "drop_connections" closes every socket; clients see a disconnect and can reconnect."""
    other = IB()
    await other.connectAsync("127.0.0.1", gateway_port, clientId=2)
    both_gone = asyncio.gather(
        asyncio.wait_for(ib.disconnectedEvent, 2), asyncio.wait_for(other.disconnectedEvent, 2)
    )
    market.faults.emit("drop_connections")
    await both_gone
    assert not ib.isConnected()
    assert not other.isConnected()
    await ib.connectAsync("127.0.0.1", gateway_port, clientId=1)
    assert ib.positions()


async def test_client_id_in_use_is_refused_with_326(ib: IB, gateway_port: int) -> None:
    """A second client with a connected client's id gets 326, then the socket closes."""
    second = IB()
    errors = _record_errors(second)
    with pytest.raises(TimeoutError):
        await second.connectAsync("127.0.0.1", gateway_port, clientId=1, timeout=0.5)
    assert _codes(errors) == [326]
    assert "already in use" in errors[0][2]
    assert ib.isConnected()


async def test_client_id_marked_in_use_by_the_fault(market: Market, gateway_port: int) -> None:
    """An id listed in faults.client_ids_in_use is refused with 326 even if nobody holds it."""
    market.faults.client_ids_in_use.add(7)
    ib = IB()
    errors = _record_errors(ib)
    with pytest.raises(TimeoutError):
        await ib.connectAsync("127.0.0.1", gateway_port, clientId=7, timeout=0.5)
    assert _codes(errors) == [326]
    market.faults.clear()
    await ib.connectAsync("127.0.0.1", gateway_port, clientId=7)
    ib.disconnect()


async def test_daily_reset_sends_1100_refuses_connections_then_1102(
    ib: IB, market: Market, gateway_port: int, option_conid: int
) -> None:
    """During a reset open sockets get 1100 and broken farms, new connections are refused;
    afterwards 1102 and farms OK arrive, data flows again and clients can connect."""
    errors = _record_errors(ib)
    contract = await qualify(ib, Contract(conId=option_conid))
    ticker = ib.reqMktData(contract)
    await until(ib, lambda: ticker.modelGreeks is not None)

    market.faults.reset_until = time.time() + 30
    market.faults.emit("reset_started")
    await until(ib, lambda: 1100 in _codes(errors))
    assert _codes(errors) == [1100, 2103, 2105, 2157]
    with pytest.raises(ConnectionRefusedError):
        await IB().connectAsync("127.0.0.1", gateway_port, clientId=3, timeout=1)
    assert ib.isConnected()

    errors.clear()
    ticker.modelGreeks = None
    summary: list[object] = []
    ib.accountSummaryEvent += summary.append
    market.faults.reset_until = None
    market.faults.emit("reset_ended")
    await until(ib, lambda: ticker.modelGreeks is not None)
    assert _codes(errors)[:4] == [1102, 2104, 2106, 2158]
    # ib_async answers 1102 with reqAccountSummary; its reply must come back too.
    await until(ib, lambda: bool(summary))
    later = IB()
    await later.connectAsync("127.0.0.1", gateway_port, clientId=3)
    later.disconnect()


async def test_reset_ends_by_itself_at_reset_until(
    ib: IB, market: Market, gateway_port: int
) -> None:
    """A reset whose end nobody announces ends at faults.reset_until."""
    errors = _record_errors(ib)
    market.faults.reset_until = time.time() + 0.2
    market.faults.emit("reset_started")
    await until(ib, lambda: 1102 in _codes(errors))
    assert _codes(errors)[0] == 1100
    later = IB()
    await later.connectAsync("127.0.0.1", gateway_port, clientId=4)
    later.disconnect()


async def test_clearing_the_faults_ends_a_reset(ib: IB, market: Market) -> None:
    """faults.clear() during a reset brings the connection back with 1102."""
    errors = _record_errors(ib)
    market.faults.reset_until = time.time() + 30
    market.faults.emit("reset_started")
    await until(ib, lambda: 1100 in _codes(errors))
    market.faults.clear()
    await until(ib, lambda: 1102 in _codes(errors))


async def test_farm_status_messages(ib: IB, market: Market) -> None:
    """Broken and restored farms reach the client as 2103/2105/2157 then 2104/2106/2158."""
    errors = _record_errors(ib)
    market.faults.emit("farm_broken")
    await until(ib, lambda: len(errors) == 3)
    market.faults.emit("farm_ok")
    await until(ib, lambda: len(errors) == 6)
    assert _codes(errors) == [2103, 2105, 2157, 2104, 2106, 2158]
    assert errors[0][2] == "Market data farm connection is broken:usfarm"


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (354, "Requested market data is not subscribed."),
        (10090, "Part of requested market data is not subscribed."),
        (10167, "Displaying delayed market data."),
    ],
)
async def test_market_data_permission_errors(
    ib: IB, market: Market, option_conid: int, code: int, text: str
) -> None:
    """354 gives no data; 10090 gives quotes without Greeks; 10167 gives delayed data."""
    market.freeze()
    market.faults.market_data_error = code
    errors = _record_errors(ib)
    contract = await qualify(ib, Contract(conId=option_conid))
    ticker = ib.reqMktData(contract)
    await until(ib, lambda: bool(errors))
    assert _codes(errors) == [code]
    assert text in errors[0][2]
    if code == 354:
        await ib.reqCurrentTimeAsync()
        assert math.isnan(ticker.bid)
        return
    await until(ib, lambda: not math.isnan(ticker.bid))
    await ib.reqCurrentTimeAsync()
    if code == 10090:
        assert ticker.modelGreeks is None
        assert ticker.marketDataType == 1
    else:
        assert ticker.modelGreeks is not None
        assert ticker.marketDataType == 3
        assert ticker.modelGreeks.delta == pytest.approx(market.quote(option_conid).delta)


async def test_delayed_data_asked_for_is_served_when_live_is_not_subscribed(
    ib: IB, market: Market, option_conid: int
) -> None:
    """354 and reqMarketDataType(3): delayed ticks with their Greeks, marketDataType 3, and
    10167, not 354."""
    market.freeze()
    market.faults.market_data_error = 354
    errors = _record_errors(ib)
    ib.reqMarketDataType(3)
    contract = await qualify(ib, Contract(conId=option_conid))
    ticker = ib.reqMktData(contract)
    await until(ib, lambda: ticker.modelGreeks is not None)
    assert ticker.marketDataType == 3
    assert _codes(errors) == [10167]
    assert ticker.modelGreeks is not None
    assert ticker.modelGreeks.delta == pytest.approx(market.quote(option_conid).delta)


async def test_too_many_market_data_lines(ib: IB, market: Market, gateway: SocketGateway) -> None:
    """Past faults.max_market_data_lines a reqMktData is refused with 101."""
    market.faults.max_market_data_lines = 2
    errors = _record_errors(ib)
    conids = [item.instrument.conid for item in market.positions(market.accounts()[0])][:3]
    assert len(conids) == 3
    for conid in conids:
        ib.reqMktData(await qualify(ib, Contract(conId=conid)))
    await until(ib, lambda: bool(errors))
    assert _codes(errors) == [101]
    assert errors[0][2] == "Max number of tickers has been reached."
    assert gateway.state.market_data_lines == 2


async def test_stall_leaves_requests_unanswered_until_it_clears(ib: IB, market: Market) -> None:
    """A stalled gateway keeps the socket open and answers nothing, then catches up."""
    market.faults.stalled = True
    market.faults.emit("changed")
    pending = asyncio.ensure_future(ib.reqCurrentTimeAsync())
    done, _ = await asyncio.wait({pending}, timeout=0.3)
    assert not done
    assert ib.isConnected()
    market.faults.stalled = False
    market.faults.emit("changed")
    await asyncio.wait_for(pending, 2)


async def test_slow_replies(ib: IB, market: Market) -> None:
    """faults.reply_delay_s delays every answer by that much."""
    market.faults.reply_delay_s = 0.3
    started = time.monotonic()
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)
    assert time.monotonic() - started >= 0.3
