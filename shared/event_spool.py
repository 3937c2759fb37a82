"""A process's own events on their way to PostgreSQL: appended to its own spool directory,
which the writer tails like the collector's and the alerter's.

The writer and the replayer record their database breaker's changes this way
(`breaker_opened`, `breaker_closed`), so an operator finds them in `api_logs` after any
restart, as the collector's connection events are. The spool is opened (its lock taken, a
segment started) at the first event; events the disk refuses stay in memory, bounded, and are
tried again at the next one and at the close.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from shared import logs, records
from shared.errors import AlreadyRunning
from shared.records import Level, Mode
from shared.spool import SpoolAppender

log = logging.getLogger("events")

_SEGMENT_MAX_BYTES: Final = 1 << 20
_HELD_MAX: Final = 1000  # a breaker changes at most a few times a minute


class EventSpool:
    def __init__(
        self,
        directory: Path,
        *,
        producer: str,
        mode: Mode,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.producer = producer
        self.mode = mode
        self._clock = clock
        self._spool = SpoolAppender(
            directory, segment_max_bytes=_SEGMENT_MAX_BYTES, lock_name=f"{producer}.lock"
        )
        self._opened = False
        self._held: collections.deque[bytes] = collections.deque(maxlen=_HELD_MAX)

    @property
    def held(self) -> int:
        """Events recorded but not in the spool yet (the disk refused them)."""
        return len(self._held)

    def emit(
        self, level: Level, event: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        """Record one api_log event now, with the process's name in its details."""
        record = records.new_api_log(
            ts=self._clock(),
            mode=self.mode,
            level=level,
            event=event,
            message=message,
            details={"process": self.producer, **(details or {})},
        )
        self._held.append(records.encode(record))
        self.flush()

    def flush(self) -> None:
        """Append what is held; kept for the next try when the spool cannot take it."""
        if not self._held:
            return
        try:
            if not self._opened:
                self._spool.open(now_us=time.time_ns() // 1000)
                self._opened = True
            self._spool.append(list(self._held), now_us=time.time_ns() // 1000)
        except (OSError, AlreadyRunning) as exc:
            if not self._opened:
                self._spool.close()  # its lock too, for the next try
            log.error(
                "cannot append to the event spool: events held in memory",
                extra=logs.fields(spool=self._spool.directory, reason=exc, held=len(self._held)),
            )
            return
        self._held.clear()

    def close(self) -> None:
        self.flush()
        if self._opened:
            self._spool.close()
            self._opened = False
