"""The trader scenario over the Client Portal side, with a real aiohttp client over verified
HTTPS: values rounded as the gateway writes them, Greeks a snapshot apart, prefixes, null
multipliers, the accounts' money, daily history; and a Portal client's figures equal to what
/truth says a Portal client can at best reach."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from simulator.model import Market
from simulator.scenario import load
from tests.simulator import regression
from tests.simulator.portal_client import Portal, StartPortal

USD_ACCOUNT, EUR_ACCOUNT = "U1111111", "U2222222"
SPY, SPY_CALL, SPX_CALL, NQ, ZC_CALL, SAP_CFD, BMW_WAR = (
    756733, 710001, 710003, 563947738, 710004, 530000001, 530000002,
)  # fmt: skip
HISTORY = "/iserver/marketdata/history"


@pytest.fixture
def market() -> Market:
    """The trader scenario, frozen."""
    market = Market(load(Path("trader")))
    market.freeze()
    return market


async def _answers(portal: Portal, conids: str, count: int) -> list[dict[int, dict[str, Any]]]:
    """The pre-flight, then `count` answers with values, each by conid."""
    await portal.snapshot(conids)
    return [{item["conid"]: item for item in await portal.snapshot(conids)} for _ in range(count)]


async def test_snapshots_are_rounded_strings_with_greeks_a_snapshot_apart(
    prepared: Portal, market: Market
) -> None:
    """Prices to the cent, Greeks to three decimals; delta and IV one answer after the prices,
    gamma, theta and vega one more; a real theta of -2.000 and a gamma that rounds to 0.000;
    "H" before a halted CFD's last, "C" before yesterday's close of an untraded warrant."""
    first, second, third = await _answers(prepared, f"{SPY_CALL},{SPX_CALL},{SAP_CFD},{BMW_WAR}", 3)
    assert re.fullmatch(r"\d+\.\d\d", first[SPY_CALL]["31"])
    assert not {"7308", "7309", "7310", "7311", "7633"} & set(first[SPY_CALL])
    assert ("7308" in second[SPY_CALL], "7309" in second[SPY_CALL]) == (True, False)
    spx = third[SPX_CALL]
    assert (spx["7308"], spx["7309"], spx["7310"], spx["7311"]) == (
        "0.432", "0.000", "-2.000", "7.123",
    )  # fmt: skip
    assert re.fullmatch(r"-?\d\.\d{3}", third[SPY_CALL]["7309"])
    sap_last = market.quote(SAP_CFD).last
    assert sap_last is not None
    assert first[SAP_CFD]["31"] == f"H{sap_last:.2f}"
    assert first[BMW_WAR]["31"] == "C1.25"  # the scenario's prior close, not today's price
    await prepared.snapshot(str(SPY))
    [spy] = await prepared.snapshot(str(SPY))
    assert (first[SAP_CFD]["87"], spy["87"], spy["88"]) == ("1.23M", "48.2M", "1,300")


async def test_a_null_position_multiplier_is_known_to_secdef_and_contract_info(
    prepared: Portal,
) -> None:
    """NQ's position carries no multiplier; secdef (a number) and contract info (a string)
    carry 20; info-and-rules names ZC's magnifier, null for SPY."""
    _, positions = await prepared.call("GET", f"/portfolio/{USD_ACCOUNT}/positions/0")
    by_conid = {item["conid"]: item for item in positions}
    assert (by_conid[NQ]["multiplier"], by_conid[ZC_CALL]["multiplier"]) == (None, 5000)
    assert by_conid[SAP_CFD]["currency"] == "EUR"
    _, secdef = await prepared.call("GET", "/trsrv/secdef", params={"conids": str(NQ)})
    assert secdef["secdef"][0]["multiplier"] == 20
    _, info = await prepared.call("GET", f"/iserver/contract/{NQ}/info")
    assert info["multiplier"] == "20"
    _, corn = await prepared.call("GET", f"/iserver/contract/{ZC_CALL}/info-and-rules")
    _, spy = await prepared.call("GET", f"/iserver/contract/{SPY}/info-and-rules")
    assert (corn["rules"]["priceMagnifier"], spy["rules"]["priceMagnifier"]) == (100, None)
    assert corn["multiplier"] == "5000"


