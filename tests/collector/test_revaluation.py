"""Scenario P&L by full revaluation: QuantLib's prices against closed forms written here, and
grids worked by hand (one line of arithmetic each)."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, date, datetime, timedelta

import pytest

from collector.greeks import AccountContext, Holding, OptionGreeks, OptionTerms
from collector.revaluation import (
    GRID_SIZE,
    Market,
    delta_gamma_pnl,
    expires_at,
    option_model,
    option_value,
    position_grid,
    revalue,
    scenario,
    scenario_index,
    scenario_record,
)
from shared import records

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
MARKET = Market(rate=0.05)
USD = AccountContext("USD", {"EUR": 1.08}, {"AAPL": 1.5, "SPY": 1.0})
EXPIRY = date(2027, 3, 19)  # 102 days and 6 hours after NOW (16:00 New York = 21:00 UTC)
YEARS = (expires_at(OptionTerms("C", 1, EXPIRY, None, None, None, None)) - NOW).total_seconds() / (
    365 * 86400
)


def _n(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _black_scholes(
    spot: float, strike: float, years: float, vol: float, rate: float, *, call: bool
) -> float:
    """The closed form, written out here apart from QuantLib."""
    d1 = (math.log(spot / strike) + (rate + vol * vol / 2) * years) / (vol * math.sqrt(years))
    d2 = d1 - vol * math.sqrt(years)
    if call:
        return spot * _n(d1) - strike * math.exp(-rate * years) * _n(d2)
    return strike * math.exp(-rate * years) * _n(-d2) - spot * _n(-d1)


def _option(
    right: str = "C",
    *,
    sec_type: str = "OPT",
    underlying_type: str | None = "STK",
    exercise: str | None = None,
    strike: float = 100.0,
    und: float | None = 100.0,
    vol: float | None = 0.2,
    quantity: float = 2,
    multiplier: float = 100.0,
    magnifier: float = 1.0,
    currency: str = "USD",
    symbol: str = "AAPL",
) -> Holding:
    return Holding(
        1, symbol, sec_type, quantity, multiplier, currency, magnifier,
        greeks=OptionGreeks(0.5, 0.02, -0.05, 0.2, und, NOW),
        terms=OptionTerms(right, strike, EXPIRY, exercise, underlying_type, vol, 5.0),  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("call", "expected"),
    [(True, 10.4506), (False, 5.5735)],  # Hull's textbook pair: S = K = 100, 1 y, 20 %, 5 %
)
def test_a_european_option_is_the_closed_form(call: bool, expected: float) -> None:
    """QuantLib's European price equals Black-Scholes to four decimals."""
    value = option_value("european", call=call, underlying=100, strike=100, years=1,
                         vol=0.2, market=MARKET)  # fmt: skip
    assert value == pytest.approx(expected, abs=1e-4)


def test_put_call_parity() -> None:
    """C - P = S - K e^(-rT) for European options: 10.4506 - 5.5735 = 100 - 95.1229."""
    args = {"underlying": 100.0, "strike": 100.0, "years": 1.0, "vol": 0.2, "market": MARKET}
    call = option_value("european", call=True, **args)  # type: ignore[arg-type]
    put = option_value("european", call=False, **args)  # type: ignore[arg-type]
    assert call - put == pytest.approx(100 - 100 * math.exp(-0.05), abs=1e-9)


def test_black_76_discounts_the_forward() -> None:
    """F = K = 100, 1 y, 20 %, 5 %: e^-0.05 x 100 x (N(0.1) - N(-0.1)) = 7.5771."""
    value = option_value("black76", call=True, underlying=100, strike=100, years=1,
                         vol=0.2, market=MARKET)  # fmt: skip
    assert value == pytest.approx(math.exp(-0.05) * 100 * (_n(0.1) - _n(-0.1)), abs=1e-9)
    assert value == pytest.approx(7.5771, abs=1e-4)


def test_an_american_put_is_worth_its_early_exercise() -> None:
    """S = K = 100, 1 y, 20 %, 5 %: American put 6.0904 (finite-difference reference), above
    the European 5.5735; without dividends the American call is the European one."""
    american = option_value("american", call=False, underlying=100, strike=100, years=1,
                            vol=0.2, market=MARKET)  # fmt: skip
    assert american == pytest.approx(6.0904, abs=2e-3)
    assert american > 5.5735
    call = option_value("american", call=True, underlying=100, strike=100, years=1,
                        vol=0.2, market=MARKET)  # fmt: skip
    assert call == pytest.approx(_black_scholes(100, 100, 1, 0.2, 0.05, call=True), abs=1e-9)


def test_an_american_option_s_time_is_not_rounded_to_a_day() -> None:
    """QuantLib counts whole days; the rescaling keeps half a day: 10 < 10.5 < 11 days."""
    values = [
        option_value(
            "american",
            call=False,
            underlying=100,
            strike=100,
            years=days / 365,
            vol=0.3,
            market=MARKET,
        )
        for days in (10.0, 10.5, 11.0)
    ]
    assert values[0] < values[1] < values[2]
    # Time value grows like the root of time: the half day sits near the middle.
    assert values[1] == pytest.approx((values[0] + values[2]) / 2, rel=2e-3)


