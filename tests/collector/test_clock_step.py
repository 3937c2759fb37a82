"""A clock that steps back never makes the collector reuse a tick (and so a snapshot id)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.collector import STATE_NAME, Collector
from collector.schedule import NextTick, Schedule, next_tick
from collector.settings import CollectorSettings
from testkit.waiting import wait_until_async
from tests.collector.spooled import events, spooled

FIVE_S = Schedule(5.0)
LAST = 1000  # tick 1000 is at 5,000 s after the epoch


def _at(seconds_after_last_tick: float) -> datetime:
    return FIVE_S.at(LAST) + timedelta(seconds=seconds_after_last_tick)


@pytest.mark.parametrize(
    ("last_produced", "candidate", "now", "expected"),
    [
        # First start: nothing produced yet, the candidate stands.
        pytest.param(None, 1001, _at(1.0), NextTick(1001, 0.0), id="first-start"),
        # On time: 0.2 s after tick 1000, the next is 1001 and the clock is not behind.
        pytest.param(LAST, 1001, _at(0.2), NextTick(1001, 0.0), id="on-time"),
        # Exactly on the last tick: not behind (0 s), the next one is 1001.
        pytest.param(LAST, 1001, _at(0.0), NextTick(1001, 0.0), id="on-the-last-tick"),
        # A slow tick passed over 1001 and 1002: the current one, 1003, stands.
        pytest.param(LAST, 1003, _at(15.1), NextTick(1003, 0.0), id="slow-tick-skips"),
        # Restart after a 50-s step back: next_index gives 991 (at -45 s); 1000 - (-50) = 50 s.
        pytest.param(LAST, 991, _at(-50.0), NextTick(1001, 50.0), id="restart-after-step"),
        # A 0.5-s step right after tick 1000 (candidate 1000 again): wait for 1001; 0.5 s behind.
        pytest.param(LAST, 1000, _at(-0.5), NextTick(1001, 0.5), id="small-step"),
    ],
)
def test_next_tick_is_never_at_or_before_the_last_produced(
    last_produced: int | None, candidate: int, now: datetime, expected: NextTick
) -> None:
    """The tick chosen is after the last one produced; how far the clock is behind is said."""
    assert next_tick(FIVE_S, candidate=candidate, last_produced=last_produced, now=now) == expected


@pytest.mark.timeout(60)
async def test_a_collector_restarted_behind_its_last_tick_waits_and_reports_the_step(
    collector_environ: dict[str, str],
) -> None:
    """The last run produced the current tick; the restarted collector's clock reads 3 s
    earlier. Its first snapshot is for the tick after that one, and the step is an event."""
    environ = {**collector_environ, "BRIDGE_POLL_INTERVAL_S": "1"}
    settings = CollectorSettings.from_environ(environ)
    schedule = Schedule(1.0)
    started = datetime.now(UTC)
    last = schedule.index_at_or_before(started)
    state = settings.paths.run_dir / STATE_NAME
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"last_tick": last}))

    collector = Collector(settings, clock=lambda: datetime.now(UTC) - timedelta(seconds=3))
    var_dir = Path(environ["BRIDGE_VAR_DIR"])
    stop = asyncio.Event()
    running = asyncio.create_task(collector.run(stop))
    try:
        await wait_until_async(
            lambda: any(record["kind"] == "snapshot" for record in spooled(var_dir)),
            what="the first snapshot",
            timeout_s=30,
        )
    finally:
        stop.set()
        await running
    ended = datetime.now(UTC)
    ticks = sorted({record["ts"] for record in spooled(var_dir) if record["kind"] == "snapshot"})
    assert datetime.fromisoformat(ticks[0]) > schedule.at(last)
    (step,) = [event for event in events(var_dir) if event["event"] == "clock_stepped_back"]
    assert step["level"] == "warning"
    assert datetime.fromisoformat(step["details"]["next_tick"]) == schedule.at(last + 1)
    # It looked at its clock (3 s behind) some time between `started` and `ended`.
    behind = [
        (schedule.at(last) - (at - timedelta(seconds=3))).total_seconds() for at in (ended, started)
    ]
    assert behind[0] <= step["details"]["behind_s"] <= behind[1] <= 3.0
