"""Greeks by expiry bucket and each position's leg: tables worked by hand."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest

from collector.expiry import BUCKETS, bucket_of, by_expiry, expiry_day, expiry_parts
from collector.greeks import AccountContext, Holding, OptionGreeks, OptionTerms, aggregate
from collector.legs import leg_of

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
TODAY = date(2026, 3, 2)
USD = AccountContext("USD")


def _terms(expiry: date, right: str = "C", strike: float = 200.0) -> OptionTerms:
    return OptionTerms(right, strike, expiry, "american", "STK", 0.25, 3.0)  # type: ignore[arg-type]


def _option(
    conid: int, symbol: str, quantity: float, greeks: tuple[float, float, float, float],
    und: float, *, expiry: date | None,
) -> Holding:  # fmt: skip
    return Holding(
        conid, symbol, "OPT", quantity, 100.0, "USD",
        greeks=OptionGreeks(*greeks, und, NOW),
        terms=None if expiry is None else _terms(expiry),
    )  # fmt: skip


# AAPL at 200: a call 5 days out and a put 40 days out; SPY at 500: a call 400 days out.
AAPL_WEEKLY = _option(1, "AAPL", 2, (0.5, 0.04, -0.2, 0.1), 200.0, expiry=date(2026, 3, 7))
AAPL_PUT = _option(2, "AAPL", -1, (-0.3, 0.02, -0.05, 0.2), 200.0, expiry=date(2026, 4, 11))
SPY_LEAP = _option(3, "SPY", 1, (0.6, 0.001, -0.01, 2.0), 500.0, expiry=date(2027, 4, 6))
AAPL_STOCK = Holding(4, "AAPL", "STK", 100, 1.0, "USD", price=200.0)


@pytest.mark.parametrize(
    ("days", "bucket"),
    [(0, "0-7"), (7, "0-7"), (8, "8-30"), (30, "8-30"), (31, "31-90"), (90, "31-90"),
     (91, "91-365"), (365, "91-365"), (366, "366+"), (5000, "366+")],
)  # fmt: skip
def test_bucket_edges(days: int, bucket: str) -> None:
    """Each bucket holds both its first and its last day."""
    assert BUCKETS[bucket_of(days)] == bucket


def test_an_evening_tick_in_utc_counts_from_new_yorks_day() -> None:
    """01:00 UTC on the 3rd is 20:00 on the 2nd in New York (EST): the buckets count from the
    2nd; noon UTC is the same day in both."""
    assert expiry_day(datetime(2026, 3, 3, 1, 0, tzinfo=UTC)) == date(2026, 3, 2)
    assert expiry_day(datetime(2026, 3, 3, 12, 0, tzinfo=UTC)) == date(2026, 3, 3)


def test_buckets_by_hand() -> None:
    """Each option's figures land in its bucket; the stock's dollar delta on the linear line;
    an empty bucket is None, not 0."""
    figures = by_expiry([AAPL_WEEKLY, AAPL_PUT, SPY_LEAP, AAPL_STOCK], USD, TODAY)
    total = figures.total
    # AAPL weekly, 5 days: 0.5 x 2 x 100 x 200 = 20,000; 0.04 x 200 x 200² x 0.01 = 3,200;
    # -0.2 x 200 = -40; 0.1 x 200 = 20.
    assert total.buckets[0] == pytest.approx((20_000.0, 3_200.0, -40.0, 20.0))
    assert total.buckets[1] == (None, None, None, None)
    # AAPL put, 40 days: -0.3 x -100 x 200 = 6,000; 0.02 x -100 x 400 = -800; 5; -20.
    assert total.buckets[2] == pytest.approx((6_000.0, -800.0, 5.0, -20.0))
    assert total.buckets[3] == (None, None, None, None)
    # SPY, 400 days: 0.6 x 100 x 500 = 30,000; 0.001 x 100 x 2,500 = 250; -1; 200.
    assert total.buckets[4] == pytest.approx((30_000.0, 250.0, -1.0, 200.0))
    assert total.linear_dollar_delta == 20_000.0  # 100 shares x 200
    assert (total.position_count, total.option_count) == (4, 3)
    assert total.completeness["net_dollar_delta"] == {
        "contributing": 4,
        "missing": 0,
        "reasons": {},
    }
    assert total.completeness["net_vega"] == {"contributing": 3, "missing": 0, "reasons": {}}
    assert list(figures.underlyings) == ["AAPL", "SPY"]
    aapl = figures.underlyings["AAPL"]
    assert aapl.buckets[4] == (None, None, None, None)
    assert aapl.buckets[0] == total.buckets[0]
    assert aapl.linear_dollar_delta == 20_000.0
    assert figures.underlyings["SPY"].linear_dollar_delta is None


def test_an_option_without_expiry_or_past_it_is_counted_missing() -> None:
    """No terms: `no_expiry` in each of its four figures; an expiry before today: `expired`;
    a Greek-less option keeps its own reason. Nothing is put in a bucket for them."""
    no_terms = _option(5, "AAPL", 1, (0.5, 0.04, -0.2, 0.1), 200.0, expiry=None)
    expired = _option(6, "AAPL", 1, (0.5, 0.04, -0.2, 0.1), 200.0, expiry=date(2026, 3, 1))
    greekless = dataclasses.replace(AAPL_WEEKLY, conid=7, greeks=None)
    assert set(expiry_parts(no_terms, USD, TODAY).values()) == {"no_expiry"}
    assert set(expiry_parts(expired, USD, TODAY).values()) == {"expired"}
    assert set(expiry_parts(greekless, USD, TODAY).values()) == {"no_greek"}
    total = by_expiry([no_terms, expired, greekless], USD, TODAY).total
    assert all(value is None for row in total.buckets for value in row)
    assert total.completeness["net_theta"] == {
        "contributing": 0, "missing": 3, "reasons": {"no_expiry": 1, "expired": 1, "no_greek": 1},
    }  # fmt: skip


def test_expiring_today_is_in_the_first_bucket_and_a_closed_position_is_left_out() -> None:
    """Day 0 is a bucket day (an option trades on its last day); a quantity of 0 counts
    nowhere, as in the snapshot."""
    today = _option(8, "AAPL", 1, (0.5, 0.04, -0.2, 0.1), 200.0, expiry=TODAY)
    closed = dataclasses.replace(AAPL_PUT, quantity=0)
    total = by_expiry([today, closed], USD, TODAY).total
    assert total.buckets[0][2] == pytest.approx(-20.0)  # -0.2 x 100
    assert (total.position_count, total.option_count) == (1, 1)


def test_unsupported_and_unpriced_positions_are_missing_everywhere_they_count() -> None:
    """A warrant is missing from all four; a stock without a price from dollar delta only."""
    warrant = Holding(9, "DAI", "WAR", 10, 1.0, "USD", price=1.0)
    unpriced = dataclasses.replace(AAPL_STOCK, conid=10, price=None)
    total = by_expiry([warrant, unpriced], USD, TODAY).total
    assert total.completeness["net_dollar_delta"]["reasons"] == {
        "unsupported_type": 1, "no_price": 1,
    }  # fmt: skip
    assert total.completeness["net_vega"]["reasons"] == {"unsupported_type": 1}
    assert total.linear_dollar_delta is None


def test_a_leg_by_hand() -> None:
    """The AAPL put's leg: its inputs as given, its parts of each figure."""
    leg = leg_of(AAPL_PUT, USD)
    assert (leg.conid, leg.symbol, leg.sec_type, leg.quantity, leg.multiplier) == (
        2, "AAPL", "OPT", -1, 100.0,
    )  # fmt: skip
    assert (leg.strike, leg.expiry, leg.option_right, leg.implied_vol) == (
        200.0, date(2026, 4, 11), "C", 0.25,
    )  # fmt: skip
    assert (leg.delta, leg.gamma, leg.theta, leg.vega, leg.underlying_price) == (
        -0.3, 0.02, -0.05, 0.2, 200.0,
    )  # fmt: skip
    assert (leg.dollar_delta, leg.dollar_gamma, leg.net_theta, leg.net_vega) == pytest.approx(
        (6_000.0, -800.0, 5.0, -20.0)
    )
    assert leg.missing_reason is None


