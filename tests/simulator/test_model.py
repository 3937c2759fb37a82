"""The simulator's model: prices, Greeks, truth, freezing and scenarios, with plain values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from simulator.errors import ScenarioError
from simulator.model import Market
from simulator.pricing import black_scholes
from simulator.scenario import from_mapping, load

T0 = 1_790_000_000.0  # a fixed instant; the clock is always injected


def _market(at: list[float]) -> Market:
    return Market(load(None), clock=lambda: at[0])


@pytest.mark.parametrize(
    ("call", "price", "delta"),
    [
        # S=42, K=40, r=4 %, T=0.5, vol=0.2: d1=0.5570, d2=0.4156, N(d1)=0.7113, N(d2)=0.6612;
        # C = 42 N(d1) - 40 e^-0.02 N(d2), P by parity.
        (True, 3.9499, 0.7113),
        (False, 1.1579, -0.2887),
    ],
)
def test_black_scholes_matches_the_closed_form(call: bool, price: float, delta: float) -> None:
    """Price and delta of a European option agree with the textbook formula to 4 decimals."""
    value = black_scholes(spot=42.0, strike=40.0, years=0.5, vol=0.2, call=call)
    assert value.price == pytest.approx(price, abs=1e-4)
    assert value.delta == pytest.approx(delta, abs=1e-4)


def test_put_call_parity_and_greek_units() -> None:
    """C - P = S - K e^-rT; gamma and vega match for a call and a put; theta is per day."""
    call = black_scholes(spot=600, strike=620, years=30 / 365, vol=0.18, call=True)
    put = black_scholes(spot=600, strike=620, years=30 / 365, vol=0.18, call=False)
    assert call.price - put.price == pytest.approx(600 - 620 * math.exp(-0.04 * 30 / 365))
    assert call.gamma == pytest.approx(put.gamma)
    assert call.vega == pytest.approx(put.vega)
    assert -1.0 < call.theta < 0  # dollars per day per share, not per year


def test_truth_is_the_sum_of_quantity_multiplier_and_greek() -> None:
    """The truth for an account equals the hand sum over its positions' quotes."""
    market = _market([T0])
    market.freeze()
    expected_delta = 0.0
    for position in market.positions("DU1234567"):
        item, size = position.instrument, position.quantity * position.instrument.multiplier
        quote = market.quote(item.conid)
        if item.underlying_conid is None:
            expected_delta += size
        elif quote.delta is not None:
            expected_delta += size * quote.delta
    truth = market.truth()["DU1234567"]["net"]
    assert truth["net_delta"] == pytest.approx(expected_delta, rel=1e-12)
    assert (truth["position_count"], truth["option_count"], truth["options_with_greeks"]) == (
        6,
        4,
        3,
    )


def test_option_without_greeks_has_prices_but_no_greeks() -> None:
    """The scenario's Greek-less option quotes a price and None for every Greek."""
    quote = _market([T0]).quote(700003)
    assert quote.last is not None
    assert (quote.delta, quote.gamma, quote.theta, quote.vega, quote.implied_vol) == (None,) * 5


def test_prices_move_unless_frozen_and_are_deterministic() -> None:
    """Greeks change with time; frozen they hold; the same seed and time give the same values."""
    clock = [T0]
    market = _market(clock)
    first = market.quote(700001).delta
    clock[0] += 30
    moved = market.quote(700001).delta
    assert moved != first
    market.freeze()
    clock[0] += 300
    assert market.quote(700001).delta == moved
    market.thaw()
    assert market.quote(700001).delta != moved
    assert _market([T0 + 330]).quote(700001).delta == market.quote(700001).delta


