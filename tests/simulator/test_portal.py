"""The simulator's Client Portal side with a real aiohttp client over verified HTTPS."""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from typing import Any

import pytest

from simulator.model import Market
from simulator.portal import BASE
from simulator.scenario import from_mapping
from testkit.waiting import wait_until_async
from tests.simulator.portal_client import (
    GREEKS,
    NO_BRIDGE,
    UNAUTHORIZED,
    Clock,
    Portal,
    StartPortal,
)

# Session endpoints ---------------------------------------------------------------------------


async def test_auth_status_and_tickle_have_the_documented_shapes(portal: Portal) -> None:
    """auth/status (GET and POST) and /tickle (GET and POST) answer with the recorded fields."""
    for method in ("GET", "POST"):
        code, status = await portal.call(method, "/iserver/auth/status")
        assert code == 200
        assert set(status) == {
            "authenticated", "competing", "connected", "message", "MAC", "serverInfo",
            "hardware_info", "fail",
        }  # fmt: skip
        assert (status["authenticated"], status["competing"], status["connected"]) == (
            True, False, True,
        )  # fmt: skip
        assert set(status["serverInfo"]) == {"serverName", "serverVersion"}
        code, tickle = await portal.call(method, "/tickle")
        assert code == 200
        assert set(tickle) == {"session", "ssoExpires", "collission", "userId", "hmds", "iserver"}
        assert tickle["ssoExpires"] == 360_000
        assert tickle["iserver"]["authStatus"] == status


async def test_sso_validate_reauthenticate_and_logout_answer_as_documented(portal: Portal) -> None:
    """/sso/validate, /iserver/reauthenticate (GET and POST) and /logout have their shapes."""
    code, sso = await portal.call("GET", "/sso/validate")
    assert code == 200
    assert {"USER_ID", "USER_NAME", "RESULT", "AUTH_TIME", "EXPIRES", "IS_MASTER"} <= set(sso)
    assert (sso["RESULT"], sso["LOGIN_TYPE"]) == (True, 2)
    for method in ("GET", "POST"):
        assert await portal.call(method, "/iserver/reauthenticate") == (
            200, {"message": "triggered"},
        )  # fmt: skip
    assert await portal.call("POST", "/logout") == (200, {"status": True})


async def test_ssodh_init_needs_publish_true(portal: Portal) -> None:
    """ssodh/init without publish: true is a 500; with it, the auth/status object."""
    for body in ({"publish": False, "compete": True}, {}):
        assert await portal.call("POST", "/iserver/auth/ssodh/init", json=body) == (
            500, {"error": "publish must be true"},
        )  # fmt: skip
    code, status = await portal.call(
        "POST", "/iserver/auth/ssodh/init", json={"publish": True, "compete": True}
    )
    assert (code, status["authenticated"], status["connected"]) == (200, True, True)


@pytest.mark.parametrize(
    "path", ["/iserver/auth/status", "/tickle", "/logout", "/iserver/auth/ssodh/init"]
)
async def test_a_post_without_content_length_is_411(portal: Portal, path: str) -> None:
    """A chunked POST (no Content-Length) is refused before the endpoint acts on it."""
    code, _, _ = await portal.raw("POST", path, data=b"{}", chunked=True)
    assert code == 411
    assert (await portal.status())["authenticated"] is True


async def test_after_logout_there_is_no_session_until_the_operator_logs_in(
    portal: Portal, market: Market
) -> None:
    """Logged out: auth/status without serverInfo, 401 text everywhere (/tickle and ssodh/init
    included); the control endpoint's `portal_authenticated: true` is the new login."""
    await portal.call("POST", "/logout")
    assert await portal.status() == {
        "authenticated": False, "competing": False, "connected": False, "MAC": "00:11:22:33:44:55",
    }  # fmt: skip
    for method, path in [
        ("GET", "/tickle"), ("POST", "/tickle"), ("GET", "/portfolio/accounts"),
        ("GET", "/iserver/accounts"), ("GET", "/portfolio/DU1234567/positions/0"),
        ("GET", "/sso/validate"), ("GET", "/iserver/reauthenticate"),
    ]:  # fmt: skip
        assert await portal.raw(method, path) == UNAUTHORIZED, path
    reply = await portal.raw("POST", "/iserver/auth/ssodh/init", json={"publish": True})
    assert reply == UNAUTHORIZED
    market.faults.portal_authenticated = True
    market.faults.emit("changed")  # what POST /faults on the control endpoint does
    assert (await portal.status())["authenticated"] is True
    assert (await portal.call("GET", "/iserver/accounts"))[0] == 200


