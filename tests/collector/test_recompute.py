"""The Greeks the Portal's rounding destroys, recomputed: which are (by hand), the model's
Greeks worked by hand against Black-Scholes and Black-76, the model confirming or contradicting
the stated value, the completeness saying `recomputed` and `model_disagrees`, and the kept
inputs sparing a second pricing. No I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from collector.greeks import (
    AccountContext,
    Holding,
    OptionGreeks,
    OptionTerms,
    aggregate,
    destroyed_by_rounding,
    with_model_greeks,
)
from collector.recompute import GreekRecomputer
from collector.revaluation import Market, ModelGreeks, model_greeks

# 16:00 New York on 3 January 2028 is 21:00 UTC: exactly 365 days after NOW, one year.
NOW = datetime(2027, 1, 3, 21, 0, tzinfo=UTC)
EXPIRY = date(2028, 1, 3)
MARKET = Market(rate=0.04)
USD = AccountContext("USD", {}, {"AAPL": 1.2}, benchmark_price=500.0)
# The Portal's rounding: Greeks to 3 decimals, the price to the cent.
PORTAL_ERRORS = (0.0005, 0.0005, 0.0005, 0.0005, 0.005)
# S = K = 100, one year, vol 20 %, r = 4 %: d1 = (0.04 + 0.02) / 0.2 = 0.3, d2 = 0.1;
# pdf(0.3) = 0.381388, N(0.3) = 0.617911, N(0.1) = 0.539828, e^-0.04 = 0.960789.
CALL_DELTA = 0.617911  # N(d1)
CALL_GAMMA = 0.0190694  # pdf(d1) / (S vol) = 0.381388 / 20
CALL_THETA = -0.0161330  # (-S pdf vol / 2 - r K e^-rT N(d2)) / 365 = (-3.81388 - 2.07466) / 365
VEGA = 0.381388  # S pdf(d1) / 100


def _option(
    stated: tuple[float, float, float, float],
    *,
    right: str = "C",
    underlying: str = "STK",
    sec_type: str = "OPT",
    vol: float | None = 0.2,
    errors: tuple[float, float, float, float, float] = PORTAL_ERRORS,
    vol_error: float = 0.0,
) -> Holding:
    """One AAPL option struck at 100, the underlying at 100, expiring in a year."""
    greeks = OptionGreeks(*stated, 100.0, NOW, errors)
    terms = OptionTerms(right, 100.0, EXPIRY, None, underlying, vol, None, vol_error)  # type: ignore[arg-type]
    return Holding(7, "AAPL", sec_type, 1, 100.0, "USD", greeks=greeks, terms=terms)


@pytest.mark.parametrize(
    ("value", "error", "destroyed"),
    [
        (0.019, 0.0005, True),  # 2.6 %
        (0.000, 0.0005, True),  # "0.000": a gamma below 0.0005, no digit at all
        (-0.016, 0.0005, True),  # 3.1 %
        (0.050, 0.0005, False),  # exactly 1 %: not above it
        (0.618, 0.0005, False),  # 0.08 %
        (-2.000, 0.0005, False),
        (0.0, 0.0, False),  # the socket's: exact
        (None, 0.0005, False),  # unknown: nothing to recompute
    ],
)
def test_which_greeks_the_rounding_destroys(
    value: float | None, error: float, destroyed: bool
) -> None:
    """A Greek whose rounding exceeds 1 % of it: fewer than two significant digits left."""
    assert destroyed_by_rounding(value, error) is destroyed


def test_the_models_greeks_of_a_european_call_by_hand() -> None:
    """An equity call without dividends is never exercised early: Black-Scholes' Greeks
    (module constants), by central differences to 1e-6 of each."""
    model = model_greeks(_option((0.618, 0.019, -0.016, 0.381)), MARKET, NOW)
    assert isinstance(model, ModelGreeks)
    assert model.values == pytest.approx((CALL_DELTA, CALL_GAMMA, CALL_THETA, VEGA), rel=1e-5)
    # No implied vol error; the price's 0.005 moves gamma by |d gamma / dS| x 0.005 =
    # gamma (1 + d1 / (vol sqrt T)) / S x 0.005 = gamma x 2.5 x 0.00005
    assert model.errors[1] == pytest.approx(CALL_GAMMA * 2.5 * 0.00005, rel=1e-3)


def test_the_models_greeks_of_a_futures_option_are_black_76s() -> None:
    """A futures option (F = K = 100, a year, 20 %): gamma e^-rT pdf(d1) / (F vol sqrt T)
    with d1 = vol sqrt T / 2 = 0.1: 0.960789 x 0.396953 / 20 = 0.0190696; delta e^-rT N(0.1)
    = 0.518656."""
    option = _option((0.519, 0.019, -0.015, 0.381), underlying="FUT", sec_type="FOP")
    model = model_greeks(option, MARKET, NOW)
    assert isinstance(model, ModelGreeks)
    assert model.delta == pytest.approx(0.960789 * 0.539828, rel=1e-5)
    assert model.gamma == pytest.approx(0.960789 * 0.396953 / 20, rel=1e-5)


def test_an_american_put_is_worth_more_gamma_than_the_european() -> None:
    """QD+ prices the put's early exercise: its delta is further from 0 and its gamma larger
    than Black-Scholes' (N(0.3) - 1 = -0.382089; gamma 0.0190694): the model difference
    docs/ibkr-conventions.md measures."""
    model = model_greeks(_option((-0.382, 0.019, -0.006, 0.381), right="P"), MARKET, NOW)
    assert isinstance(model, ModelGreeks)
    assert model.delta < -0.382089 - 0.01
    assert model.gamma > CALL_GAMMA * 1.05


def test_the_implied_vols_rounding_is_the_recomputed_greeks_error() -> None:
    """7633 "20.00%" is 20 % +- 0.005 points: gamma's error is its change over 0.00005 of vol,
    d gamma / d vol x 0.00005 (+ the price's part), close to gamma x (d1 d2 - 1) / vol x it."""
    exact = model_greeks(_option((0.618, 0.019, -0.016, 0.381), vol_error=0.00005), MARKET, NOW)
    priced_only = model_greeks(_option((0.618, 0.019, -0.016, 0.381)), MARKET, NOW)
    assert isinstance(exact, ModelGreeks)
    assert isinstance(priced_only, ModelGreeks)
    by_vol = CALL_GAMMA * abs(0.3 * 0.1 - 1) / 0.2 * 0.00005
    assert exact.errors[1] - priced_only.errors[1] == pytest.approx(by_vol, rel=1e-2)


@pytest.mark.parametrize(
    ("stated", "model", "values", "recomputed", "disagreed"),
    [
        # gamma "0.019" and theta "-0.016" destroyed, the model's within their rounding
        (
            (0.618, 0.019, -0.016, 0.381),
            (0.6179, 0.01907, -0.01613, 0.3814),
            (0.618, 0.01907, -0.01613, 0.381),
            {"gamma", "theta"},
            set(),
        ),
        # gamma "0.000" (the SPX option's), the model's 0.00116 outside it: kept, disagreed
        (
            (0.432, 0.0, -2.0, 7.123),
            (0.47, 0.00116, -1.5, 7.0),
            (0.432, 0.0, -2.0, 7.123),
            set(),
            {"gamma"},
        ),
        # nothing destroyed: as stated whatever the model says
        (
            (0.618, 0.05, -2.0, 7.123),
            (0.5, 0.04, -1.0, 7.0),
            (0.618, 0.05, -2.0, 7.123),
            set(),
            set(),
        ),
    ],
)
def test_the_model_replaces_a_destroyed_greek_only_within_its_rounding(
    stated: tuple[float, float, float, float],
    model: tuple[float, float, float, float],
    values: tuple[float, float, float, float],
    recomputed: set[str],
    disagreed: set[str],
) -> None:
    """The stated rounded value bounds the gateway's exact one: a model outside that interval
    is wrong there (its rate, dividends or exercise differ), so the stated value stays. A
    replaced Greek takes the model's error (here 1e-6 each)."""
    greeks = with_model_greeks(
        OptionGreeks(*stated, 100.0, NOW, PORTAL_ERRORS), model, (1e-6, 1e-6, 1e-6, 1e-6)
    )
    assert greeks.values == pytest.approx(values)
    assert greeks.recomputed == recomputed
    assert greeks.disagreed == disagreed
    expected = [
        1e-6 if name in recomputed else 0.0005 for name in ("delta", "gamma", "theta", "vega")
    ]
    assert greeks.errors == pytest.approx((*expected, 0.005))


def test_completeness_counts_the_recomputed_and_the_disagreeing() -> None:
    """Two options: one whose gamma and theta the model gives, one (gamma "0.000") it
    contradicts. Gamma figures count 1 recomputed and 1 model_disagrees, theta 1 recomputed,
    delta and vega neither; the recomputed gamma's bound is its inputs' rounding only, so the
    figure is imprecise for the kept "0.000" alone."""
    recomputer = GreekRecomputer(MARKET)
    good = _option((0.618, 0.019, -0.016, 0.381), vol_error=0.00005)
    far = _option((0.001, 0.0, -0.001, 0.002), vol=0.2)
    holdings = recomputer.apply({"U1": [good, far]}, NOW)["U1"]
    assert holdings[0].greeks is not None
    assert holdings[0].greeks.recomputed == {"gamma", "theta"}
    counts = aggregate(holdings, USD, NOW).net["completeness"]
    assert counts["net_dollar_gamma"]["recomputed"] == 1
    assert counts["net_dollar_gamma"]["model_disagrees"] == 1
    assert counts["net_theta"]["recomputed"] == 1
    for name in ("net_dollar_delta", "net_vega", "net_beta_delta"):
        assert "recomputed" not in counts[name], name
    per_underlying = aggregate(holdings, USD, NOW).underlyings["AAPL"]["completeness"]
    assert per_underlying["net_gamma"]["recomputed"] == 1


def test_unchanged_inputs_are_priced_once_and_exact_greeks_never() -> None:
    """The same stated values on the next tick cost no pricing, even with a new price of the
    option itself (the model does not read it); a new underlying price does.
    The socket's Greeks (no error) are returned as they are, never priced."""
    recomputer = GreekRecomputer(MARKET)
    option = _option((0.618, 0.019, -0.016, 0.381))
    first = recomputer.apply({"U1": [option], "U2": [option]}, NOW)
    assert option.terms is not None
    quoted = replace(option, terms=replace(option.terms, option_price=8.05))
    second = recomputer.apply({"U1": [quoted]}, NOW)  # its own price is not the model's input
    assert recomputer.pricings == 1
    assert first["U1"][0].greeks == first["U2"][0].greeks == second["U1"][0].greeks
    moved = _option((0.618, 0.019, -0.016, 0.381))
    assert moved.greeks is not None
    moved = replace(moved, greeks=replace(moved.greeks, underlying_price=100.01))
    recomputer.apply({"U1": [moved]}, NOW)
    assert recomputer.pricings == 2
    socket = _option((CALL_DELTA, CALL_GAMMA, CALL_THETA, VEGA), errors=(0.0,) * 5)
    assert recomputer.apply({"U1": [socket]}, NOW)["U1"][0] is socket
    assert recomputer.pricings == 2


def test_an_option_the_model_cannot_price_keeps_its_stated_greeks() -> None:
    """No implied vol: nothing to price it with; the stated (rounded) Greeks stay."""
    option = _option((0.618, 0.019, -0.016, 0.381), vol=None)
    assert GreekRecomputer(MARKET).apply({"U1": [option]}, NOW)["U1"][0] is option
