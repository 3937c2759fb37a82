"""Delayed and frozen market data, said per figure: the Portal's 6509 read, and the
completeness counting each contributing position whose inputs were not live. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collector.greeks import AccountContext, Holding, OptionGreeks, aggregate
from collector.portal_values import parse_market_data, parse_snapshot_item

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
USD = AccountContext("USD", {}, {"AAPL": 1.2}, benchmark_price=500.0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("RpB", set()),
        ("DPB", {"delayed"}),
        ("ZBd", {"frozen"}),
        ("YP", {"delayed_frozen"}),
        ("N", set()),  # not subscribed: no values to flag
        ("", set()),
        (None, set()),
        (7, set()),
    ],
)
def test_the_portals_market_data_availability(raw: object, expected: set[str]) -> None:
    """The first character of 6509 says what the values are; anything else says nothing."""
    assert parse_market_data(raw) == expected


def test_a_snapshot_item_carries_its_market_data() -> None:
    """A delayed quote says so; one without 6509 is taken as live."""
    delayed = parse_snapshot_item({"conid": 1, "31": "2.61", "6509": "DpB"})
    plain = parse_snapshot_item({"conid": 1, "31": "2.61"})
    assert delayed is not None
    assert plain is not None
    assert (delayed.market_data, plain.market_data) == (frozenset({"delayed"}), frozenset())


def test_each_figure_counts_the_not_live_positions_that_went_into_it() -> None:
    """A delayed stock (dollar and beta delta only), a frozen call (all five) and a live put:
    dollar delta 1 delayed + 1 frozen, gamma 1 frozen; a figure with no such position has no
    `market_data` at all; the underlying's share-equivalents count the same way."""
    stock = Holding(
        1, "AAPL", "STK", 100, 1.0, "USD", price=200.0, market_data=frozenset({"delayed"})
    )
    greeks = OptionGreeks(0.4, 0.02, -0.05, 0.2, 200.0, NOW)
    call = Holding(
        2, "AAPL", "OPT", -1, 100.0, "USD", greeks=greeks, market_data=frozenset({"frozen"})
    )
    put = Holding(3, "AAPL", "OPT", 1, 100.0, "USD", greeks=greeks)
    figures = aggregate([stock, call, put], USD, NOW)
    said = {name: c.get("market_data") for name, c in figures.net["completeness"].items()}
    assert said == {
        "net_dollar_delta": {"delayed": 1, "frozen": 1},
        "net_dollar_gamma": {"frozen": 1},
        "net_theta": {"frozen": 1},
        "net_vega": {"frozen": 1},
        "net_beta_delta": {"delayed": 1, "frozen": 1},
    }
    aapl = figures.underlyings["AAPL"]["completeness"]
    assert (aapl["net_delta"]["market_data"], aapl["net_gamma"]["market_data"]) == (
        {"delayed": 1, "frozen": 1},
        {"frozen": 1},
    )


def test_a_missing_position_is_not_counted_as_delayed() -> None:
    """A delayed stock without a price contributes nothing, so nothing says delayed."""
    stock = Holding(1, "AAPL", "STK", 100, 1.0, "USD", market_data=frozenset({"delayed"}))
    completeness = aggregate([stock], USD, NOW).net["completeness"]["net_dollar_delta"]
    assert completeness == {"contributing": 0, "missing": 1, "reasons": {"no_price": 1}}
