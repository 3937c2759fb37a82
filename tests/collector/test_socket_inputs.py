"""SOCKET inputs whose form changed: per-currency account values prefixed `$LEDGER` (the TWS
setting of the 2026 API release notes), served by the simulator's `ledger_prefix` option."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from collector.collector import Collector
from simulator.model import Market
from simulator.scenario import load
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
