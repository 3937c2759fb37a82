"""Simulators and collectors pointed at them, for the collector's tests: a frozen socket side,
and the whole simulator for PORTAL mode."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from collector.collector import Collector
from collector.settings import CollectorSettings
from shared import records
from shared.spool import list_segments
from simulator.app import Simulator
from simulator.model import Market
from simulator.scenario import load
from simulator.tws import SocketGateway
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


def spool_lines(var_dir: Path) -> list[bytes]:
    """Every line in the spool as written, oldest first: whole lines only, as the writer reads
    them, since a running collector may be in the middle of appending the last one."""
    found: list[bytes] = []
    if not (var_dir / "spool").exists():
        return found
    for segment in list_segments(var_dir / "spool"):
        data = segment.path.read_bytes()
        found += data[: data.rfind(b"\n") + 1].splitlines(keepends=True)
    return found


def spooled(var_dir: Path) -> list[dict[str, Any]]:
    """Every record in the spool, oldest first (`spool_lines`); a snapshot is read in full
    (`records.expanded`), whatever its format."""
    return [_readable(line) for line in spool_lines(var_dir)]


def _readable(line: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(line)
    if body.get("kind") != "snapshot":
        return body
    snapshot = records.decode(line)
    assert isinstance(snapshot, records.Snapshot)
    return records.expanded(snapshot)


def events(var_dir: Path) -> list[dict[str, Any]]:
    return [record for record in spooled(var_dir) if record["kind"] == "api_log"]


def event_names(collector: Collector) -> list[str]:
    """The names of the events `collector` spooled, oldest first."""
    return [event["event"] for event in events(collector.settings.paths.var_dir)]


def snapshots_at(collector: Collector, index: int) -> dict[str, dict[str, Any]]:
    """The snapshots `collector` spooled for tick number `index`, by account."""
    tick = collector.schedule.at(index).isoformat(timespec="microseconds")
    return {
        record["account"]: record
        for record in spooled(collector.settings.paths.var_dir)
        if record["kind"] == "snapshot" and record["ts"] == tick
    }


@pytest.fixture
async def trader_portal(start_simulator: StartSimulator) -> Simulator:
    """The trader's book on the Portal side, pacing on with a short penalty."""
    return await start_simulator(IBKR_SIM_SCENARIO="trader", IBKR_SIM_PENALTY_S="2")


@pytest.fixture
async def portal_collector(tmp_path: Path, trader_portal: Simulator) -> AsyncIterator[Collector]:
    """A PORTAL collector against `trader_portal`, opened, closed after the test."""
    async with opened_portal_collector(trader_portal, tmp_path / "var") as collector:
        yield collector


@contextlib.asynccontextmanager
async def opened_portal_collector(
    simulator: Simulator, var_dir: Path, **settings: str
) -> AsyncIterator[Collector]:
    """A PORTAL collector against `simulator`, opened, and closed on the way out; `settings`
    adds to or overrides its environment."""
    collector = Collector(
        CollectorSettings.from_environ(
            {
                "IB_API_MODE": "PORTAL",
                "IB_PORTAL_URL": simulator.portal_url,
                "IB_CONNECT_TIMEOUT_S": "3",
                "IB_RESET_WINDOWS": "none",
                "BRIDGE_VAR_DIR": str(var_dir),
                **settings,
            }
        )
    )
    collector.open()
    try:
        yield collector
    finally:
        await collector.close()


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
