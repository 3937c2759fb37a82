"""The simulator's own Greeks by expiry and legs (`simulator/truth.py`): worked by hand."""

from __future__ import annotations

from datetime import date

import pytest

from simulator.truth import Exposure, expiry_figures, leg_truth

TODAY = date(2026, 3, 2)


def _option(qty: float, expiry: date | None, *, delta: float | None = 0.5) -> Exposure:
    # SPY at 500, 100 shares a contract: gamma 0.01, theta -0.1, vega 0.2.
    return Exposure("SPY", "OPT", qty, 100.0, 1.0, 1.0, 500.0, delta, 0.01, -0.1, 0.2,
                    expiry=expiry)  # fmt: skip


def test_each_option_in_its_bucket_and_the_shares_apart() -> None:
    """A 7-day call is in 0-7, a 366-day one over 365; 10 shares at 500 are on the delta-one
    line; the empty buckets are None."""
    found = expiry_figures(
        [
            _option(1, date(2026, 3, 9)),
            _option(-2, date(2027, 3, 3)),
            Exposure("SPY", "STK", 10, 1.0, 1.0, 1.0, 500.0),
        ],
        TODAY,
    )
    # 0.5 x 100 x 500 = 25,000; 0.01 x 100 x 500² x 0.01 = 2,500; -0.1 x 100 = -10; 20.
    assert found["buckets"][0] == pytest.approx([25_000.0, 2_500.0, -10.0, 20.0])
    assert found["buckets"][4] == pytest.approx([-50_000.0, -5_000.0, 20.0, -40.0])
    assert found["buckets"][1:4] == [[None] * 4] * 3
    assert found["linear_dollar_delta"] == 5_000.0
    assert found["completeness"]["net_theta"] == {"contributing": 2, "missing": 0, "reasons": {}}


def test_no_expiry_expired_and_greekless_are_counted_missing() -> None:
    """Each reason once in each figure it keeps out; the delta-less option today still adds its
    gamma, theta and vega to 0-7."""
    found = expiry_figures(
        [_option(1, None), _option(1, date(2026, 3, 1)), _option(1, TODAY, delta=None)], TODAY
    )
    assert found["buckets"][0] == pytest.approx([None, 2_500.0, -10.0, 20.0])
    assert found["buckets"][1:] == [[None] * 4] * 4
    assert found["completeness"]["net_dollar_delta"]["reasons"] == {
        "no_expiry": 1, "expired": 1, "no_greek": 1,
    }  # fmt: skip
    assert found["completeness"]["net_vega"]["reasons"] == {"no_expiry": 1, "expired": 1}


def test_a_leg_is_its_four_parts_and_its_first_missing_reason() -> None:
    """A Greek-less option misses dollar delta first; a share has only a dollar delta."""
    assert leg_truth(_option(1, TODAY, delta=None))["missing_reason"] == "no_greek"
    stock = leg_truth(Exposure("SPY", "STK", 10, 1.0, 1.0, 1.0, 500.0))
    assert stock == {
        "net_dollar_delta": 5_000.0, "net_dollar_gamma": None, "net_theta": None,
        "net_vega": None, "missing_reason": None,
    }  # fmt: skip
