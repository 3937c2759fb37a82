"""What rounding costs a figure: the error a gateway string states, a position's bound worked by
hand, and the account's completeness saying `rounding_bound` and `imprecise`. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collector.greeks import (
    IMPRECISE_SHARE,
    AccountContext,
    Holding,
    OptionGreeks,
    aggregate,
    position_figures,
    position_rounding_bounds,
)
from collector.portal_values import parse_snapshot_item, rounding_error

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
# The Portal's rounding: Greeks to 3 decimals, prices to the cent (docs/ibkr-conventions.md).
PORTAL_ERRORS = (0.0005, 0.0005, 0.0005, 0.0005, 0.005)
USD = AccountContext("USD", {}, {"AAPL": 1.2}, benchmark_price=500.0, benchmark_price_error=0.005)


def _call(gamma: float, errors: tuple[float, float, float, float, float]) -> Holding:
    """A short AAPL call (1 x 100) with the underlying at 200."""
    greeks = OptionGreeks(0.4, gamma, -0.05, 0.2, 200.0, NOW, errors)
    return Holding(2, "AAPL", "OPT", -1, 100.0, "USD", greeks=greeks)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.271", 0.0005),
        ("0.000", 0.0005),
        ("-2.000", 0.0005),
        ("-2", 0.5),
        ("168.42", 0.005),
        ("C168.42", 0.005),
        ("1,300", 0.5),
        ("10.2K", 50.0),
        ("45.10%", 0.005),
        ("1.5e-3", 0.00005),
        (0.271, 0.0),  # a JSON number states no decimals
        ("N/A", 0.0),  # unknown, not imprecise
        (None, 0.0),
    ],
)
def test_the_error_a_gateway_string_states(raw: object, expected: float) -> None:
    """Half a unit of the last decimal the string states, scaled by its suffix."""
    assert rounding_error(raw) == pytest.approx(expected, rel=1e-12)


def test_a_snapshot_item_carries_each_values_error() -> None:
    """The Greeks' errors in (delta, gamma, theta, vega) order; a midpoint's is its wider
    side's, a mark's its own."""
    quote = parse_snapshot_item(
        {
            "conid": 1,
            "84": "2.6",
            "86": "2.67",
            "7308": "0.27",
            "7309": "0.022",
            "7310": "-1",
            "7311": "0.1430",
        }
    )
    assert quote is not None
    assert quote.greek_errors == pytest.approx((0.005, 0.0005, 0.5, 0.00005))
    assert quote.price_error == pytest.approx(0.05)
    marked = parse_snapshot_item({"conid": 1, "84": "2.6", "86": "2.67", "7635": "2.635"})
    assert marked is not None
    assert marked.price_error == pytest.approx(0.0005)


def test_one_options_bounds_worked_by_hand() -> None:
    """Each factor widened by its error, less the product as stated (size 1 x 100 = 100):
    delta (0.4005 x 200.005 - 0.4 x 200) x 100; gamma 0.01 x (0.0205 x 200.005² - 0.02 x 200²)
    x 100; theta and vega 0.0005 x 100; beta delta 1.2 x ((8000 + the delta bound) / 499.995
    - 8000 / 500)."""
    holding = _call(0.02, PORTAL_ERRORS)
    bounds = position_rounding_bounds(holding, USD, position_figures(holding, USD))
    delta_bound = (0.4005 * 200.005 - 0.4 * 200) * 100
    assert bounds == pytest.approx(
        {
            "net_dollar_delta": delta_bound,
            "net_dollar_gamma": 0.01 * (0.0205 * 200.005**2 - 0.02 * 200**2) * 100,
            "net_theta": 0.05,
            "net_vega": 0.05,
            "net_beta_delta": 1.2 * ((8000 + delta_bound) / 499.995 - 8000 / 500),
        },
        rel=1e-9,
    )


def test_a_linear_positions_bound_is_its_prices_error() -> None:
    """100 shares at a price stated to the cent: 100 x 0.005 of dollar delta."""
    stock = Holding(1, "AAPL", "STK", 100, 1.0, "USD", price=200.0, price_error=0.005)
    bounds = position_rounding_bounds(stock, USD, position_figures(stock, USD))
    assert bounds["net_dollar_delta"] == pytest.approx(0.5)


def test_a_gamma_read_as_zero_is_imprecise_not_an_exact_zero() -> None:
    """ "0.000" is a gamma below 0.0005: dollar gamma 0 with a bound of 0.01 x 0.0005 x 200.005²
    x 100 (the 0 gamma widened by the price's error), so imprecise."""
    figures = aggregate([_call(0.0, PORTAL_ERRORS)], USD, NOW)
    gamma = figures.net["completeness"]["net_dollar_gamma"]
    assert figures.net["net_dollar_gamma"] == 0.0
    assert gamma["rounding_bound"] == pytest.approx(0.01 * 0.0005 * 200.005**2 * 100)
    assert gamma["imprecise"] is True
    # the same option's underlying says so too
    assert figures.underlyings["AAPL"]["completeness"]["net_gamma"]["imprecise"] is True


def test_a_bound_within_the_stated_share_is_stated_but_not_imprecise() -> None:
    """Vega 0.2 x -100 = -20 with a bound of 0.05: 0.25 %, below IMPRECISE_SHARE."""
    vega = aggregate([_call(0.02, PORTAL_ERRORS)], USD, NOW).net["completeness"]["net_vega"]
    assert vega["rounding_bound"] == pytest.approx(0.05)
    assert IMPRECISE_SHARE > 0.05 / 20
    assert "imprecise" not in vega


def test_exact_inputs_leave_completeness_as_it_was() -> None:
    """The socket's doubles are the model's own: no bound, no flag, counts only."""
    socket = AccountContext("USD", {}, {"AAPL": 1.2}, benchmark_price=500.0)
    figures = aggregate([_call(0.0, (0.0, 0.0, 0.0, 0.0, 0.0))], socket, NOW)
    for counts in figures.net["completeness"].values():
        assert set(counts) == {"contributing", "missing", "reasons"}
