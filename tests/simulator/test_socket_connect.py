"""ib_async connects to the fake gateway as to IB Gateway: sync, portfolio, contracts, time."""

from __future__ import annotations

import logging
import time

import pytest
from ib_async import IB, Contract, Stock

from simulator.model import Market
from simulator.tws import SocketGateway
from tests.simulator.ib_clients import qualify, until


async def test_connect_completes_fast_without_errors(
    gateway_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """IB.connectAsync() syncs everything it asks for without waiting out any timeout."""
    ib = IB()
    caplog.set_level(logging.INFO, logger="ib_async")
    started = time.monotonic()
    await ib.connectAsync("127.0.0.1", gateway_port, clientId=11, timeout=2)
    elapsed_s = time.monotonic() - started
    try:
        assert ib.isConnected()
        # A request the simulator left unanswered would cost its 2-s timeout; a loaded
        # machine's own slowness stays well below it.
        assert elapsed_s < 1.5
        problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert problems == []
        assert "Synchronization complete" in caplog.text
        assert ib.openTrades() == []
        assert ib.fills() == []
    finally:
        ib.disconnect()


async def test_managed_accounts_and_farm_notices(gateway_port: int, market: Market) -> None:
    """The managed accounts are the model's, and the three farm OK notices arrive after startApi."""
    ib = IB()
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    await ib.connectAsync("127.0.0.1", gateway_port, clientId=12)
    try:
        assert ib.managedAccounts() == market.accounts()
        assert sorted(codes) == [2104, 2106, 2158]
    finally:
        ib.disconnect()


async def test_positions_match_the_model_for_every_account(ib: IB, market: Market) -> None:
    """Every position of every account arrives with the model's quantity and average cost."""
    expected = {
        (item.account, item.instrument.conid): (item.quantity, item.avg_cost)
        for account in market.accounts()
        for item in market.positions(account)
    }
    received = {
        (item.account, item.contract.conId): (item.position, item.avgCost)
        for item in ib.positions()
    }
    assert received == expected
    assert len(market.accounts()) > 1


async def test_portfolio_matches_the_model_for_every_account(ib: IB, market: Market) -> None:
    """reqAccountUpdates gives each account's portfolio with the model's positions, ended by
    accountDownloadEnd."""
    for account in market.accounts():
        await ib.reqAccountUpdatesAsync(account)
        portfolio = {
            item.contract.conId: (item.position, item.averageCost) for item in ib.portfolio(account)
        }
        expected = {
            item.instrument.conid: (item.quantity, item.avg_cost)
            for item in market.positions(account)
        }
        assert portfolio == expected
        for item in ib.portfolio(account):
            multiplier = float(item.contract.multiplier or 1)
            assert item.marketValue == pytest.approx(item.position * multiplier * item.marketPrice)


async def test_account_values_arrive_for_every_account(ib: IB, market: Market) -> None:
    """reqAccountUpdatesMulti at connect fills the account values of every managed account."""
    net_liquidation = {
        value.account for value in ib.accountValues() if value.tag == "NetLiquidation"
    }
    assert net_liquidation == set(market.accounts())


async def test_current_time(ib: IB) -> None:
    """reqCurrentTime answers the gateway's clock."""
    server_time = await ib.reqCurrentTimeAsync()
    assert abs(server_time.timestamp() - time.time()) < 2


async def test_qualify_contracts_finds_every_position_by_description(
    ib: IB, market: Market
) -> None:
    """qualifyContracts fills in the conId of each held instrument from its description."""
    for account in market.accounts():
        for item in market.positions(account):
            instrument = item.instrument
            contract = Contract(
                secType=instrument.sec_type,
                symbol=instrument.symbol,
                lastTradeDateOrContractMonth=instrument.expiry or "",
                strike=instrument.strike or 0.0,
                right=instrument.right or "",
                exchange=instrument.exchange,
                currency=instrument.currency,
                tradingClass=instrument.trading_class,
            )
            qualified = await qualify(ib, contract)
            assert qualified.conId == instrument.conid
            assert qualified.localSymbol == instrument.local_symbol


async def test_qualify_contracts_returns_none_for_unknown_contracts(ib: IB) -> None:
    """An instrument the gateway does not know ends with error 200 and no contract."""
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    assert await ib.qualifyContractsAsync(Stock("NOSUCH", "SMART", "USD")) == [None]
    assert codes == [200]


async def test_contract_details_of_an_option_name_its_underlying(
    ib: IB, market: Market, option_conid: int
) -> None:
    """contractData carries the multiplier, expiry and the underlying's conid of an option."""
    instrument = market.instrument(option_conid)
    assert instrument is not None
    [details] = await ib.reqContractDetailsAsync(Contract(conId=option_conid))
    assert details.contract is not None
    assert details.contract.multiplier == f"{instrument.multiplier:g}"
    assert details.contract.lastTradeDateOrContractMonth == instrument.expiry
    assert details.underConId == instrument.underlying_conid


async def test_a_second_connection_gets_its_own_sync(
    gateway: SocketGateway, gateway_port: int, ib: IB
) -> None:
    """Two clients with different ids are served side by side."""
    other = IB()
    await other.connectAsync("127.0.0.1", gateway_port, clientId=99)
    try:
        assert len(gateway.sessions) == 2
        assert {(p.account, p.contract.conId) for p in other.positions()} == {
            (p.account, p.contract.conId) for p in ib.positions()
        }
    finally:
        other.disconnect()


async def test_position_changes_are_pushed(ib: IB, market: Market) -> None:
    """A position the model changes reaches a subscribed client as position and portfolio."""
    account = market.accounts()[0]
    item = market.positions(account)[0]
    await ib.reqAccountUpdatesAsync(account)
    new_quantity = item.quantity + 3
    market.set_position(account, item.instrument.conid, new_quantity)

    def updated() -> bool:
        held = {(p.account, p.contract.conId): p.position for p in ib.positions()}
        portfolio = {p.contract.conId: p.position for p in ib.portfolio(account)}
        key = (account, item.instrument.conid)
        return held.get(key) == new_quantity and portfolio.get(key[1]) == new_quantity

    await until(ib, updated)
    market.set_position(account, item.instrument.conid, 0)
    await until(
        ib, lambda: all(p.contract.conId != item.instrument.conid for p in ib.portfolio(account))
    )
    assert (account, item.instrument.conid) not in {
        (p.account, p.contract.conId) for p in ib.positions()
    }
