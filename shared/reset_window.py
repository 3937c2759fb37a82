"""IBKR's daily reset windows, in America/New_York wall-clock time, DST-correct.

A window is written `DAYS HH:MM-HH:MM`, days as `Mon`, `Mon-Fri` or `Sat,Sun`, times in ET; an
end at or before the start means the window runs past midnight into the next day. Windows are
separated by `;`. The default covers both schedules IBKR has published for North America
(23:45-00:45 ET Saturday to Thursday, and 00:15-01:45 ET Sunday to Friday: together 23:45-01:45),
the Friday-night weekend maintenance (23:00-03:00 ET) and, inside the first, the Sunday 01:00 ET
re-login. Accounts served from Europe or Asia add their windows (docs/collector.md lists them).

Comparisons are made in UTC, so a window keeps its wall-clock meaning across both DST changes. A
wall-clock time that does not exist on a spring-forward day is read with the winter offset (the
window ends an hour later that night, never earlier).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

NEW_YORK: Final = ZoneInfo("America/New_York")
DEFAULT_RESET_WINDOWS: Final = "Sat-Thu 23:45-01:45; Fri 23:00-03:00"
NO_WINDOWS: Final = "none"

_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WINDOW = re.compile(r"^\s*([A-Za-z,\-]+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class ResetWindow:
    """Starts at `start` ET on each of `days` (0 = Monday) and lasts until `end` ET."""

    days: frozenset[int]
    start: time
    end: time

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def occurrence(self, day: datetime) -> tuple[datetime, datetime] | None:
        """This window's (start, end) in UTC if it starts on `day`'s ET date."""
        if day.weekday() not in self.days:
            return None
        start = datetime.combine(day.date(), self.start, NEW_YORK)
        end_date = day.date() + timedelta(days=1 if self.crosses_midnight else 0)
        end = datetime.combine(end_date, self.end, NEW_YORK)
        return start.astimezone(UTC), end.astimezone(UTC)

    def __str__(self) -> str:
        days = ",".join(_DAYS[day] for day in sorted(self.days))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} ET"


def _parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        names = [name.capitalize() for name in (first, last or first)]
        if any(name not in _DAYS for name in names):
            raise ValueError(f"{part!r} is not a day or a range of days like Mon-Fri")
        start, stop = (_DAYS.index(name) for name in names)
        span = (stop - start) % 7
        days.update((start + offset) % 7 for offset in range(span + 1))
    return frozenset(days)


def _parse_time(hours: str, minutes: str, text: str) -> time:
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"{text!r} has an impossible time")
    return time(int(hours), int(minutes))


def parse_reset_windows(text: str) -> tuple[ResetWindow, ...]:
    """Parse `DAYS HH:MM-HH:MM; ...`; `none` means no windows at all.

    An empty setting means the default (blank is unset for every setting), so turning the
    windows off takes the explicit word: a gateway that never restarts is a choice to spell out.
    """
    if text.strip().lower() == NO_WINDOWS:
        return ()
    windows = []
    for entry in filter(str.strip, text.split(";")):
        match = _WINDOW.match(entry)
        if match is None:
            raise ValueError(f"{entry.strip()!r} is not like 'Mon-Fri 23:45-01:45'")
        days, start_h, start_m, end_h, end_m = match.groups()
        windows.append(
            ResetWindow(
                _parse_days(days),
                _parse_time(start_h, start_m, entry),
                _parse_time(end_h, end_m, entry),
            )
        )
    return tuple(windows)


def active_window(windows: Sequence[ResetWindow], now: datetime) -> ResetWindow | None:
    """The window `now` (aware) falls in, or None."""
    local = now.astimezone(NEW_YORK)
    for window in windows:
        # A window that crosses midnight may have started on the previous ET date.
        for day in (local, local - timedelta(days=1)):
            occurrence = window.occurrence(day)
            if occurrence is not None and occurrence[0] <= now < occurrence[1]:
                return window
    return None
