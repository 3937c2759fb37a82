"""Hysteresis, duration and episode boundaries, with the clock as an argument."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from alerter.episodes import Change, Episode, Reading, condition, step, threshold

T0 = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "below", "above", "margin", "past", "clear", "limit"),
    [
        (-2100.0, -2000.0, None, 100.0, True, False, -2000.0),  # -2100 < -2000
        (-1950.0, -2000.0, None, 100.0, False, False, -2000.0),  # -1950 < -2000 + 100 = -1900
        (-1900.0, -2000.0, None, 100.0, False, True, -2000.0),  # -1900 >= -1900
        (50_001.0, None, 50_000.0, 2_500.0, True, False, 50_000.0),  # 50001 > 50000
        (48_000.0, None, 50_000.0, 2_500.0, False, False, 50_000.0),  # 48000 > 50000 - 2500
        (47_500.0, None, 50_000.0, 2_500.0, False, True, 50_000.0),  # 47500 <= 47500
        (520.0, -500.0, 500.0, 25.0, True, False, 500.0),  # 520 > 500
        (-520.0, -500.0, 500.0, 25.0, True, False, -500.0),  # -520 < -500
        (480.0, -500.0, 500.0, 25.0, False, False, 500.0),  # 480 > 500 - 25 = 475
        (-480.0, -500.0, 500.0, 25.0, False, False, -500.0),  # -480 < -500 + 25 = -475
        (0.0, -500.0, 500.0, 25.0, False, True, -500.0),  # -475 <= 0 <= 475
        (None, -500.0, 500.0, 25.0, None, False, None),  # unknown is not zero
    ],
)
def test_threshold_hysteresis(  # noqa: PLR0917  # one parameter per column of the table
    value: float | None,
    below: float | None,
    above: float | None,
    margin: float,
    past: bool | None,
    clear: bool,
    limit: float | None,
) -> None:
    """Past a limit when beyond it; clear only once back inside by the margin; in between neither
    (no flapping); an unknown value is not zero."""
    reading = threshold(value, below=below, above=above, margin_below=margin, margin_above=margin)
    assert (reading.past, reading.clear, reading.limit) == (past, clear, limit)


def _run(
    steps: Sequence[tuple[float, float | None]], *, for_s: float, above: float = 100.0
) -> list[tuple[Change | None, int]]:
    """Feed (seconds after T0, value) readings against `above` with a margin of 10."""
    episode, seen = Episode(), list[tuple[Change | None, int]]()
    for offset, value in steps:
        reading = threshold(value, below=None, above=above, margin_above=10.0)
        episode, change = step(episode, reading, now=T0 + timedelta(seconds=offset), for_s=for_s)
        seen.append((change, episode.number))
    return seen


def test_duration_then_hysteresis_then_a_new_episode() -> None:
    """Limit above 100, margin 10, for 30 s."""
    steps: list[tuple[float, float | None]] = [
        (0, 120),  # past since 0
        (20, 130),  # 20 s < 30 s: waits
        (30, 125),  # 30 s >= 30 s: fires, episode 1
        (35, 95),  # 95 > 100 - 10: hovering, still firing
        (40, 105),  # past again: no second alert
        (45, 90),  # 90 <= 90: resolves
        (50, 120),  # past since 50
        (60, 99),  # back under 100: the wait starts over
        (70, 120),  # past since 70
        (99, 120),  # 29 s: waits
        (100, 120),  # 30 s: fires, episode 2
    ]
    assert _run(steps, for_s=30) == [
        (None, 0), (None, 0), ("fired", 1), (None, 1), (None, 1), ("resolved", 1),
        (None, 1), (None, 1), (None, 1), (None, 1), ("fired", 2),
    ]  # fmt: skip


def test_a_value_hovering_around_the_limit_gives_one_alert() -> None:
    """for 0 s: 101, 99, 101, 99 ... fires once and never resolves (99 > 90)."""
    steps: list[tuple[float, float | None]] = [
        (5 * index, 101 if index % 2 == 0 else 99) for index in range(10)
    ]
    changes = [change for change, _ in _run(steps, for_s=0)]
    assert changes == ["fired"] + [None] * 9


def test_unknown_values_change_nothing() -> None:
    """A null neither fires, resolves, nor interrupts the wait: 0 past, 10 null, 30 fires."""
    steps: list[tuple[float, float | None]] = [
        (0, 150),
        (10, None),
        (30, 150),
        (40, None),
        (50, 50),
    ]
    assert _run(steps, for_s=30) == [
        (None, 0), (None, 0), ("fired", 1), (None, 1), ("resolved", 1),
    ]  # fmt: skip


def test_a_restored_firing_episode_is_not_fired_again() -> None:
    """The state saved before a restart says firing: readings past the limit add nothing."""
    restored = Episode(past_since=T0, fired_at=T0, value=150.0, limit=100.0, number=3)
    episode, change = step(
        restored, threshold(160, below=None, above=100), now=T0 + timedelta(hours=1), for_s=0
    )
    assert (change, episode.number, episode.fired_at, episode.value) == (None, 3, T0, 160)


def test_a_condition_reports_how_long_it_held() -> None:
    """Disconnected at 0, for 60 s: fires at 60 with value 60 s and limit 60 s."""
    episode, _ = step(Episode(), condition(True), now=T0, for_s=60)
    episode, change = step(episode, condition(True), now=T0 + timedelta(seconds=60), for_s=60)
    assert (change, episode.value, episode.limit) == ("fired", 60.0, 60.0)


@pytest.mark.parametrize(
    ("holds", "suppressed", "expected"),
    [
        (True, False, Reading(past=True, clear=False)),
        (False, False, Reading(past=False, clear=True)),
        (True, True, Reading(past=False, clear=False)),  # expected trouble: neither
        (False, True, Reading(past=False, clear=True)),  # the feed is back: resolves
        (None, False, Reading(past=None, clear=False)),
    ],
)
def test_condition_readings(holds: bool | None, suppressed: bool, expected: Reading) -> None:
    """A condition that holds is past, one that does not is clear; expected trouble (suppressed) is
    neither, but the end of it still clears; unknown is neither."""
    assert condition(holds, suppressed=suppressed) == expected


def test_for_s_runs_on_the_steady_clock_not_the_wall_clock() -> None:
    """Past since 0, for 30 s: the wall clock stepped an hour forward 1 s later does not fire
    it; one stepped an hour back does not hold it once 30 s have passed on the steady clock."""
    past = threshold(150, below=None, above=100)
    waiting, _ = step(Episode(), past, now=T0, for_s=30, tick=1000.0)
    stepped = T0 + timedelta(hours=1, seconds=1)
    assert step(waiting, past, now=stepped, for_s=30, tick=1001.0)[1] is None
    back = T0 - timedelta(hours=1)
    fired, change = step(waiting, past, now=back, for_s=30, tick=1030.0)
    assert (change, fired.past_since) == ("fired", T0)
