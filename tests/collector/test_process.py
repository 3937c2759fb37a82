"""The collector as supervisord runs it: a real subprocess against the simulator."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from testkit.waiting import wait_until_async
from tests.collector.spooled import spooled
from tests.fixtures.processes import Processes


@pytest.mark.slow
async def test_ticks_on_the_schedule_publishes_a_heartbeat_and_stops_cleanly(
    collector_environ: dict[str, str], processes: Processes
) -> None:
    """Every tick lands on a whole multiple of the interval, one snapshot per account; the
    heartbeat names each account; SIGTERM stops it with exit 0 and a stop event."""
    environ = {**collector_environ, "BRIDGE_POLL_INTERVAL_S": "1"}
    var_dir = Path(environ["BRIDGE_VAR_DIR"])
    process = processes.start("collector", environ)

    def ticks() -> list[str]:
        return sorted({r["ts"] for r in spooled(var_dir) if r["kind"] == "snapshot"})

    await wait_until_async(lambda: len(ticks()) >= 3, what="three ticks", timeout_s=30)
    heartbeat = json.loads((var_dir / "run/collector.json").read_text())
    process.send_signal(signal.SIGTERM)
    output = await _communicate(process)
    assert process.returncode == 0, output
    stamps = [datetime.fromisoformat(tick) for tick in ticks()]
    assert all(stamp.microsecond == 0 for stamp in stamps)
    seconds = [stamp.timestamp() for stamp in stamps]
    assert all(later - earlier == 1 for earlier, later in itertools.pairwise(seconds))
    per_tick = {tick: 0 for tick in ticks()}
    for record in spooled(var_dir):
        if record["kind"] == "snapshot":
            per_tick[record["ts"]] += 1
    assert set(per_tick.values()) == {2}
    assert set(heartbeat["accounts"]) == {"DU1234567", "DU7654321"}
    assert heartbeat["gateway"]["connected"] is True
    names = [r["event"] for r in spooled(var_dir) if r["kind"] == "api_log"]
    assert names[0] == "collector_started"
    assert names[-1] == "collector_stopped"


async def _communicate(process: subprocess.Popen[bytes]) -> str:
    """Wait for the process to exit while the simulator keeps serving in this event loop."""
    await wait_until_async(lambda: process.poll() is not None, what="the collector to exit")
    return process.communicate(timeout=10)[0].decode()
