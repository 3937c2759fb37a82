"""The Greeks the Portal's rounding destroys (collector/recompute.py), priced in the worker
process (collector/worker.py) so that the event loop stays free while they are, within the
tick's time.

Per tick: the kept inputs answer on the loop (a dictionary look-up an option), the rest are
priced in the worker while the loop serves the gateway, the keeper and the heartbeat. When no
result comes in time (the worker is late, crashed, or still pricing an earlier tick) the tick
goes on without it: those options keep their stated Greeks, imprecise as stated, nothing is
invented, the snapshot is written, and the failure is counted by kind (`failures`) and said in
the tick's `Recomputed.failure`. A late result is still kept for the ticks after; a crashed
worker is replaced at the next tick that needs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from collector.errors import WorkerCrashed, WorkerTimeout
from collector.greeks import Holding
from collector.recompute import GreekRecomputer, price
from collector.revaluation import Market
from collector.worker import Worker

# The kinds of failure counted, in `failures`.
FAILURES: Final = ("timed_out", "crashed", "busy", "error")


@dataclass(frozen=True)
class Recomputed:
    """One tick's holdings with the destroyed Greeks the model gave; `failure` says why the
    `unpriced` options the kept inputs did not answer kept their stated Greeks (None: none)."""

    accounts: dict[str, list[Holding]]
    unpriced: int
    failure: str | None


class RecomputeInWorker:
    """Recomputes one tick's destroyed Greeks in a worker process, bounded in time."""

    def __init__(self, market: Market, worker: Worker | None = None) -> None:
        self._market = market
        self._recomputer = GreekRecomputer(market)
        # Its own process, not the scenario grid's: a grid takes seconds, and a tick's
        # recompute waiting behind it would miss its time at every grid.
        self._worker = worker or Worker("recompute")
        self._failures = dict.fromkeys(FAILURES, 0)

    @property
    def pricings(self) -> int:
        """Options priced so far (the kept inputs did not answer them)."""
        return self._recomputer.pricings

    @property
    def failures(self) -> dict[str, int]:
        """Ticks whose options in need went unpriced, by kind of failure (a copy)."""
        return dict(self._failures)

    async def figured(
        self, accounts: Mapping[str, Sequence[Holding]], now: datetime, timeout_s: float
    ) -> Recomputed:
        """`accounts`' holdings (one tick's) with the Greeks their rounding destroyed
        recomputed where the model confirms them; the pricing waited for `timeout_s` at
        most."""
        plan = self._recomputer.plan(accounts)
        wanted = plan.wanted
        failure = None
        if wanted and self._worker.busy:
            # Never queued behind it: this tick would wait for both.
            failure = self._failed("busy", "the worker is still pricing an earlier tick")
        elif wanted:
            try:
                job = self._worker.start(price, wanted, self._market, now)
                priced = await job.result(timeout_s)
            except WorkerTimeout as exc:
                job.on_result(lambda late: self._recomputer.keep(wanted, late))
                failure = self._failed("timed_out", str(exc))
            except WorkerCrashed as exc:
                failure = self._failed("crashed", str(exc))
            except Exception as exc:  # a defect in the pricing must not cost the snapshot
                failure = self._failed("error", repr(exc))
            else:
                self._recomputer.keep(wanted, priced)
        unpriced = len(wanted) if failure else 0
        return Recomputed(self._recomputer.figured(plan), unpriced, failure)

    def _failed(self, kind: str, reason: str) -> str:
        self._failures[kind] += 1
        return reason

    async def settled(self) -> None:
        """Wait for the worker's job, if any, to end: a late result is then kept."""
        await self._worker.idle()

    def close(self) -> None:
        self._worker.close()
