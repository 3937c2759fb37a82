"""Episodes: when an alert fires and when it resolves, once each, from readings and the clock.

Pure: the previous state, one reading, `now` and `tick` in, the next state and the change (if
any) out. `now` is the wall clock, for what is reported (since when, fired when); `tick` is a
steady count of seconds, for durations (`for_s`, how long a condition held): a wall clock stepped
forward must not fire an alert at once, nor one stepped back delay it.

- A reading is *past* the limit, *clear* of it (back inside by the margin), or neither (between
  the limit and the margin: a value that hovers around the limit), or unknown (no data: nothing
  changes, an alert neither fires nor resolves on a null).
- An alert fires once the reading has been past for `for_s` without interruption; it then stays
  firing through readings that are merely not past, and resolves on the first clear one. A new
  episode needs `for_s` past again. So a hovering value gives one alert, not a stream.
- Episodes are numbered per alert (for the reader; the events' ids are random, see the alerter).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

Change = Literal["fired", "resolved"]


@dataclass(frozen=True)
class Reading:
    """One observation of a rule for one subject. `past` None: unknown, nothing changes.

    A condition without a number (disconnected, breaker open) has `value` None: the episode
    then reports how long the condition has held, in seconds.
    """

    past: bool | None
    clear: bool
    value: float | None = None
    limit: float | None = None


UNKNOWN = Reading(past=None, clear=False)


def threshold(
    value: float | None,
    *,
    below: float | None,
    above: float | None,
    margin_below: float = 0.0,
    margin_above: float = 0.0,
) -> Reading:
    """A number against its limits: past outside them, clear inside them by the margins."""
    if value is None:
        return UNKNOWN
    if above is not None and value > above:
        return Reading(past=True, clear=False, value=value, limit=above)
    if below is not None and value < below:
        return Reading(past=True, clear=False, value=value, limit=below)
    clear = (above is None or value <= above - margin_above) and (
        below is None or value >= below + margin_below
    )
    # The limit nearest to the value is the one it is measured against.
    nearest = (
        above if below is None or (above is not None and value > (below + above) / 2) else below
    )
    return Reading(past=False, clear=clear, value=value, limit=nearest)


def condition(holds: bool | None, *, suppressed: bool = False) -> Reading:
    """A yes/no condition. `suppressed` (inside a reset window): neither past nor clear, so a
    waiting alert does not count the time and a firing one does not resolve."""
    if holds is None:
        return UNKNOWN
    if suppressed and holds:
        return Reading(past=False, clear=False)
    return Reading(past=holds, clear=not holds)


@dataclass(frozen=True)
class Episode:
    """The state of one alert (a rule for one account or process), as kept across restarts."""

    past_since: datetime | None = None  # past without interruption since then
    fired_at: datetime | None = None  # firing since then; None: not firing
    value: float | None = None
    limit: float | None = None
    number: int = 0  # episodes fired so far; the current one while firing
    last_notified: datetime | None = None
    past_tick: float | None = None  # `tick` at past_since: durations are measured from it

    @property
    def firing(self) -> bool:
        return self.fired_at is not None


def step(
    episode: Episode,
    reading: Reading,
    *,
    now: datetime,
    for_s: float,
    tick: float | None = None,
) -> tuple[Episode, Change | None]:
    """The next state of `episode` after `reading` at `now` (`tick`: the steady clock then;
    None: `now` is steady enough, as for snapshots stepped at their own time), and the change."""
    if tick is None:
        tick = now.timestamp()
    if reading.past is None:
        return episode, None
    if episode.firing:
        return _step_firing(episode, reading, now, tick)
    if not reading.past:
        return replace(episode, past_since=None, past_tick=None), None
    since = episode.past_since or now
    since_tick = _since_tick(episode, now, tick)
    value = _value(reading, since_tick, tick)
    limit = reading.limit if reading.limit is not None else for_s
    if tick - since_tick >= for_s:
        fired = Episode(
            since, now, value, limit, episode.number + 1, episode.last_notified, since_tick
        )
        return fired, "fired"
    waiting = replace(episode, past_since=since, value=value, limit=limit, past_tick=since_tick)
    return waiting, None


def _since_tick(episode: Episode, now: datetime, tick: float) -> float:
    """The steady clock at the episode's start: new now, or saved, or (a state saved before the
    steady clock was kept) as far back as the wall clock says, once."""
    if episode.past_since is None:
        return tick
    if episode.past_tick is not None:
        return episode.past_tick
    return tick - (now - episode.past_since).total_seconds()


def _step_firing(
    episode: Episode, reading: Reading, now: datetime, tick: float
) -> tuple[Episode, Change | None]:
    if reading.past:
        since_tick = None if episode.past_since is None else _since_tick(episode, now, tick)
        return replace(episode, value=_value(reading, since_tick, tick)), None
    if reading.clear:
        resolved = replace(episode, past_since=None, past_tick=None, fired_at=None)
        return replace(resolved, value=reading.value), "resolved"
    return episode, None


def _value(reading: Reading, since_tick: float | None, tick: float) -> float | None:
    if reading.value is not None or since_tick is None:
        return reading.value
    return tick - since_tick
