"""Episodes: when an alert fires and when it resolves, once each, from readings and the clock.

Pure: the previous state, one reading and `now` in, the next state and the change (if any) out.

- A reading is *past* the limit, *clear* of it (back inside by the margin), or neither (between
  the limit and the margin: a value that hovers around the limit), or unknown (no data: nothing
  changes, an alert neither fires nor resolves on a null).
- An alert fires once the reading has been past for `for_s` without interruption; it then stays
  firing through readings that are merely not past, and resolves on the first clear one. A new
  episode needs `for_s` past again. So a hovering value gives one alert, not a stream.
- Episodes are numbered per alert, so the records of an episode have stable ids: an alerter that
  crashes after recording a change but before saving its state records the same ids again.
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

    @property
    def firing(self) -> bool:
        return self.fired_at is not None


def step(
    episode: Episode, reading: Reading, *, now: datetime, for_s: float
) -> tuple[Episode, Change | None]:
    """The next state of `episode` after `reading` at `now`, and the change it makes."""
    if reading.past is None:
        return episode, None
    if episode.firing:
        return _step_firing(episode, reading, now)
    if not reading.past:
        return replace(episode, past_since=None), None
    since = episode.past_since or now
    value = _value(reading, since, now)
    limit = reading.limit if reading.limit is not None else for_s
    if (now - since).total_seconds() >= for_s:
        fired = Episode(since, now, value, limit, episode.number + 1, episode.last_notified)
        return fired, "fired"
    return replace(episode, past_since=since, value=value, limit=limit), None


def _step_firing(
    episode: Episode, reading: Reading, now: datetime
) -> tuple[Episode, Change | None]:
    if reading.past:
        return replace(episode, value=_value(reading, episode.past_since, now)), None
    if reading.clear:
        return replace(episode, past_since=None, fired_at=None, value=reading.value), "resolved"
    return episode, None


def _value(reading: Reading, since: datetime | None, now: datetime) -> float | None:
    if reading.value is not None or since is None:
        return reading.value
    return (now - since).total_seconds()
