"""A PORTAL collector against a running simulator, opened for the length of a block."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from collector.collector import Collector
from collector.settings import CollectorSettings
from simulator.app import Simulator


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
