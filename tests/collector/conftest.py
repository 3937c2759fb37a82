"""A frozen simulator's socket side and a collector pointed at it, for the collector's tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from collector.collector import Collector
from collector.settings import CollectorSettings
from shared.spool import list_segments
from simulator.model import Market
from simulator.scenario import load
from simulator.tws import SocketGateway


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
        "IB_RESET_WINDOWS": "",
        "BRIDGE_VAR_DIR": str(tmp_path / "var"),
    }


@pytest.fixture
async def collector(collector_environ: dict[str, str]) -> AsyncIterator[Collector]:
    collector = Collector(CollectorSettings.from_environ(collector_environ))
    collector.open()
    yield collector
    await collector.close()


def spooled(var_dir: Path) -> list[dict[str, Any]]:
    """Every record in the spool, oldest first."""
    found: list[dict[str, Any]] = []
    if not (var_dir / "spool").exists():
        return found
    for segment in list_segments(var_dir / "spool"):
        found += [json.loads(line) for line in segment.path.read_bytes().splitlines()]
    return found


def events(var_dir: Path) -> list[dict[str, Any]]:
    return [record for record in spooled(var_dir) if record["kind"] == "api_log"]