@pytest.mark.parametrize(
    ("sec_type", "underlying_type", "exercise", "model"),
    [
        ("OPT", "STK", None, "american"),
        ("OPT", "ETF", "american", "american"),
        ("OPT", "IND", None, "european"),
        ("OPT", "IND", "european", "european"),
        ("FOP", "FUT", "american", "black76"),
        ("FOP", None, None, "black76"),
        ("OPT", None, None, None),
    ],
)
def test_the_model_follows_the_contract(
    sec_type: str, underlying_type: str | None, exercise: str | None, model: str | None
) -> None:
    """Equity and ETF options American, index options European, futures options Black-76;
    nothing said: no model (missing, never guessed)."""
    terms = OptionTerms("C", 100, EXPIRY, exercise, underlying_type, 0.2, 1.0)  # type: ignore[arg-type]
    assert option_model(terms, sec_type) == model


def test_the_grid_s_layout() -> None:
    """Day, then vol shift, then move: 60 scenarios, the last one +20 % at +5 points a day on."""
    assert GRID_SIZE == 60
    assert scenario(scenario_index(0, 0, 0)) == (0, -5.0, -20.0)
    assert scenario_index(1, 2, 9) == 59
    assert scenario(59) == (1, 5.0, 20.0)
    assert scenario(scenario_index(0, 1, 8)) == (0, 0.0, 10.0)


def test_a_linear_position_is_exact() -> None:
    """100 shares at 50 USD in a EUR account at 0.9: dollar delta 4,500 EUR x move, at every
    vol shift and a day later alike."""
    stock = Holding(9, "AAPL", "STK", 100, 1.0, "USD", price=50.0)
    context = AccountContext("EUR", {"USD": 0.9})
    grid = position_grid(stock, context, MARKET, NOW)
    assert isinstance(grid, list)
    assert grid[scenario_index(0, 1, 8)] == pytest.approx(450.0)  # +10 %
    assert grid[scenario_index(1, 2, 0)] == pytest.approx(-900.0)  # -20 %, +5 points, a day on
    assert grid[:10] == grid[-10:]


def test_an_index_option_s_grid_is_the_closed_form_difference() -> None:
    """Two European index calls x 100: each scenario is (BS at the moved inputs - BS now)
    x 200, the moved inputs S x (1 + move), vol + shift, a day less."""
    holding = _option(underlying_type="IND", vol=0.25)
    grid = position_grid(holding, USD, MARKET, NOW)
    assert isinstance(grid, list)
    assert len(grid) == 60
    now_value = _black_scholes(100, 100, YEARS, 0.25, 0.05, call=True)
    for index in (scenario_index(0, 1, 8), scenario_index(1, 0, 0), scenario_index(1, 2, 5)):
        days, shift, move = scenario(index)
        moved = _black_scholes(100 * (1 + move / 100), 100, YEARS - days / 365,
                               0.25 + shift / 100, 0.05, call=True)  # fmt: skip
        assert grid[index] == pytest.approx((moved - now_value) * 200, abs=1e-6)


def test_a_cents_quoted_futures_option_is_valued_in_dollars() -> None:
    """Corn: 1 call, 5,000 bushels, quoted in cents (magnifier 100), futures at 450 cents:
    P&L = Black-76 change in cents x 5,000 / 100."""
    corn = _option(sec_type="FOP", underlying_type="FUT", strike=450, und=450, quantity=1,
                   multiplier=5000, magnifier=100, vol=0.3, symbol="ZC")  # fmt: skip
    grid = position_grid(corn, USD, MARKET, NOW)
    assert isinstance(grid, list)
    discount = math.exp(-0.05 * YEARS)

    def black76(future: float) -> float:
        return discount * _black_scholes(future, 450, YEARS, 0.3, 0.0, call=True)

    expected = (black76(450 * 1.1) - black76(450)) * 50
    assert grid[scenario_index(0, 1, 8)] == pytest.approx(expected, abs=1e-6)


def test_delta_gamma_beside_the_grid() -> None:
    """Delta 0.5, gamma 0.02, underlying 100, 2 x 100: dollar delta 10,000, dollar gamma
    0.02 x 200 x 100² x 0.01 = 400; at +10 %: 1,000 + 50 x 0.01 x 400 = 1,200; at -10 %: -800."""
    assert delta_gamma_pnl(_option(), USD) == pytest.approx([-800.0, 1200.0])
    stock = Holding(9, "AAPL", "STK", 100, 1.0, "USD", price=50.0)
    assert delta_gamma_pnl(stock, USD) == pytest.approx([-500.0, 500.0])


