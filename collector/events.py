"""Lifecycle events and snapshots on their way to the spool, and the collector's own log.

Every event becomes an `api_log` record in the spool (and a line on stderr). Inside a daily
reset window the connection's expected troubles are logged at `info`, so a quiet night shows
no errors; outside one they keep their level, so a real outage is impossible to miss.

Appends that fail (a full disk) keep their records in memory, bounded, and retry on the next
one. Past the bound the oldest are dropped, counted, and reported as a `gap` event (the ticks
they covered, from and to) as soon as the spool takes records again: never silently lost.
"""

from __future__ import annotations

import collections
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from shared import logs, records
from shared.records import Level, Mode
from shared.spool import SpoolAppender

log = logging.getLogger("collector")

_LOG_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


@dataclass
class Dropped:
    """Records dropped from memory since the last report: what the gap event says."""

    snapshots: int = 0
    events: int = 0
    figures: int = 0  # Greeks by expiry, legs and P&L explain lines
    first_tick: str | None = None  # the oldest and newest tick of the dropped snapshots
    last_tick: str | None = None

    def add(self, line: bytes) -> None:
        body = json.loads(line)  # our own line, encoded a moment ago
        if body.get("kind") in ("expiry", "legs", "pnl_explain"):
            self.figures += 1  # beside a snapshot of the same tick (the span is the snapshots')
            return
        if body.get("kind") != "snapshot":
            self.events += 1
            return
        self.snapshots += 1
        self.first_tick = min(self.first_tick or body["ts"], body["ts"])
        self.last_tick = max(self.last_tick or body["ts"], body["ts"])


class SpoolWriter:
    """Appends records to the spool; holds them in memory while the disk refuses them.

    At most `max_held_records` are held (100,000: about an hour of 5-s ticks for 60
    accounts, each a snapshot and its P&L explain, the Greeks by expiry and the legs once a
    minute);
    past it the oldest are dropped and, once the spool takes records again, `on_dropped` is
    called with what was lost so it is reported as a gap.
    """

    def __init__(self, spool: SpoolAppender, *, max_held_records: int = 100_000) -> None:
        self._spool = spool
        self._max_held = max_held_records
        self._pending: collections.deque[bytes] = collections.deque()
        self._unreported = Dropped()
        self.dropped = 0
        self.last_error: str | None = None
        self.on_dropped: Callable[[Dropped], None] = lambda _dropped: None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def write(self, lines: list[bytes]) -> bool:
        """Append `lines` after anything still pending; False (and kept) when the disk refused."""
        self._pending.extend(lines)
        if not self._pending:
            return True
        batch = list(self._pending)
        try:
            self._spool.append(batch, now_us=time.time_ns() // 1000)
        except OSError as exc:
            if self.last_error is None:
                log.error(
                    "cannot append to the spool: records held in memory",
                    extra=logs.fields(reason=exc.strerror or exc, held=len(batch)),
                )
            self.last_error = exc.strerror or str(exc)
            # Trimmed only when refused: a tick of more lines than the bound, written to a
            # disk that takes it, loses none of them.
            while len(self._pending) > self._max_held:
                self._unreported.add(self._pending.popleft())
                self.dropped += 1
            return False
        self._pending.clear()
        if self.last_error is not None:
            log.warning(
                "spool writable again", extra=logs.fields(flushed=len(batch), dropped=self.dropped)
            )
            self.last_error = None
        unreported = self._unreported
        if unreported.snapshots or unreported.events or unreported.figures:
            dropped, self._unreported = self._unreported, Dropped()
            self.on_dropped(dropped)
        return True


class EventLog:
    """Emits api_log records; `in_reset_window(now)` decides when trouble is expected."""

    def __init__(
        self,
        mode: Mode,
        writer: SpoolWriter,
        *,
        clock: Callable[[], datetime],
        in_reset_window: Callable[[datetime], bool],
    ) -> None:
        self.mode = mode
        self._writer = writer
        self._clock = clock
        self._in_reset_window = in_reset_window
        self.last_error: dict[str, Any] | None = None

    def emit(
        self,
        level: Level,
        event: str,
        message: str,
        *,
        code: int | None = None,
        expected_in_reset: bool = False,
        details: Mapping[str, Any] | None = None,
        derived_id: uuid.UUID | None = None,
    ) -> None:
        """Record one event; with `expected_in_reset`, warnings and errors inside a reset
        window are recorded at info (the window's name goes in the details). `derived_id`:
        for an event that reports a fact, its id derived from it (`records.event_id`)."""
        now = self._clock()
        body = dict(details or {})
        if expected_in_reset and level in ("warning", "error") and self._in_reset_window(now):
            level = "info"
            body["in_reset_window"] = True
        record = records.new_api_log(
            ts=now, mode=self.mode, level=level, event=event, message=message, code=code,
            details=body, derived_id=derived_id,
        )  # fmt: skip
        if code is not None and level in ("warning", "error", "critical"):
            self.last_error = {"code": code, "message": message, "at": now.isoformat()}
        log.log(
            _LOG_LEVELS[level],
            message,
            extra=logs.fields(event=event, code=code, **body)
            if code
            else logs.fields(event=event, **body),
        )
        self._writer.write([records.encode(record)])
