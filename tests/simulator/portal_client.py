"""A Client Portal gateway on an ephemeral port and a real aiohttp client that verifies its
certificate; the fixtures are registered by tests/simulator/conftest.py."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import trustme

from simulator.model import Market
from simulator.portal import BASE, PortalGateway

GREEKS = ("7308", "7309", "7310", "7311")
ALL_FIELDS = "31,84,86,7635,85,88,7059,87,7308,7309,7310,7311,7633,55,6070,201,6008,6457,7696"
UNAUTHORIZED = (401, "text/plain", "Unauthorized")
NO_BRIDGE = (400, {"error": "Bad Request: no bridge", "statusCode": 400})


class Clock:
    """The gateway's clock (epoch seconds), moved by the test instead of sleeping."""

    def __init__(self) -> None:
        self.now_s = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class Portal:
    """A started gateway and a client that verifies its certificate, as a careful client would."""

    def __init__(self, gateway: PortalGateway, session: aiohttp.ClientSession, port: int) -> None:
        self.gateway = gateway
        self.session = session
        self.port = port
        self.base = f"https://127.0.0.1:{port}{BASE}"

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """(status, parsed JSON) or (status, text) when the reply is not JSON."""
        async with self.session.request(method, self.base + path, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def raw(self, method: str, path: str, **kwargs: Any) -> tuple[int, str, str]:
        async with self.session.request(method, self.base + path, **kwargs) as response:
            return response.status, response.content_type, await response.text()

    async def status(self) -> dict[str, Any]:
        code, body = await self.call("POST", "/iserver/auth/status")
        assert code == 200
        assert isinstance(body, dict)
        return body

    async def snapshot(self, conids: str, fields: str | None = ALL_FIELDS) -> list[dict[str, Any]]:
        params = {"conids": conids, **({"fields": fields} if fields is not None else {})}
        code, body = await self.call("GET", "/iserver/marketdata/snapshot", params=params)
        assert code == 200, body
        assert isinstance(body, list)
        return body

    async def quotes(self, conids: str) -> dict[int, dict[str, Any]]:
        """Pre-flight, then the answer with values, by conid."""
        await self.snapshot(conids)
        return {item["conid"]: item for item in await self.snapshot(conids)}


StartPortal = Callable[..., Awaitable[Portal]]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(certificate_authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def client_tls(certificate_authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    certificate_authority.configure_trust(context)
    return context


@pytest.fixture
async def start_portal(
    market: Market, clock: Clock, server_tls: ssl.SSLContext, client_tls: ssl.SSLContext
) -> AsyncIterator[StartPortal]:
    """Start gateways on ephemeral loopback ports, on the clock above and with pacing off
    unless asked (shape tests call faster than 10 a second); all are stopped afterwards."""
    started: list[Portal] = []

    async def start(*, portfolio: Market | None = None, **options: Any) -> Portal:
        options = {"pacing": False, "clock": clock, **options}
        gateway = PortalGateway(portfolio or market, **options)
        port = await gateway.start("127.0.0.1", 0, server_tls)
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_tls))
        started.append(Portal(gateway, session, port))
        return started[-1]

    yield start
    for portal in started:
        await portal.session.close()
        await portal.gateway.stop()


@pytest.fixture
async def portal(start_portal: StartPortal) -> Portal:
    return await start_portal()


@pytest.fixture
async def prepared(portal: Portal) -> Portal:
    """A client that has made the /iserver/accounts call snapshots require."""
    assert (await portal.call("GET", "/iserver/accounts"))[0] == 200
    return portal
