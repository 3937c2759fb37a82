"""Whether the limits wait for the snapshots in the writer's buffer.

While the writer's database fails, its snapshots go to the buffer, and the replayer stores them
later than newer ones. Read meanwhile, the limits would see a later snapshot before earlier
ones; so while the buffer holds lines they wait (at most `LIMITS_WAIT_MAX`), and step through
the buffered snapshots in order once they are stored. Past the wait they go on without them,
said once in the log. `now` is an argument: the machine is tested with plain times.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Final

from shared import logs

log = logging.getLogger("alerter")

# How long the limits wait for the writer's buffer to be stored (the replayer drains it every
# BRIDGE_REPLAY_INTERVAL_S, 60 s by default); past it they go on without those snapshots.
LIMITS_WAIT_MAX: Final = timedelta(minutes=5)


class BufferWait:
    """Waiting (since when), given up, or not waiting; moved by each step's buffer size."""

    def __init__(self) -> None:
        self._since: datetime | None = None
        self._given_up = False

    @property
    def since(self) -> datetime | None:
        """Since when the limits wait for the buffered snapshots; None: they don't."""
        return self._since

    def waits(self, now: datetime, buffered_bytes: int) -> bool:
        """Whether the limits wait this step, the buffer holding `buffered_bytes`."""
        if buffered_bytes == 0:
            if self._since is not None:
                log.info(
                    "the buffered snapshots are stored: limits watched again",
                    extra=logs.fields(waited_s=(now - self._since).total_seconds()),
                )
            self._since = None
            self._given_up = False
            return False
        if self._since is None:
            self._since = now
            log.info(
                "snapshots wait in the writer's buffer: the limits wait until they are stored",
                extra=logs.fields(buffered_bytes=buffered_bytes),
            )
        if now - self._since < LIMITS_WAIT_MAX:
            return True
        if not self._given_up:
            self._given_up = True
            log.warning(
                "the writer's buffer has not drained: limits watched without its snapshots",
                extra=logs.fields(
                    buffered_bytes=buffered_bytes, waited_s=(now - self._since).total_seconds()
                ),
            )
        return False
