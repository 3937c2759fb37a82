"""The 5-s schedule: ticks at fixed multiples of the interval since the Unix epoch.

Epoch-aligned ticks are the same instants whatever the process's start time, so a snapshot's id
(derived from account and tick) is the same if a restarted collector produces the tick again,
and the ticks a stopped collector did not produce can be named exactly. A slow poll never shifts
the schedule: the next tick is the next multiple after the clock, and the ticks passed over are
reported as missed, never silently skipped or invented. A tick is never produced twice, even
when the clock steps back: `next_tick` waits for the first tick after the last one produced.
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


@dataclass(frozen=True)
class NextTick:
    """The tick to produce next, and how far the clock reads behind the last tick produced
    (0 unless it stepped back: a snapshot's id is derived from its tick, so producing that tick
    again would give the real snapshot an id already taken)."""

    index: int
    clock_behind_s: float


def next_tick(
    schedule: Schedule, *, candidate: int, last_produced: int | None, now: datetime
) -> NextTick:
    """`candidate`, unless it is at or before the last tick produced: then the one after it.
    `clock_behind_s` > 0 when `now` reads before the last tick produced (the clock stepped back)."""
    if last_produced is None:
        return NextTick(candidate, 0.0)
    behind_s = max(0.0, (schedule.at(last_produced) - now).total_seconds())
    return NextTick(max(candidate, last_produced + 1), behind_s)
