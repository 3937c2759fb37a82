"""The 5-s schedule: ticks at fixed multiples of the interval since the Unix epoch.

Epoch-aligned ticks are the same instants whatever the process's start time, so a snapshot's id
(derived from account and tick) is the same if a restarted collector produces the tick again,
and the ticks a stopped collector did not produce can be named exactly. A slow poll never shifts
the schedule: the next tick is the next multiple after the clock, and the ticks passed over are
reported as missed, never silently skipped or invented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Schedule:
    interval_s: float

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError("the interval must be positive")

    def at(self, index: int) -> datetime:
        """The instant of tick number `index`."""
        return _EPOCH + timedelta(seconds=index * self.interval_s)

    def index_at_or_before(self, now: datetime) -> int:
        return math.floor(round((now - _EPOCH).total_seconds() / self.interval_s, 9))

    def next_index(self, now: datetime) -> int:
        """The first tick strictly after `now`."""
        return self.index_at_or_before(now) + 1

    def missed(self, last_done: int | None, current: int) -> range:
        """Ticks strictly between the last one produced and the current one."""
        if last_done is None or current <= last_done + 1:
            return range(0)
        return range(last_done + 1, current)
