"""The writer: tails the spools into PostgreSQL, behind the circuit breaker, buffering when it must.

Two producers spool records: the collector and the alerter, each in its own directory with its
own checkpoint (`writer.checkpoint` in that directory). One step (`drain_once`) takes each spool
in turn: it reads the complete lines after that spool's checkpoint, validates each one
(a bad line goes to the dead-letter file with its reason), stores the valid ones idempotently,
or appends them to the buffer file when the breaker is open or the store fails, and only then
moves the checkpoint (atomically) and deletes spool segments that are fully consumed. A crash
anywhere in between re-delivers at most one batch, which the idempotent sink absorbs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from database.store import DatabaseStore, NotStored
from shared import logs, records, status
from shared.buffer import Buffer
from shared.deadletter import DeadLetter, DeadLetters
from shared.errors import RecordError
from shared.spool import SpoolBatch, SpoolPosition, load_checkpoint, read_spool, save_checkpoint
from writer.errors import BufferUnavailable
from writer.settings import WriterSettings

log = logging.getLogger("writer")

_READ_MAX_BYTES = 4 * 1024 * 1024


@dataclass
class DrainReport:
    """What one or more drain steps did; `read` counts lines taken from the spool."""

    read: int = 0
    stored: int = 0
    duplicates: int = 0
    buffered: int = 0
    dead_lettered: int = 0

    def add(self, other: DrainReport) -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


class Writer:
    def __init__(
        self,
        settings: WriterSettings,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        paths = settings.paths
        # The collector's spool first: it carries the snapshots.
        self.spools = (paths.spool_dir, paths.alerter_spool_dir)
        for directory in self.spools:
            directory.mkdir(parents=True, exist_ok=True)
        self._monotonic = monotonic
        self.store = DatabaseStore(
            "writer", settings.database, application_name="bridge-writer", monotonic=monotonic
        )
        self._buffer = Buffer(paths.buffer_path)
        self._dead_letters = DeadLetters(paths.dead_letter_path)
        self.positions = {directory: load_checkpoint(directory) for directory in self.spools}
        self.totals = DrainReport()
        self._last_status_at = float("-inf")

    @property
    def position(self) -> SpoolPosition:
        """How far the collector's spool is consumed."""
        return self.positions[self.settings.paths.spool_dir]

    async def drain_once(self) -> DrainReport:
        """Move the next batch of each spool's lines to PostgreSQL or the buffer; checkpoint
        each spool after its batch."""
        report = DrainReport()
        for directory in self.spools:
            report.add(await self._drain_spool(directory))
        self._publish_status()
        return report

    async def _drain_spool(self, directory: Path) -> DrainReport:
        position = self.positions[directory]
        batch = read_spool(
            directory,
            position,
            max_lines=self.settings.batch_max_records,
            max_bytes=_READ_MAX_BYTES,
        )
        report = DrainReport(read=len(batch.lines))
        for problem in batch.truncated:
            log.error("spool segment shrank under the checkpoint", extra=logs.fields(at=problem))
        valid, letters = self._validate(batch)
        if valid:
            letters += await self._deliver(valid, report)
        if letters:
            self._dead_letters.add(letters, now=datetime.now(UTC))
            report.dead_lettered = len(letters)
            for letter in letters:
                log.error(
                    "dead-lettered a line",
                    extra=logs.fields(source=letter.source, reason=letter.reason),
                )
        if batch.end != position:
            save_checkpoint(directory, batch.end)
            self.positions[directory] = batch.end
        for segment in batch.finished:
            segment.path.unlink(missing_ok=True)
        self.totals.add(report)
        return report

    def _validate(self, batch: SpoolBatch) -> tuple[list[bytes], list[DeadLetter]]:
        valid: list[bytes] = []
        letters = [DeadLetter(torn.data, torn.source, "torn line") for torn in batch.torn]
        for line in batch.lines:
            try:
                records.decode(line.data)
            except RecordError as exc:
                letters.append(DeadLetter(line.data, line.source, exc.reason))
            else:
                valid.append(line.data)
        return valid, letters

    async def _deliver(self, lines: list[bytes], report: DrainReport) -> list[DeadLetter]:
        """Store or buffer `lines`; returns the ones the server rejected, as dead letters."""
        result = await self.store.store(lines)
        letters: list[DeadLetter] = []
        if not isinstance(result, NotStored):
            report.stored, report.duplicates = result.stored, result.duplicates
            letters = [
                DeadLetter(line, "writer", f"rejected by PostgreSQL: {reason}")
                for line, reason in result.rejected
            ]
            # Lines that lost a race past their retries: the replayer tries them again later.
            lines = [line for line, _ in result.unstored]
        if lines:
            try:
                self._buffer.append(lines)
            except OSError as exc:
                raise BufferUnavailable(f"cannot append to {self._buffer.path}: {exc}") from exc
            report.buffered = len(lines)
        return letters

    async def close(self) -> None:
        await self.store.close()

    async def run_until_caught_up(self) -> DrainReport:
        """Drain until a step finds less than a full batch: the spools are consumed."""
        total = DrainReport()
        while True:
            report = await self.drain_once()
            total.add(report)
            if report.read < self.settings.batch_max_records:
                return total

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until `stop` is set; the batch in progress is finished and checkpointed first."""
        log.info(
            "writer started",
            extra=logs.fields(
                spools=",".join(str(directory) for directory in self.spools),
                database=self.settings.database.describe(),
                buffer=self.settings.paths.buffer_path,
            ),
        )
        started_at = self._monotonic()
        while not stop.is_set():
            await self.store.ensure_schema()
            if not self.store.view.connected and (
                self._monotonic() - started_at < self.settings.startup_grace_s
            ):
                # The database is still starting (the local profile starts it beside us): the
                # spool keeps the records durably meanwhile, so they are stored directly once
                # it answers instead of waiting in the buffer for the replay period.
                await _wait(stop, self.settings.poll_interval_s)
                continue
            try:
                report = await self.drain_once()
            except BufferUnavailable as exc:
                # Nothing was lost: the checkpoint did not move. Retry after a pause.
                log.error("records held in the spool", extra=logs.fields(reason=exc))
                report = DrainReport()
                await _wait(stop, 1.0)
            # Sleep only when the spool had nothing new: after a batch that found work, rows
            # have piled up meanwhile, and a pause would make every next batch later and
            # bigger (docs/scaling.md: p99 120 ms instead of 40-60 at 16,000 rows/s).
            if report.read == 0:
                await _wait(stop, self.settings.poll_interval_s)
        self._publish_status(force=True, state="stopped")
        await self.close()
        log.info("writer stopped", extra=logs.fields(checkpoint=self.position))

    def _publish_status(self, *, force: bool = False, state: str = "running") -> None:
        now = self._monotonic()
        if not force and now - self._last_status_at < self.settings.status_interval_s:
            return
        self._last_status_at = now
        buffer = self._buffer.stats()
        view = self.store.view
        status.publish(
            self.settings.paths.run_dir,
            "writer",
            {
                "state": state,
                "breaker": str(view.breaker),
                "last_db_error": view.last_error,
                "checkpoint": {"seq": self.position.seq, "offset": self.position.offset},
                "buffer_bytes": buffer.pending_bytes,
                "totals": {
                    item.name: getattr(self.totals, item.name) for item in fields(DrainReport)
                },
            },
            now=datetime.now(UTC),
            interval_s=self.settings.status_interval_s,
        )


async def _wait(stop: asyncio.Event, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout_s)
    except TimeoutError:
        pass
