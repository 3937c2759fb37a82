"""The replayer: every replay period, drains the buffer file into PostgreSQL in bulk.

`drain_once` claims the buffer (an unfinished claim from a killed run first), stores it chunk by
chunk through the idempotent sink and its own circuit breaker, checkpoints the offset after each
chunk, and removes the file once everything in it is stored. Lines the server rejects go to the
dead-letter file. When PostgreSQL is down the claim stays for the next period: nothing is lost,
and whatever was already stored is not stored twice. A chunk that fails while the server is up
(conflicts past their retries) is put back at the end of the buffer, so it never pins the claim:
the lines behind it, and later outages' records, are stored meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from database.errors import DatabaseError, DatabaseUnavailable
from database.history import HistoryKeeper, MaintenanceReport
from database.sink import StoreResult
from database.store import DatabaseStore, NotStored
from replayer.errors import BufferCorrupt, ReplayerError
from replayer.settings import ReplayerSettings
from shared import heartbeat_files, logs
from shared.buffer import Buffer, read_lines
from shared.deadletter import DeadLetter, DeadLetters
from shared.durable import single_instance
from shared.errors import CheckpointCorrupt, DeadLettersUnavailable
from shared.event_spool import EventSpool
from shared.service import pause
from shared.troubles import Troubles

log = logging.getLogger("replayer")


@dataclass
class ReplayReport:
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    splits: int = 0  # chunks split because the server refused them whole (size or one record)
    files_finished: int = 0
    requeued: int = 0  # lines put back at the end of the buffer: the server failed them, up
    interrupted: bool = False  # PostgreSQL went away (or the breaker is open): retry next period


class Replayer:
    def __init__(
        self,
        settings: ReplayerSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self._monotonic = monotonic
        self._clock = clock
        self.history = HistoryKeeper(
            lambda: settings.database.connect("bridge-replayer"),
            settings.retention,
            reply_timeout_s=settings.database.reply_timeout_s,
        )
        # Two connections: PostgreSQL parses the JSON, so a second backend doubles the CPU
        # that works on a backlog (measured in bench/pipeline.py).
        self.store = DatabaseStore(
            "replayer",
            settings.database,
            application_name="bridge-replayer",
            connections=settings.connections,
            monotonic=monotonic,
            events=EventSpool(
                settings.paths.replayer_events_dir, producer="replayer", mode=settings.mode
            ),
        )
        self.buffer = Buffer(settings.paths.buffer_path)
        self._dead_letters = DeadLetters(settings.paths.dead_letter_path)
        self.last_report = ReplayReport()
        self.troubles = Troubles(log)
        self._stop = asyncio.Event()

    async def drain_once(self) -> ReplayReport:
        """Store everything buffered so far, or as much as PostgreSQL takes before it fails."""
        report = ReplayReport()
        while (path := self.buffer.claim()) is not None:
            finished = await self._drain_file(path, report)
            if not finished:
                report.interrupted = True
                break
            self.buffer.finish_drain()
            report.files_finished += 1
            if report.requeued:
                break  # what was put back is retried next period, not in a loop now
        return self._finish(report)

    async def _drain_file(self, path: Path, report: ReplayReport) -> bool:
        """Store the claimed file chunk by chunk, one chunk per connection at a time.

        Chunks finish out of order, so the offset checkpoint only moves over the contiguous
        prefix of stored chunks; after a failure, whatever lies beyond it is redone next time
        and the idempotent sink absorbs what was already stored. True when all of it is stored.
        """
        chunks = enumerate(
            read_lines(
                path,
                self._start_offset(),
                max_lines=self.settings.chunk_records,
                max_bytes=self.settings.chunk_max_bytes,
            )
        )
        ends: dict[int, int] = {}
        next_index = 0
        failed = False

        async def work(connection: int) -> None:
            nonlocal next_index, failed
            # SIGTERM or a failure elsewhere: stop taking chunks, so the process exits in time.
            while not failed and not self._stop.is_set():
                if not self.store.allows():
                    failed = True
                    return
                taken = next(chunks, None)  # no await between test and take: tasks never race
                if taken is None:
                    return
                index, (lines, end) = taken
                result = await self.store.store(lines, connection=connection)
                if isinstance(result, NotStored):
                    failed = True
                    log.info("replay postponed", extra=logs.fields(reason=result.reason))
                    return
                if result.unstored:
                    # The server is up but failed these lines: retrying them first for ever
                    # would pin the claim, so they go back at the end of the buffer, durably,
                    # before the offset moves past them.
                    try:
                        self.buffer.append([line for line, _ in result.unstored])
                    except OSError as exc:  # cannot put them back: keep the claim instead
                        failed = True
                        log.error("lines kept in the claim", extra=logs.fields(reason=exc))
                        return
                    report.requeued += len(result.unstored)
                self._settle(result, report)
                ends[index] = end
                contiguous_end = None
                while next_index in ends:
                    contiguous_end = ends.pop(next_index)
                    next_index += 1
                if contiguous_end is not None:
                    self._save_offset(contiguous_end)

        # The one boundary where the workers' errors, which the TaskGroup wraps in an
        # ExceptionGroup, become the replayer's own.
        try:
            async with asyncio.TaskGroup() as workers:  # a bug in one cancels the others
                for connection in range(self.store.connections):
                    workers.create_task(work(connection))
        except* OSError as group:
            raise BufferCorrupt(f"cannot read {path}: {group.exceptions[0]}") from None
        except* (ReplayerError, DeadLettersUnavailable) as group:
            raise group.exceptions[0] from None
        return not failed and not self._stop.is_set()

    def _start_offset(self) -> int:
        try:
            return self.buffer.drained_offset()
        except CheckpointCorrupt as exc:
            # Safe: every insert is idempotent, so storing the file again from its start only
            # costs time.
            self.troubles.report("offset", "replay offset unreadable: storing the file again", exc)
            return 0

    def _save_offset(self, offset: int) -> None:
        try:
            self.buffer.save_drained_offset(offset)
        except OSError as exc:
            # Only progress is lost: a crash before the next save redoes these chunks.
            self.troubles.report(
                "offset", "cannot save the replay offset; retrying", exc.strerror or exc
            )
        else:
            self.troubles.clear("offset")

    def _settle(self, result: StoreResult, report: ReplayReport) -> None:
        """Add a stored chunk's counts to `report` and dead-letter the lines it rejected."""
        report.stored += result.stored
        report.duplicates += result.duplicates
        report.splits += result.splits
        if result.rejected:
            letters = [
                DeadLetter(line, str(self.buffer.draining_path), f"rejected by PostgreSQL: {why}")
                for line, why in result.rejected
            ]
            # Unavailable: the offset stays before these lines, the next period stores them.
            self._dead_letters.quarantine(letters, now=datetime.now(UTC))
            report.dead_lettered += len(letters)
            log.error("dead-lettered buffered lines", extra=logs.fields(count=len(letters)))

    async def maintain_history(self) -> MaintenanceReport | None:
        """Partitions ahead and past retention, and a batch of rollups (docs/design.md).

        A failure is logged and retried next period: it never holds up the replay."""
        try:
            report = await self.history.step(self._clock())
        except DatabaseUnavailable:
            return None  # the replay's breaker reports outages
        except DatabaseError as exc:
            log.error("history maintenance failed", extra=logs.fields(reason=exc))
            return None
        if report.created or report.dropped:
            log.info(
                "history partitions",
                extra=logs.fields(created=report.created, dropped=report.dropped),
            )
        return report

    async def close(self) -> None:
        await self.store.close()
        await self.history.close()

    def _finish(self, report: ReplayReport) -> ReplayReport:
        self.last_report = report
        if report.stored or report.duplicates or report.dead_lettered or report.requeued:
            log.info(
                "replayed buffer",
                extra=logs.fields(
                    stored=report.stored,
                    duplicates=report.duplicates,
                    dead_lettered=report.dead_lettered,
                    requeued=report.requeued,
                    files=report.files_finished,
                    interrupted=report.interrupted,
                ),
            )
        self._publish_status("running")
        return report

    def _publish_status(self, state: str) -> None:
        buffer = self.buffer.stats()
        beat = self.store.heartbeat(
            state,
            interval_s=self.settings.status_interval_s,
            troubles=self.troubles.current,
            details={
                "buffer_bytes": buffer.pending_bytes,
                "last_replay": vars(self.last_report),
                "replay_interval_s": self.settings.replay_interval_s,
                "history": vars(self.history.last_facts) if self.history.last_facts else None,
            },
        )
        heartbeat_files.publish_reporting(self.troubles, self.settings.paths.run_dir, beat)

    async def _beat(self, stop: asyncio.Event) -> None:
        """The heartbeat, whether a drain runs, waits for its period, or is stuck."""
        while not stop.is_set():
            self._publish_status("running")
            await pause(stop, self.settings.status_interval_s)

    async def run(self, stop: asyncio.Event) -> None:
        """Drain at start (finishing a killed run), then every replay period until `stop`.

        Raises AlreadyRunning when another replayer holds this buffer.
        """
        with single_instance(self.buffer.replayer_lock_path, "replayer"):
            beat = asyncio.create_task(self._beat(stop))
            try:
                await self._run(stop)
            finally:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat

    async def _run(self, stop: asyncio.Event) -> None:
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
            await self.store.ensure_schema()
            # Partitions first: a backlog replayed after a long outage needs its days.
            if self.store.view.connected:
                await self.maintain_history()
            try:
                await self.drain_once()
            except (ReplayerError, DeadLettersUnavailable) as exc:
                self.troubles.report("drain", "replay stopped; will retry next period", exc)
            else:
                self.troubles.clear("drain")
            # Fixed cadence: the period counts from the previous start, not from the end.
            next_run += period_s
            await pause(stop, max(0.0, next_run - self._monotonic()))
        self._publish_status("stopped")
        await self.close()
        log.info("replayer stopped")
