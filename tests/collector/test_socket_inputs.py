"""SOCKET inputs: per-currency account values prefixed `$LEDGER` (the TWS setting of the 2026
API release notes, the simulator's `ledger_prefix`), and a beta's minimum sample (an
underlying with a short history, the simulator's `history_days`); the price age of linear
instruments; delayed market data after the fallback from 354; a beta whose underlying closes
before the benchmark (the simulator's `close_before_benchmark`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from collector.betas import Bar, beta_of
from collector.collector import Collector
from collector.settings import CollectorSettings
from collector.socket_source import SocketSource
from simulator.model import Market
from simulator.scenario import Scenario, Underlying, load
from simulator.tws import SocketGateway
from tests.collector.spooled import snapshots_at
from tests.collector.trader import assert_figures_equal, settle


@pytest.fixture
def market() -> Market:
    """The trader's scenario (two base currencies), frozen, with `$LEDGER-`-prefixed keys."""
    market = Market(dataclasses.replace(load(Path("trader")), ledger_prefix=True))
    market.freeze()
    return market


async def test_ledger_prefixed_exchange_rates_convert_every_position(
    collector: Collector, market: Market
) -> None:
    """Every rate arrives as "$LEDGER-ExchangeRate": positions in the other currency are
    converted (not no_fx_rate) and every figure equals the truth."""
    assert await collector.connect_once()
    last = await settle(collector, market.truth, 100)
    truth = market.truth()
    for account, record in snapshots_at(collector, last).items():
        for name in ("net_dollar_delta", "net_theta"):
            assert "no_fx_rate" not in record["completeness"][name]["reasons"], account
        assert_figures_equal(record, truth[account], rel=1e-9)


def _frozen(scenario: Scenario) -> Market:
    market = Market(scenario)
    market.freeze()
    return market


@pytest.fixture
async def serve(
    collector_environ: dict[str, str],
) -> AsyncIterator[Callable[..., Awaitable[Collector]]]:
    """A socket gateway for a market of the test's own, and a collector pointed at it (`env`
    adds to its environment)."""
    started: list[tuple[SocketGateway, Collector]] = []

    async def start(market: Market, **env: str) -> Collector:
        gateway = SocketGateway(market, tick_interval_s=0.05)
        await gateway.start("127.0.0.1", 0)
        collector = Collector(
            CollectorSettings.from_environ(
                {**collector_environ, "IB_PORT": str(gateway.port), **env}
            )
        )
        collector.open()
        started.append((gateway, collector))
        return collector

    yield start
    for gateway, collector in started:
        await collector.close()
        await gateway.stop()


async def test_a_beta_from_fewer_than_60_returns_is_no_beta(
    serve: Callable[..., Awaitable[Collector]],
) -> None:
    """ES has 30 daily bars (29 returns): it is missing with no_beta in beta delta (the
    regression is not used), while SPY, with a year of bars, contributes; every figure equals
    the truth."""
    scenario = load(None)
    underlyings = tuple(
        dataclasses.replace(item, history_days=30) if item.symbol == "ES" else item
        for item in scenario.underlyings
    )
    market = _frozen(dataclasses.replace(scenario, underlyings=underlyings))
    collector = await serve(market)
    assert await collector.connect_once()
    last = await settle(collector, market.truth, 100)
    truth = market.truth()
    record = snapshots_at(collector, last)["DU1234567"]
    assert record["underlyings"]["ES"]["completeness"]["net_beta_delta"]["reasons"] == {
        "no_beta": 2  # the future and the option on it
    }
    assert record["underlyings"]["SPY"]["net_beta_delta"] is not None
    assert "ES" not in collector.betas.betas()
    assert_figures_equal(record, truth["DU1234567"], rel=1e-9)


async def test_an_account_of_stocks_alone_has_an_input_age(
    serve: Callable[..., Awaitable[Collector]],
) -> None:
    """DU7654321 holds SPY shares only: the stalest-input age is their price's (it was null:
    only option Greeks had an age), and with the market frozen it grows from tick to tick."""
    scenario = load(None)
    positions = {**scenario.positions, "DU7654321": {756733: -100.0}}
    market = _frozen(dataclasses.replace(scenario, positions=positions))
    collector = await serve(market)
    assert await collector.connect_once()
    last = await settle(collector, market.truth, 700)
    first = snapshots_at(collector, last)["DU7654321"]["stalest_greek_age_s"]
    await collector.tick_once(last + 1)
    later = snapshots_at(collector, last + 1)["DU7654321"]["stalest_greek_age_s"]
    assert first is not None
    assert later > first >= 0


SAP = 14204
EUR_USD = 12087792


def _with_a_eur_stock(*, fx_beta: float) -> Scenario:
    """The default scenario plus SAP in EUR on IBIS (held by DU1234567), whose bars are in EUR
    (its USD path at the day's EUR.USD rate) with five German holidays SPY trades through, and
    the EUR.USD pair whose daily moves follow SPY's by `fx_beta`."""
    scenario = load(None)
    eur = Underlying(
        EUR_USD, "EUR", "CASH", "IDEALPRO", "IDEALPRO", spot=1.0825, vol=0.08,
        currency="USD", beta=fx_beta, idiosyncratic_vol=0.08,
    )  # fmt: skip
    sap = Underlying(
        SAP, "SAP", "STK", "SMART", "IBIS", spot=200.0, vol=0.25, currency="EUR", beta=1.1,
        idiosyncratic_vol=0.15, closed_days=(5, 40, 41, 120, 200), fx_bars=True,
    )  # fmt: skip
    return dataclasses.replace(
        scenario,
        underlyings=(*scenario.underlyings, eur, sap),
        positions={
            **scenario.positions,
            "DU1234567": {**scenario.positions["DU1234567"], SAP: 100.0},
        },
        exchange_rates={"USD": {"EUR": 1.0825}},
    )