async def test_without_a_login_everything_is_401_until_the_login_returns(
    portal: Portal, market: Market
) -> None:
    """The `portal_authenticated: false` fault: not connected, 401 text everywhere; once it is
    cleared the gateway has a fresh session with its brokerage session."""
    market.faults.portal_authenticated = False
    assert (await portal.status())["connected"] is False
    for path in ("/tickle", "/portfolio/accounts", "/trsrv/secdef?conids=700001"):
        assert await portal.raw("GET", path) == UNAUTHORIZED, path
    market.faults.portal_authenticated = True
    assert (await portal.status())["authenticated"] is True
    assert (await portal.call("GET", "/portfolio/accounts"))[0] == 200


# Accounts and positions ----------------------------------------------------------------------


async def test_both_account_lists_have_the_documented_shapes(
    portal: Portal, market: Market
) -> None:
    """/portfolio/accounts is a list of account objects; /iserver/accounts an object of lists."""
    code, accounts = await portal.call("GET", "/portfolio/accounts")
    assert code == 200
    assert [item["accountId"] for item in accounts] == market.accounts()
    assert all(item["id"] == item["accountId"] for item in accounts)
    documented = {
        "accountVan", "accountTitle", "displayName", "accountAlias", "currency", "type",
        "tradingType", "clearingStatus", "brokerageAccess", "parent",
    }  # fmt: skip
    assert documented <= set(accounts[0])
    code, iserver = await portal.call("GET", "/iserver/accounts")
    assert code == 200
    assert iserver["accounts"] == market.accounts()
    assert set(iserver["acctProps"]) == set(iserver["aliases"]) == set(market.accounts())
    assert iserver["selectedAccount"] == market.accounts()[0]
    assert iserver["allowFeatures"]["snapshotRefreshTimeout"] == 30


async def test_positions_carry_the_documented_fields(portal: Portal, market: Market) -> None:
    """Per unit mktPrice, mktValue with the multiplier, strike as a string, multiplier a number
    (null for stock), putOrCall C/P/null, undConid 0 when there is no underlying."""
    market.freeze()
    code, positions = await portal.call("GET", "/portfolio/DU1234567/positions/0")
    assert code == 200
    by_conid = {item["conid"]: item for item in positions}
    assert set(by_conid) == {p.instrument.conid for p in market.positions("DU1234567")}
    expected = {  # assetClass, multiplier, putOrCall, strike, undConid
        756733: ("STK", None, None, "0", 0),
        700001: ("OPT", 100, "C", "620", 756733),
        700002: ("OPT", 100, "P", "560", 756733),
        495512563: ("FUT", 50, None, "0", 0),
        700006: ("FOP", 50, "C", "6300", 495512563),
    }
    for conid, (asset_class, multiplier, right, strike, underlying) in expected.items():
        item = by_conid[conid]
        fields = ("assetClass", "multiplier", "putOrCall", "strike", "undConid")
        assert [item[name] for name in fields] == [
            asset_class,
            multiplier,
            right,
            strike,
            underlying,
        ]
        size = item["position"] * (multiplier or 1)
        assert item["mktValue"] == pytest.approx(size * item["mktPrice"], rel=1e-12)
        assert item["avgPrice"] * (multiplier or 1) == pytest.approx(item["avgCost"], rel=1e-12)
        assert item["acctId"] == "DU1234567"
        assert item["pageSize"] == 100
    assert by_conid[700002]["position"] == -3
    assert by_conid[700001]["mktPrice"] == market.quote(700001).mark
    assert re.fullmatch(
        r"SPY    [A-Z]{3}\d{4} 620 C \[SPY   \d{6}C00620000 100\]", by_conid[700001]["contractDesc"]
    )
    assert by_conid[756733]["contractDesc"] == "SPY"


