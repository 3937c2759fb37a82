"""IB's official Python client (ibapi) works against the fake gateway unmodified."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from ibapi.contract import Contract  # type: ignore[import-untyped]

from simulator.model import Market
from tests.simulator.ib_clients import IbapiApp, wait_event


async def test_ibapi_connects_and_syncs_positions(
    app: IbapiApp, market: Market, caplog: pytest.LogCaptureFixture
) -> None:
    """ibapi negotiates v178, gets the accounts, an order id, the farm notices and positions."""
    caplog.set_level(logging.ERROR, logger="ibapi")
    assert app.serverVersion() == 178
    assert app.accounts == market.accounts()
    assert app.next_order_id is not None
    app.reqPositions()
    await wait_event(app.positions_done)
    expected = {
        (item.account, item.instrument.conid): (item.quantity, item.avg_cost)
        for account in market.accounts()
        for item in market.positions(account)
    }
    received = {(acct, conid): (float(qty), cost) for acct, conid, qty, cost in app.positions}
    assert received == expected
    assert {code for _req, code, _text in app.errors} == {2104, 2106, 2158}
    assert [r.getMessage() for r in caplog.records] == []


async def test_ibapi_contract_details_and_model_greeks(
    app: IbapiApp, market: Market, option_conid: int, caplog: pytest.LogCaptureFixture
) -> None:
    """ibapi parses contractData and tickOptionComputation with the model's Greeks."""
    caplog.set_level(logging.ERROR, logger="ibapi")
    market.freeze()
    contract = Contract()
    contract.conId = option_conid
    contract.exchange = "SMART"
    app.reqContractDetails(1, contract)
    await wait_event(app.details_done)
    [details] = app.details
    instrument = market.instrument(option_conid)
    assert instrument is not None
    assert details.contract.localSymbol == instrument.local_symbol
    assert details.underConId == instrument.underlying_conid

    app.reqMktData(2, details.contract, "", False, False, [])
    await wait_event(app.greeks_arrived)
    quote = market.quote(option_conid)
    implied_vol, delta, gamma, vega, theta, und_price = app.model_greeks[2]
    assert (implied_vol, delta, gamma, vega, theta, und_price) == pytest.approx(
        (
            quote.implied_vol,
            quote.delta,
            quote.gamma,
            quote.vega,
            quote.theta,
            quote.underlying_price,
        )
    )
    app.reqCurrentTime()
    await wait_event(app.time_arrived)
    assert [r.getMessage() for r in caplog.records] == []


async def test_ibapi_parses_account_updates_summary_pnl_and_option_chains(
    app: IbapiApp, market: Market, option_conid: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Account values, portfolio, summary, PnL and option parameters all reach ibapi's callbacks."""
    caplog.set_level(logging.ERROR, logger="ibapi")
    account = market.accounts()[0]
    app.reqAccountUpdates(True, account)
    await wait_event(app.arrived["accountDownloadEnd"])
    portfolio = {(args[0].conId, float(args[1])) for args in app.calls["updatePortfolio"]}
    assert portfolio == {(p.instrument.conid, p.quantity) for p in market.positions(account)}
    assert ("NetLiquidation", account) in {
        (args[0], args[3]) for args in app.calls["updateAccountValue"]
    }
    app.reqAccountSummary(3, "All", "NetLiquidation,GrossPositionValue")
    await wait_event(app.arrived["accountSummaryEnd"])
    assert {args[1] for args in app.calls["accountSummary"]} == set(market.accounts())
    app.reqPnL(4, account, "")
    await wait_event(app.arrived["pnl"])
    option = market.instrument(option_conid)
    assert option is not None
    assert option.underlying_conid is not None
    app.reqSecDefOptParams(5, option.symbol, "", "STK", option.underlying_conid)
    await wait_event(app.arrived["securityDefinitionOptionParameterEnd"])
    chains = app.calls["securityDefinitionOptionParameter"]
    strikes = {strike for args in chains for strike in args[6]}
    assert option.strike in strikes
    assert [r.getMessage() for r in caplog.records] == []


async def test_ibapi_sees_326_then_the_close(gateway_port: int, app: IbapiApp) -> None:
    """A second ibapi client with a used id gets error 326 and connectionClosed."""
    second = IbapiApp()
    await asyncio.to_thread(second.connect, "127.0.0.1", gateway_port, 21)
    reader = threading.Thread(target=second.run, name="ibapi-run-2", daemon=True)
    reader.start()
    await wait_event(second.closed)
    await asyncio.to_thread(reader.join, 3)
    assert [code for _req, code, _text in second.errors][:1] == [326]