async def test_a_eur_underlying_is_regressed_in_usd_over_days_both_traded(
    serve: Callable[..., Awaitable[Collector]],
) -> None:
    """SAP's bars are in EUR and miss five days SPY has: its beta is its USD returns' slope on
    SPY's over the days both traded (the simulator's truth, from the returns it made, not from
    the bars). Regressed in EUR, as before, it is lower by about EUR.USD's own beta on SPY
    (0.3), the bias this removes."""
    market = _frozen(_with_a_eur_stock(fx_beta=0.3))
    truth_beta = market.beta("SAP")
    assert truth_beta is not None
    collector = await serve(market)
    assert await collector.connect_once()
    last = await settle(collector, market.truth, 200)
    assert collector.betas.betas()["SAP"] == pytest.approx(truth_beta, rel=2e-3)
    record = snapshots_at(collector, last)["DU1234567"]["underlyings"]["SAP"]
    expected = market.truth()["DU1234567"]["underlyings"]["SAP"]
    assert record["net_beta_delta"] == pytest.approx(expected["net_beta_delta"], rel=2e-3)
    # the bias, measured on the same bars: in local currency the slope is far off
    local = beta_of(market_bars(market, SAP), market_bars(market, 756733))
    assert local is not None
    assert truth_beta - local.beta > 0.15


def market_bars(market: Market, conid: int) -> list[Bar]:
    """The simulator's served bars as the collector reads them (date, close)."""
    bars = market.bars(conid)
    assert bars is not None
    return [Bar(bar.day, bar.close) for bar in bars]


async def test_after_the_fallback_to_delayed_data_every_figure_says_delayed(
    serve: Callable[..., Awaitable[Collector]],
) -> None:
    """Live data not subscribed (354): the collector asks for delayed data (reqMarketDataType
    3), the gateway serves it (marketDataType 3), and once every position the truth counts has
    come in, every figure of every account counts each contributing position as delayed."""
    market = _frozen(load(None))
    market.faults.market_data_error = 354
    collector = await serve(market)
    assert await collector.connect_once()
    source = collector.source
    assert isinstance(source, SocketSource)

    truth = market.truth()

    def ready(records: dict[str, dict[str, Any]]) -> bool:
        """Every figure has as many positions contributing as the truth says it can."""
        return set(records) == set(truth) and all(
            counts["contributing"] == truth[account]["completeness"][name]["contributing"]
            for account, record in records.items()
            for name, counts in record["completeness"].items()
        )

    for index in range(700, 760):
        await collector.tick_once(index)
        records = snapshots_at(collector, index)
        if ready(records):
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_next_update(source), 1.0)
    else:
        pytest.fail("no tick with every position contributing")
    assert source.market_data_type == 3
    for account, record in records.items():
        for name, counts in record["completeness"].items():
            expected = {"delayed": counts["contributing"]} if counts["contributing"] else None
            assert counts.get("market_data") == expected, (account, name)


async def _next_update(source: SocketSource) -> None:
    await source.ib.updateEvent


SIE = 14205
EARLY = 0.69  # Eurex's 17:30 CET is 4.5 h of NYSE's 6.5-h day before its 16:00 ET close


def _with_an_early_closing_stock() -> Scenario:
    """The default scenario plus a stock that closes with Eurex (`close_before_benchmark`
    0.69), held by DU1234567; in USD, so only its closing time differs from SPY's."""
    scenario = load(None)
    sie = Underlying(
        SIE, "SIE", "STK", "SMART", "IBIS", spot=180.0, vol=0.25, beta=1.1,
        idiosyncratic_vol=0.15, close_before_benchmark=EARLY,
    )  # fmt: skip
    return dataclasses.replace(
        scenario,
        underlyings=(*scenario.underlyings, sie),
        positions={
            **scenario.positions,
            "DU1234567": {**scenario.positions["DU1234567"], SIE: 100.0},
        },
    )


async def test_a_close_before_the_benchmarks_leaves_the_same_day_beta_low(
    serve: Callable[..., Awaitable[Collector]],
) -> None:
    """SIE closes 0.69 of SPY's day before it: the same-day regression (the default) sees only
    the part of each day's market move made before its close, and falls well short of the
    truth (the slope its returns would have on SPY's had it closed with SPY): about 0.4 of it,
    more than 0.6 below it on each of 40 weekly dates tried (docs/ibkr-conventions.md)."""
    market = _frozen(_with_an_early_closing_stock())
    truth_beta = market.beta("SIE")
    assert truth_beta is not None
    collector = await serve(market)
    assert await collector.connect_once()
    await settle(collector, market.truth, 200)
    assert truth_beta - collector.betas.betas()["SIE"] > 0.5


async def test_with_bridge_beta_lagged_an_early_close_gives_the_true_beta(
    serve: Callable[..., Awaitable[Collector]],
) -> None:
    """BRIDGE_BETA_LAGGED: Dimson's beta (same-day and previous-day slopes summed) of the same
    bars is the truth within 0.1 (within 0.026 on each of 40 weekly dates tried), where the
    same-day one was more than 0.5 below; SPY's own stays exactly 1."""
    market = _frozen(_with_an_early_closing_stock())
    truth_beta = market.beta("SIE")
    assert truth_beta is not None
    collector = await serve(market, BRIDGE_BETA_LAGGED="true")
    assert await collector.connect_once()
    await settle(collector, market.truth, 200)
    betas = collector.betas.betas()
    assert betas["SIE"] == pytest.approx(truth_beta, abs=0.1)
    assert betas["SPY"] == pytest.approx(1.0, abs=1e-9)
