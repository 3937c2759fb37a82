"""The simulator's own statement of the figures' conventions, with hand-worked tables; its daily
bars, betas and ledger over small scenarios."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from simulator.history import Bar, ols_beta
from simulator.model import Market
from simulator.scenario import from_mapping, load
from simulator.truth import Exposure, aggregate, contributions

T0 = 1_790_000_000.0  # a fixed instant; the clock is always injected
BENCH = 600.0  # the benchmark's price in the base currency


def _option(symbol: str, qty: float, mult: float, price: float, greeks: tuple[float, ...], *,
            sec_type: str = "OPT", magnifier: float = 1.0, fx: float = 1.0,
            beta: float = 1.0) -> Exposure:  # fmt: skip
    delta, gamma, theta, vega = greeks
    return Exposure(symbol, sec_type, qty, mult, magnifier, fx, price, delta, gamma, theta, vega,
                    beta=beta)  # fmt: skip


def _linear(sec_type: str, qty: float, mult: float | None, price: float | None, *,
            fx: float | None = 1.0, beta: float | None = 1.0) -> Exposure:  # fmt: skip
    return Exposure("X", sec_type, qty, mult, 1.0, fx, price, beta=beta)


SHORT_CALL = _option("SPY", -1, 100, 600.0, (0.4, 0.02, -0.1, 0.5))
ZC_CALL = _option("ZC", -4, 5000, 450.0, (0.5, 0.01, -0.2, 0.8), sec_type="FOP",
                  magnifier=100.0, beta=0.2)  # fmt: skip
ESTX50_PUT = _option("ESTX50", 5, 10, 5000.0, (-0.3, 0.0004, -1.5, 6.0), fx=1.08, beta=0.8)


@pytest.mark.parametrize(
    ("exposure", "expected"),
    [
        # Covered call, short leg: 0.4 x -1 x 100 x 600 = -24000; gamma 0.02 x -100 x 600^2 x
        # 0.01 = -7200; theta -0.1 x -100 = 10; vega 0.5 x -100 = -50; beta -24000 x 1 / 600.
        (SHORT_CALL, {"net_dollar_delta": -24000.0, "net_dollar_gamma": -7200.0,
                      "net_theta": 10.0, "net_vega": -50.0, "net_beta_delta": -40.0}),
        # Covered call, stock leg: 100 x 1 x 600 = 60000, 60000 / 600 = 100 benchmark shares.
        (_linear("STK", 100, 1, 600.0), {"net_dollar_delta": 60000.0, "net_beta_delta": 100.0}),
        # Short future: -1 x 50 x 6000 = -300000; x 1.1 / 600 = -550.
        (_linear("FUT", -1, 50, 6000.0, beta=1.1),
         {"net_dollar_delta": -300000.0, "net_beta_delta": -550.0}),
        # Cents-quoted option (ZC, magnifier 100): 0.5 x -4 x 5000 x 450/100 = -45000; gamma
        # 0.01 x -20000 x 450^2/100 x 0.01 = -4050; theta -0.2 x -20000/100 = 40; vega
        # 0.8 x -20000/100 = -160; beta -45000 x 0.2 / 600 = -15.
        (ZC_CALL, {"net_dollar_delta": -45000.0, "net_dollar_gamma": -4050.0,
                   "net_theta": 40.0, "net_vega": -160.0, "net_beta_delta": -15.0}),
        # EUR position in a USD account at 1.08: -0.3 x 5 x 10 x 5000 x 1.08 = -81000; gamma
        # 0.0004 x 50 x 5000^2 x 0.01 x 1.08 = 5400; theta -1.5 x 50 x 1.08 = -81; vega
        # 6 x 50 x 1.08 = 324; beta -81000 x 0.8 / 600 = -108.
        (ESTX50_PUT, {"net_dollar_delta": -81000.0, "net_dollar_gamma": 5400.0,
                      "net_theta": -81.0, "net_vega": 324.0, "net_beta_delta": -108.0}),
        # Missing price: a stock the gateway sends no price for.
        (_linear("STK", 50, 1, None),
         {"net_dollar_delta": "no_price", "net_beta_delta": "no_price"}),
        # Missing beta: a EUR CFD, 100 x 230 x 1.08 = 24840, but no history.
        (_linear("CFD", 100, 1, 230.0, fx=1.08, beta=None),
         {"net_dollar_delta": 24840.0, "net_beta_delta": "no_beta"}),
        # No exchange rate for its currency; no multiplier anywhere.
        (_linear("STK", 10, 1, 50.0, fx=None),
         {"net_dollar_delta": "no_fx_rate", "net_beta_delta": "no_fx_rate"}),
        (_linear("FUT", 1, None, 6000.0),
         {"net_dollar_delta": "no_multiplier", "net_beta_delta": "no_multiplier"}),
        # A warrant: unsupported in every figure, gamma, theta and vega included.
        (_linear("WAR", 1000, 1, 1.25), dict.fromkeys(
            ("net_dollar_delta", "net_dollar_gamma", "net_theta", "net_vega", "net_beta_delta"),
            "unsupported_type")),
        # An option without Greeks: no_greek in every figure.
        (Exposure("SPY", "OPT", 2, 100, 1.0, 1.0, 600.0, beta=1.0), dict.fromkeys(
            ("net_dollar_delta", "net_dollar_gamma", "net_theta", "net_vega", "net_beta_delta"),
            "no_greek")),
    ],
)  # fmt: skip
def test_each_position_adds_what_the_conventions_say(
    exposure: Exposure, expected: dict[str, float | str]
) -> None:
    """One position's contribution to each figure, or the one reason it cannot contribute."""
    got = contributions(exposure, BENCH)
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == (value if isinstance(value, str) else pytest.approx(value)), name


