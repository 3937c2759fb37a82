"""Simulators and collectors pointed at them, for the collector's tests: a frozen socket side,
and the whole simulator for PORTAL mode."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from collector.collector import Collector
from collector.settings import CollectorSettings
from simulator.app import Simulator
from simulator.model import Market
from simulator.scenario import load
from simulator.tws import SocketGateway
from tests.collector.portal import opened_portal_collector
from tests.fixtures.simulator import StartSimulator


@pytest.fixture
def market() -> Market:
    market = Market(load(None))
    market.freeze()
    return market


@pytest.fixture
async def gateway(market: Market) -> AsyncIterator[SocketGateway]:
    gateway = SocketGateway(market, tick_interval_s=0.05)
    await gateway.start("127.0.0.1", 0)
    yield gateway
    await gateway.stop()


@pytest.fixture
def collector_environ(tmp_path: Path, gateway: SocketGateway) -> dict[str, str]:
    return {
        "IB_API_MODE": "SOCKET",
        "IB_HOST": "127.0.0.1",
        "IB_PORT": str(gateway.port),
        "IB_CONNECT_TIMEOUT_S": "2",
        "IB_RECONNECT_DELAYS_S": "0.1,0.2,0.4",
        "IB_RESET_WINDOWS": "none",
        "BRIDGE_VAR_DIR": str(tmp_path / "var"),
    }


@pytest.fixture
async def collector(collector_environ: dict[str, str]) -> AsyncIterator[Collector]:
    collector = Collector(CollectorSettings.from_environ(collector_environ))
    collector.open()
    yield collector
    await collector.close()


@pytest.fixture
async def trader_portal(start_simulator: StartSimulator) -> Simulator:
    """The trader's book on the Portal side, pacing on with a short penalty."""
    return await start_simulator(IBKR_SIM_SCENARIO="trader", IBKR_SIM_PENALTY_S="2")


@pytest.fixture
async def portal_collector(tmp_path: Path, trader_portal: Simulator) -> AsyncIterator[Collector]:
    """A PORTAL collector against `trader_portal`, opened, closed after the test."""
    async with opened_portal_collector(trader_portal, tmp_path / "var") as collector:
        yield collector


@pytest.fixture
async def portal_simulator(start_simulator: StartSimulator) -> Simulator:
    """Pacing on, with a short penalty: the collector must stay inside the documented limits."""
    return await start_simulator(IBKR_SIM_PENALTY_S="2")


@pytest.fixture
def portal_environ(tmp_path: Path, portal_simulator: Simulator) -> dict[str, str]:
    return {
        "IB_API_MODE": "PORTAL",
        "IB_PORTAL_URL": portal_simulator.portal_url,
        "IB_CONNECT_TIMEOUT_S": "3",
        "IB_RECONNECT_DELAYS_S": "0.2,0.4,0.8",
        "IB_RESET_WINDOWS": "none",
        "BRIDGE_VAR_DIR": str(tmp_path / "var"),
    }


@pytest.fixture
async def make_collector(portal_environ: dict[str, str]) -> AsyncIterator[Callable[..., Collector]]:
    made: list[Collector] = []

    def make(**overrides: str) -> Collector:
        collector = Collector(CollectorSettings.from_environ({**portal_environ, **overrides}))
        collector.open()
        made.append(collector)
        return collector

    yield make
    for collector in made:
        await collector.close()