async def test_positions_of_an_unknown_account_a_past_page_and_a_bad_page(portal: Portal) -> None:
    """An unknown account is a 500, a page past the end an empty list, a bad page id a 400."""
    code, body = await portal.call("GET", "/portfolio/U999/positions/0")
    assert (code, set(body)) == (500, {"error"})
    assert await portal.call("GET", "/portfolio/DU1234567/positions/1") == (200, [])
    code, body = await portal.call("GET", "/portfolio/DU1234567/positions/x")
    assert (code, body["statusCode"]) == (400, 400)


async def test_positions_come_100_a_page(start_portal: StartPortal) -> None:
    """250 positions arrive as pages of 100, 100 and 50, each position once."""
    scenario = from_mapping(
        {
            "accounts": ["DU1"],
            "underlyings": [
                {"conid": 1, "symbol": "X", "sec_type": "STK", "exchange": "SMART",
                 "primary_exchange": "NYSE", "spot": 200.0, "vol": 0.2},
            ],
            "options": [
                {"conid": 1000 + i, "underlying": 1, "right": "C", "strike": 100.0 + i,
                 "expiry_days": 30, "multiplier": 100}
                for i in range(250)
            ],
            "positions": [
                {"account": "DU1", "holdings": [
                    {"conid": 1000 + i, "quantity": 1} for i in range(250)]},
            ],
        }
    )  # fmt: skip
    portal = await start_portal(portfolio=Market(scenario))
    pages = [(await portal.call("GET", f"/portfolio/DU1/positions/{page}"))[1] for page in range(4)]
    assert [len(page) for page in pages] == [100, 100, 50, 0]
    assert sorted(item["conid"] for page in pages for item in page) == list(range(1000, 1250))


# Market data ---------------------------------------------------------------------------------


async def test_the_first_snapshot_of_a_conid_has_no_values(prepared: Portal) -> None:
    """The pre-flight answer names each conid and nothing else, as the real gateway's does."""
    assert await prepared.snapshot("700001,756733") == [
        {"conid": 700001, "conidEx": "700001"}, {"conid": 756733, "conidEx": "756733"},
    ]  # fmt: skip


async def test_snapshot_values_are_strings_keyed_by_field_id(
    prepared: Portal, market: Market
) -> None:
    """Prices, sizes and Greeks are strings (repr of the model's floats), conids integers, with
    the stream's metadata; stock has no Greeks."""
    market.freeze()
    quotes = await prepared.quotes("700001,756733")
    option, stock = quotes[700001], quotes[756733]
    model = market.quote(700001)
    assert {"31", "84", "86", "7635", *GREEKS, "7633"} <= set(option)
    assert all(isinstance(option[key], str) for key in ("31", "84", "86", "7635", *GREEKS))
    assert [float(option[key]) for key in GREEKS] == [
        model.delta, model.gamma, model.theta, model.vega,
    ]  # fmt: skip
    assert float(option["7635"]) == model.mark
    assert option["7633"].endswith("%")
    assert (option["6008"], option["6457"], option["201"], option["6070"]) == (
        700001, 756733, "C", "OPT",
    )  # fmt: skip
    assert isinstance(option["_updated"], int)
    assert option["_updated"] > 10**12  # epoch milliseconds
    assert (option["server_id"], option["6119"], option["6509"]) == ("q0", "q0", "RpB")
    assert not set(GREEKS) & set(stock)
    assert float(stock["31"]) == market.quote(756733).last
    assert (stock["88"], stock["85"], stock["87"], stock["87_raw"]) == ("100", "100", "10K", 10000)


async def test_a_delayed_conid_says_so_in_its_market_data_availability(
    prepared: Portal, market: Market
) -> None:
    """portal_delayed_conid: that conid's 6509 starts with D (delayed), the others' with R."""
    market.faults.portal_delayed_conid = 756733
    quotes = await prepared.quotes("700001,756733")
    assert (quotes[756733]["6509"], quotes[700001]["6509"]) == ("DpB", "RpB")


