"""The trader scenario over the socket side, read by unmodified ib_async and ibapi clients:
account values per currency, P&L, daily history, contract details with their magnifier; and
the account's figures computed by hand from what ib_async reads, equal to /truth."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ib_async import IB, BarData, Contract, Stock
from ibapi.contract import Contract as IbapiContract  # type: ignore[import-untyped]

from simulator.model import Market
from simulator.scenario import load
from tests.collector.stated import stated
from tests.collector.trader import stored_rows_of_a_collector
from tests.fixtures.simulator import StartSimulator
from tests.simulator import regression
from tests.simulator.ib_clients import IbapiApp, qualify, wait_event

USD_ACCOUNT, EUR_ACCOUNT = "U1111111", "U2222222"
ZC_CALL, ESTX50_PUT, SAP_CFD, SPY = 710004, 710005, 530000001, 756733


@pytest.fixture
def market() -> Market:
    """The trader scenario, frozen: what each client reads can be compared exactly."""
    market = Market(load(Path("trader")))
    market.freeze()
    return market


async def test_account_values_name_the_base_currency_and_every_rate(ib: IB, market: Market) -> None:
    """NetLiquidation comes in the base currency; ExchangeRate per currency (and BASE) is one
    unit of it in the base; money per currency and BASE, to the cent, as /truth states it."""
    await ib.reqAccountUpdatesAsync(EUR_ACCOUNT)
    values = {(v.tag, v.currency): v.value for v in ib.accountValues(EUR_ACCOUNT)}
    truth = market.truth()[EUR_ACCOUNT]
    assert float(values["NetLiquidation", "EUR"]) == truth["net_liquidation"]
    assert float(values["UnrealizedPnL", "BASE"]) == truth["unrealized_pnl"]
    assert (values["ExchangeRate", "USD"], values["ExchangeRate", "EUR"]) == ("0.9238", "1.0")
    assert values["ExchangeRate", "BASE"] == "1.0"
    # BASE is the sum of the currencies at their rates; each of the three is written to the
    # cent, so they agree within 0.005 x (1 + 0.9238) + 0.005 < 0.015.
    by_currency = float(values["NetLiquidationByCurrency", "EUR"]) + 0.9238 * float(
        values["NetLiquidationByCurrency", "USD"]
    )
    assert float(values["NetLiquidationByCurrency", "BASE"]) == pytest.approx(
        by_currency, abs=0.015
    )
    assert ("CashBalance", "USD") in values


async def test_pnl_is_the_accounts_daily_and_unrealized_in_base_currency(
    ib: IB, market: Market
) -> None:
    """reqPnL's daily and unrealized P&L equal /truth's, exactly."""
    for account in (USD_ACCOUNT, EUR_ACCOUNT):
        pnl = ib.reqPnL(account)
        await _until(ib, lambda pnl=pnl: not math.isnan(pnl.dailyPnL))
        truth = market.truth()[account]
        assert (pnl.dailyPnL, pnl.unrealizedPnL) == (truth["daily_pnl"], truth["unrealized_pnl"])


async def test_a_year_of_daily_bars_ends_at_yesterdays_close(ib: IB, market: Market) -> None:
    """reqHistoricalData "1 Y" / "1 day" / TRADES: 252 completed days, ascending, the last close
    being the prior close the day's P&L starts from; "1 M" is the last 21 of them."""
    spy = await qualify(ib, Stock("SPY", "SMART", "USD"))
    year = await ib.reqHistoricalDataAsync(spy, "", "1 Y", "1 day", "TRADES", useRTH=True)
    assert len(year) == 252
    assert [bar.date for bar in year] == sorted(bar.date for bar in year)
    assert year[-1].date < market.today()
    assert year[-1].close == market.prior_close(SPY) == 600.0
    month = await ib.reqHistoricalDataAsync(spy, "", "1 M", "1 day", "TRADES", useRTH=True)
    assert list(month) == list(year)[-21:]  # BarDataList compares by identity


