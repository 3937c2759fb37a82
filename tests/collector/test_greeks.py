"""An account's figures from holdings: tables worked by hand, one line of arithmetic each."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta

import pytest

from collector.greeks import (
    AccountContext,
    ChangeClock,
    Holding,
    OptionGreeks,
    Part,
    aggregate,
    known_price,
    known_socket_greek,
    note_bars_source,
    parse_multiplier,
    position_figures,
    share_equivalent_parts,
    snapshot,
)

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
FIGURES = ("net_dollar_delta", "net_dollar_gamma", "net_theta", "net_vega", "net_beta_delta")
BETAS = {"SPY": 1.0, "AAPL": 1.2, "ES": 1.0, "ZC": 0.1, "ESTX50": 0.9}
USD = AccountContext("USD", {"EUR": 1.08}, BETAS, benchmark_price=500.0)
EUR = AccountContext("EUR", {"USD": 0.925}, BETAS, benchmark_price=500.0)


def _greeks(
    delta: float | None,
    gamma: float | None,
    theta: float | None,
    vega: float | None,
    und: float | None,
    *,
    age_s: float = 1.0,
) -> OptionGreeks:
    return OptionGreeks(delta, gamma, theta, vega, und, NOW - timedelta(seconds=age_s))


AAPL_STOCK = Holding(1, "AAPL", "STK", 100, 1.0, "USD", price=200.0)
AAPL_SHORT_CALL = Holding(
    2, "AAPL", "OPT", -1, 100.0, "USD", greeks=_greeks(0.4, 0.02, -0.05, 0.2, 200.0, age_s=7)
)
ES_SHORT_FUTURE = Holding(3, "ES", "FUT", -2, 50.0, "USD", price=6000.0)
# Corn options quote in cents (priceMagnifier 100): underlying 450 cents = $4.50, 5000 bushels.
ZC_CALL = Holding(
    4, "ZC", "FOP", 3, 5000.0, "USD", magnifier=100.0, greeks=_greeks(0.5, 0.01, -0.25, 0.8, 450.0)
)
ESTX50_PUT = Holding(
    5, "ESTX50", "OPT", 10, 10.0, "EUR", greeks=_greeks(-0.3, 0.001, -1.5, 4, 5000)
)
SPY_STOCK = Holding(6, "SPY", "STK", 10, 1.0, "USD", price=500.0)
CFD = Holding(7, "AAPL", "CFD", 100, 1.0, "USD", price=200.0)
WARRANT = Holding(8, "DAI", "WAR", 1000, 1.0, "EUR", price=0.5)
ALL_UNSUPPORTED = dict.fromkeys(FIGURES, "unsupported_type")


@pytest.mark.parametrize(
    ("holding", "context", "expected"),
    [
        pytest.param(AAPL_STOCK, USD, {
            "net_dollar_delta": 20_000.0,  # 100 x 1 x 200
            "net_dollar_gamma": None, "net_theta": None, "net_vega": None,  # not applicable
            "net_beta_delta": 48.0,  # 20000 x 1.2 / 500
        }, id="covered-call-stock"),
        pytest.param(AAPL_SHORT_CALL, USD, {
            "net_dollar_delta": -8_000.0,  # 0.4 x -1 x 100 x 200
            "net_dollar_gamma": -800.0,  # 0.02 x -1 x 100 x 200² x 0.01
            "net_theta": 5.0,  # -0.05 x -1 x 100
            "net_vega": -20.0,  # 0.2 x -1 x 100
            "net_beta_delta": -19.2,  # -8000 x 1.2 / 500
        }, id="covered-call-short-call"),
        pytest.param(ES_SHORT_FUTURE, USD, {
            "net_dollar_delta": -600_000.0,  # -2 x 50 x 6000
            "net_dollar_gamma": None, "net_theta": None, "net_vega": None,
            "net_beta_delta": -1_200.0,  # -600000 x 1.0 / 500
        }, id="short-future"),
        pytest.param(ZC_CALL, USD, {
            "net_dollar_delta": 33_750.0,  # 0.5 x 3 x 5000 x 450 / 100
            "net_dollar_gamma": 3_037.5,  # 0.01 x 3 x 5000 x 450² / 100 x 0.01
            "net_theta": -37.5,  # -0.25 x 3 x 5000 / 100
            "net_vega": 120.0,  # 0.8 x 3 x 5000 / 100
            "net_beta_delta": 6.75,  # 33750 x 0.1 / 500
        }, id="cents-quoted-option"),
        pytest.param(ESTX50_PUT, USD, {
            "net_dollar_delta": -162_000.0,  # -0.3 x 10 x 10 x 5000 x 1.08
            "net_dollar_gamma": 27_000.0,  # 0.001 x 100 x 5000² x 0.01 x 1.08
            "net_theta": -162.0,  # -1.5 x 100 x 1.08
            "net_vega": 432.0,  # 4 x 100 x 1.08
            "net_beta_delta": -291.6,  # -162000 x 0.9 / 500
        }, id="eur-position-in-usd-account"),
        pytest.param(SPY_STOCK, EUR, {
            "net_dollar_delta": 4_625.0,  # 10 x 500 x 0.925
            "net_dollar_gamma": None, "net_theta": None, "net_vega": None,
            "net_beta_delta": 10.0,  # 4625 x 1.0 / (500 x 0.925): 10 shares of SPY
        }, id="usd-position-in-eur-account"),
        pytest.param(CFD, USD, {
            "net_dollar_delta": 20_000.0,  # 100 x 1 x 200: a CFD is linear
            "net_dollar_gamma": None, "net_theta": None, "net_vega": None,
            "net_beta_delta": 48.0,  # 20000 x 1.2 / 500
        }, id="cfd-is-linear"),
        pytest.param(
            Holding(9, "AAPL", "STK", 100, 1.0, "USD", price=None), USD,
            {"net_dollar_delta": "no_price", "net_dollar_gamma": None, "net_theta": None,
             "net_vega": None, "net_beta_delta": "no_price"},
            id="missing-stock-price",
        ),
        pytest.param(
            Holding(10, "AAPL", "OPT", 1, 100.0, "USD", greeks=_greeks(0.5, 0.02, -0.1, 0.3, None)),
            USD,
            {"net_dollar_delta": "no_price", "net_dollar_gamma": "no_price",
             "net_theta": -10.0,  # -0.1 x 1 x 100: theta needs no price
             "net_vega": 30.0,  # 0.3 x 100
             "net_beta_delta": "no_price"},
            id="missing-underlying-price",
        ),
        pytest.param(
            Holding(11, "XYZ", "STK", 10, 1.0, "USD", price=30.0), USD,
            {"net_dollar_delta": 300.0,  # 10 x 30
             "net_dollar_gamma": None, "net_theta": None, "net_vega": None,
             "net_beta_delta": "no_beta"},
            id="missing-beta",
        ),
        pytest.param(WARRANT, USD, ALL_UNSUPPORTED, id="warrant-unsupported"),
        pytest.param(
            Holding(12, "US-T", "BOND", 10, 1.0, "USD", price=99.0), USD, ALL_UNSUPPORTED,
            id="bond-unsupported",
        ),
        pytest.param(
            Holding(13, "EUR", "CASH", 1000, 1.0, "USD", price=1.08), USD, ALL_UNSUPPORTED,
            id="fx-unsupported",
        ),
        pytest.param(
            Holding(14, "BTC", "CRYPTO", 1, 1.0, "USD", price=90_000.0), USD, ALL_UNSUPPORTED,
            id="crypto-unsupported",
        ),
        pytest.param(
            Holding(15, "VOD", "STK", 100, 1.0, "GBP", price=0.7), USD,
            {"net_dollar_delta": "no_fx_rate", "net_dollar_gamma": None, "net_theta": None,
             "net_vega": None, "net_beta_delta": "no_fx_rate"},
            id="missing-fx-rate",
        ),
        pytest.param(
            Holding(19, "VOD", "OPT", 1, 100.0, "GBP", greeks=None), USD,
            dict.fromkeys(FIGURES, "no_fx_rate"),  # two inputs missing: the first in order
            id="first-reason-in-order",
        ),
        pytest.param(
            Holding(16, "ES", "FUT", 1, None, "USD", price=6000.0), USD,
            {"net_dollar_delta": "no_multiplier", "net_dollar_gamma": None, "net_theta": None,
             "net_vega": None, "net_beta_delta": "no_multiplier"},
            id="future-without-multiplier",
        ),
        pytest.param(
            Holding(17, "SPY", "OPT", 1, 100.0, "USD", greeks=None), USD,
            dict.fromkeys(FIGURES, "no_greek"),
            id="option-without-greeks",
        ),
        pytest.param(
            Holding(18, "SPY", "OPT", 2, 100.0, "USD", greeks=_greeks(0.5, None, None, 0.3, 500)),
            USD,
            {"net_dollar_delta": 50_000.0,  # 0.5 x 2 x 100 x 500
             "net_dollar_gamma": "no_greek", "net_theta": "no_greek",
             "net_vega": 60.0,  # 0.3 x 200
             "net_beta_delta": 100.0},  # 50000 x 1.0 / 500
            id="greeks-arriving-on-separate-snapshots",
        ),
        pytest.param(
            SPY_STOCK, AccountContext("USD", {}, BETAS, benchmark_price=None),
            {"net_dollar_delta": 5_000.0,  # 10 x 500
             "net_dollar_gamma": None, "net_theta": None, "net_vega": None,
             "net_beta_delta": "no_price"},  # the benchmark's price is unknown
            id="missing-benchmark-price",
        ),
        pytest.param(
            SPY_STOCK, AccountContext(None, {}, BETAS, benchmark_price=500.0),
            {"net_dollar_delta": "no_fx_rate", "net_dollar_gamma": None, "net_theta": None,
             "net_vega": None, "net_beta_delta": "no_fx_rate"},
            id="unknown-base-currency",
        ),
        pytest.param(
            Holding(12, "ZC", "FOP", 3, 5000.0, "USD", magnifier=None,
                    greeks=_greeks(0.5, 0.01, -0.25, 0.8, 450.0)), USD,
            dict.fromkeys(FIGURES, "no_magnifier"),  # never valued as if quoted in dollars
            id="unknown-magnifier-option",
        ),
        pytest.param(
            Holding(13, "ZC", "FUT", 2, 5000.0, "USD", magnifier=None, price=450.25), USD,
            {"net_dollar_delta": "no_magnifier", "net_dollar_gamma": None, "net_theta": None,
             "net_vega": None, "net_beta_delta": "no_magnifier"},
            id="unknown-magnifier-future",
        ),
        pytest.param(
            Holding(14, "AAPL", "OPT", None, 100.0, "USD",
                    greeks=_greeks(0.4, 0.02, -0.05, 0.2, 200.0)), USD,
            dict.fromkeys(FIGURES, "no_quantity"),  # unreadable is not 0 contracts
            id="unreadable-option-quantity",
        ),
        pytest.param(
            Holding(15, "AAPL", "STK", None, 1.0, "USD", price=200.0), USD,
            {"net_dollar_delta": "no_quantity", "net_dollar_gamma": None, "net_theta": None,
             "net_vega": None, "net_beta_delta": "no_quantity"},
            id="unreadable-stock-quantity",
        ),
    ],
)  # fmt: skip
def test_position_figures(
    holding: Holding, context: AccountContext, expected: dict[str, Part]
) -> None:
    """Each position's contribution to every figure, worked by hand, or the reason it contributes
    nothing (no price, beta, rate, multiplier, magnifier, quantity or Greek; an unsupported
    type)."""
    parts = position_figures(holding, context)
    assert set(parts) == set(FIGURES)
    for name, value in expected.items():
        if isinstance(value, float):
            assert parts[name] == pytest.approx(value, rel=1e-12), name
        else:
            assert parts[name] == value, name


def test_covered_call_account_totals_and_completeness() -> None:
    """Stock plus short call: dollar figures add; share-equivalents stay per underlying."""
    result = aggregate([AAPL_STOCK, AAPL_SHORT_CALL, WARRANT], USD, NOW)
    net = result.net
    assert net["net_dollar_delta"] == pytest.approx(12_000.0)  # 20000 - 8000
    assert net["net_beta_delta"] == pytest.approx(28.8)  # 48 - 19.2
    assert net["net_dollar_gamma"] == pytest.approx(-800.0)  # the call's alone
    assert net["net_theta"] == pytest.approx(5.0)
    assert "net_delta" not in net  # no account-level share-equivalents
    aapl = result.underlyings["AAPL"]
    assert aapl["net_delta"] == pytest.approx(60.0)  # 100 shares - 0.4 x 100
    assert aapl["net_gamma"] == pytest.approx(-2.0)  # 0.02 x -1 x 100
    assert net["completeness"]["net_dollar_delta"] == {
        "contributing": 2, "missing": 1, "reasons": {"unsupported_type": 1}
    }  # fmt: skip
    # The stock is not counted for theta (n/a), the warrant is counted as unsupported.
    assert net["completeness"]["net_theta"] == {
        "contributing": 1, "missing": 1, "reasons": {"unsupported_type": 1}
    }  # fmt: skip
    assert result.underlyings["DAI"]["net_dollar_delta"] is None
    assert (net["position_count"], net["option_count"], net["options_with_greeks"]) == (3, 1, 1)
    assert result.stalest_greek_age_s == pytest.approx(7.0)


def test_nothing_contributed_is_null_never_zero() -> None:
    """An account whose positions contribute nothing has every figure null, never zero, with the
    reasons counted."""
    result = aggregate([Holding(1, "XYZ", "OPT", 5, 100.0, "USD"), WARRANT], USD, NOW)
    assert [result.net[name] for name in FIGURES] == [None] * 5
    assert result.net["completeness"]["net_vega"]["reasons"] == {
        "no_greek": 1, "unsupported_type": 1
    }  # fmt: skip
    assert result.stalest_greek_age_s is None


def test_closed_positions_are_skipped_entirely() -> None:
    """A position of quantity 0 is neither counted nor listed under its underlying."""
    result = aggregate([Holding(1, "SPY", "STK", 0, 1.0, "USD", price=500.0)], USD, NOW)
    assert result.net["position_count"] == 0
    assert result.underlyings == {}


def test_change_clock_keeps_the_time_greeks_last_changed() -> None:
    """Repeating the same Greeks does not refresh them; a new value does."""
    clock = ChangeClock()
    first = clock.observe(1, (0.5, 0.1, -0.2, 0.3), NOW)
    repeated = clock.observe(1, (0.5, 0.1, -0.2, 0.3), NOW + timedelta(seconds=30))
    changed = clock.observe(1, (0.51, 0.1, -0.2, 0.3), NOW + timedelta(seconds=40))
    assert (first, repeated, changed) == (NOW, NOW, NOW + timedelta(seconds=40))
    clock.forget(1)
    assert clock.observe(1, (0.51, 0.1, -0.2, 0.3), NOW + timedelta(seconds=50)) == NOW + timedelta(
        seconds=50
    )


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
def test_socket_sentinel_greeks_are_unknown(raw: float | None, expected: float | None) -> None:
    """The socket's placeholder Greeks (-2, IB's unset double, NaN, infinities) read as unknown; a
    true zero stays zero."""
    assert known_socket_greek(raw) == expected


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


def test_snapshot_record_is_the_current_format_with_the_account_values() -> None:
    """The id comes from account and tick; money figures and account values are carried."""
    tick = datetime(2026, 3, 2, 15, 0, 5, tzinfo=UTC)
    context = AccountContext(
        "USD", {}, BETAS, 500.0, net_liquidation=1e6, unrealized_pnl=-5.0, daily_pnl=math.nan
    )
    first = snapshot("DU1", tick, "SOCKET", context, aggregate([SPY_STOCK], context, NOW))
    again = snapshot("DU1", tick, "SOCKET", context, aggregate([], context, NOW))
    assert first.id == again.id
    assert (first.version, first.currency, first.net_delta, first.net_gamma) == (
        3,
        "USD",
        None,
        None,
    )
    assert (first.net_dollar_delta, first.net_beta_delta) == (5_000.0, 10.0)
    assert (first.net_liquidation, first.unrealized_pnl, first.daily_pnl) == (1e6, -5.0, None)
    assert again.net_dollar_delta is None


@pytest.mark.parametrize(
    ("holdings", "expected"),
    [
        # An option names its underlying's bars; the share itself, held later, keeps them.
        ([("AAPL", "OPT", 701, 265598), ("AAPL", "STK", 265598, 0)], {"AAPL": 265598}),
        # A future held after its option: the future's own bars win over the option's guess.
        ([("ES", "FOP", 801, 495512557), ("ES", "FUT", 495512552, 0)], {"ES": 495512552}),
        # The option after the linear holding does not replace it.
        ([("ES", "FUT", 495512552, 0), ("ES", "FOP", 801, 495512557)], {"ES": 495512552}),
        # An option whose underlying is unknown, and a type with no bars of its own: nothing.
        ([("XYZ", "OPT", 901, 0), ("BMW", "WAR", 530000002, 0)], {}),
    ],
)
def test_which_conids_bars_give_a_symbols_beta(
    holdings: list[tuple[str, str, int, int]], expected: dict[str, int]
) -> None:
    """A symbol's beta is read from its linear holding's bars, else from its option's underlying; an
    unknown underlying gives none."""
    sources: dict[str, int] = {}
    for symbol, sec_type, conid, underlying in holdings:
        note_bars_source(sources, symbol, sec_type, conid, underlying)
    assert sources == expected


def test_the_stalest_input_age_covers_linear_prices() -> None:
    """A stock whose price last changed 30 s ago is staler than the call's 7 s old Greeks: the
    age is 30; a stock without a price contributes nothing and gives no age."""
    stale_stock = dataclasses.replace(AAPL_STOCK, price_changed_at=NOW - timedelta(seconds=30))
    assert aggregate([stale_stock, AAPL_SHORT_CALL], USD, NOW).stalest_greek_age_s == 30.0
    unpriced = dataclasses.replace(stale_stock, price=None)
    assert aggregate([unpriced, AAPL_SHORT_CALL], USD, NOW).stalest_greek_age_s == 7.0
    assert aggregate([stale_stock], USD, NOW).stalest_greek_age_s == 30.0  # no option at all


AAPL_CALL_WITHOUT_GREEKS = Holding(9, "AAPL", "OPT", 2, 100.0, "USD", greeks=None)
AAPL_CALL_WITHOUT_MULTIPLIER = dataclasses.replace(AAPL_SHORT_CALL, conid=10, multiplier=None)


@pytest.mark.parametrize(
    ("holding", "expected"),
    [
        (AAPL_STOCK, {"net_delta": 100.0, "net_gamma": None}),  # 100 shares; no gamma counted
        (AAPL_SHORT_CALL, {"net_delta": -40.0, "net_gamma": -2.0}),  # -1 x 100 x 0.4 / 0.02
        (AAPL_CALL_WITHOUT_GREEKS, {"net_delta": "no_greek", "net_gamma": "no_greek"}),
        (AAPL_CALL_WITHOUT_MULTIPLIER, dict.fromkeys(("net_delta", "net_gamma"), "no_multiplier")),
        (WARRANT, {"net_delta": "unsupported_type", "net_gamma": "unsupported_type"}),
        (
            dataclasses.replace(AAPL_STOCK, quantity=None),
            {"net_delta": "no_quantity", "net_gamma": None},
        ),
    ],
)
def test_share_equivalents_of_one_position(holding: Holding, expected: dict[str, Part]) -> None:
    """Each position's share-equivalent delta and gamma, or why it is missing."""
    assert share_equivalent_parts(holding) == expected


def test_an_option_without_greeks_is_counted_missing_from_its_underlyings_share_equivalents() -> (
    None
):
    """AAPL: 100 shares, a short call, and a call without Greeks: delta and gamma add the two
    known positions and say the third is missing (before, it silently dropped out)."""
    figures = aggregate([AAPL_STOCK, AAPL_SHORT_CALL, AAPL_CALL_WITHOUT_GREEKS], USD, NOW)
    aapl = figures.underlyings["AAPL"]
    assert (aapl["net_delta"], aapl["net_gamma"]) == (60.0, -2.0)  # 100 - 40; -2
    assert aapl["completeness"]["net_delta"] == {
        "contributing": 2, "missing": 1, "reasons": {"no_greek": 1},
    }  # fmt: skip
    assert aapl["completeness"]["net_gamma"] == {
        "contributing": 1, "missing": 1, "reasons": {"no_greek": 1},
    }  # fmt: skip
    assert "net_delta" not in figures.net["completeness"]  # per underlying only