async def test_7696_is_the_models_beta_weighted_delta_against_spx(
    prepared: Portal, market: Market
) -> None:
    """SPY: beta x its price / SPX's; an option: its delta x the same; a string, like a Greek."""
    market.freeze()
    quotes = await prepared.quotes("700001,756733")
    spy, spx = market.quote(756733).mark, market.quote(416904).mark
    beta, delta = market.beta("SPY"), market.quote(700001).delta
    assert spy is not None
    assert spx is not None
    assert beta is not None
    assert delta is not None
    assert float(quotes[756733]["7696"]) == pytest.approx(beta * spy / spx, rel=1e-12)
    assert float(quotes[700001]["7696"]) == pytest.approx(delta * beta * spy / spx, rel=1e-12)


async def test_the_option_without_greeks_never_gets_them(prepared: Portal) -> None:
    """The scenario's Greek-less option has prices but never 7308-7311 or 7633."""
    await prepared.snapshot("700003")
    for _ in range(3):
        (quote,) = await prepared.snapshot("700003")
        assert "31" in quote
        assert not {*GREEKS, "7633"} & set(quote)


async def test_fields_asked_for_later_arrive_from_the_next_answer(prepared: Portal) -> None:
    """A field first asked for in a later request is served from the one after; fields asked
    for once need not be repeated."""
    await prepared.snapshot("700001", "31")
    (second,) = await prepared.snapshot("700001", "31,7308")
    assert ("31" in second, "7308" in second) == (True, False)
    (third,) = await prepared.snapshot("700001", None)
    assert ("31" in third, "7308" in third, "84" in third) == (True, True, False)


async def test_a_snapshot_needs_the_accounts_call_first(portal: Portal) -> None:
    """Without /iserver/accounts in this brokerage session the snapshot is a 400."""
    code, body = await portal.call(
        "GET", "/iserver/marketdata/snapshot", params={"conids": "700001", "fields": "31"}
    )
    assert (code, body) == (
        400, {"error": "Bad Request: Please query /accounts first", "statusCode": 400},
    )  # fmt: skip


@pytest.mark.parametrize("conids", ["", "abc", ",".join(str(700000 + i) for i in range(101))])
async def test_a_snapshot_wants_1_to_100_conids(prepared: Portal, conids: str) -> None:
    """No conid, a non-number or more than 100 conids is a 400."""
    code, body = await prepared.call(
        "GET", "/iserver/marketdata/snapshot", params={"conids": conids, "fields": "31"}
    )
    assert (code, body["statusCode"]) == (400, 400)


async def test_unsubscribing_closes_streams(prepared: Portal) -> None:
    """After unsubscribe (one conid) or unsubscribeall, the next snapshot is a pre-flight again;
    unsubscribing a conid with no stream is a 500 "unknown"."""
    await prepared.quotes("700001,700002")
    unsubscribe = "/iserver/marketdata/unsubscribe"
    assert await prepared.call("POST", unsubscribe, json={"conid": 700001}) == (
        200, {"success": True},
    )  # fmt: skip
    first, second = await prepared.snapshot("700001,700002")
    assert (set(first), "31" in second) == ({"conid", "conidEx"}, True)
    assert await prepared.call("POST", unsubscribe, json={"conid": 1}) == (
        500, {"error": "unknown"},
    )  # fmt: skip
    assert await prepared.call("GET", "/iserver/marketdata/unsubscribeall") == (
        200, {"unsubscribed": True},
    )  # fmt: skip
    assert all(set(item) == {"conid", "conidEx"} for item in await prepared.snapshot("700002"))


# Contracts -----------------------------------------------------------------------------------


async def test_contract_info_is_snake_case_with_a_string_multiplier(portal: Portal) -> None:
    """Contract info: con_id, multiplier as a string (null for stock), right CALL/PUT."""
    code, info = await portal.call("GET", "/iserver/contract/700006/info")
    assert code == 200
    assert (info["con_id"], info["instrument_type"], info["multiplier"], info["right"],
            info["strike"], info["underlying_con_id"]) == (
        700006, "FOP", "50", "CALL", "6300", 495512563)  # fmt: skip
    _, put = await portal.call("GET", "/iserver/contract/700002/info")
    assert (put["right"], put["multiplier"]) == ("PUT", "100")
    _, stock = await portal.call("GET", "/iserver/contract/756733/info")
    assert (stock["multiplier"], stock["right"], stock["underlying_con_id"]) == (None, None, 0)
    code, body = await portal.call("GET", "/iserver/contract/42/info")
    assert (code, body["statusCode"]) == (400, 400)