async def test_history_refusals_are_ibs_errors(ib: IB) -> None:
    """No history (the CFD): error 162, which ends the request; a bar size other than "1 day":
    error 321, which ib_async (like TWS's own clients) takes as a warning and keeps waiting."""
    codes: list[int] = []
    ib.errorEvent += lambda _req, code, _msg, _contract: codes.append(code)
    cfd = Contract(conId=SAP_CFD, exchange="SMART")
    assert not await ib.reqHistoricalDataAsync(cfd, "", "1 Y", "1 day", "TRADES", True)
    spy = Contract(conId=SPY, exchange="SMART")
    waiting = asyncio.ensure_future(
        ib.reqHistoricalDataAsync(spy, "", "1 D", "5 mins", "TRADES", True)
    )
    await _until(ib, lambda: 321 in codes)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    assert codes == [162, 321]


async def test_contract_details_carry_the_magnifier_and_currency(ib: IB) -> None:
    """ZC options quote in cents (priceMagnifier 100, multiplier 5000); EUREX options in EUR."""
    [corn] = await ib.reqContractDetailsAsync(Contract(conId=ZC_CALL))
    assert corn.contract is not None
    assert (corn.priceMagnifier, corn.contract.multiplier, corn.contract.currency) == (
        100, "5000", "USD",
    )  # fmt: skip
    [euro] = await ib.reqContractDetailsAsync(Contract(conId=ESTX50_PUT))
    assert euro.contract is not None
    assert (euro.priceMagnifier, euro.contract.currency, euro.contract.exchange) == (
        1, "EUR", "EUREX",
    )  # fmt: skip


async def test_cfd_and_warrant_positions_keep_their_security_type(ib: IB) -> None:
    """Positions name CFD and WAR as such, with their currency."""
    kinds = {(p.contract.symbol, p.contract.secType, p.contract.currency)
             for p in ib.positions(USD_ACCOUNT)}  # fmt: skip
    assert {("SAP", "CFD", "EUR"), ("BMW", "WAR", "EUR")} <= kinds


async def test_ibapi_reads_history_magnifier_rates_and_pnl(
    app: IbapiApp, market: Market, caplog: pytest.LogCaptureFixture
) -> None:
    """IB's own client parses the bars, priceMagnifier, ExchangeRate values and daily P&L."""
    caplog.set_level(logging.ERROR, logger="ibapi")
    contract = IbapiContract()
    contract.conId = SPY
    contract.exchange = "SMART"
    app.reqHistoricalData(1, contract, "", "1 Y", "1 day", "TRADES", 1, 1, False, [])
    await wait_event(app.arrived["historicalDataEnd"])
    bars = [args[1] for args in app.calls["historicalData"]]
    assert (len(bars), bars[-1].close) == (252, 600.0)
    contract.conId = ZC_CALL
    contract.exchange = ""
    app.reqContractDetails(2, contract)
    await wait_event(app.details_done)
    assert app.details[0].priceMagnifier == 100
    app.reqAccountUpdates(True, EUR_ACCOUNT)
    await wait_event(app.arrived["accountDownloadEnd"])
    rates = {
        args[2]: args[1] for args in app.calls["updateAccountValue"] if args[0] == "ExchangeRate"
    }
    assert rates["USD"] == "0.9238"
    app.reqPnL(3, EUR_ACCOUNT, "")
    await wait_event(app.arrived["pnl"])
    assert app.calls["pnl"][0][1] == market.truth()[EUR_ACCOUNT]["daily_pnl"]
    assert [r.getMessage() for r in caplog.records] == []


