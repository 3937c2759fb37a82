"""DatabaseStore: the one way the writer and the replayer store lines, through the circuit breaker.

It owns the idempotent sinks (one per connection), the breaker, the schema bootstrap and the last
error, so both processes follow the same rules: an outage (`DatabaseUnavailable`) counts against
the breaker and nothing is stored (`NotStored`); otherwise the result says what was stored, which
records were rejected (for the caller's dead letters) and which lines lost a race past their
retries (`unstored`, for the caller to keep), and the breaker is closed: the server answered.
A `SchemaError` is raised, loudly. `view` is the read-only state the heartbeats publish; with
`events`, the breaker's opening and closing are recorded as `breaker_opened` / `breaker_closed`
events in the process's own spool (`shared/event_spool.py`), stored like any other event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from database.circuit_breaker import BreakerState, DBCircuitBreaker
from database.errors import DatabaseError, DatabaseUnavailable
from database.session import Connection
from database.settings import DatabaseSettings
from database.sink import RecordSink, StoreResult
from shared import logs
from shared.event_spool import EventSpool
from shared.status import Heartbeat

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
        self._sinks = [
            RecordSink(opener, reply_timeout_s=settings.reply_timeout_s) for _ in range(connections)
        ]
        self._monotonic = monotonic
        self._last_error: str | None = None
        self._events = events
        self.name = name
        self._breaker = DBCircuitBreaker(
            name=name,
            fail_max=settings.breaker_fail_max,
            reset_timeout_s=settings.breaker_reset_s,
            on_change=self._breaker_changed,
        )

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
        return StoreView(self._breaker.state, self._last_error, self._sinks[0].connected)

    @property
    def connections(self) -> int:
        return len(self._sinks)

    def allows(self) -> bool:
        """May the database be tried now? False while the breaker is open."""
        return self._breaker.allows(self._monotonic())

    async def ensure_schema(self) -> None:
        """Connect and create or migrate the schema as soon as the database answers.

        A failed attempt counts against the breaker like any outage, so a database that is
        down is tried once per breaker period, not at every poll.
        """
        if self._sinks[0].connected or not self.allows():
            return
        try:
            await self._sinks[0].connect()
        except DatabaseUnavailable as exc:
            self._failed(exc)
        else:
            self._succeeded()

    async def store(
        self, lines: Sequence[bytes], *, connection: int = 0
    ) -> StoreResult | NotStored:
        """Store `lines` over connection number `connection`, or say why nothing was stored."""
        if not self.allows():
            return NotStored(f"breaker open: {self._last_error or 'connection failures'}")
        try:
            result = await self._sinks[connection].store(lines)
        except DatabaseUnavailable as exc:
            self._failed(exc)
            log.warning(
                "database unavailable: batch not stored",
                extra=logs.fields(process=self.name, lines=len(lines), reason=self._last_error),
            )
            return NotStored(self._last_error or str(exc))
        self._succeeded()
        if result.unstored:
            self._last_error = result.unstored[0][1]
            log.warning(
                "lines lost a race past their retries: not stored now",
                extra=logs.fields(
                    process=self.name, lines=len(result.unstored), reason=self._last_error
                ),
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

    def _failed(self, exc: DatabaseUnavailable) -> None:
        self._last_error = _describe(exc)
        self._breaker.failed(self._monotonic())

    def _succeeded(self) -> None:
        self._last_error = None
        self._breaker.succeeded()

    def _breaker_changed(self, old: BreakerState, new: BreakerState) -> None:
        if new is BreakerState.OPEN and old is BreakerState.CLOSED:
            log.warning(
                "database breaker open: not trying the database for a while",
                extra=logs.fields(
                    process=self.name,
                    transition=f"{old}->{new}",
                    for_s=self._breaker.reset_timeout_s,
                    reason=self._last_error,
                ),
            )
            if self._events is not None:
                self._events.emit(
                    "warning",
                    "breaker_opened",
                    f"{self.name}: database breaker opened: {self._last_error or 'outage'}",
                    {"reason": self._last_error, "for_s": self._breaker.reset_timeout_s},
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


def _describe(exc: DatabaseError) -> str:
    return f"{exc.sqlstate}: {exc}" if exc.sqlstate else str(exc)
