"""Client Portal strings parsed defensively: prefixes, separators, suffixes, garbage."""

from __future__ import annotations

import pytest

from collector.portal_values import parse_number, parse_snapshot_item


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("168.42", 168.42),
        ("C168.42", None),  # a prefix belongs to the last price only: parse_last
        ("H12.5", None),
        ("1,300", 1300.0),
        ("10.2K", 10_200.0),
        ("1.5M", 1_500_000.0),
        ("2B", 2_000_000_000.0),
        ("45.2%", 45.2),
        ("-0.282", -0.282),
        (" 0.271 ", 0.271),
        (12, 12.0),
        (0.5, 0.5),
        ("", None),
        ("N/A", None),
        ("-", None),
        ("1.2.3", None),
        ("nan", None),
        ("inf", None),
        (None, None),
        (True, None),
        ({"x": 1}, None),
    ],
)
def test_parse_number(raw: object, expected: float | None) -> None:
    """Every format the gateway is known to send parses; anything else is unknown, not 0."""
    assert parse_number(raw) == expected


def test_first_snapshot_has_no_values() -> None:
    """The pre-flight answer (conid only) is recognised as empty, not as zero Greeks."""
    quote = parse_snapshot_item({"conid": 265598, "conidEx": "265598"})
    assert quote is not None
    assert not quote.has_values
    assert quote.delta is None


def test_option_snapshot_parses_greeks_and_price() -> None:
    """A real option capture (docs/protocol.md, "Client Portal values") yields its Greeks
    and price."""
    quote = parse_snapshot_item(
        {"conid": 470728476, "_updated": 1616548969282, "31": "2.61", "84": "2.60",
         "86": "2.67", "7308": "0.271", "7309": "0.022", "7310": "-0.282", "7311": "0.143",
         "87": "10.2K", "6509": "ZBd"}
    )  # fmt: skip
    assert quote is not None
    assert (quote.delta, quote.gamma, quote.theta, quote.vega) == (0.271, 0.022, -0.282, 0.143)
    assert quote.price == pytest.approx(2.635)
    assert quote.updated_ms == 1616548969282


@pytest.mark.parametrize("item", [{}, {"conid": "abc"}, {"conid": None}])
def test_item_without_a_conid_is_refused(item: dict[str, object]) -> None:
    """An element that names no conid cannot be attributed to a position."""
    assert parse_snapshot_item(item) is None


def test_a_real_theta_of_minus_2_is_a_theta_on_the_portal() -> None:
    """The socket API's -2 "not computed" marker does not exist in Portal values: a rounded
    "-2.000" theta (and a "0.000" gamma) are values."""
    quote = parse_snapshot_item(
        {"conid": 710003, "7308": "0.432", "7309": "0.000", "7310": "-2.000", "7311": "7.123",
         "31": "H230.00"}
    )  # fmt: skip
    assert quote is not None
    assert (quote.delta, quote.gamma, quote.theta, quote.vega) == (0.432, 0.0, -2.0, 7.123)
    assert quote.price is None  # "H": halted, not a live price
    assert (quote.last, quote.price_reason) == (230.0, "halted")


def test_greeks_arriving_a_snapshot_apart_are_unknown_until_they_come() -> None:
    """Prices first, Greeks on a later answer: missing fields are None, never 0."""
    quote = parse_snapshot_item({"conid": 710001, "31": "C8.50", "7308": "0.412"})
    assert quote is not None
    assert (quote.delta, quote.gamma, quote.theta, quote.vega) == (0.412, None, None, None)
    assert quote.price is None  # "C": yesterday's close, not a live price
    assert (quote.last, quote.price_reason) == (8.5, "prior_close")


@pytest.mark.parametrize(
    ("item", "price", "reason"),
    [
        ({"31": "C8.50"}, None, "prior_close"),
        ({"31": "H230.00"}, None, "halted"),
        ({"31": "8.50"}, 8.5, None),
        ({"31": "C8.50", "7635": "8.61"}, 8.61, None),  # the mark is live: used
        ({"31": "H8.50", "84": "8.40", "86": "8.60"}, 8.5, None),  # so is the bid/ask
        ({"31": "C"}, None, None),  # a prefix without a price: nothing known
    ],
)
def test_a_prefixed_last_is_not_a_live_price(
    item: dict[str, object], price: float | None, reason: str | None
) -> None:
    """A last price prefixed C (prior close) or H (halted) is no live price, and says why; a live
    mark or bid/ask is used instead."""
    quote = parse_snapshot_item({"conid": 1, **item})
    assert quote is not None
    assert (quote.price, quote.price_reason) == (price, reason)