async def _until(ib: IB, condition: Any, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await ib.updateEvent


# The key proof --------------------------------------------------------------------------------


async def _control_truth(control_port: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{control_port}/truth"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


@pytest.mark.timeout(90)
async def test_a_client_alone_computes_the_accounts_figures_equal_to_the_truth(
    start_simulator: StartSimulator, tmp_path: Path, database_url: str
) -> None:
    """ib_async only (no collector, no simulator internals): positions, contract details
    (multiplier, magnifier, currency), model Greeks, prices, exchange rates and a year of bars;
    dollar delta, theta and beta delta computed by hand equal /truth to 1e-9 in each account,
    one of them EUR-based, with cents-quoted, EUR and Greek-less positions among them. The row
    the collector stores (through the writer's sink) equals the same hand-made sums."""
    simulator = await start_simulator(Path("trader"))
    ib = IB()
    await ib.connectAsync("127.0.0.1", simulator.socket_port, clientId=7, timeout=5)
    try:
        spy = await qualify(ib, Stock("SPY", "SMART", "USD"))
        spy_bars = await ib.reqHistoricalDataAsync(spy, "", "1 Y", "1 day", "TRADES", True)
        [spy_ticker] = await ib.reqTickersAsync(spy)
        truth = (await _control_truth(simulator.control_port))["accounts"]
        rows = await stored_rows_of_a_collector(
            simulator.socket_port, tmp_path / "var", database_url, simulator.market.truth
        )
        checked = 0
        for account in ib.managedAccounts():
            values = ib.accountValues(account)
            rates = {v.currency: float(v.value) for v in values if v.tag == "ExchangeRate"}
            sums = {"dollar_delta": 0.0, "theta": 0.0, "beta_delta": 0.0}
            for position in ib.positions(account):
                added = await _figures(ib, position, rates, spy_bars)
                if added is None:
                    continue  # the warrant, the stock without price, the Greek-less option
                dollar_delta, theta, beta = added
                sums["dollar_delta"] += dollar_delta
                sums["theta"] += theta
                if beta is not None:
                    sums["beta_delta"] += dollar_delta * beta / (spy_ticker.last * rates["USD"])
            expected = truth[account]
            assert sums["dollar_delta"] == pytest.approx(expected["net_dollar_delta"], rel=1e-9)
            assert sums["theta"] == pytest.approx(expected["net_theta"], rel=1e-9)
            assert sums["beta_delta"] == pytest.approx(expected["net_beta_delta"], rel=1e-9)
            stored = rows[account]
            assert stored["net_dollar_delta"] == stated("net_dollar_delta", sums["dollar_delta"])
            assert stored["net_theta"] == stated("net_theta", sums["theta"])
            assert stored["net_beta_delta"] == stated("net_beta_delta", sums["beta_delta"])
            checked += 1
        assert checked == 2
    finally:
        ib.disconnect()


async def _figures(
    ib: IB, position: Any, rates: dict[str, float], benchmark: list[BarData]
) -> tuple[float, float, float | None] | None:
    """(dollar delta, theta, beta) of one position in the base currency, or None when the
    client cannot value it."""
    if position.contract.secType not in ("OPT", "FOP", "STK", "FUT", "CFD"):
        return None  # warrants and the like: unsupported
    [details] = await ib.reqContractDetailsAsync(Contract(conId=position.contract.conId))
    contract = details.contract
    assert contract is not None
    size = position.position * float(contract.multiplier or 1) / details.priceMagnifier
    fx = rates[contract.currency]
    [ticker] = await ib.reqTickersAsync(contract)
    if contract.secType in ("OPT", "FOP"):
        greeks = ticker.modelGreeks
        if greeks is None or greeks.delta is None:
            return None
        dollar_delta = greeks.delta * size * greeks.undPrice * fx
        theta = greeks.theta * size * fx
        underlying = Contract(conId=details.underConId)
    else:
        if math.isnan(ticker.last):
            return None
        dollar_delta, theta = size * ticker.last * fx, 0.0
        underlying = contract
    bars = await ib.reqHistoricalDataAsync(underlying, "", "1 Y", "1 day", "TRADES", True)
    return (
        dollar_delta,
        theta,
        regression.beta(bars, benchmark, day=lambda bar: bar.date, close=lambda bar: bar.close),
    )
