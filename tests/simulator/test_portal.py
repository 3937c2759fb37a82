"""The simulator's Client Portal side with a real aiohttp client over HTTPS."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from simulator.app import Simulator
from simulator.model import Market
from simulator.portal import PortalGateway
from simulator.portal_pacing import Pacing
from tests.fixtures.simulator import StartSimulator


class Portal:
    """A thin client: every call returns (status, parsed JSON or text)."""

    def __init__(self, simulator: Simulator, session: aiohttp.ClientSession) -> None:
        self.base = simulator.portal_url
        self.session = session

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.request(method, self.base + path, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()


@pytest.fixture
async def simulator(start_simulator: StartSimulator) -> Simulator:
    """Pacing off: these tests check shapes and states, and call faster than 10 a second."""
    return await start_simulator(IBKR_SIM_PACING="false")


@pytest.fixture
async def portal(simulator: Simulator) -> AsyncIterator[Portal]:
    context = ssl.create_default_context()
    simulator.certificate_authority.configure_trust(context)  # verified, like a real client
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        yield Portal(simulator, session)


async def _prepared(portal: Portal) -> None:
    await portal.call("GET", "/portfolio/accounts")
    await portal.call("GET", "/iserver/accounts")


async def test_session_endpoints_have_the_real_shapes(portal: Portal) -> None:
    """auth/status, tickle (GET and POST), ssodh/init, sso/validate, logout answer as documented."""
    status, body = await portal.call("POST", "/iserver/auth/status", json={})
    assert status == 200
    assert {"authenticated", "competing", "connected", "message", "MAC", "serverInfo"} <= set(body)
    for method in ("GET", "POST"):
        status, tickle = await portal.call(
            method, "/tickle", **({"json": {}} if method == "POST" else {})
        )
        assert status == 200
        assert tickle["iserver"]["authStatus"]["authenticated"] is True
    _, sso = await portal.call("GET", "/sso/validate")
    assert sso["RESULT"] is True
    status, refused = await portal.call("POST", "/iserver/auth/ssodh/init", json={"publish": False})
    assert (status, refused) == (500, {"error": "publish must be true"})
    assert await portal.call("POST", "/logout", json={}) == (200, {"status": True})
    assert await portal.call("GET", "/tickle") == (200, {"error": "no session"})
    status, text = await portal.call("GET", "/portfolio/accounts")
    assert (status, text) == (401, "Unauthorized")
    _, reopened = await portal.call(
        "POST", "/iserver/auth/ssodh/init", json={"publish": True, "compete": True}
    )
    assert reopened["authenticated"] is True


async def test_post_without_content_length_is_411(portal: Portal) -> None:
    """The gateway refuses a POST that has no Content-Length."""
    status, _ = await portal.call("POST", "/iserver/auth/status", chunked=True, data=b"{}")
    assert status == 411


async def test_accounts_and_paged_positions(portal: Portal, simulator: Simulator) -> None:
    """Both account lists name the scenario's accounts; positions carry the documented fields."""
    _, accounts = await portal.call("GET", "/portfolio/accounts")
    assert [item["accountId"] for item in accounts] == simulator.market.accounts()
    _, iserver = await portal.call("GET", "/iserver/accounts")
    assert iserver["accounts"] == simulator.market.accounts()
    _, positions = await portal.call("GET", "/portfolio/DU1234567/positions/0")
    by_conid = {item["conid"]: item for item in positions}
    stock, call = by_conid[756733], by_conid[700001]
    assert (stock["assetClass"], stock["multiplier"], stock["putOrCall"]) == ("STK", None, None)
    assert (call["assetClass"], call["multiplier"], call["putOrCall"]) == ("OPT", 100, "C")
    assert isinstance(call["strike"], str)
    assert call["undConid"] == 756733
    assert await portal.call("GET", "/portfolio/DU1234567/positions/1") == (200, [])
    status, _ = await portal.call("GET", "/portfolio/U999/positions/0")
    assert status == 400