async def test_secdef_gives_multipliers_as_numbers(portal: Portal) -> None:
    """/trsrv/secdef: multiplier a number (0 for stock), strike a string; unknown conids absent."""
    code, body = await portal.call(
        "GET", "/trsrv/secdef", params={"conids": "700001,756733,495512563,42"}
    )
    assert code == 200
    assert [(item["conid"], item["multiplier"], item["strike"]) for item in body["secdef"]] == [
        (700001, 100, "620"), (756733, 0, "0"), (495512563, 50, "0"),
    ]  # fmt: skip


# Session states and faults -------------------------------------------------------------------


async def test_no_bridge_until_the_brokerage_session_opens(start_portal: StartPortal) -> None:
    """Logged in without a brokerage session: /iserver is a 400 "no bridge", /portfolio works,
    and ssodh/init opens it."""
    portal = await start_portal(open_brokerage_on_login=False)
    status = await portal.status()
    assert (status["authenticated"], status["connected"]) == (False, True)
    assert await portal.call("GET", "/iserver/accounts") == NO_BRIDGE
    assert await portal.call("GET", "/iserver/contract/700001/info") == NO_BRIDGE
    assert await portal.call("GET", "/iserver/marketdata/snapshot?conids=700001") == NO_BRIDGE
    assert (await portal.call("GET", "/portfolio/accounts"))[0] == 200
    code, tickle = await portal.call("POST", "/tickle")
    assert (code, tickle["iserver"]["authStatus"]["authenticated"]) == (200, False)
    _, opened = await portal.call("POST", "/iserver/auth/ssodh/init", json={"publish": True})
    assert opened["authenticated"] is True
    assert (await portal.call("GET", "/iserver/accounts"))[0] == 200


async def test_a_competing_session_holds_iserver_until_ssodh_init_competes(
    portal: Portal, market: Market
) -> None:
    """Competing: reported by auth/status, /iserver 401, /portfolio served; ssodh/init with
    compete true takes the brokerage session back, without it nothing changes."""
    market.faults.portal_competing = True
    status = await portal.status()
    assert (status["competing"], status["authenticated"], status["connected"]) == (
        True, False, True,
    )  # fmt: skip
    assert await portal.raw("GET", "/iserver/accounts") == UNAUTHORIZED
    assert (await portal.call("GET", "/portfolio/accounts"))[0] == 200
    _, status = await portal.call("POST", "/iserver/auth/ssodh/init", json={"publish": True})
    assert status["competing"] is True
    _, status = await portal.call(
        "POST", "/iserver/auth/ssodh/init", json={"publish": True, "compete": True}
    )
    assert (status["competing"], status["authenticated"]) == (False, True)
    assert (await portal.call("GET", "/iserver/accounts"))[0] == 200


@pytest.mark.parametrize("announced", [True, False])
async def test_a_daily_reset_answers_500_and_503_then_needs_a_new_brokerage_session(
    prepared: Portal, market: Market, clock: Clock, announced: bool
) -> None:
    """During a reset the session endpoints answer 500 and the rest 503; afterwards the login
    stands but the brokerage session and its streams are gone until reauthenticate."""
    await prepared.quotes("700001")
    market.faults.reset_until = clock() + 30
    if announced:
        market.faults.emit("reset_started")
    for path in ("/tickle", "/iserver/auth/status"):
        assert await prepared.call("POST", path) == (500, {"error": "Internal Server Error"})
    for path in ("/portfolio/accounts", "/iserver/marketdata/snapshot?conids=700001"):
        assert await prepared.call("GET", path) == (
            503, {"error": "Service Unavailable", "statusCode": 503},
        )  # fmt: skip
    clock.advance(31)
    status = await prepared.status()
    assert (status["authenticated"], status["connected"]) == (False, True)
    assert (await prepared.call("GET", "/portfolio/accounts"))[0] == 200
    assert await prepared.call("GET", "/iserver/accounts") == NO_BRIDGE
    assert await prepared.call("POST", "/iserver/reauthenticate") == (
        200, {"message": "triggered"},
    )  # fmt: skip
    assert (await prepared.status())["authenticated"] is True
    assert (await prepared.call("GET", "/iserver/accounts"))[0] == 200
    assert await prepared.snapshot("700001") == [{"conid": 700001, "conidEx": "700001"}]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, {"error": "Internal Server Error"}),
        (503, {"error": "Service Unavailable", "statusCode": 503}),
    ],
)
async def test_a_staged_server_error_answers_every_request(
    portal: Portal, market: Market, status: int, body: dict[str, Any]
) -> None:
    """`portal_server_error` answers every request with that status and shape until cleared."""
    market.faults.portal_server_error = status
    for path in ("/iserver/auth/status", "/portfolio/accounts", "/iserver/accounts"):
        assert await portal.call("GET", path) == (status, body)
    market.faults.clear()
    assert (await portal.call("GET", "/portfolio/accounts"))[0] == 200


