"""Real TWS API clients for the socket tests: waiting on ib_async's events, and an ibapi app.

ib_async runs on the test's event loop; IB's official client (ibapi) runs its blocking reader in
threads, so its app records callbacks and sets threading events the test awaits off the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ib_async import IB, Contract
from ibapi import contract as ibapi_contract  # type: ignore[import-untyped]
from ibapi.client import EClient  # type: ignore[import-untyped]
from ibapi.wrapper import EWrapper  # type: ignore[import-untyped]


async def until(ib: IB, condition: Callable[[], bool], *, timeout_s: float = 3.0) -> None:
    """Wait for ib_async to process network data until `condition` holds."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await ib.updateEvent


async def qualify(ib: IB, contract: Contract) -> Contract:
    """The one contract qualifyContracts makes of `contract`; fails the test otherwise."""
    [qualified] = await ib.qualifyContractsAsync(contract)
    assert isinstance(qualified, Contract), f"not qualified: {contract}"
    return qualified


async def wait_event(event: threading.Event, *, timeout_s: float = 3.0) -> None:
    """Await a threading.Event set by ibapi's reader thread, without blocking the loop."""
    if not await asyncio.to_thread(event.wait, timeout_s):
        raise TimeoutError("ibapi callback not received")


class IbapiApp(EWrapper, EClient):  # type: ignore[misc]
    """IB's own client as an application uses it: an EClient that is its own EWrapper."""

    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, self)
        self.accounts: list[str] = []
        self.next_order_id: int | None = None
        self.errors: list[tuple[int, int, str]] = []
        self.positions: list[tuple[str, int, Decimal, float]] = []
        self.details: list[ibapi_contract.ContractDetails] = []
        self.model_greeks: dict[int, tuple[float | None, ...]] = {}
        self.server_time: int | None = None
        self.ready = threading.Event()
        self.positions_done = threading.Event()
        self.details_done = threading.Event()
        self.greeks_arrived = threading.Event()
        self.time_arrived = threading.Event()
        self.closed = threading.Event()
        # Callbacks only recorded: name -> argument tuples, and an event set on each call.
        self.calls: dict[str, list[tuple[Any, ...]]] = {name: [] for name in _RECORDED}
        self.arrived = {name: threading.Event() for name in _RECORDED}

    def _record(self, name: str, *args: Any) -> None:
        self.calls[name].append(args)
        self.arrived[name].set()

    def nextValidId(self, orderId: int) -> None:  # noqa: N802, N803  # ibapi's names
        self.next_order_id = orderId
        self.ready.set()

    def managedAccounts(self, accountsList: str) -> None:  # noqa: N802, N803  # ibapi's names
        self.accounts = accountsList.split(",")

    def error(
        self,
        reqId: int,  # noqa: N803  # ibapi's names
        errorTime: int,  # noqa: N803
        errorCode: int,  # noqa: N803
        errorString: str,  # noqa: N803
        advancedOrderRejectJson: str = "",  # noqa: N803
    ) -> None:
        self.errors.append((reqId, errorCode, errorString))

    def position(
        self,
        account: str,
        contract: ibapi_contract.Contract,
        position: Decimal,
        avgCost: float,  # noqa: N803  # ibapi's names
    ) -> None:
        self.positions.append((account, contract.conId, position, avgCost))

    def positionEnd(self) -> None:  # noqa: N802  # ibapi's names
        self.positions_done.set()

    def contractDetails(self, reqId: int, contractDetails: ibapi_contract.ContractDetails) -> None:  # noqa: N802, N803
        self.details.append(contractDetails)

    def contractDetailsEnd(self, reqId: int) -> None:  # noqa: N802, N803  # ibapi's names
        self.details_done.set()

    def tickOptionComputation(  # noqa: N802, PLR0917  # ibapi's names and signature
        self,
        reqId: int,  # noqa: N803
        tickType: int,  # noqa: N803
        tickAttrib: int,  # noqa: N803
        impliedVol: float | None,  # noqa: N803
        delta: float | None,
        optPrice: float | None,  # noqa: N803
        pvDividend: float | None,  # noqa: N803
        gamma: float | None,
        vega: float | None,
        theta: float | None,
        undPrice: float | None,  # noqa: N803
    ) -> None:
        if tickType == 13:
            self.model_greeks[reqId] = (impliedVol, delta, gamma, vega, theta, undPrice)
            self.greeks_arrived.set()

    def currentTime(self, time: int) -> None:  # noqa: N802  # ibapi's names
        self.server_time = time
        self.time_arrived.set()

    def connectionClosed(self) -> None:  # noqa: N802  # ibapi's names
        self.closed.set()

    def updateAccountValue(self, *args: object) -> None:  # noqa: N802  # ibapi's names
        self._record("updateAccountValue", *args)

    def updatePortfolio(self, *args: object) -> None:  # noqa: N802  # ibapi's names
        self._record("updatePortfolio", *args)

    def accountDownloadEnd(self, *args: object) -> None:  # noqa: N802  # ibapi's names
        self._record("accountDownloadEnd", *args)

    def accountSummary(self, *args: object) -> None:  # noqa: N802  # ibapi's names
        self._record("accountSummary", *args)

    def accountSummaryEnd(self, *args: object) -> None:  # noqa: N802  # ibapi's names
        self._record("accountSummaryEnd", *args)

    def pnl(self, *args: object) -> None:
        self._record("pnl", *args)

    def securityDefinitionOptionParameter(self, *args: object) -> None:  # noqa: N802
        self._record("securityDefinitionOptionParameter", *args)

    def securityDefinitionOptionParameterEnd(self, *args: object) -> None:  # noqa: N802
        self._record("securityDefinitionOptionParameterEnd", *args)

    def marketDataType(self, *args: object) -> None:  # noqa: N802  # ibapi's names
        self._record("marketDataType", *args)

    def tickReqParams(self, *args: object) -> None:  # noqa: N802  # ibapi's names
        self._record("tickReqParams", *args)

    def tickPrice(self, *args: object) -> None:  # noqa: N802  # ibapi's names
        self._record("tickPrice", *args)

    def historicalData(self, *args: object) -> None:  # noqa: N802  # ibapi's names
        self._record("historicalData", *args)

    def historicalDataEnd(self, *args: object) -> None:  # noqa: N802  # ibapi's names
        self._record("historicalDataEnd", *args)


_RECORDED = (
    "updateAccountValue",
    "updatePortfolio",
    "accountDownloadEnd",
    "accountSummary",
    "accountSummaryEnd",
    "pnl",
    "securityDefinitionOptionParameter",
    "securityDefinitionOptionParameterEnd",
    "marketDataType",
    "tickReqParams",
    "tickPrice",
    "historicalData",
    "historicalDataEnd",
)