async def test_positions_are_paged_by_100(start_simulator: StartSimulator, tmp_path: Any) -> None:
    """250 positions come back as pages of 100, 100 and 50."""
    options = "\n".join(
        f'[[options]]\nconid = {1000 + i}\nunderlying = 1\nright = "C"\nstrike = {100 + i}.0\n'
        f"expiry_days = 30\nmultiplier = 100\n"
        for i in range(250)
    )
    holdings = ", ".join(f"{{ conid = {1000 + i}, quantity = 1 }}" for i in range(250))
    scenario = tmp_path / "big.toml"
    scenario.write_text(
        'accounts = ["DU1"]\n[[underlyings]]\nconid = 1\nsymbol = "X"\nsec_type = "STK"\n'
        'exchange = "SMART"\nprimary_exchange = "NYSE"\nspot = 200.0\nvol = 0.2\n'
        f'{options}[[positions]]\naccount = "DU1"\nholdings = [{holdings}]\n'
    )
    simulator = await start_simulator(scenario)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
        portal = Portal(simulator, session)
        sizes = [
            len((await portal.call("GET", f"/portfolio/DU1/positions/{page}"))[1])
            for page in range(3)
        ]
    assert sizes == [100, 100, 50]


async def test_first_snapshot_is_empty_then_values_arrive_as_strings(portal: Portal) -> None:
    """The pre-flight answer has only conid; the next one has string values by field id;
    the Greek-less option never gets Greeks."""
    await _prepared(portal)
    params = {"conids": "700001,700003", "fields": "31,84,86,7308,7309,7310,7311"}
    _, first = await portal.call("GET", "/iserver/marketdata/snapshot", params=params)
    assert first == [{"conid": 700001, "conidEx": "700001"}, {"conid": 700003, "conidEx": "700003"}]
    _, second = await portal.call("GET", "/iserver/marketdata/snapshot", params=params)
    with_greeks, without = second
    assert all(isinstance(with_greeks[field], str) for field in ("31", "84", "86", "7308"))
    assert "7308" not in without
    assert "31" in without
    assert isinstance(with_greeks["_updated"], int)


async def test_snapshot_needs_the_accounts_call_first(portal: Portal) -> None:
    """Without /iserver/accounts the snapshot is a 400, as documented."""
    status, body = await portal.call(
        "GET", "/iserver/marketdata/snapshot", params={"conids": "700001"}
    )
    assert status == 400
    assert "query /accounts first" in body["error"]


async def test_contract_info_and_secdef_give_multipliers(portal: Portal) -> None:
    """Contract info is snake_case with a string multiplier; secdef has a number."""
    _, info = await portal.call("GET", "/iserver/contract/700006/info")
    assert (info["multiplier"], info["right"], info["instrument_type"]) == ("50", "CALL", "FOP")
    _, secdef = await portal.call("GET", "/trsrv/secdef", params={"conids": "700001,756733"})
    assert [(item["conid"], item["multiplier"]) for item in secdef["secdef"]] == [
        (700001, 100), (756733, 0),
    ]  # fmt: skip


async def test_unauthenticated_competing_and_no_bridge(
    portal: Portal, simulator: Simulator
) -> None:
    """Expired login: 401 text; competing: reported and refused; reset: 503, then no bridge."""
    faults = simulator.market.faults
    faults.portal_competing = True
    _, status = await portal.call("POST", "/iserver/auth/status", json={})
    assert (status["competing"], status["authenticated"]) == (True, False)
    assert (await portal.call("GET", "/iserver/accounts"))[0] == 401
    faults.portal_competing = False
    faults.portal_authenticated = False
    assert await portal.call("GET", "/portfolio/accounts") == (401, "Unauthorized")
    faults.portal_authenticated = True
    faults.portal_server_error = 500
    assert await portal.call("GET", "/portfolio/accounts") == (
        500,
        {"error": "Internal Server Error"},
    )
    faults.portal_server_error = None
    faults.emit("reset_started")  # the session ends with IBKR's reset
    _, status = await portal.call("POST", "/iserver/auth/status", json={})
    assert status["authenticated"] is False
    await portal.call("POST", "/iserver/auth/ssodh/init", json={"publish": True, "compete": True})
    assert (await portal.call("GET", "/iserver/accounts"))[0] == 200


