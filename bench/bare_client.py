"""The floor of the collector benchmark: an ib_async client that only holds the subscriptions.

`python -m bench.bare_client PORT SECONDS` connects, subscribes market data for every position,
and does nothing else until SECONDS have passed: the unavoidable cost of receiving the data.
"""

from __future__ import annotations

import asyncio
import sys

from ib_async import IB, Contract, StartupFetch


async def main(port: int, seconds: float) -> None:
    ib = IB()
    await ib.connectAsync(
        "127.0.0.1", port, clientId=77, readonly=True, fetchFields=StartupFetch.POSITIONS
    )
    for position in ib.positions():
        qualified = await ib.qualifyContractsAsync(Contract(conId=position.contract.conId))
        if qualified and isinstance(qualified[0], Contract):
            ib.reqMktData(qualified[0])
    await asyncio.sleep(seconds)
    ib.disconnect()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