async def test_the_ledger_summary_and_pnl_state_the_accounts_money(
    portal: Portal, market: Market
) -> None:
    """Ledger per currency and BASE with exchangerate; summary; partitioned P&L (after
    /iserver/accounts): each equal to /truth's net liquidation, unrealized and daily P&L."""
    truth = market.truth()[EUR_ACCOUNT]
    _, accounts = await portal.call("GET", "/portfolio/accounts")
    assert {item["id"]: item["currency"] for item in accounts} == {
        USD_ACCOUNT: "USD", EUR_ACCOUNT: "EUR",
    }  # fmt: skip
    _, ledger = await portal.call("GET", f"/portfolio/{EUR_ACCOUNT}/ledger")
    assert set(ledger) == {"EUR", "USD", "BASE"}
    assert (ledger["USD"]["exchangerate"], ledger["EUR"]["exchangerate"]) == (0.9238, 1.0)
    assert ledger["BASE"]["netliquidationvalue"] == truth["net_liquidation"]
    assert ledger["USD"]["cashbalance"] == -10000.0
    _, summary = await portal.call("GET", f"/portfolio/{EUR_ACCOUNT}/summary")
    assert summary["netliquidation"]["amount"] == truth["net_liquidation"]
    assert (summary["netliquidation"]["currency"], summary["accountcode"]["value"]) == (
        "EUR", EUR_ACCOUNT,
    )  # fmt: skip
    pnl = "/iserver/account/pnl/partitioned"
    assert await portal.call("GET", pnl) == (
        400, {"error": "Bad Request: Please query /accounts first", "statusCode": 400},
    )  # fmt: skip
    await portal.call("GET", "/iserver/accounts")
    code, body = await portal.call("GET", pnl)
    row = body["upnl"][f"{EUR_ACCOUNT}.Core"]
    assert (code, row["rowType"]) == (200, 1)
    assert (row["dpl"], row["upl"], row["nl"]) == (
        truth["daily_pnl"], truth["unrealized_pnl"], truth["net_liquidation"],
    )  # fmt: skip


async def test_partitioned_pnl_is_paced_one_per_five_seconds(start_portal: StartPortal) -> None:
    """The documented limit: a second request within 5 s is a 429."""
    portal = await start_portal(pacing=True, penalty_s=30)
    await portal.call("GET", "/iserver/accounts")
    assert (await portal.call("GET", "/iserver/account/pnl/partitioned"))[0] == 200
    assert (await portal.call("GET", "/iserver/account/pnl/partitioned"))[0] == 429


async def test_history_serves_a_year_of_the_same_daily_bars(
    prepared: Portal, market: Market
) -> None:
    """period=1y, bar=1d: the 252 bars the socket side serves, ascending, in ms; no history is
    a 500; other bar sizes are refused."""
    code, body = await prepared.call(
        "GET", HISTORY, params={"conid": str(SPY), "period": "1y", "bar": "1d"}
    )
    assert (code, body["points"], body["barLength"], body["symbol"]) == (200, 252, 86400, "SPY")
    bars = market.bars(SPY)
    assert bars is not None
    assert [point["c"] for point in body["data"]] == [bar.close for bar in bars]
    times = [point["t"] for point in body["data"]]
    assert times == sorted(times)
    code, body = await prepared.call(
        "GET", HISTORY, params={"conid": str(SPY), "period": "1m", "bar": "1d"}
    )
    assert (code, body["points"]) == (
        200,
        len([b for b in bars if (market.today() - b.day).days < 30]),
    )
    assert (await prepared.call("GET", HISTORY, params={"conid": str(SAP_CFD), "period": "1y"}))[
        0
    ] == 500
    assert (
        await prepared.call(
            "GET", HISTORY, params={"conid": str(SPY), "period": "1d", "bar": "5min"}
        )
    )[0] == 400


async def test_a_sixth_history_request_at_once_is_a_429(start_portal: StartPortal) -> None:
    """Five history requests may be under way at once; the sixth is refused."""
    portal = await start_portal(history_latency_s=1.0)
    await portal.call("GET", "/iserver/accounts")
    params = {"conid": str(SPY), "period": "1w", "bar": "1d"}
    answers = await asyncio.gather(*(portal.call("GET", HISTORY, params=params) for _ in range(6)))
    assert sorted(code for code, _body in answers) == [200] * 5 + [429]


# A Portal client's figures -------------------------------------------------------------------


async def _history(portal: Portal, conid: int) -> list[dict[str, Any]]:
    code, body = await portal.call(
        "GET", HISTORY, params={"conid": str(conid), "period": "1y", "bar": "1d"}
    )
    return body["data"] if code == 200 else []