async def test_a_429_storm_refuses_everything_until_cleared(portal: Portal, market: Market) -> None:
    """`portal_rate_limit_storm` answers 429 to every request, session endpoints included."""
    market.faults.portal_rate_limit_storm = True
    for path in ("/iserver/auth/status", "/tickle", "/portfolio/accounts"):
        assert await portal.call("GET", path) == (429, {"error": "Too Many Requests"})
    market.faults.clear()
    assert (await portal.call("GET", "/portfolio/accounts"))[0] == 200


async def test_pacing_past_a_limit_is_a_429_and_a_penalty_period(
    start_portal: StartPortal, clock: Clock
) -> None:
    """A second /portfolio/accounts within 5 s is a 429, and so is every request for the
    penalty period; after it, requests are served again."""
    portal = await start_portal(pacing=True, penalty_s=30)
    assert (await portal.call("GET", "/portfolio/accounts"))[0] == 200
    clock.advance(4.9)
    assert await portal.call("GET", "/portfolio/accounts") == (429, {"error": "Too Many Requests"})
    clock.advance(29.9)
    assert (await portal.call("POST", "/iserver/auth/status"))[0] == 429
    clock.advance(0.2)
    assert (await portal.call("POST", "/iserver/auth/status"))[0] == 200
    assert (await portal.call("GET", "/portfolio/accounts"))[0] == 200


async def test_pacing_allows_10_requests_a_second(start_portal: StartPortal, clock: Clock) -> None:
    """Ten requests in one second are served, the eleventh is a 429."""
    portal = await start_portal(pacing=True, penalty_s=30)
    codes = [(await portal.call("GET", "/iserver/auth/status"))[0] for _ in range(11)]
    assert codes == [200] * 10 + [429]


async def test_an_idle_session_expires(start_portal: StartPortal, clock: Clock) -> None:
    """Requests keep the session alive; past the idle expiry it is gone (401, /tickle "no
    session", still connected) until ssodh/init opens it again."""
    portal = await start_portal(idle_expiry_s=360)
    for _ in range(4):
        clock.advance(300)
        assert (await portal.call("POST", "/tickle"))[0] == 200
    clock.advance(361)
    assert await portal.raw("GET", "/portfolio/accounts") == UNAUTHORIZED
    assert await portal.call("GET", "/tickle") == (200, {"error": "no session"})
    status = await portal.status()
    assert (status["authenticated"], status["connected"]) == (False, True)
    _, status = await portal.call("POST", "/iserver/auth/ssodh/init", json={"publish": True})
    assert status["authenticated"] is True
    assert (await portal.call("GET", "/portfolio/accounts"))[0] == 200


async def test_a_stalled_gateway_holds_requests_until_the_stall_ends(
    portal: Portal, market: Market
) -> None:
    """While `stalled`, a request stays unanswered; clearing the fault answers it."""
    market.faults.stalled = True
    reply = asyncio.create_task(portal.call("GET", "/iserver/auth/status"))
    await wait_until_async(lambda: portal.gateway.held_requests == 1, what="the request held")
    assert not reply.done()
    market.faults.clear()
    assert (await reply)[0] == 200


