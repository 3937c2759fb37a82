"""BRIDGE_LEGS_INTERVAL_S and BRIDGE_EXPIRY_INTERVAL_S: the legs and the Greeks by expiry go out
at the first tick of each window, and each setting refuses what it cannot mean."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from collector.collector import Collector
from collector.settings import CollectorSettings
from shared.errors import SettingsError
from tests.collector.spooled import spooled


@pytest.fixture
async def minute_legs(collector_environ: dict[str, str]) -> AsyncIterator[Collector]:
    """A SOCKET collector with the default legs and expiry intervals (60 s) and 5-s ticks."""
    collector = Collector(CollectorSettings.from_environ(collector_environ))
    collector.open()
    yield collector
    await collector.close()


def _kinds_at(collector: Collector) -> dict[str, set[str]]:
    """The kinds of line spooled at each tick, by tick."""
    found: dict[str, set[str]] = {}
    for record in spooled(collector.settings.paths.var_dir):
        if record["kind"] in ("snapshot", "expiry", "legs"):
            found.setdefault(record["ts"], set()).add(record["kind"])
    return found


async def test_legs_and_expiry_at_the_first_tick_of_each_minute(minute_legs: Collector) -> None:
    """Ticks at :50, :55, :00, :05: the legs and the Greeks by expiry at :50 (the first tick
    seen) and :00 (a new minute) only; a snapshot at every one."""
    collector = minute_legs
    assert collector.settings.legs_interval_s == 60.0
    assert collector.settings.expiry_interval_s == 60.0
    assert await collector.connect_once()
    start = next(i for i in range(12_000, 12_012) if collector.schedule.at(i).second == 50)
    for index in range(start, start + 4):
        await collector.tick_once(index)
    kinds = _kinds_at(collector)
    stamps = [
        collector.schedule.at(i).isoformat(timespec="microseconds") for i in range(start, start + 4)
    ]
    assert [("legs" in kinds[ts]) for ts in stamps] == [True, False, True, False]
    assert [("expiry" in kinds[ts]) for ts in stamps] == [True, False, True, False]
    assert all("snapshot" in kinds[ts] for ts in stamps)


async def test_expiry_at_every_tick_when_asked(collector_environ: dict[str, str]) -> None:
    """BRIDGE_EXPIRY_INTERVAL_S=5 (the poll interval): the Greeks by expiry at every tick, the
    legs still once a minute."""
    collector = Collector(
        CollectorSettings.from_environ({**collector_environ, "BRIDGE_EXPIRY_INTERVAL_S": "5"})
    )
    collector.open()
    try:
        assert await collector.connect_once()
        start = next(i for i in range(12_000, 12_012) if collector.schedule.at(i).second == 50)
        for index in range(start, start + 4):
            await collector.tick_once(index)
        kinds = _kinds_at(collector)
    finally:
        await collector.close()
    assert [sorted(kinds[ts]) for ts in sorted(kinds)] == [
        ["expiry", "legs", "snapshot"],
        ["expiry", "snapshot"],
        ["expiry", "legs", "snapshot"],
        ["expiry", "snapshot"],
    ]


@pytest.mark.parametrize("name", ["BRIDGE_LEGS_INTERVAL_S", "BRIDGE_EXPIRY_INTERVAL_S"])
@pytest.mark.parametrize("value", ["0", "61", "0.5", "a minute"])
def test_an_interval_it_cannot_mean_is_refused(
    collector_environ: dict[str, str], name: str, value: str
) -> None:
    """Below a second, past a minute (the issue asks at least once a minute) or not a number:
    the collector does not start, naming the variable."""
    with pytest.raises(SettingsError, match=name):
        CollectorSettings.from_environ({**collector_environ, name: value})
