"""DatabaseStore: the one way the writer and the replayer store lines, through the circuit breaker.

It owns the idempotent sinks (one per connection, each over its own `Session`), the one breaker
their sessions share, the schema bootstrap and the last error, so both processes follow the same
rules: an outage (`DatabaseUnavailable`) is counted against the breaker by the session that met
it, with its reason, and nothing is stored (`NotStored`); otherwise the result says what was
stored, which records were rejected (for the caller's dead letters) and which lines lost a race
past their retries (`unstored`, for the caller to keep), and the breaker is closed: the server
answered. A `SchemaError` is raised, loudly. `view` is the read-only state the heartbeats
publish; with `events`, the breaker's opening and closing are recorded as `breaker_opened` /
`breaker_closed` events in the process's own spool (`shared/event_spool.py`), stored like any
other event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from database.circuit_breaker import BreakerState, DBCircuitBreaker
from database.errors import DatabaseUnavailable
from database.session import Connection
from database.settings import DatabaseSettings
from database.sink import RecordSink, StoreResult
from shared import logs
from shared.event_spool import EventSpool
from shared.heartbeat_files import Heartbeat

log = logging.getLogger("database")


@dataclass(frozen=True)
class StoreView:
    """What a heartbeat shows: the breaker and the error behind its state (None once healed)."""

    breaker: BreakerState
    last_error: str | None
    connected: bool


@dataclass(frozen=True)
class NotStored:
    """The database is unavailable (or the breaker is open): nothing was stored, keep it all."""

    reason: str


class DatabaseStore:
    def __init__(
        self,
        name: str,
        settings: DatabaseSettings,
        *,
        application_name: str,
        connections: int = 1,
        monotonic: Callable[[], float] = time.monotonic,
        connect: Callable[[], Awaitable[Connection]] | None = None,
        events: EventSpool | None = None,
    ) -> None:
        opener = connect or (lambda: settings.connect(application_name))
        self.name = name
        self._events = events
        # One breaker behind every connection: an outage on one holds them all back. The
        # sessions count on it; the store only listens to its transitions.
        self._breaker = DBCircuitBreaker(
            name=name,
            fail_max=settings.breaker_fail_max,
            reset_timeout_s=settings.breaker_reset_s,
            on_change=self._breaker_changed,
        )
        self._sinks = [
            RecordSink(
                opener,
                reply_timeout_s=settings.reply_timeout_s,
                breaker=self._breaker,
                monotonic=monotonic,
            )
            for _ in range(connections)
        ]
        # Why the last batch stored left lines behind (a race lost past its retries): the
        # server answered, so this is no outage and not the breaker's.
        self._race: str | None = None

    def heartbeat(
        self,
        state: str,
        *,
        interval_s: float,
        troubles: Mapping[str, str],
        details: Mapping[str, Any],
    ) -> Heartbeat:
        """The heartbeat of the process storing through this store, its breaker and last error
        as they are now; `details` are the process's own."""
        view = self.view
        return Heartbeat(
            process=self.name,
            at=datetime.now(UTC),
            interval_s=interval_s,
            state=state,
            breaker=str(view.breaker),
            last_db_error=view.last_error,
            troubles=troubles,
            details=details,
        )

    @property
    def view(self) -> StoreView:
        return StoreView(
            self._breaker.state, self._breaker.last_failure or self._race, self._sinks[0].connected
        )

    @property
    def connections(self) -> int:
        return len(self._sinks)

    def allows(self) -> bool:
        """May the database be tried now? False while the breaker is open."""
        return self._sinks[0].allows()

    async def ensure_schema(self) -> None:
        """Connect and create or migrate the schema as soon as the database answers.

        A failed attempt counts against the breaker like any outage, so a database that is
        down is tried once per breaker period, not at every poll.
        """
        if self._sinks[0].connected or not self.allows():
            return
        self._race = None
        with contextlib.suppress(DatabaseUnavailable):  # counted by the session: tried again
            await self._sinks[0].connect()

    async def store(
        self, lines: Sequence[bytes], *, connection: int = 0
    ) -> StoreResult | NotStored:
        """Store `lines` over connection number `connection`, or say why nothing was stored."""
        sink = self._sinks[connection]
        if not sink.allows():
            return NotStored(f"breaker open: {self.view.last_error or 'connection failures'}")
        self._race = None
        try:
            result = await sink.store(lines)
        except DatabaseUnavailable as exc:
            reason = self._breaker.last_failure or exc.reason
            log.warning(
                "database unavailable: batch not stored",
                extra=logs.fields(process=self.name, lines=len(lines), reason=reason),
            )
            return NotStored(reason)
        if result.unstored:
            self._race = result.unstored[0][1]
            log.warning(
                "lines lost a race past their retries: not stored now",
                extra=logs.fields(process=self.name, lines=len(result.unstored), reason=self._race),
            )
        return result

    async def store_spread(self, groups: Sequence[Sequence[bytes]]) -> StoreResult | NotStored:
        """Store each group over its own connection, all at once (at most `connections`).

        PostgreSQL parses and stores the lines: two backends use two cores while this process
        waits. The caller chooses groups that never share a key, so the transactions never
        wait for each other. A group that could not be stored comes back in `unstored`, to be
        kept; NotStored when none was.
        """
        if len(groups) > len(self._sinks):
            raise ValueError(f"{len(groups)} groups for {len(self._sinks)} connections")
        async with asyncio.TaskGroup() as tasks:
            started = [
                tasks.create_task(self.store(group, connection=number))
                for number, group in enumerate(groups)
            ]
        merged = StoreResult()
        reasons = []
        for group, task in zip(groups, started, strict=True):
            result = task.result()
            if isinstance(result, NotStored):
                reasons.append(result.reason)
                merged.unstored.extend((line, result.reason) for line in group)
                continue
            merged.stored += result.stored
            merged.duplicates += result.duplicates
            merged.rejected += result.rejected
            merged.unstored += result.unstored
            merged.splits += result.splits
        if len(reasons) == len(groups):
            return NotStored(reasons[0])
        return merged

    async def close(self) -> None:
        for sink in self._sinks:
            await sink.close()
        if self._events is not None:
            self._events.close()

    def _breaker_changed(self, old: BreakerState, new: BreakerState) -> None:
        if new is BreakerState.OPEN and old is BreakerState.CLOSED:
            log.warning(
                "database breaker open: not trying the database for a while",
                extra=logs.fields(
                    process=self.name,
                    transition=f"{old}->{new}",
                    for_s=self._breaker.reset_timeout_s,
                    reason=self._breaker.last_failure,
                ),
            )
            if self._events is not None:
                self._events.emit(
                    "warning",
                    "breaker_opened",
                    f"{self.name}: database breaker opened: {self._breaker.last_failure}",
                    {"reason": self._breaker.last_failure, "for_s": self._breaker.reset_timeout_s},
                )
        elif new is BreakerState.CLOSED:
            log.info(
                "database back: storing directly",
                extra=logs.fields(process=self.name, transition=f"{old}->{new}"),
            )
            if self._events is not None:
                self._events.emit(
                    "info", "breaker_closed", f"{self.name}: database breaker closed: back"
                )
        else:
            # A failed trial reopens the breaker every reset period: not news to an operator.
            log.debug(
                "database breaker",
                extra=logs.fields(process=self.name, transition=f"{old}->{new}"),
            )
