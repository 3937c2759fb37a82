"""The seam between the collector and a gateway: what either mode must provide.

`SocketSource` (ib_async, IB Gateway/TWS) and `PortalSource` (aiohttp, Client Portal) implement
it. A source keeps its own subscriptions in step with the portfolio; the collector only asks,
once per tick, for every account's holdings with the latest Greeks, and owns reconnecting.
Foreign exceptions never cross this seam: sources raise `collector.errors` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from collector.account_values import AccountMoney
from collector.betas import Bar
from collector.greeks import Holding
from shared.records import Mode


@dataclass(frozen=True)
class AccountView:
    """One account as the gateway shows it now: holdings, its money, and the benchmark's price
    (the collector adds the betas)."""

    holdings: list[Holding]
    money: AccountMoney
    benchmark_price: float | None
    benchmark_currency: str
    benchmark_price_error: float = 0.0  # from the gateway's rounding (PORTAL)
    # SPX's price in USD, the index the Portal's field 7696 is stated in (PORTAL only)
    spx_price: float | None = None


class GreeksSource(Protocol):
    mode: Mode

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None:
        """Open the connection or session; raises GatewayUnavailable, SessionRequired..."""

    async def disconnect(self) -> None: ...

    async def read(self, now: datetime) -> dict[str, AccountView]:
        """Every account's holdings with the latest Greeks, and its money; raises
        GatewayUnavailable."""
        ...

    async def history(self, symbols: list[str]) -> dict[str, list[Bar] | None]:
        """A year of daily bars of each symbol the source has seen (absent: unknown to it;
        None: the gateway has none); raises GatewayUnavailable."""
        ...

    async def fx_history(self, currency: str, quote_currency: str) -> list[Bar] | None:
        """A year of daily closes of one unit of `currency` in `quote_currency` (None: the
        gateway gives none); raises GatewayUnavailable."""
        ...

    async def probe(self) -> None:
        """Prove the gateway answers; raises GatewayStalled or SessionRequired if not."""