@pytest.mark.parametrize(
    ("holding", "reason"),
    [
        (_option(vol=None), "no_implied_vol"),
        (dataclasses.replace(_option(), terms=None), "no_terms"),
        (_option(underlying_type=None), "no_model"),
        (_option(und=None), "no_price"),
        (_option(currency="CHF"), "no_fx_rate"),
        (Holding(8, "DAI", "WAR", 1000, 1.0, "EUR", price=0.5), "unsupported_type"),
        (dataclasses.replace(_option(), magnifier=None), "no_magnifier"),
    ],
)
def test_a_position_that_cannot_be_revalued_says_why(holding: Holding, reason: str) -> None:
    """Never priced as zero: the reason instead of a grid."""
    assert position_grid(holding, USD, MARKET, NOW) == reason


def test_an_expired_option_is_missing() -> None:
    """Past 16:00 New York on its last trading day."""
    later = expires_at(OptionTerms("C", 1, EXPIRY, None, None, None, None)) + timedelta(seconds=1)
    assert position_grid(_option(), USD, MARKET, later) == "expired"


def test_the_account_adds_what_contributed_and_counts_the_rest() -> None:
    """A stock (beta 1.5) and a call without IV: the grid is the stock's, the call counted
    missing; the beta grid moves the stock by 1.5 x the benchmark's move; an account of only
    the call has no grid at all (null, never zeros)."""
    stock = Holding(9, "AAPL", "STK", 100, 1.0, "USD", price=50.0)
    no_vol = _option(vol=None)
    result = revalue([stock, no_vol], USD, MARKET, NOW)
    total = result.account
    assert total.grid is not None
    assert total.beta_grid is not None
    assert total.grid[scenario_index(0, 1, 8)] == pytest.approx(500.0)  # 5,000 x 10 %
    assert total.beta_grid[scenario_index(0, 1, 8)] == pytest.approx(750.0)  # x 1.5
    assert total.completeness["grid"] == {
        "contributing": 1, "missing": 1, "reasons": {"no_implied_vol": 1}
    }  # fmt: skip
    assert result.underlyings["AAPL"].grid == total.grid
    alone = revalue([no_vol], USD, MARKET, NOW).account
    assert (alone.grid, alone.beta_grid, alone.delta_gamma_10) == (None, None, [-800.0, 1200.0])


def test_a_position_without_beta_is_missing_from_the_beta_grid_only() -> None:
    """SPY has a beta, QQQ none: the grid holds both, the beta grid SPY's alone."""
    spy = Holding(1, "SPY", "STK", 10, 1.0, "USD", price=500.0)
    qqq = Holding(2, "QQQ", "STK", 10, 1.0, "USD", price=400.0)
    total = revalue([spy, qqq], USD, MARKET, NOW).account
    assert total.grid is not None
    assert total.beta_grid is not None
    assert total.grid[scenario_index(0, 1, 9)] == pytest.approx(1800.0)  # 9,000 x 20 %
    assert total.beta_grid[scenario_index(0, 1, 9)] == pytest.approx(1000.0)
    assert total.completeness["beta_grid"]["reasons"] == {"no_beta": 1}


def test_the_worst_loss_and_its_scenario_travel_in_the_record() -> None:
    """A long stock's worst is -20 % (the first index of that move); the line round-trips."""
    stock = Holding(9, "AAPL", "STK", 100, 1.0, "USD", price=50.0)
    ts = NOW.replace(second=5)
    record = scenario_record("DU1", ts, "SOCKET", USD, revalue([stock], USD, MARKET, NOW))
    assert record.worst is not None
    assert record.worst[0] == pytest.approx(-1000.0)
    assert record.worst[1] == 0
    assert record.underlyings["AAPL"].worst == record.worst
    decoded = records.decode(records.encode(record))
    assert decoded == dataclasses.replace(
        record,
        underlyings={"AAPL": dataclasses.replace(record.underlyings["AAPL"], completeness={})},
    )


def test_the_worst_loss_is_drilled_down_to_its_legs() -> None:
    """100 AAPL at 50 (beta 1.5), short 4 SPY at 500 (beta 1), a call without IV: the account's
    dollar delta is 5,000 - 2,000, so its worst is -20 % (index 0): AAPL -1,000, SPY +400, sum
    -600; beta-weighted AAPL moves -30 %: -1,500, SPY +400, sum -1,100. The call is missing, in
    the counts, not among the legs; the legs travel in the record and are accepted."""
    aapl = Holding(9, "AAPL", "STK", 100, 1.0, "USD", price=50.0)
    spy = Holding(1, "SPY", "STK", -4, 1.0, "USD", price=500.0)
    result = revalue([spy, aapl, _option(vol=None)], USD, MARKET, NOW)
    assert result.worst_legs == ((9, -1000.0), (1, 400.0))  # linear: exact
    assert result.beta_worst_legs == ((9, -1500.0), (1, 400.0))
    record = scenario_record("DU1", NOW, "SOCKET", USD, result)
    assert record.worst == (-600.0, 0)
    assert record.beta_worst == (-1100.0, 0)
    decoded = records.decode(records.encode(record))
    assert isinstance(decoded, records.Scenario)
    assert (decoded.worst_legs, decoded.beta_worst_legs) == (
        record.worst_legs, record.beta_worst_legs,
    )  # fmt: skip
    assert revalue([_option(vol=None)], USD, MARKET, NOW).worst_legs is None  # no grid
