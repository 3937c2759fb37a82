"""The socket gateway on an ephemeral loopback port, over a fresh model, and a connected client;
the Portal gateway and its HTTPS client (tests/simulator/portal_client.py).

Small on purpose: tests/fixtures/simulator.py serves the whole simulator.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
from ib_async import IB

from simulator.model import Market
from simulator.tws import SocketGateway
from tests.simulator.ib_clients import IbapiApp, wait_event
from tests.simulator.portal_client import (  # noqa: F401  # fixtures, registered by import
    certificate_authority,
    client_tls,
    clock,
    portal,
    prepared,
    server_tls,
    start_portal,
)


@pytest.fixture
def market() -> Market:
    return Market(None)


@pytest.fixture
async def gateway(market: Market) -> AsyncIterator[SocketGateway]:
    gateway = SocketGateway(market, tick_interval_s=0.05)
    await gateway.start("127.0.0.1", 0)
    yield gateway
    await gateway.stop()


@pytest.fixture
def gateway_port(gateway: SocketGateway) -> int:
    return gateway.port


@pytest.fixture
async def ib(gateway_port: int) -> AsyncIterator[IB]:
    ib = IB()
    await ib.connectAsync("127.0.0.1", gateway_port, clientId=1, timeout=2)
    yield ib
    ib.disconnect()


@pytest.fixture
async def app(gateway_port: int) -> AsyncIterator[IbapiApp]:
    """IB's own client (ibapi), connected, its reader thread running."""
    app = IbapiApp()
    await asyncio.to_thread(app.connect, "127.0.0.1", gateway_port, 21)
    reader = threading.Thread(target=app.run, name="ibapi-run", daemon=True)
    reader.start()
    await wait_event(app.ready)
    yield app
    app.disconnect()
    await asyncio.to_thread(reader.join, 3)


@pytest.fixture
def option_conid(market: Market) -> int:
    """An option position for which the gateway sends Greeks."""
    return next(
        item.instrument.conid
        for account in market.accounts()
        for item in market.positions(account)
        if item.instrument.sec_type in ("OPT", "FOP") and item.instrument.has_greeks
    )
