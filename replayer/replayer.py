"""The replayer: every replay period, drains the buffer file into PostgreSQL in bulk.

`drain_once` claims the buffer (an unfinished claim from a killed run first), stores it chunk by
chunk through the idempotent sink and its own circuit breaker, checkpoints the offset after each
chunk, and removes the file once everything in it is stored. Lines the server rejects go to the
dead-letter file. When PostgreSQL is down the claim stays for the next period: nothing is lost,
and whatever was already stored is not stored twice.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from database.circuit_breaker import BreakerState, DBCircuitBreaker
from database.errors import DatabaseUnavailable
from database.sink import RecordSink, StoreResult
from replayer.errors import BufferCorrupt
from replayer.settings import ReplayerSettings
from shared import logs, status
from shared.buffer import Buffer, read_lines
from shared.deadletter import DeadLetter, DeadLetters

log = logging.getLogger("replayer")


@dataclass
class ReplayReport:
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    files_finished: int = 0
    interrupted: bool = False  # PostgreSQL went away (or the breaker is open): retry next period


class Replayer:
    def __init__(
        self,
        settings: ReplayerSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._monotonic = monotonic
        # Two connections: PostgreSQL parses the JSON, so a second backend doubles the CPU
        # that works on a backlog (measured in bench/pipeline.py).
        self._sinks = [
            RecordSink(lambda: settings.database.connect("bridge-replayer"))
            for _ in range(settings.connections)
        ]
        self.buffer = Buffer(settings.paths.buffer_path)
        self._dead_letters = DeadLetters(settings.paths.dead_letter_path)
        self.breaker = DBCircuitBreaker(
            name="replayer",
            fail_max=settings.database.breaker_fail_max,
            reset_timeout_s=settings.database.breaker_reset_s,
            on_change=lambda old, new: log.info(
                "database breaker", extra=logs.fields(transition=f"{old}->{new}")
            ),
        )
        self.last_report = ReplayReport()
        self._last_error: str | None = None
        self._stop = asyncio.Event()

    async def drain_once(self) -> ReplayReport:
        """Store everything buffered so far, or as much as PostgreSQL takes before it fails."""
        report = ReplayReport()
        while (path := self.buffer.claim()) is not None:
            offset = self.buffer.drained_offset()
            try:
                chunks = read_lines(path, offset, max_lines=self.settings.chunk_records)
                while group := list(itertools.islice(chunks, len(self._sinks))):
                    # SIGTERM: stop between groups (each is checkpointed) to exit in time.
                    if self._stop.is_set() or not await self._store_group(group, report):
                        report.interrupted = True
                        return self._finish(report)
                    self.buffer.save_drained_offset(group[-1][1])
            except OSError as exc:
                raise BufferCorrupt(f"cannot read {path}: {exc}") from exc
            self.buffer.finish_drain()
            report.files_finished += 1
        return self._finish(report)

    async def _store_group(
        self, group: list[tuple[list[bytes], int]], report: ReplayReport
    ) -> bool:
        """Store consecutive chunks concurrently, one per connection; True if all are stored.

        The offset moves past the group only when every chunk of it is stored; after a failure
        the whole group is redone, and the idempotent sink absorbs what was already stored.
        """
        if not self.breaker.allows(self._monotonic()):
            return False
        results = await asyncio.gather(
            *(sink.store(lines) for sink, (lines, _end) in zip(self._sinks, group, strict=False)),
            return_exceptions=True,
        )
        outage: DatabaseUnavailable | None = None
        for result in results:
            if isinstance(result, DatabaseUnavailable):
                outage = result
            elif isinstance(result, BaseException):
                raise result
            else:
                self._account(result, report)
        if outage is not None:
            self._last_error = str(outage)
            self.breaker.failed(self._monotonic())
            log.warning("database unavailable: replay postponed", extra=logs.fields(reason=outage))
            return False
        self.breaker.succeeded()
        return True

    def _account(self, result: StoreResult, report: ReplayReport) -> None:
        report.stored += result.stored
        report.duplicates += result.duplicates
        if result.rejected:
            letters = [
                DeadLetter(line, str(self.buffer.draining_path), f"rejected by PostgreSQL: {why}")
                for line, why in result.rejected
            ]
            self._dead_letters.add(letters, now=datetime.now(UTC))
            report.dead_lettered += len(letters)
            log.error("dead-lettered buffered lines", extra=logs.fields(count=len(letters)))

    async def close(self) -> None:
        for sink in self._sinks:
            await sink.close()

    def _finish(self, report: ReplayReport) -> ReplayReport:
        self.last_report = report
        if report.stored or report.duplicates or report.dead_lettered:
            log.info(
                "replayed buffer",
                extra=logs.fields(
                    stored=report.stored,
                    duplicates=report.duplicates,
                    dead_lettered=report.dead_lettered,
                    files=report.files_finished,
                    interrupted=report.interrupted,
                ),
            )
        self._publish_status("running")
        return report

    def _publish_status(self, state: str) -> None:
        buffer = self.buffer.stats()
        status.publish(
            self.settings.paths.run_dir,
            "replayer",
            {
                "state": state,
                "breaker": str(self.breaker.state),
                "last_db_error": self._last_error
                if self.breaker.state is not BreakerState.CLOSED
                else None,
                "buffer_bytes": buffer.pending_bytes,
                "last_replay": vars(self.last_report),
            },
            now=datetime.now(UTC),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Drain at start (finishing a killed run), then every replay period until `stop`."""
        self._stop = stop
        period_s = self.settings.replay_interval_s
        log.info(
            "replayer started",
            extra=logs.fields(
                buffer=self.buffer.path,
                database=self.settings.database.describe(),
                every_s=period_s,
            ),
        )
        next_run = self._monotonic()
        while not stop.is_set():
            try:
                await self.drain_once()
            except BufferCorrupt as exc:
                log.error("buffer unreadable; will retry", extra=logs.fields(reason=exc))
            # Fixed cadence: the period counts from the previous start, not from the end.
            next_run += period_s
            delay_s = max(0.0, next_run - self._monotonic())
            try:
                await asyncio.wait_for(stop.wait(), delay_s)
            except TimeoutError:
                pass
        self._publish_status("stopped")
        await self.close()
        log.info("replayer stopped")