def test_positions_change_at_runtime_and_listeners_hear_it() -> None:
    """Opening and closing a position changes what is served and tells the gateways."""
    market = _market([T0])
    heard: list[str] = []
    market.subscribe(heard.append)
    market.set_position("DU7654321", 700002, -4)
    market.set_position("DU7654321", 700004, 0)
    conids = {position.instrument.conid for position in market.positions("DU7654321")}
    assert 700002 in conids
    assert 700004 not in conids
    assert heard == ["positions", "positions"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"accounts": ["A"]}, "missing 'underlyings'"),
        (
            {"accounts": ["A"], "underlyings": [{"conid": 1}]},
            "underlyings\\[0\\]",
        ),
        (
            {
                "accounts": ["A"],
                "underlyings": [
                    {"conid": 1, "symbol": "X", "sec_type": "STK", "exchange": "SMART",
                     "primary_exchange": "NYSE", "spot": 10.0, "vol": 0.2}
                ],
                "positions": [{"account": "B", "holdings": []}],
            },
            "unknown account 'B'",
        ),
        (
            {"accounts": ["A"], "underlyings": [
                {"conid": 1, "symbol": "X", "sec_type": "OPT", "exchange": "SMART",
                 "primary_exchange": "NYSE", "spot": 10.0, "vol": 0.2}]},
            "X: sec_type is one of",
        ),
        (
            {"accounts": ["A"], "portal_values": "pretty", "underlyings": []},
            "portal_values is one of",
        ),
        (
            {"accounts": ["A"], "cash": {"A": {"EUR": "lots"}}, "underlyings": []},
            "could not convert",
        ),
    ],
)  # fmt: skip
def test_bad_scenarios_are_refused_with_the_reason(raw: dict[str, object], message: str) -> None:
    """A scenario that cannot be served is refused with a message naming the problem."""
    with pytest.raises(ScenarioError, match=message):
        from_mapping(raw)


def test_scenario_file_formats(tmp_path: Path) -> None:
    """JSON and TOML files load; a missing file is a clear error."""
    json_file = tmp_path / "one.json"
    json_file.write_text(
        '{"accounts": ["DU1"], "seed": 3, "underlyings": [{"conid": 5, "symbol": "Z",'
        ' "sec_type": "STK", "exchange": "SMART", "primary_exchange": "NYSE", "spot": 50,'
        ' "vol": 0.3}], "positions": [{"account": "DU1", "holdings": [{"conid": 5,'
        ' "quantity": 7}]}]}'
    )
    market = Market(load(json_file), clock=lambda: T0)
    assert market.truth()["DU1"]["net"]["net_delta"] == 7.0
    with pytest.raises(ScenarioError, match="No such file"):
        load(tmp_path / "missing.toml")


def test_daily_pnl_follows_prices_not_greeks() -> None:
    """A position's daily P&L is marked to market from its price path: an option whose
    reported Greeks are all 0 still makes its price change x size when the market moves."""
    raw = {
        "accounts": ["DU1"], "seed": 3, "frozen": True,
        "underlyings": [{"conid": 5, "symbol": "Z", "sec_type": "STK", "exchange": "SMART",
                         "primary_exchange": "NYSE", "spot": 50, "vol": 0.3}],
        "options": [{"conid": 6, "underlying": 5, "right": "C", "strike": 50, "expiry_days": 30,
                     "multiplier": 100, "fixed_greeks": {"delta": 0, "gamma": 0, "theta": 0,
                                                         "vega": 0}}],
        "positions": [{"account": "DU1", "holdings": [{"conid": 6, "quantity": 3}]}],
    }  # fmt: skip
    market = Market(from_mapping(raw), clock=lambda: T0)
    [position] = market.positions("DU1")
    before, price_before = market.valuation(position), market.quote(6).mark
    market.advance(5.0)
    after, price_after = market.valuation(position), market.quote(6).mark
    assert price_before is not None
    assert price_after is not None
    assert market.quote(6).delta == 0.0  # what the gateway reports
    moved = 3 * 100 * (price_after - price_before)
    assert moved != 0  # the market did move
    assert after.daily_pnl - before.daily_pnl == pytest.approx(moved, rel=1e-9)
