"""An option's terms from what a gateway states: tables worked by hand."""

from __future__ import annotations

from datetime import date

import pytest

from collector.greeks import OptionTerms
from collector.option_terms import (
    exercise_style,
    option_terms,
    parse_expiry,
    parse_right,
    underlying_type_of,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("20250117", date(2025, 1, 17)),
        (" 20250117 ", date(2025, 1, 17)),
        ("20250117 16:00 US/Eastern", date(2025, 1, 17)),
        ("202501", None),  # a contract month is not a day
        ("20250230", None),  # no such day
        ("", None),
        (None, None),
        (20250117, None),  # not how either gateway writes it
        ("2025-01-17", None),
    ],
)
def test_expiry_is_a_whole_date_or_unknown(raw: object, expected: date | None) -> None:
    """Only a whole YYYYMMDD day is an expiry; a month, a bad day or another form is None."""
    assert parse_expiry(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("C", "C"), ("call", "C"), ("P", "P"), ("PUT", "P"), ("", None), (None, None), ("X", None)],
)
def test_right_reads_both_gateways_spellings(raw: object, expected: str | None) -> None:
    """The socket's C/P and Portal's CALL/PUT read the same; anything else is unknown."""
    assert parse_right(raw) == expected


@pytest.mark.parametrize(
    ("sec_type", "underlying", "symbol", "expected"),
    [
        ("OPT", "STK", "SPY", "american"),
        ("OPT", "ETF", "QQQ", "american"),
        ("OPT", "IND", "SPX", "european"),
        ("OPT", "IND", "ndx", "european"),
        ("OPT", "IND", "OEX", "american"),
        ("OPT", "IND", "DAX", None),  # an index the rule does not list
        ("OPT", None, "SPY", None),  # the underlying's type unknown
        ("FOP", "FUT", "ES", None),  # CME lists both styles on one future
        ("OPT", "FUT", "ES", None),
    ],
)
def test_exercise_style_rule(
    sec_type: str, underlying: str | None, symbol: str, expected: str | None
) -> None:
    """American on stocks and ETFs, by symbol on indices, unknown for futures options and
    anything the rule does not settle (docs/ibkr-conventions.md, "Exercise style")."""
    assert exercise_style(sec_type, underlying, symbol) == expected


def test_a_futures_options_underlying_is_a_future_whatever_was_stated() -> None:
    """FOP means an option on a future; OPT keeps what the gateway said (None if nothing)."""
    assert underlying_type_of("FOP", None) == "FUT"
    assert underlying_type_of("OPT", "IND") == "IND"
    assert underlying_type_of("OPT", "") is None


def test_terms_of_a_stated_option() -> None:
    """Every field as stated; the implied vol and price pass through when positive."""
    terms = option_terms(
        sec_type="OPT", symbol="SPY", right="CALL", strike="620", expiry="20270115",
        underlying_sec_type="STK", implied_vol=0.21, option_price=3.5,
    )  # fmt: skip
    assert terms == OptionTerms("C", 620.0, date(2027, 1, 15), "american", "STK", 0.21, 3.5)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sec_type": "STK"}, "not an option"),
        ({"right": ""}, "no right"),
        ({"strike": 0.0}, "a strike of 0 is none"),
        ({"strike": "n/a"}, "unreadable strike"),
        ({"strike": True}, "a boolean is no strike"),
        ({"expiry": "202701"}, "a month only"),
    ],
)
def test_terms_unknown_when_a_term_is_unknown(changes: dict[str, object], reason: str) -> None:
    """Without a right, a strike or a whole expiry there are no terms (None), never a guess."""
    stated: dict[str, object] = {
        "sec_type": "OPT", "symbol": "SPY", "right": "C", "strike": 620.0,
        "expiry": "20270115", "underlying_sec_type": "STK", "implied_vol": 0.2,
        "option_price": 3.0,
    }  # fmt: skip
    assert option_terms(**{**stated, **changes}) is None, reason  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("implied_vol", "option_price", "expected"),
    [
        (0.0, 3.0, (None, 3.0)),
        (-1.0, -1.0, (None, None)),  # the socket's "not computed"
        (None, 0.0, (None, None)),
        (1.7976931348623157e308, 3.0, (None, 3.0)),  # UNSET_DOUBLE
    ],
)
def test_unknown_vol_and_price_are_none(
    implied_vol: float | None, option_price: float | None, expected: tuple[object, object]
) -> None:
    """An implied vol of 0 or less and a price of 0, -1 or a sentinel are unknown."""
    terms = option_terms(
        sec_type="FOP", symbol="ES", right="P", strike=6000.0, expiry="20270319",
        underlying_sec_type=None, implied_vol=implied_vol, option_price=option_price,
    )  # fmt: skip
    assert terms is not None
    assert (terms.implied_vol, terms.option_price) == expected
    assert (terms.underlying_sec_type, terms.exercise) == ("FUT", None)
