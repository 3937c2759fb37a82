"""Net Greeks from holdings: hand-computed tables, sentinels, and unknown-is-null."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from collector.greeks import (
    Holding,
    OptionGreeks,
    aggregate,
    known_greek,
    known_price,
    parse_multiplier,
    snapshot,
)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _greeks(
    delta: float, gamma: float, theta: float, vega: float, *, und: float = 500.0, age_s: float = 1.0
) -> OptionGreeks:
    return OptionGreeks.cleaned(
        delta=delta,
        gamma=gamma,
        theta=theta,
        vega=vega,
        underlying_price=und,
        received_at=NOW - timedelta(seconds=age_s),
    )


SPY_CALL = Holding(1, "SPY", "OPT", 2, 100.0, greeks=_greeks(0.5, 0.02, -0.1, 0.3))
SPY_PUT_SHORT = Holding(2, "SPY", "OPT", -3, 100.0, greeks=_greeks(-0.4, 0.01, -0.05, 0.2, age_s=4))
SPY_STOCK = Holding(3, "SPY", "STK", 150, 1.0, price=500.0)
ES_FUTURE = Holding(4, "ES", "FUT", -1, 50.0, price=6000.0)
ES_FOP = Holding(5, "ES", "FOP", 1, 50.0, greeks=_greeks(0.3, 0.001, -2.5, 10.0, und=6000.0))
NO_GREEKS = Holding(6, "XYZ", "OPT", 5, 100.0, greeks=None)


@pytest.mark.parametrize(
    ("holdings", "expected"),
    [
        pytest.param(
            [SPY_CALL],
            # 2 x 100 x 0.5 = 100; gamma 2 x 100 x 0.02 = 4; theta -20; vega 60; $delta 100 x 500
            {"net_delta": 100.0, "net_gamma": 4.0, "net_theta": -20.0, "net_vega": 60.0,
             "net_dollar_delta": 50_000.0, "option_count": 1, "options_with_greeks": 1},
            id="one-long-call",
        ),
        pytest.param(
            [SPY_CALL, SPY_PUT_SHORT, SPY_STOCK],
            # delta 100 + (-3 x 100 x -0.4 = 120) + 150 = 370; gamma 4 + (-3) = 1
            # theta -20 + 15 = -5; vega 60 - 60 = 0 (a known zero); $delta 370 x 500
            {"net_delta": 370.0, "net_gamma": 1.0, "net_theta": -5.0, "net_vega": 0.0,
             "net_dollar_delta": 185_000.0, "option_count": 2, "options_with_greeks": 2},
            id="long-call-short-put-stock",
        ),
        pytest.param(
            [ES_FUTURE, ES_FOP],
            # delta -50 + 15 = -35; gamma 0.05; theta -125; vega 500
            # $delta -50 x 6000 + 15 x 6000 = -210000
            {"net_delta": -35.0, "net_gamma": 0.05, "net_theta": -125.0, "net_vega": 500.0,
             "net_dollar_delta": -210_000.0, "option_count": 1, "options_with_greeks": 1},
            id="future-and-futures-option-multiplier-50",
        ),
        pytest.param(
            [NO_GREEKS],
            {"net_delta": None, "net_gamma": None, "net_theta": None, "net_vega": None,
             "net_dollar_delta": None, "option_count": 1, "options_with_greeks": 0},
            id="nothing-known-is-null-never-zero",
        ),
        pytest.param(
            [SPY_STOCK],
            {"net_delta": 150.0, "net_gamma": None, "net_theta": None, "net_vega": None,
             "net_dollar_delta": 75_000.0, "option_count": 0, "options_with_greeks": 0},
            id="stock-only-has-no-option-greeks",
        ),
        pytest.param(
            [SPY_CALL, NO_GREEKS],
            {"net_delta": 100.0, "net_gamma": 4.0, "net_theta": -20.0, "net_vega": 60.0,
             "net_dollar_delta": 50_000.0, "option_count": 2, "options_with_greeks": 1},
            id="option-without-greeks-is-counted-not-summed",
        ),
        pytest.param(
            [Holding(7, "QQQ", "OPT", 1, None, greeks=_greeks(0.5, 0.1, -0.1, 0.1))],
            {"net_delta": None, "net_gamma": None, "net_theta": None, "net_vega": None,
             "net_dollar_delta": None, "option_count": 1, "options_with_greeks": 0},
            id="unknown-multiplier-contributes-nothing",
        ),
        pytest.param(
            [Holding(8, "SPY", "OPT", 0, 100.0, greeks=_greeks(0.5, 0.1, -0.1, 0.1))],
            {"net_delta": None, "net_gamma": None, "net_theta": None, "net_vega": None,
             "net_dollar_delta": None, "option_count": 0, "options_with_greeks": 0},
            id="closed-position-is-ignored",
        ),
    ],
)  # fmt: skip
def test_net_greeks(holdings: list[Holding], expected: dict[str, object]) -> None:
    """Each portfolio sums to the hand-computed net values and counts."""
    net = aggregate(holdings, NOW).net
    for name, value in expected.items():
        if isinstance(value, float):
            assert net[name] == pytest.approx(value, rel=1e-12), name
        else:
            assert net[name] == value, name


def test_per_underlying_breakdown_and_stalest_greek() -> None:
    """Each underlying gets its own sums; the stalest Greek's age is reported."""
    result = aggregate([SPY_CALL, SPY_PUT_SHORT, ES_FOP, NO_GREEKS], NOW)
    assert set(result.underlyings) == {"ES", "SPY", "XYZ"}
    assert result.underlyings["SPY"]["net_delta"] == pytest.approx(220.0)
    assert result.underlyings["ES"]["net_vega"] == pytest.approx(500.0)
    assert result.underlyings["XYZ"]["net_delta"] is None
    assert result.stalest_greek_age_s == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0.25, 0.25),
        (-2.0, None),  # ib_async passes theta and vega of -2 ("not computed") through
        (1.7976931348623157e308, None),  # IB's unset double
        (-1.7976931348623157e308, None),
        (math.nan, None),
        (math.inf, None),
        (None, None),
        (0.0, 0.0),  # a true zero stays a zero
    ],
)
def test_sentinel_greeks_are_unknown(raw: float | None, expected: float | None) -> None:
    """Sentinels of either gateway never become numbers."""
    assert known_greek(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(512.3, 512.3), (-1.0, None), (0.0, None), (math.nan, None), (1.7976931348623157e308, None)],
)
def test_sentinel_prices_are_unknown(raw: float, expected: float | None) -> None:
    """IB's empty price (-1) and the unset double are not prices."""
    assert known_price(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("100", 100.0), (50, 50.0), ("", None), (None, None), ("0", None), (0, None), ("x", None)],
)
def test_multiplier_parsing(raw: str | float | None, expected: float | None) -> None:
    """Multipliers arrive as strings, numbers, empty or null; 0 means unknown."""
    assert parse_multiplier(raw) == expected


def test_snapshot_record_carries_the_tick_and_a_derived_id() -> None:
    """The record's id comes from account and tick, so a repeated tick is one row."""
    tick = datetime(2026, 3, 2, 15, 0, 5, tzinfo=UTC)
    first = snapshot("DU1", tick, "SOCKET", aggregate([SPY_CALL], NOW))
    again = snapshot("DU1", tick, "SOCKET", aggregate([SPY_CALL, NO_GREEKS], NOW))
    assert first.id == again.id
    assert first.ts == tick
    assert (first.option_count, again.option_count) == (1, 2)
