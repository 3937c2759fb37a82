"""The writer: tails the spools into PostgreSQL, behind the circuit breaker, buffering when it must.

Producers spool records: the collector and the alerter, and the writer and the replayer their
breaker's events, each in its own directory with its own checkpoint (`writer.checkpoint` in that
directory). The breakers' events are read only by a step that starts and stays with the
breaker closed: while the database is down they wait in their spool, not in the buffer. One
step (`drain_once`) takes each spool in turn: it reads the complete lines after that spool's
checkpoint, validates each one (a bad line goes to the dead-letter file with its reason), stores
the valid ones idempotently (a large batch spread by account over `BRIDGE_WRITER_CONNECTIONS`
connections, so PostgreSQL stores it on as many cores), or appends them to the buffer file when
the breaker is open or the store fails, and only then deletes the spool segments that are fully
consumed and moves the checkpoint (atomically). A crash anywhere in between re-delivers at most
one batch, which the idempotent sink absorbs.

A full disk is retried, never fatal: records that can be neither stored nor buffered (the
buffer is full or cannot be written) stay in the spool; a checkpoint that cannot be saved is
kept in memory and saved later. Each such trouble is logged once and shown in the heartbeat.
One writer per spool: a second one is refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from database.circuit_breaker import BreakerState
from database.store import DatabaseStore, NotStored
from shared import heartbeat_files, logs, records
from shared.buffer import Buffer
from shared.deadletter import DeadLetter, DeadLetters
from shared.durable import single_instance
from shared.errors import CheckpointCorrupt, DeadLettersUnavailable, RecordError
from shared.event_spool import EventSpool
from shared.service import pause
from shared.spool import (
    SpoolBatch,
    SpoolPosition,
    load_checkpoint,
    read_spool,
    save_checkpoint,
    segment_name,
)
from shared.troubles import Troubles
from writer.errors import BufferFull, BufferUnavailable
from writer.settings import WriterSettings

log = logging.getLogger("writer")

_READ_MAX_BYTES = 4 * 1024 * 1024
LOCK_NAME = "writer.lock"


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


@dataclass
class _Spool:
    """What the writer keeps per spool it tails."""

    directory: Path
    position: SpoolPosition
    checkpoint_saved: bool = True
    # Segments listed at or after the checkpoint and not consumed yet: one that disappears
    # was deleted or renamed by someone else, and its records are lost.
    unconsumed: set[int] = field(default_factory=set)


class ValidLine(NamedTuple):
    """A line that decoded to a record, with the account of a snapshot."""

    data: bytes
    account: str | None


# Below this many lines a batch goes over one connection. A second transaction costs its own
# round trips and commit (about 1 ms here); 100 format-2 lines are about 5 ms of server time,
# so splitting them saves more than that (bench/server_time.py).
SPREAD_MIN_LINES = 100


def spread(lines: Sequence[ValidLine], ways: int) -> list[list[bytes]]:
    """Split a batch into at most `ways` groups, one per connection, by account.

    An account's snapshots (and its Greeks by expiry and legs) always travel together, so two
    groups never insert the same key (account, ts) nor mark the same (account, minute) for
    rollup: their transactions never wait for each other or deadlock. Events and betas, few,
    go with the first group.
    """
    if ways == 1 or len(lines) < SPREAD_MIN_LINES:
        return [[line.data for line in lines]]
    groups: list[list[bytes]] = [[] for _ in range(ways)]
    for line in lines:
        which = 0 if line.account is None else zlib.crc32(line.account.encode()) % ways
        groups[which].append(line.data)
    return [group for group in groups if group]


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
        self.spools = (
            paths.spool_dir,
            paths.alerter_spool_dir,
            paths.writer_events_dir,
            paths.replayer_events_dir,
        )
        # The breakers' events wait in their spools while the database is down, rather than go
        # to the buffer: read only by a step that starts with the breaker closed.
        self._while_closed = {paths.writer_events_dir, paths.replayer_events_dir}
        for directory in self.spools:
            directory.mkdir(parents=True, exist_ok=True)
        self._monotonic = monotonic
        self.store = DatabaseStore(
            "writer",
            settings.database,
            application_name="bridge-writer",
            connections=settings.connections,
            monotonic=monotonic,
            events=EventSpool(paths.writer_events_dir, producer="writer", mode=settings.mode),
        )
        self._buffer = Buffer(paths.buffer_path)
        self._dead_letters = DeadLetters(paths.dead_letter_path)
        self.troubles = Troubles(log)
        self._spools = {
            directory: _Spool(directory, self._load_checkpoint(directory))
            for directory in self.spools
        }
        # api_log records the writer reports itself, kept until they are stored or buffered.
        self._own_events: list[bytes] = []
        self._buffer_warned = False
        self._buffer_full = False  # the last batch did not fit under the buffer's cap
        self.totals = DrainReport()
        self._last_status_at = float("-inf")

    @property
    def position(self) -> SpoolPosition:
        """How far the collector's spool is consumed."""
        return self._spools[self.settings.paths.spool_dir].position

    def _load_checkpoint(self, directory: Path) -> SpoolPosition:
        try:
            return load_checkpoint(directory)
        except CheckpointCorrupt as exc:
            # Safe: consumed segments are deleted and every insert is idempotent, so starting
            # from the oldest segment still here re-delivers, at worst, what is already stored.
            self.troubles.report(
                f"checkpoint {directory.name}",
                "spool checkpoint unreadable: starting over from the oldest segment",
                exc,
            )
            return SpoolPosition(0, 0)

    async def drain_once(self) -> DrainReport:
        """Move the next batch of each spool's lines to PostgreSQL or the buffer; checkpoint
        each spool after its batch."""
        report = DrainReport()
        closed_at_start = self.store.view.breaker is BreakerState.CLOSED
        for spool in self._spools.values():
            closed = closed_at_start and self.store.view.breaker is BreakerState.CLOSED
            if closed or spool.directory not in self._while_closed:
                report.add(await self._drain_spool(spool))
        self._publish_status()
        return report

    async def _drain_spool(self, spool: _Spool) -> DrainReport:
        batch = read_spool(
            spool.directory,
            spool.position,
            max_lines=self.settings.batch_max_records,
            max_bytes=self._read_budget_bytes(),
        )
        report = DrainReport(read=len(batch.lines))
        for problem in batch.truncated:
            log.error("spool segment shrank under the checkpoint", extra=logs.fields(at=problem))
        self._report_vanished(spool, batch)
        valid, letters = self._validate(batch)
        valid += [ValidLine(line, None) for line in self._own_events]
        if valid:
            letters += await self._deliver(valid, report)
            self._own_events = []
        if letters:
            self._dead_letter(letters)
            report.dead_lettered = len(letters)
        # Every line of a finished segment is now stored, buffered or dead-lettered: free its
        # space before the checkpoint is saved, which may itself need the space.
        for segment in batch.finished:
            segment.path.unlink(missing_ok=True)
        spool.unconsumed = {s.seq for s in batch.listed} - {s.seq for s in batch.finished}
        self._checkpoint(spool, batch.end)
        self.totals.add(report)
        return report

    def _read_budget_bytes(self) -> int:
        """While the breaker is open the batch goes to the buffer: take only what fits under
        its cap, so the buffer fills up to it rather than refusing one large batch early."""
        if self.store.view.breaker is BreakerState.CLOSED:
            return _READ_MAX_BYTES
        room = self.settings.buffer_limits.max_bytes - self._buffer.stats().pending_bytes
        return max(1, min(_READ_MAX_BYTES, room))

    def _report_vanished(self, spool: _Spool, batch: SpoolBatch) -> None:
        listed = {segment.seq for segment in batch.listed}
        gone = {seq for seq in spool.unconsumed if seq not in listed}
        gone |= {segment.seq for segment in batch.vanished}
        for seq in sorted(gone):
            name = segment_name(seq)
            message = f"spool segment {name} disappeared before it was consumed"
            log.error(message, extra=logs.fields(segment=name))
            event = records.new_api_log(
                ts=datetime.now(UTC),
                mode=self.settings.mode,
                level="error",
                event="spool_segment_missing",
                message=f"{message}: records in it may be lost",
                details={"segment": name, "spool": str(spool.directory)},
            )
            self._own_events.append(records.encode(event))
        spool.unconsumed -= gone

    def _dead_letter(self, letters: list[DeadLetter]) -> None:
        self._dead_letters.quarantine(letters, now=datetime.now(UTC))
        for letter in letters:
            log.error(
                "dead-lettered a line",
                extra=logs.fields(source=letter.source, reason=letter.reason),
            )

    def _checkpoint(self, spool: _Spool, end: SpoolPosition) -> None:
        """Move the checkpoint to `end`; when it cannot be saved, keep it in memory and retry.

        Retrying is safe: a crash before it is saved re-delivers from the last saved one.
        """
        if end == spool.position and spool.checkpoint_saved:
            return
        spool.position = end
        subject = f"checkpoint {spool.directory.name}"
        try:
            save_checkpoint(spool.directory, end)
        except OSError as exc:
            spool.checkpoint_saved = False
            self.troubles.report(
                subject, "cannot save the spool checkpoint; retrying", exc.strerror or exc
            )
        else:
            spool.checkpoint_saved = True
            self.troubles.clear(subject)

    def _validate(self, batch: SpoolBatch) -> tuple[list[ValidLine], list[DeadLetter]]:
        valid: list[ValidLine] = []
        letters = [DeadLetter(torn.data, torn.source, "torn line") for torn in batch.torn]
        for line in batch.lines:
            try:
                account = records.checked_account(line.data)
            except RecordError as exc:
                letters.append(DeadLetter(line.data, line.source, exc.reason))
            else:
                valid.append(ValidLine(line.data, account))
        return valid, letters

    async def _deliver(self, lines: list[ValidLine], report: DrainReport) -> list[DeadLetter]:
        """Store or buffer `lines`; returns the ones the server rejected, as dead letters."""
        result = await self.store.store_spread(spread(lines, self.store.connections))
        letters: list[DeadLetter] = []
        if not isinstance(result, NotStored):
            report.stored, report.duplicates = result.stored, result.duplicates
            letters = [
                DeadLetter(line, "writer", f"rejected by PostgreSQL: {reason}")
                for line, reason in result.rejected
            ]
            # Lines that lost a race past their retries, or whose connection failed while the
            # other one stored its share: the replayer tries them again later.
            unstored = [line for line, _ in result.unstored]
        else:
            unstored = [line.data for line in lines]
        if unstored:
            self._append_to_buffer(unstored)
            report.buffered = len(unstored)
        return letters

    def _append_to_buffer(self, lines: list[bytes]) -> None:
        limits = self.settings.buffer_limits
        after = self._buffer.stats().pending_bytes + sum(map(len, lines))
        self._buffer_full = after > limits.max_bytes
        if self._buffer_full:
            raise BufferFull(
                f"the buffer is at its cap of {limits.max_bytes} bytes (BRIDGE_BUFFER_MAX_BYTES)"
            )
        try:
            self._buffer.append(lines)
        except OSError as exc:
            raise BufferUnavailable(f"cannot append to {self._buffer.path}: {exc}") from exc
        if after >= limits.warn_bytes and not self._buffer_warned:
            log.warning(
                "the buffer is filling up",
                extra=logs.fields(
                    bytes=after, warn_bytes=limits.warn_bytes, max_bytes=limits.max_bytes
                ),
            )
        self._buffer_warned = after >= limits.warn_bytes

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
        """Drain until `stop` is set; the batch in progress is finished and checkpointed first.

        Raises AlreadyRunning when another writer holds this spool.
        """
        with single_instance(self.settings.paths.spool_dir / LOCK_NAME, "writer"):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
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
                self._publish_status(state="starting")
                await pause(stop, self.settings.poll_interval_s)
                continue
            try:
                report = await self.drain_once()
            except (BufferUnavailable, DeadLettersUnavailable) as exc:
                # Nothing was lost: the checkpoint did not move. Retry after a pause.
                self.troubles.report("spool", "records held in the spool; retrying", exc)
                self._publish_status()
                report = DrainReport()
                await pause(stop, 1.0)
            else:
                self.troubles.clear("spool")
            # Sleep only when the spool had nothing new: after a batch that found work, rows
            # have piled up meanwhile, and a pause would make every next batch later and
            # bigger (docs/scaling.md: p99 120 ms instead of 40-60 at 16,000 rows/s).
            if report.read == 0:
                await pause(stop, self.settings.poll_interval_s)
        self._publish_status(force=True, state="stopped")
        await self.close()
        log.info("writer stopped", extra=logs.fields(checkpoint=self.position))

    def _publish_status(self, *, force: bool = False, state: str = "running") -> None:
        now = self._monotonic()
        if not force and now - self._last_status_at < self.settings.status_interval_s:
            return
        self._last_status_at = now
        buffer = self._buffer.stats()
        limits = self.settings.buffer_limits
        beat = self.store.heartbeat(
            state,
            interval_s=self.settings.status_interval_s,
            troubles=self.troubles.current,
            details={
                "checkpoint": {"seq": self.position.seq, "offset": self.position.offset},
                # Where and how large: bridge-status reads the running writer's own settings,
                # whatever the environment of the shell it is run from.
                "buffer_path": str(self.settings.paths.buffer_path),
                "buffer_bytes": buffer.pending_bytes,
                "buffer_max_bytes": limits.max_bytes,
                "buffer_warn_bytes": limits.warn_bytes,
                "buffer_full": self._buffer_full,
                "totals": {
                    item.name: getattr(self.totals, item.name) for item in fields(DrainReport)
                },
            },
        )
        heartbeat_files.publish_reporting(self.troubles, self.settings.paths.run_dir, beat)