async def test_dropping_connections_closes_them_and_the_brokerage_session(
    portal: Portal, market: Market, client_tls: ssl.SSLContext
) -> None:
    """`drop_connections` closes every open connection and the brokerage session with them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", portal.port, ssl=client_tls)
    writer.write(f"GET {BASE}/tickle HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    status_line, *headers = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
    assert status_line.startswith("HTTP/1.1 200")
    length = next(
        int(line.split(":")[1]) for line in headers if line.lower().startswith("content-length")
    )
    await reader.readexactly(length)  # the connection now idles, kept alive
    market.faults.emit("drop_connections")
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # closed by the gateway
    writer.close()
    status = await portal.status()
    assert (status["authenticated"], status["connected"]) == (False, True)


async def test_every_request_is_logged_at_debug(
    portal: Portal, caplog: pytest.LogCaptureFixture
) -> None:
    """Each request is one debug line with its method, path and status."""
    caplog.set_level(logging.DEBUG, logger="simulator.portal")
    await portal.call("GET", "/tickle")
    await portal.call("GET", "/portfolio/U999/positions/0")
    await portal.call("GET", "/nowhere")
    assert [record.getMessage() for record in caplog.records] == [
        f"GET {BASE}/tickle 200", f"GET {BASE}/portfolio/U999/positions/0 500",
        f"GET {BASE}/nowhere 404",
    ]  # fmt: skip


# The truth -----------------------------------------------------------------------------------


def _add(sums: dict[str, float | None], name: str, value: float) -> None:
    sums[name] = (sums[name] or 0.0) + value


async def _net_greeks(portal: Portal, account: str) -> dict[str, dict[str, Any]]:
    """Net Greeks the way a Portal client computes them: position x multiplier x Greek from the
    snapshots, stock and futures delta 1, dollar delta at the underlying's last price."""
    positions: list[dict[str, Any]] = []
    for page in range(10):
        _, items = await portal.call("GET", f"/portfolio/{account}/positions/{page}")
        positions += items
        if len(items) < 100:
            break
    conids = {item["conid"] for item in positions} | {
        item["undConid"] for item in positions if item["undConid"]
    }
    quotes = await portal.quotes(",".join(map(str, sorted(conids))))
    groups: dict[str, dict[str, Any]] = {}
    for item in positions:
        for key in ("net", item["undSym"]):
            sums = groups.setdefault(key, {
                "net_delta": None, "net_gamma": None, "net_theta": None, "net_vega": None,
                "net_dollar_delta": None, "position_count": 0, "option_count": 0,
                "options_with_greeks": 0,
            })  # fmt: skip
            sums["position_count"] += 1
            size = item["position"] * (item["multiplier"] or 1)
            quote = quotes[item["conid"]]
            if not item["undConid"]:
                _add(sums, "net_delta", size)
                _add(sums, "net_dollar_delta", size * float(quote["31"]))
                continue
            sums["option_count"] += 1
            if "7308" not in quote:
                continue
            sums["options_with_greeks"] += 1
            delta = float(quote["7308"])
            _add(sums, "net_delta", size * delta)
            _add(sums, "net_gamma", size * float(quote["7309"]))
            _add(sums, "net_theta", size * float(quote["7310"]))
            _add(sums, "net_vega", size * float(quote["7311"]))
            underlying_price = float(quotes[item["undConid"]]["31"])
            _add(sums, "net_dollar_delta", size * delta * underlying_price)
    return groups


async def test_the_truth_agrees_with_what_the_portal_serves(
    prepared: Portal, market: Market
) -> None:
    """With the market frozen, net Greeks computed from positions and snapshots equal
    `market.truth()` to 1e-9 for every account: format 1's sums (`net`) and, per underlying,
    the share-equivalents, dollar delta, theta, vega and counts."""
    market.freeze()
    truth = market.truth()
    for account in market.accounts():
        computed = await _net_greeks(prepared, account)
        expected = {"net": truth[account]["net"], **truth[account]["underlyings"]}
        assert set(computed) == set(expected)
        for group, values in computed.items():
            for name in values:
                value = expected[group][name]
                if value is None:
                    assert values[name] is None, (account, group, name)
                else:
                    assert values[name] == pytest.approx(value, rel=1e-9), (
                        account, group, name,
                    )  # fmt: skip
