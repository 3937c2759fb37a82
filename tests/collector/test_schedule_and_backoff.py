"""The epoch-aligned tick schedule and the reconnect backoff, with plain numbers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collector.backoff import LookupRetries, ReconnectBackoff
from collector.schedule import Schedule

FIVE_S = Schedule(5.0)


@pytest.mark.parametrize(
    ("now", "expected_index_time"),
    [
        ("2026-03-02T15:00:00.000", "2026-03-02T15:00:05"),  # on a tick: the next one
        ("2026-03-02T15:00:00.001", "2026-03-02T15:00:05"),
        ("2026-03-02T15:00:04.999", "2026-03-02T15:00:05"),
        ("2026-03-02T15:00:05.000", "2026-03-02T15:00:10"),
        ("2026-12-31T23:59:59.500", "2027-01-01T00:00:00"),  # across the year
    ],
)
def test_next_tick_is_the_next_multiple_of_five_seconds(now: str, expected_index_time: str) -> None:
    """Ticks are fixed instants: xx:xx:00, :05, :10..., whenever the process started."""
    at = datetime.fromisoformat(now).replace(tzinfo=UTC)
    tick = FIVE_S.at(FIVE_S.next_index(at))
    assert tick == datetime.fromisoformat(expected_index_time).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("last_done", "current", "missed"),
    [
        (None, 100, []),  # first start: nothing to report
        (99, 100, []),  # on time
        (97, 100, [98, 99]),  # a slow poll passed over two ticks
        (100, 100, []),  # the same tick again (a restart within 5 s)
        (40, 100, list(range(41, 100))),  # five minutes down
    ],
)
def test_missed_ticks(last_done: int | None, current: int, missed: list[int]) -> None:
    """Ticks passed over are named exactly, never invented and never silently skipped."""
    assert list(FIVE_S.missed(last_done, current)) == missed


def test_interval_must_be_positive() -> None:
    """A zero interval is refused."""
    with pytest.raises(ValueError, match="positive"):
        Schedule(0)


def test_backoff_is_5_10_20_then_every_20_and_resets() -> None:
    """Attempts wait 5, 10, 20 s, then 20 s each; a connection that holds restarts it."""
    backoff = ReconnectBackoff()
    assert [backoff.next_delay_s() for _ in range(6)] == [5, 10, 20, 20, 20, 20]
    backoff.reset()
    assert backoff.next_delay_s() == 5


def test_backoff_refuses_an_empty_schedule() -> None:
    """A schedule without a positive delay would spin."""
    with pytest.raises(ValueError, match="positive"):
        ReconnectBackoff(())


def test_an_unknown_lookup_is_asked_on_the_next_read_then_ever_less_often() -> None:
    """Waits of 1, 2, 4 ... reads after each unknown answer, at most the longest; a known
    answer forgets the key."""
    retries = LookupRetries(longest_wait_reads=4)
    asked = []
    for read in range(1, 20):
        if retries.due(7, read):
            asked.append(read)
            retries.unknown(7, read)
    assert asked == [1, 2, 4, 8, 12, 16]
    retries.known(7)
    assert retries.due(7, 17)