async def test_pacing_past_the_limit_is_429_and_a_penalty(start_simulator: StartSimulator) -> None:
    """A second /portfolio/accounts within 5 s is refused, and so is everything after it."""
    simulator = await start_simulator(IBKR_SIM_PENALTY_S="600")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
        portal = Portal(simulator, session)
        assert (await portal.call("GET", "/portfolio/accounts"))[0] == 200
        assert (await portal.call("GET", "/portfolio/accounts"))[0] == 429
        assert (await portal.call("POST", "/iserver/auth/status", json={}))[0] == 429


async def test_rate_limit_storm_answers_429(portal: Portal, simulator: Simulator) -> None:
    """A 429 storm refuses every request until cleared."""
    simulator.market.faults.portal_rate_limit_storm = True
    assert (await portal.call("GET", "/portfolio/accounts"))[0] == 429
    simulator.market.faults.clear()
    assert (await portal.call("GET", "/portfolio/accounts"))[0] == 200


@pytest.mark.parametrize(
    ("requests", "refused_at"),
    [
        ([("/tickle", 0.0), ("/tickle", 0.5)], 1),  # 1 per second
        ([("/tickle", 0.0), ("/tickle", 1.0)], None),
        ([("/portfolio/accounts", 0.0), ("/portfolio/accounts", 4.9)], 1),  # 1 per 5 s
        ([(f"/x{i}", i * 0.01) for i in range(11)], 10),  # 10 per second overall
        ([(f"/x{i}", i * 0.11) for i in range(11)], None),
    ],
)
def test_pacing_rules(requests: list[tuple[str, float]], refused_at: int | None) -> None:
    """The documented limits refuse exactly the request that breaks them, then penalise."""
    pacing = Pacing(penalty_s=60)
    results = [pacing.admit(path, at) for path, at in requests]
    expected = [refused_at is None or index < refused_at for index in range(len(requests))]
    assert results == expected
    if refused_at is not None:
        assert not pacing.admit("/other", requests[-1][1] + 59)
        assert pacing.admit("/other", requests[-1][1] + 61)


async def test_truth_agrees_with_what_the_portal_serves(
    portal: Portal, simulator: Simulator
) -> None:
    """Net delta and vega computed from Portal positions and snapshots equal /truth to 1e-9."""
    await _prepared(portal)
    truth = simulator.market.truth()
    for account in simulator.market.accounts():
        _, positions = await portal.call("GET", f"/portfolio/{account}/positions/0")
        conids = ",".join(str(item["conid"]) for item in positions)
        params = {"conids": conids, "fields": "31,7308,7311"}
        await portal.call("GET", "/iserver/marketdata/snapshot", params=params)
        _, quotes = await portal.call("GET", "/iserver/marketdata/snapshot", params=params)
        by_conid = {quote["conid"]: quote for quote in quotes}
        delta = vega = 0.0
        for item in positions:
            size = item["position"] * (item["multiplier"] or 1)
            quote = by_conid[item["conid"]]
            if item["assetClass"] in ("STK", "FUT"):
                delta += size
            elif "7308" in quote:
                delta += size * float(quote["7308"])
                vega += size * float(quote["7311"])
        assert delta == pytest.approx(truth[account]["net"]["net_delta"], rel=1e-9)
        assert vega == pytest.approx(truth[account]["net"]["net_vega"], rel=1e-9)


async def test_session_expires_without_requests(market_clock: list[float]) -> None:
    """Past the idle expiry with no request, the session is gone: 401 until re-opened."""
    gateway = PortalGateway(
        Market(None), pacing=False, idle_expiry_s=360, clock=lambda: market_clock[0]
    )
    port = await gateway.start("127.0.0.1", 0, None)
    try:
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{port}/v1/api"
            async with session.get(base + "/portfolio/accounts") as response:
                assert response.status == 200
            market_clock[0] += 300
            async with session.get(base + "/portfolio/accounts") as response:
                assert response.status == 200  # a request within the window keeps it alive
            market_clock[0] += 361
            async with session.get(base + "/portfolio/accounts") as response:
                assert response.status == 401
            async with session.post(
                base + "/iserver/auth/ssodh/init", json={"publish": True}
            ) as response:
                assert (await response.json())["authenticated"] is True
    finally:
        await gateway.stop()


@pytest.fixture
def market_clock() -> list[float]:
    return [1000.0]