def test_a_legs_missing_reason_is_its_first_unknown_figure() -> None:
    """A stock: known dollar delta, no reason (gamma, theta, vega do not apply); an option
    without Greeks: `no_greek`; a stock without a price: `no_price`."""
    assert leg_of(AAPL_STOCK, USD).missing_reason is None
    assert leg_of(AAPL_STOCK, USD).dollar_delta == 20_000.0
    greekless = leg_of(dataclasses.replace(AAPL_PUT, greeks=None), USD)
    assert (greekless.missing_reason, greekless.dollar_delta, greekless.delta) == (
        "no_greek", None, None,
    )  # fmt: skip
    assert leg_of(dataclasses.replace(AAPL_STOCK, price=None), USD).missing_reason == "no_price"


def test_buckets_and_linear_line_add_up_to_the_snapshots_figures() -> None:
    """For a complete book the buckets plus the linear line are the snapshot's dollar delta,
    and the buckets alone its dollar gamma, theta and vega (the same parts, sorted by time)."""
    book = [AAPL_WEEKLY, AAPL_PUT, SPY_LEAP, AAPL_STOCK]
    net = aggregate(book, USD, NOW).net
    total = by_expiry(book, USD, TODAY).total
    for column, name in enumerate(
        ("net_dollar_delta", "net_dollar_gamma", "net_theta", "net_vega")
    ):
        summed = sum(row[column] or 0.0 for row in total.buckets)
        if name == "net_dollar_delta":
            summed += total.linear_dollar_delta or 0.0
        assert summed == pytest.approx(net[name]), name
