"""The simulator's own scenario pricing and grid: hand-worked, apart from the collector's."""

from __future__ import annotations

import math

import pytest

from simulator.pricing import RATE, american, black_76, black_76_greeks, black_scholes, european
from simulator.scenario_truth import Revaluable, account_scenarios, position_grid
from simulator.truth import Exposure


def test_black_76_put_call_parity() -> None:
    """C - P = e^(-rT) (F - K) for options on a future."""
    call = black_76(future=105, strike=100, years=0.5, vol=0.3, call=True)
    put = black_76(future=105, strike=100, years=0.5, vol=0.3, call=False)
    assert call - put == pytest.approx(math.exp(-RATE * 0.5) * 5, abs=1e-9)


@pytest.mark.parametrize(
    ("call", "price", "delta", "theta"),
    [
        # F = 105, K = 100, T = 0.5, vol 30 %, r = 4 %: d1 = 0.336066, d2 = 0.123934,
        # e^(-rT) = 0.980199; theta = rV - e^(-rT) F pdf(d1) vol / (2 sqrt T), per day.
        (True, 11.159827, 0.619083, -0.0213299),
        (False, 6.258834, -0.361116, -0.0218670),
    ],
)
def test_black_76_greeks_by_hand(call: bool, price: float, delta: float, theta: float) -> None:
    """Black-76's value and Greeks of options on a future; gamma e^(-rT) pdf(d1) / (F vol
    sqrt T) = 0.0165922 and vega e^(-rT) F pdf(d1) sqrt T / 100 = 0.274394 for both rights."""
    value = black_76_greeks(future=105, strike=100, years=0.5, vol=0.3, call=call)
    assert value.price == pytest.approx(price, abs=1e-6)
    assert value.price == pytest.approx(
        black_76(future=105, strike=100, years=0.5, vol=0.3, call=call), rel=1e-12
    )
    assert value.delta == pytest.approx(delta, abs=1e-6)
    assert value.gamma == pytest.approx(0.0165922, abs=1e-7)
    assert value.theta == pytest.approx(theta, abs=1e-7)
    assert value.vega == pytest.approx(0.274394, abs=1e-6)


def test_the_tree_prices_an_american_put_above_the_european() -> None:
    """The early exercise premium is positive for a put; a call on a stock without dividends
    is worth the European price (never exercised early), to the tree's accuracy."""
    european_put = black_scholes(spot=100, strike=100, years=1, vol=0.2, call=False).price
    assert american(spot=100, strike=100, years=1, vol=0.2, call=False) > european_put + 0.3
    call = american(spot=100, strike=100, years=1, vol=0.2, call=True)
    european_call = black_scholes(spot=100, strike=100, years=1, vol=0.2, call=True).price
    assert call == pytest.approx(european_call, abs=2e-3)


def test_the_tree_converges() -> None:
    """BBSR at 100/50 steps is within 2e-3 of 400/200 steps (S = K = 100, 1 y, 20 %)."""
    fine = american(spot=100, strike=100, years=1, vol=0.2, call=False, steps=400)
    assert american(spot=100, strike=100, years=1, vol=0.2, call=False) == pytest.approx(
        fine, abs=2e-3
    )


def test_an_option_past_expiry_is_worth_its_intrinsic_value() -> None:
    """A put struck at 100 on a stock at 90, a day later past expiry: 10."""
    assert european(spot=90, strike=100, years=-0.001, vol=0.2, call=False) == 10.0
    assert american(spot=90, strike=100, years=0.0, vol=0.2, call=False) == 10.0


def test_a_grid_of_a_stock_and_an_index_call() -> None:
    """100 shares at 50 (fx 0.9): +10 % is 450; an index call x 100: BS difference x 100."""
    stock = Revaluable(Exposure("X", "STK", 100, 1.0, 1, 0.9, 50.0, beta=2.0))
    grid = position_grid(stock)
    assert isinstance(grid, list)
    assert grid[18] == pytest.approx(450.0)  # day 0, vol 0, +10 %
    call = Revaluable(Exposure("SPX", "OPT", 1, 100.0, 1, 1.0, 5000.0), "IND", "C", 5000.0,
                      0.1, 0.2)  # fmt: skip
    grid = position_grid(call)
    assert isinstance(grid, list)
    now = black_scholes(spot=5000, strike=5000, years=0.1, vol=0.2, call=True).price
    later = black_scholes(spot=5500, strike=5000, years=0.1 - 1 / 365, vol=0.25, call=True).price
    assert grid[30 + 20 + 8] == pytest.approx((later - now) * 100)  # day 1, +5 points, +10 %
    result = account_scenarios([stock, call])
    assert result["beta_grid"] is not None
    assert result["completeness"]["beta_grid"]["reasons"] == {"no_beta": 1}
    assert result["beta_grid"][18] == pytest.approx(900.0)  # the stock alone, 2 x 10 %


def test_an_option_without_implied_vol_is_missing_never_zero() -> None:
    """Its grid is a reason; an account of it alone has no grid (None)."""
    option = Revaluable(Exposure("X", "OPT", 1, 100.0, 1, 1.0, 50.0), "STK", "P", 50.0, 0.1)
    assert position_grid(option) == "no_implied_vol"
    assert account_scenarios([option])["grid"] is None