def test_a_book_sums_with_its_completeness() -> None:
    """Covered call + short future + a stock without price: totals, counts and reasons."""
    book = [
        _linear("STK", 100, 1, 600.0),
        SHORT_CALL,
        _linear("FUT", -1, 50, 6000.0, beta=1.1),
        _linear("STK", 50, 1, None),
        _linear("STK", 0, 1, 10.0),  # a closed position is skipped entirely
    ]
    total = aggregate(book, BENCH)
    assert total["net_dollar_delta"] == pytest.approx(60000 - 24000 - 300000)
    assert total["net_beta_delta"] == pytest.approx(100 - 40 - 550)
    assert total["net_theta"] == pytest.approx(10.0)
    # Share-equivalents: 100 - 0.4 x 100 - 50 + 50 (the priceless stock still holds 50 shares).
    assert total["net_delta"] == pytest.approx(100 - 40 - 50 + 50)
    assert total["completeness"]["net_dollar_delta"] == {
        "contributing": 3, "missing": 1, "reasons": {"no_price": 1},
    }  # fmt: skip
    # Linear instruments are not counted for theta: only the option is.
    assert total["completeness"]["net_theta"] == {"contributing": 1, "missing": 0, "reasons": {}}
    assert (total["position_count"], total["option_count"], total["options_with_greeks"]) == (
        4, 1, 1,
    )  # fmt: skip


def test_a_figure_nothing_contributed_to_is_null_not_zero() -> None:
    """A future alone has no gamma, theta or vega: null, with nothing counted."""
    total = aggregate([_linear("FUT", -1, 50, 6000.0)], None)
    assert (total["net_dollar_gamma"], total["net_theta"], total["net_beta_delta"]) == (None,) * 3
    assert total["completeness"]["net_beta_delta"]["reasons"] == {"no_price": 1}


def _bars(closes: list[float]) -> list[Bar]:
    return [Bar(date(2026, 1, 5 + i), c, c, c, c, 1.0) for i, c in enumerate(closes)]


@pytest.mark.parametrize(
    ("underlying", "benchmark", "beta"),
    [
        # r_b = .1, -.1; r_u = .2, -.2: cov .04 / var .02 = 2.
        ([50.0, 60.0, 48.0], [100.0, 110.0, 99.0], 2.0),
        # r_b = .1, -.1, 0; r_u = .06, -.04, .01: cov .01 / var .02 = 0.5.
        ([100.0, 106.0, 101.76, 102.7776], [100.0, 110.0, 99.0, 99.0], 0.5),
        # One return only: no beta.
        ([1.0, 2.0], [1.0, 3.0], None),
    ],
)
def test_beta_is_the_ols_slope_of_close_returns(
    underlying: list[float], benchmark: list[float], beta: float | None
) -> None:
    """cov(r_u, r_b) / var(r_b) over the dates both have."""
    got = ols_beta(_bars(underlying), _bars(benchmark))
    assert got == (None if beta is None else pytest.approx(beta))


