"""reqPnLSingle in either currency IBKR leaves open (docs/pnl-explain.md, "Actual"): the
position's own by default, the account's base one with the `pnl_single_in_base` fault, both
marked from the simulator's price paths; read with ib_async, unmodified."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from ib_async import IB

from simulator.model import Market
from simulator.scenario import load
from tests.simulator.ib_clients import until


@pytest.fixture
def market() -> Market:
    """The explain scenario: a USD account holding Nikkei options in JPY."""
    return Market(load(Path("explain")))


@pytest.mark.parametrize("in_base", [False, True], ids=["position ccy", "base ccy"])
async def test_a_yen_positions_pnl_comes_in_the_chosen_currency(
    ib: IB, market: Market, in_base: bool
) -> None:
    """The yen position's daily P&L, unrealized P&L and value: as the simulator marks them in
    yen, or those times the account's rate for the yen (0.0067 USD) with the fault."""
    market.freeze()
    market.faults.pnl_single_in_base = in_base
    account = next(a for a in market.accounts() if market.base_currency(a) == "USD")
    position = next(p for p in market.positions(account) if p.instrument.currency == "JPY")
    rate = market.exchange_rate(account, "JPY") if in_base else 1.0
    assert rate is not None
    own = market.valuation(position)
    pnl = ib.reqPnLSingle(account, "", position.instrument.conid)
    await until(ib, lambda: not math.isnan(pnl.value))
    assert pnl.value == pytest.approx(own.market_value * rate, abs=0.005)
    assert pnl.dailyPnL == pytest.approx(own.daily_pnl * rate, abs=0.005)
    assert pnl.unrealizedPnL == pytest.approx(own.unrealized_pnl * rate, abs=0.005)
