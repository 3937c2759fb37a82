"""The seam between the collector and a gateway: what either mode must provide.

`SocketSource` (ib_async, IB Gateway/TWS) and `PortalSource` (aiohttp, Client Portal) implement
it. A source keeps its own subscriptions in step with the portfolio; the collector only asks,
once per tick, for every account's holdings with the latest Greeks, and owns reconnecting.
Foreign exceptions never cross this seam: sources raise `collector.errors` only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from collector.greeks import Holding
from shared.records import Mode


class GreeksSource(Protocol):
    mode: Mode

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None:
        """Open the connection or session; raises GatewayUnavailable, SessionRequired..."""

    async def disconnect(self) -> None: ...

    async def read(self, now: datetime) -> dict[str, list[Holding]]:
        """Every account's holdings with the latest Greeks; raises GatewayUnavailable."""
        ...

    async def probe(self) -> None:
        """Prove the gateway answers; raises GatewayStalled or SessionRequired if not."""
