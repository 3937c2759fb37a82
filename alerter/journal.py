"""What the alerter keeps across restarts: its state file and its spool of alert events.

An alert's firing or resolution is recorded as an `alert_fired` / `alert_resolved` event with a
random id, first in the state (`unspooled`, with the change it reports), then appended to the
alerter's own spool, which the writer stores in `api_logs` like every other event. It stays in
the state until the spool has it: an alerter killed between the two, or whose spool refuses the
append, appends it again later under the same id, and PostgreSQL keeps it once; a state file
lost or a rule re-added never gives a new event the id of an old one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Final

from alerter import state as saved
from alerter.delivery import Notification
from alerter.settings import AlerterSettings
from alerter.transitions import Transition
from shared import logs, records
from shared.spool import SpoolAppender

log = logging.getLogger("alerter")

SPOOL_LOCK: Final = "alerter.lock"
_SEGMENT_MAX_BYTES: Final = 1 << 20


def alerter_spool(settings: AlerterSettings) -> SpoolAppender:
    """The alerter's own spool (not opened)."""
    return SpoolAppender(
        settings.paths.alerter_spool_dir,
        segment_max_bytes=_SEGMENT_MAX_BYTES,
        lock_name=SPOOL_LOCK,
    )


class Journal:
    """The alerter's state (`state`, as last recalled or changed) and its spool."""

    def __init__(self, run_dir: Path, spool: SpoolAppender, *, mode: records.Mode) -> None:
        self._path = run_dir / saved.STATE_NAME
        self._spool = spool
        self._mode = mode
        self.state = saved.AlerterState()
        self._saved_watch: datetime | None = None  # watched_until as last saved

    @property
    def saved_watch(self) -> datetime | None:
        """`watched_until` as the state file has it."""
        return self._saved_watch

    @property
    def held_events(self) -> int:
        """Events recorded but not in the spool yet (it refused them): kept in the state."""
        return len(self.state.unspooled)

    def open(self, rules: Collection[str]) -> saved.AlerterState | None:
        """Take the spool and recall the state saved before a restart, without the alerts of
        rules no longer in `rules`; None when there was none to recall."""
        self._spool.open(now_us=time.time_ns() // 1000)
        recalled = saved.recall(self._path)
        loaded = recalled.state
        if recalled.from_previous:
            log.error(
                "alerter state unreadable: the previous copy used (alerts and notifications as"
                " of the save before the last; delete both files to start afresh)",
                extra=logs.fields(reason=recalled.problem),
            )
        elif recalled.problem is not None:
            log.error(
                "alerter state unreadable: starting afresh",
                extra=logs.fields(reason=recalled.problem),
            )
        if loaded is None:
            return None
        for key, alert in list(loaded.alerts.items()):
            if alert.rule not in rules:
                log.info(
                    "rule no longer in the file (or off): alert forgotten",
                    extra=logs.fields(rule=alert.rule, subject=alert.subject),
                )
                del loaded.alerts[key]
        self.state = loaded
        self._saved_watch = loaded.watched_until
        return loaded

    def record(self, transitions: list[Transition]) -> None:
        """Each change in the log and, as an event, in the state (the spool has it at `flush`)."""
        for transition in transitions:
            alert, change = transition.alert, transition.change
            text = transition.describe()
            level: records.Level = "warning" if change == "fired" else "info"
            log.log(
                logging.WARNING if change == "fired" else logging.INFO,
                text,
                extra=logs.fields(event=f"alert_{change}", rule=alert.rule, subject=alert.subject),
            )
            record = records.new_api_log(
                ts=transition.at,
                mode=self._mode,
                level=level,
                event=f"alert_{change}",
                message=text,
                details=transition.details(),
            )
            self.state.unspooled.append(records.encode(record).decode())

    def flush(self, now: datetime) -> None:
        """Append the events the spool does not have yet; those it refuses stay in the state."""
        unspooled = self.state.unspooled
        if not unspooled:
            return
        try:
            self._spool.append(
                [line.encode() for line in unspooled], now_us=int(now.timestamp() * 1_000_000)
            )
        except OSError as exc:
            log.error(
                "cannot append to the alerter's spool: events held in its state",
                extra=logs.fields(reason=exc.strerror or exc, held=len(unspooled)),
            )
            return
        # The saved state may still list them until its next save: appended again after a
        # crash, they are stored once (same ids).
        unspooled.clear()

    def save(self, outbox: tuple[Notification, ...]) -> None:
        """The state, with the notifications not delivered yet, to disk (fsynced)."""
        self.state.outbox = list(outbox)
        try:
            saved.save(self._path, self.state)
        except OSError as exc:
            log.error("cannot save the alerter's state", extra=logs.fields(reason=exc.strerror))
        else:
            self._saved_watch = self.state.watched_until

    def close(self) -> None:
        self._spool.close()