async def _portal_figures(portal: Portal, account: str) -> dict[str, float]:
    """Dollar delta, dollar gamma, theta, vega and beta delta from what the Portal writes."""
    _, positions = await portal.call("GET", f"/portfolio/{account}/positions/0")
    _, ledger = await portal.call("GET", f"/portfolio/{account}/ledger")
    conids = (
        {item["conid"] for item in positions}
        | {SPY}
        | {item["undConid"] for item in positions if item["undConid"]}
    )
    *_, quotes = await _answers(portal, ",".join(map(str, sorted(conids))), 3)
    benchmark = await _history(portal, SPY)
    spy_price = float(quotes[SPY]["7635"]) * ledger["USD"]["exchangerate"]
    sums = dict.fromkeys(("delta", "gamma", "theta", "vega", "beta"), 0.0)
    for item in positions:
        if item["assetClass"] not in ("OPT", "FOP", "STK", "FUT", "CFD"):
            continue
        multiplier = item["multiplier"]
        if multiplier is None and item["assetClass"] != "STK":
            _, secdef = await portal.call("GET", "/trsrv/secdef", params={"conids": item["conid"]})
            multiplier = secdef["secdef"][0]["multiplier"]
        _, rules = await portal.call("GET", f"/iserver/contract/{item['conid']}/info-and-rules")
        size = item["position"] * (multiplier or 1) / (rules["rules"]["priceMagnifier"] or 1)
        fx = ledger[item["currency"]]["exchangerate"]
        quote = quotes[item["conid"]]
        option = item["assetClass"] in ("OPT", "FOP")
        greeks: list[str] = [quote.get(field, "") for field in ("7308", "7309", "7310", "7311")]
        price_of = quotes[item["undConid"]] if option else quote
        if "7635" not in price_of or (option and "" in greeks):
            continue  # no price, or an option without Greeks
        price = float(price_of["7635"])
        delta, gamma, theta, vega = (float(g) for g in greeks) if option else (1, 0, 0, 0)
        dollar_delta = delta * size * price * fx
        sums["delta"] += dollar_delta
        sums["gamma"] += gamma * size * price**2 * 0.01 * fx
        sums["theta"] += theta * size * fx
        sums["vega"] += vega * size * fx
        beta = regression.beta(
            await _history(portal, item["undConid"] or item["conid"]),
            benchmark,
            day=lambda bar: bar["t"],
            close=lambda bar: bar["c"],
        )
        sums["beta"] += 0.0 if beta is None else dollar_delta * beta / spy_price
    return sums


@pytest.mark.timeout(60)
async def test_a_portal_client_reaches_what_the_truth_says_it_can(
    prepared: Portal, market: Market
) -> None:
    """From positions (secdef where the multiplier is null), magnifiers, the ledger's rates,
    rounded snapshots and history, a client's figures equal /truth's Portal view to 1e-9, and
    differ from the exact figures by the rounding alone (the SPX call's gamma reads 0.000)."""
    portal_truth, exact = market.portal_truth(), market.truth()
    names = {"delta": "net_dollar_delta", "gamma": "net_dollar_gamma", "theta": "net_theta",
             "vega": "net_vega", "beta": "net_beta_delta"}  # fmt: skip
    for account in market.accounts():
        sums = await _portal_figures(prepared, account)
        for short, name in names.items():
            assert sums[short] == pytest.approx(portal_truth[account][name], rel=1e-9), name
    # The SPX call (the only SPX option) has a gamma of 0.00042, served as "0.000": through the
    # Portal its dollar gamma (0.00042 x 100 x SPX^2 x 0.01, about 15,000) is lost entirely.
    exact_spx = exact[USD_ACCOUNT]["underlyings"]["SPX"]["net_dollar_gamma"]
    assert portal_truth[USD_ACCOUNT]["underlyings"]["SPX"]["net_dollar_gamma"] == 0.0
    assert exact_spx > 10_000


async def test_positions_carry_their_display_rule_and_the_input_faults_change_them(
    prepared: Portal, market: Market
) -> None:
    """displayRule.magnification: 100 for ZC's call, 0 for SPY; `portal_no_display_rule`
    drops it, `portal_garbled_quantity` writes one position "n/a", `portal_rules_error` makes
    info-and-rules answer that status."""
    path = f"/portfolio/{USD_ACCOUNT}/positions/0"
    _, positions = await prepared.call("GET", path)
    by_conid = {item["conid"]: item for item in positions}
    assert by_conid[ZC_CALL]["displayRule"]["magnification"] == 100
    assert by_conid[SPY]["displayRule"]["magnification"] == 0
    market.faults.portal_no_display_rule = True
    market.faults.portal_garbled_quantity = SPY
    market.faults.portal_rules_error = 500
    _, positions = await prepared.call("GET", path)
    assert not [item for item in positions if "displayRule" in item]
    assert {item["conid"]: item["position"] for item in positions}[SPY] == "n/a"
    assert await prepared.call("GET", f"/iserver/contract/{ZC_CALL}/info-and-rules") == (
        500,
        {"error": "Internal Server Error"},
    )
