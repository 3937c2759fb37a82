"""The gateway's own beta-weighted delta (Portal field 7696) summed beside ours, over the same
positions: tables worked by hand. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collector.greeks import (
    AccountContext,
    Holding,
    OptionGreeks,
    aggregate,
    gateway_in_benchmark_shares,
)
from collector.portal_values import parse_snapshot_item

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
USD = AccountContext("USD", {}, {"AAPL": 1.2, "ZC": 0.1}, benchmark_price=500.0)
CALL_GREEKS = OptionGreeks(0.4, 0.02, -0.05, 0.2, 200.0, NOW)


def test_the_gateways_figure_is_7696_times_quantity_and_multiplier() -> None:
    """100 shares at 0.041 and a short call (1 x 100) at 0.016: 4.1 - 1.6 = 2.5 SPX units; a
    cents-quoted future (2 x 5000 at 0.0007, SPX units already) takes no magnifier: + 7."""
    stock = Holding(1, "AAPL", "STK", 100, 1.0, "USD", price=200.0, gateway_spx_delta=0.041)
    call = Holding(2, "AAPL", "OPT", -1, 100.0, "USD", greeks=CALL_GREEKS, gateway_spx_delta=0.016)
    corn = Holding(
        3, "ZC", "FUT", 2, 5000.0, "USD", magnifier=100.0, price=450.0, gateway_spx_delta=0.0007
    )
    figures = aggregate([stock, call, corn], USD, NOW)
    assert figures.gateway_beta_delta == pytest.approx(4.1 - 1.6 + 7.0)


def test_a_position_in_our_beta_delta_without_7696_leaves_it_null() -> None:
    """The call has no 7696: the gateway's sum would leave it out, so it is no total at all."""
    stock = Holding(1, "AAPL", "STK", 100, 1.0, "USD", price=200.0, gateway_spx_delta=0.041)
    call = Holding(2, "AAPL", "OPT", -1, 100.0, "USD", greeks=CALL_GREEKS)
    assert aggregate([stock, call], USD, NOW).gateway_beta_delta is None


def test_positions_outside_our_beta_delta_do_not_count() -> None:
    """A stock without a beta is not in net_beta_delta, so neither its 7696 nor its lack of
    one changes the gateway's figure: 100 x 0.041."""
    stock = Holding(1, "AAPL", "STK", 100, 1.0, "USD", price=200.0, gateway_spx_delta=0.041)
    no_beta = Holding(4, "XYZ", "STK", 10, 1.0, "USD", price=50.0)
    assert aggregate([stock, no_beta], USD, NOW).gateway_beta_delta == pytest.approx(4.1)


def test_socket_holdings_have_no_gateway_figure() -> None:
    """Nothing sent 7696: null, never 0."""
    stock = Holding(1, "AAPL", "STK", 100, 1.0, "USD", price=200.0)
    assert aggregate([stock], USD, NOW).gateway_beta_delta is None


def test_7696_is_read_from_the_snapshot() -> None:
    """A rounded string like every Greek."""
    quote = parse_snapshot_item({"conid": 1, "31": "2.61", "7696": "-0.016"})
    assert quote is not None
    assert quote.spx_delta == pytest.approx(-0.016)


def test_the_gateways_figure_in_benchmark_shares_is_worked_through_spx_in_money() -> None:
    """A EUR account (0.9 EUR a dollar), SPY at 600 in USD: 2.5 SPX units (100 AAPL at
    0.041, a short call at 0.016) x 6,000 = 15,000 beta-weighted dollars, 13,500 EUR, / (600 x
    0.9) = 25 SPY shares, in the unit of our net_beta_delta."""
    eur = AccountContext(
        "EUR", {"USD": 0.9}, {"AAPL": 1.2}, benchmark_price=600.0, spx_price=6000.0
    )
    stock = Holding(1, "AAPL", "STK", 100, 1.0, "USD", price=200.0, gateway_spx_delta=0.041)
    call = Holding(2, "AAPL", "OPT", -1, 100.0, "USD", greeks=CALL_GREEKS, gateway_spx_delta=0.016)
    figures = aggregate([stock, call], eur, NOW)
    assert figures.gateway_beta_delta == pytest.approx(2.5)
    assert figures.gateway_beta_delta_benchmark_shares == pytest.approx(25.0)


@pytest.mark.parametrize(
    "context",
    [
        AccountContext("USD", {}, {}, benchmark_price=600.0),  # SPX's price unknown
        AccountContext("EUR", {}, {}, benchmark_price=600.0, spx_price=6000.0),  # no USD rate
        AccountContext("USD", {}, {}, spx_price=6000.0),  # the benchmark's price unknown
    ],
)
def test_without_spxs_price_or_a_rate_the_gateways_figure_has_no_benchmark_shares(
    context: AccountContext,
) -> None:
    """Unknown, never SPX units x 10: SPX over SPY is near 10, not 10."""
    assert gateway_in_benchmark_shares(2.5, context) is None
    assert gateway_in_benchmark_shares(None, USD) is None
