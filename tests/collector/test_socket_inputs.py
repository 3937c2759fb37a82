"""SOCKET inputs: per-currency account values prefixed `$LEDGER` (the TWS setting of the 2026
API release notes, the simulator's `ledger_prefix`), and a beta's minimum sample (an
underlying with a short history, the simulator's `history_days`)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collector.collector import Collector
from collector.settings import CollectorSettings
from simulator.model import Market
from simulator.scenario import load
from simulator.tws import SocketGateway
from tests.collector.conftest import snapshots_at
from tests.collector.trader import assert_figures_equal, settle


@pytest.fixture
def market() -> Market:
    """The trader's scenario (two base currencies), frozen, with `$LEDGER:`-prefixed keys."""
    market = Market(dataclasses.replace(load(Path("trader")), ledger_prefix=True))
    market.freeze()
    return market


async def test_ledger_prefixed_exchange_rates_convert_every_position(
    collector: Collector, market: Market
) -> None:
    """Every rate arrives as "$LEDGER:ExchangeRate": positions in the other currency are
    converted (not no_fx_rate) and every figure equals the truth."""
    assert await collector.connect_once()
    last = await settle(collector, market.truth, 100)
    truth = market.truth()
    for account, record in snapshots_at(collector, last).items():
        for name in ("net_dollar_delta", "net_theta"):
            assert "no_fx_rate" not in record["completeness"][name]["reasons"], account
        assert_figures_equal(record, truth[account], rel=1e-9)


@pytest.fixture
def short_history_market() -> Market:
    """The default scenario, frozen, ES with 30 daily bars (29 returns): too few for a beta."""
    scenario = load(None)
    underlyings = tuple(
        dataclasses.replace(item, history_days=30) if item.symbol == "ES" else item
        for item in scenario.underlyings
    )
    market = Market(dataclasses.replace(scenario, underlyings=underlyings))
    market.freeze()
    return market


@pytest.fixture
async def short_history_collector(
    short_history_market: Market, collector_environ: dict[str, str]
) -> AsyncIterator[Collector]:
    gateway = SocketGateway(short_history_market, tick_interval_s=0.05)
    await gateway.start("127.0.0.1", 0)
    collector = Collector(
        CollectorSettings.from_environ({**collector_environ, "IB_PORT": str(gateway.port)})
    )
    collector.open()
    yield collector
    await collector.close()
    await gateway.stop()


async def test_a_beta_from_fewer_than_60_returns_is_no_beta(
    short_history_collector: Collector, short_history_market: Market
) -> None:
    """ES has 29 daily returns: it is missing with no_beta in beta delta (the regression is not
    used), while SPY's options, with a year of bars, contribute; every figure equals the truth."""
    collector, market = short_history_collector, short_history_market
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
