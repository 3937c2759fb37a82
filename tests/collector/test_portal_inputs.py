"""PORTAL inputs that must never become numbers when the gateway does not give them: the price
magnifier, the quantity, prices that are not live (issue 17). The trader scenario, frozen,
with the simulator's faults serving each case."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collector.collector import Collector
from simulator.app import Simulator
from tests.collector.portal import opened_portal_collector
from tests.collector.spooled import events, snapshots_at
from tests.collector.stated import HALF_CENT, stated
from tests.fixtures.simulator import StartSimulator

U1 = "U1111111"
ZC_FUTURE = 532513362
ZC_CALL = 710004
ZC_TRUE_MAGNIFIER = 100


async def tick_until(
    collector: Collector,
    first_tick: int,
    ready: Callable[[dict[str, dict[str, Any]]], bool],
    *,
    most_ticks: int = 12,
) -> tuple[int, dict[str, dict[str, Any]]]:
    """Tick (each awaited) until `ready` holds for the tick's snapshots; fails after
    `most_ticks` (the Portal's Greeks arrive within three answers)."""
    for index in range(first_tick, first_tick + most_ticks):
        await collector.tick_once(index)
        records = snapshots_at(collector, index)
        if records and ready(records):
            return index, records
    pytest.fail(f"not ready after {most_ticks} ticks")


def reasons(record: dict[str, Any], figure: str, underlying: str | None = None) -> dict[str, int]:
    scope = record if underlying is None else record["underlyings"][underlying]
    found: dict[str, int] = scope["completeness"][figure]["reasons"]
    return found


async def test_an_unknown_magnifier_is_missing_and_asked_again_never_1(
    portal_collector: Collector, trader_portal: Simulator
) -> None:
    """Positions without displayRule, info-and-rules failing: ZC's future and call are
    missing with no_magnifier (not valued 100x too large); once the lookup answers, the next
    tick asks again and ZC equals the truth (its recomputed dollar gamma the exact one, within
    its bound). A null priceMagnifier (SPY) stays missing."""
    market = trader_portal.market
    market.faults.portal_no_display_rule = True
    market.faults.portal_rules_error = 500
    assert await portal_collector.connect_once()
    index, records = await tick_until(portal_collector, 100, lambda r: "ZC" in r[U1]["underlyings"])
    assert reasons(records[U1], "net_dollar_delta", "ZC") == {"no_magnifier": 2}
    assert records[U1]["underlyings"]["ZC"]["net_dollar_delta"] is None
    unknown = [e for e in events(portal_collector.settings.paths.var_dir)
               if e["event"] == "magnifier_unknown"]  # fmt: skip
    assert {e["details"]["conid"] for e in unknown} >= {ZC_FUTURE, ZC_CALL}

    market.faults.portal_rules_error = None
    truth = market.portal_truth()[U1]["underlyings"]["ZC"]
    _, records = await tick_until(
        portal_collector,
        index + 1,
        lambda r: (
            r[U1]["underlyings"]["ZC"]["completeness"]["net_dollar_gamma"]["contributing"] == 1
        ),
    )
    zc = records[U1]["underlyings"]["ZC"]
    assert reasons(records[U1], "net_dollar_delta", "ZC") == {}
    for name in ("net_dollar_delta", "net_theta", "net_vega"):
        assert zc[name] == stated(name, truth[name]), name
    # Its call's gamma ("0.0xx") is recomputed: the exact truth within the stated bound.
    gamma = zc["completeness"]["net_dollar_gamma"]
    exact = market.truth()[U1]["underlyings"]["ZC"]["net_dollar_gamma"]
    assert gamma["recomputed"] == 1
    assert abs(zc["net_dollar_gamma"] - exact) <= gamma["rounding_bound"] * (1 + 1e-9) + HALF_CENT
    # Info-and-rules says null for SPY and its two calls: unknown, not 1.
    assert reasons(records[U1], "net_dollar_delta", "SPY") == {"no_magnifier": 3}


async def test_the_positions_display_rule_gives_every_magnifier(
    portal_collector: Collector, trader_portal: Simulator
) -> None:
    """With info-and-rules failing, the positions' displayRule alone (100 for ZC, 0 for the
    rest) gives every position its magnifier: nothing is missing with no_magnifier and ZC's
    dollar delta equals the truth."""
    market = trader_portal.market
    market.faults.portal_rules_error = 500
    assert await portal_collector.connect_once()
    truth = market.portal_truth()[U1]
    _, records = await tick_until(
        portal_collector,
        200,
        lambda r: (
            r[U1]["underlyings"]["ZC"]["completeness"]["net_dollar_delta"]["contributing"] == 2
        ),
    )
    for figure in ("net_dollar_delta", "net_theta"):
        assert "no_magnifier" not in reasons(records[U1], figure)
    zc = records[U1]["underlyings"]["ZC"]["net_dollar_delta"]
    assert zc == stated("net_dollar_delta", truth["underlyings"]["ZC"]["net_dollar_delta"])
    assert "magnifier_unknown" not in [
        e["event"] for e in events(portal_collector.settings.paths.var_dir)
    ]


# A London stock quoted in pence (GBX): the gateway's magnifier of 100 must reach it in PORTAL
# as it does in SOCKET, whatever its type. Prices exact, so the figures equal the truth.
PENCE_SCENARIO = """
seed = 3
accounts = ["U3333333"]
[exchange_rates.USD]
GBP = 1.27
[[underlyings]]
conid = 756733
symbol = "SPY"
sec_type = "STK"
exchange = "SMART"
primary_exchange = "ARCA"
spot = 600.0
vol = 0.18
[[underlyings]]
conid = 540000001
symbol = "VOD"
sec_type = "STK"
exchange = "LSE"
primary_exchange = "LSE"
currency = "GBP"
price_magnifier = 100
spot = 72.5
vol = 0.2
[[positions]]
account = "U3333333"
holdings = [{ conid = 540000001, quantity = 1000 }, { conid = 756733, quantity = 10 }]
"""


async def test_a_stock_quoted_in_pence_gets_its_magnifier_without_a_display_rule(
    tmp_path: Path, start_simulator: StartSimulator
) -> None:
    """No displayRule: info-and-rules' 100 for the pence-quoted stock is applied (a stock was
    never looked up before); 1000 shares at 72.5p are GBP 725 in dollar delta, not 72,500."""
    scenario = tmp_path / "pence.toml"
    scenario.write_text(PENCE_SCENARIO)
    simulator = await start_simulator(scenario, IBKR_SIM_PENALTY_S="2")
    simulator.market.faults.portal_no_display_rule = True
    async with opened_portal_collector(simulator, tmp_path / "var") as collector:
        assert await collector.connect_once()
        _, records = await tick_until(
            collector,
            300,
            lambda r: (
                "VOD" in r["U3333333"]["underlyings"]
                and r["U3333333"]["underlyings"]["VOD"]["net_dollar_delta"] is not None
            ),
        )
    truth = simulator.market.truth()["U3333333"]["underlyings"]["VOD"]["net_dollar_delta"]
    vod = records["U3333333"]["underlyings"]["VOD"]["net_dollar_delta"]
    assert vod == stated("net_dollar_delta", truth)
    assert vod == pytest.approx(1000 * 72.5 / 100 * 1.27, rel=0.05)  # the path moves a little


async def test_an_unreadable_quantity_is_missing_never_0(
    make_collector: Callable[..., Collector], portal_simulator: Simulator
) -> None:
    """SPY's position served as "n/a": counted (position_count as the truth's), missing with
    no_quantity in dollar and beta delta, not summed as 0 shares; the raw value is logged."""
    spy = 756733
    portal_simulator.market.faults.portal_garbled_quantity = spy
    collector = make_collector()
    assert await collector.connect_once()
    _, records = await tick_until(collector, 400, lambda r: r["DU1234567"]["option_count"] > 0)
    record = records["DU1234567"]
    truth = portal_simulator.market.truth()["DU1234567"]
    assert record["position_count"] == truth["position_count"]
    for figure in ("net_dollar_delta", "net_beta_delta"):
        assert reasons(record, figure, "SPY").get("no_quantity") == 1, figure
    said = [e for e in events(collector.settings.paths.var_dir) if e["event"] == "bad_quantity"]
    assert {(e["details"]["conid"], e["details"]["raw"]) for e in said} == {(spy, "'n/a'")}


# Two stocks the Portal has only a prefixed last for: yesterday's close ("C") and a halted last
# ("H"); an option on the first. SPY is the benchmark, priced live.
NOT_LIVE_SCENARIO = """
seed = 5
accounts = ["U4444444"]
portal_values = "as_gateway"
[[underlyings]]
conid = 756733
symbol = "SPY"
sec_type = "STK"
exchange = "SMART"
primary_exchange = "ARCA"
spot = 600.0
vol = 0.18
[[underlyings]]
conid = 540000002
symbol = "OLD"
sec_type = "STK"
exchange = "SMART"
primary_exchange = "NYSE"
spot = 40.0
vol = 0.3
portal_last_prefix = "C"
portal_last_only = true
[[underlyings]]
conid = 540000003
symbol = "HALT"
sec_type = "STK"
exchange = "SMART"
primary_exchange = "NASDAQ"
spot = 12.0
vol = 0.5
portal_last_prefix = "H"
portal_last_only = true
[[options]]
conid = 740001
underlying = 540000002
right = "C"
strike = 40.0
expiry_days = 30
multiplier = 100
[[positions]]
account = "U4444444"
holdings = [
    { conid = 756733, quantity = 10 },
    { conid = 540000002, quantity = 100 },
    { conid = 740001, quantity = 2 },
    { conid = 540000003, quantity = 300 },
]
"""


async def test_a_prior_close_or_halted_last_is_not_a_live_price(
    tmp_path: Path, start_simulator: StartSimulator
) -> None:
    """Only a "C" or "H" last: the stock, and the option whose underlying it is, are missing
    with prior_close or halted in every priced figure, never valued at that price; the option's
    theta and vega (which need no price) still count; SPY, priced live, contributes."""
    scenario = tmp_path / "not_live.toml"
    scenario.write_text(NOT_LIVE_SCENARIO)
    simulator = await start_simulator(scenario, IBKR_SIM_PENALTY_S="2")
    async with opened_portal_collector(simulator, tmp_path / "var") as collector:
        assert await collector.connect_once()
        _, records = await tick_until(
            collector, 500, lambda r: r["U4444444"]["options_with_greeks"] == 1
        )
    record = records["U4444444"]
    for figure in ("net_dollar_delta", "net_beta_delta"):
        assert reasons(record, figure, "OLD") == {"prior_close": 2}, figure
        assert reasons(record, figure, "HALT") == {"halted": 1}, figure
    assert reasons(record, "net_dollar_gamma", "OLD") == {"prior_close": 1}
    assert record["underlyings"]["OLD"]["net_theta"] is not None
    assert record["completeness"]["net_dollar_delta"]["contributing"] == 1  # SPY alone


async def test_an_account_of_stocks_alone_has_an_input_age(
    tmp_path: Path, start_simulator: StartSimulator
) -> None:
    """Two stocks and no option: the stalest-input age is their prices' (it was null: only
    option Greeks had an age), and with the market frozen it grows from tick to tick."""
    scenario = tmp_path / "pence.toml"
    scenario.write_text(PENCE_SCENARIO)
    simulator = await start_simulator(scenario, IBKR_SIM_PENALTY_S="2")
    async with opened_portal_collector(simulator, tmp_path / "var") as collector:
        assert await collector.connect_once()
        index, first = await tick_until(
            collector, 600, lambda r: r["U3333333"]["net_dollar_delta"] is not None
        )
        _, later = await tick_until(collector, index + 1, lambda r: True)
    first_age = first["U3333333"]["stalest_greek_age_s"]
    later_age = later["U3333333"]["stalest_greek_age_s"]
    assert first_age is not None
    assert first_age >= 0
    assert later_age > first_age


async def test_a_delayed_quote_flags_every_figure_built_from_it(
    portal_collector: Collector, trader_portal: Simulator
) -> None:
    """ZC's future quoted delayed (6509 "DpB"): the future and the call priced by it count as
    delayed in each figure they contribute to, at account level as many as in ZC's own figures;
    ZC's share-equivalents say so too, and U2222222 (no ZC) says nothing."""
    market = trader_portal.market
    market.faults.portal_delayed_conid = ZC_FUTURE
    assert await portal_collector.connect_once()
    _, records = await tick_until(
        portal_collector,
        100,
        lambda r: r[U1]["underlyings"].get("ZC", {}).get("options_with_greeks") == 1,
    )
    zc = records[U1]["underlyings"]["ZC"]["completeness"]
    for name, counts in records[U1]["completeness"].items():
        contributing = zc[name]["contributing"]
        assert counts.get("market_data") == ({"delayed": contributing} if contributing else None)
    assert zc["net_dollar_gamma"]["market_data"] == {"delayed": 1}  # the call
    assert zc["net_delta"]["market_data"] == {"delayed": 2}  # the future and the call
    assert all("market_data" not in c for c in records["U2222222"]["completeness"].values())