def _trader() -> Market:
    return Market(load(Path("trader")), clock=lambda: T0)


def test_a_year_of_bars_ends_at_yesterdays_close_and_betas_differ() -> None:
    """252 weekdays before today, the last closing at the scenario's spot (the prior close the
    day's P&L starts from); the same on every run; the regression recovers distinct betas."""
    market = _trader()
    bars = market.bars(756733)
    assert bars is not None
    assert len(bars) == 252
    assert bars[-1].close == 600.0
    assert all(bar.day < market.today() and bar.day.weekday() < 5 for bar in bars)
    assert _trader().bars(756733) == bars
    assert market.beta("SPY") == pytest.approx(1.0)
    betas = {symbol: market.beta(symbol) for symbol in ("NQ", "ZC", "ESTX50", "SAP")}
    assert betas["SAP"] is None  # the scenario serves no history for it
    nq, estx50, zc = (betas[symbol] or 0.0 for symbol in ("NQ", "ESTX50", "ZC"))
    assert (nq > 1.1, 0.5 < estx50 < 0.95, zc < 0.35) == (True, True, True), betas
    assert market.bars(710001) is None  # options have no bars of their own


def test_the_ledger_converts_each_currency_at_the_gateways_rate() -> None:
    """Net liquidation = cash + stock value + a future's P&L (not its notional), per currency,
    then in the base currency; daily P&L from yesterday's close."""
    scenario = from_mapping(
        {
            "accounts": ["E1"], "base_currency": {"E1": "EUR"},
            "exchange_rates": {"EUR": {"USD": 0.9}}, "cash": {"E1": {"EUR": 1000, "USD": 500}},
            "underlyings": [
                {"conid": 1, "symbol": "S", "sec_type": "STK", "exchange": "SMART",
                 "primary_exchange": "NYSE", "spot": 50.0, "vol": 0.2},
                {"conid": 2, "symbol": "F", "sec_type": "FUT", "exchange": "CME",
                 "primary_exchange": "CME", "spot": 6030.0, "vol": 0.2, "multiplier": 50,
                 "expiry_days": 90},
            ],
            "positions": [{"account": "E1", "holdings": [
                {"conid": 1, "quantity": 10, "cost": 40.0},
                {"conid": 2, "quantity": -1, "cost": 6000.0}]}],
        }
    )  # fmt: skip
    market = Market(scenario, clock=lambda: T0)
    stock, future = market.quote(1).mark, market.quote(2).mark
    assert stock is not None
    assert future is not None
    base = market.ledger("E1").base
    # USD line: 500 + 10 x S + (-1 x 50 x (F - 6000)), at 0.9; EUR: 1000.
    assert base.net_liquidation == pytest.approx(
        1000 + (500 + 10 * stock - 50 * (future - 6000)) * 0.9
    )
    assert base.unrealized_pnl == pytest.approx((10 * (stock - 40) - 50 * (future - 6000)) * 0.9)
    assert base.daily_pnl == pytest.approx((10 * (stock - 50) - 50 * (future - 6030)) * 0.9)
    truth = market.truth()["E1"]
    assert (truth["currency"], truth["net_liquidation"]) == ("EUR", round(base.net_liquidation, 2))


def test_a_scenario_needs_a_rate_for_every_currency_it_holds() -> None:
    """A EUR account holding USD without a USD rate is refused, naming what is missing."""
    from simulator.errors import ScenarioError  # noqa: PLC0415

    with pytest.raises(ScenarioError, match=r"exchange_rates\.EUR for USD"):
        from_mapping(
            {"accounts": ["E1"], "base_currency": {"E1": "EUR"},
             "underlyings": [{"conid": 1, "symbol": "S", "sec_type": "STK", "exchange": "SMART",
                              "primary_exchange": "NYSE", "spot": 50.0, "vol": 0.2}]}
        )  # fmt: skip
