"""A full disk under the spool: reported clearly, nothing corrupted, nothing lost on recovery."""

from __future__ import annotations

import json
import resource
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.spool import list_segments
from testkit.waiting import wait_until_async
from tests.collector.spooled import spooled
from tests.fixtures.processes import Processes

pytestmark = pytest.mark.slow


def _spool_state(var_dir: Path) -> dict[str, Any]:
    """The `spool` part of the collector's heartbeat (empty until the first one)."""
    try:
        heartbeat = json.loads((var_dir / "run/collector.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return dict(heartbeat.get("spool") or {})


async def test_spool_out_of_space_holds_records_and_recovers(
    collector_environ: dict[str, str], processes: Processes
) -> None:
    """With the spool's file size capped (as a full disk refuses writes), the collector says so
    in its heartbeat and keeps ticking; when space returns every held tick is appended once,
    every line of every segment parses, and the ticks are contiguous."""
    environ = {**collector_environ, "BRIDGE_POLL_INTERVAL_S": "1"}
    var_dir = Path(environ["BRIDGE_VAR_DIR"])
    process = processes.start("collector", environ)

    def ticks() -> list[str]:
        return sorted({r["ts"] for r in spooled(var_dir) if r["kind"] == "snapshot"})

    await wait_until_async(lambda: len(ticks()) >= 2, what="two ticks", timeout_s=30)
    segment = list_segments(var_dir / "spool")[-1]
    cap = segment.path.stat().st_size + 10  # the next snapshot no longer fits
    resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (cap, resource.RLIM_INFINITY))
    await wait_until_async(
        lambda: _spool_state(var_dir).get("pending_in_memory", 0) >= 4,
        what="records held in memory",
        timeout_s=30,
    )
    assert segment.path.stat().st_size <= cap
    assert _spool_state(var_dir)["error"]
    resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    await wait_until_async(
        lambda: _spool_state(var_dir).get("pending_in_memory") == 0,
        what="the held records flushed",
        timeout_s=30,
    )
    process.terminate()
    await wait_until_async(lambda: process.poll() is not None, what="exit")
    output = process.communicate(timeout=10)[0].decode()
    assert process.returncode == 0, output
    assert "cannot append to the spool: records held in memory" in output
    assert "spool writable again" in output
    for path in (var_dir / "spool").glob("segment-*.jsonl"):
        for line in path.read_bytes().splitlines():
            json.loads(line)  # no torn or glued line anywhere
    stamps = [datetime.fromisoformat(tick).timestamp() for tick in ticks()]
    assert stamps == [stamps[0] + offset for offset in range(len(stamps))]
    snapshot_ids = [r["id"] for r in spooled(var_dir) if r["kind"] == "snapshot"]
    assert len(snapshot_ids) == len(set(snapshot_ids)) == 2 * len(stamps)


async def test_records_past_the_memory_bound_are_reported_as_a_gap(
    collector_environ: dict[str, str], processes: Processes
) -> None:
    """With the spool refusing writes for longer than the memory bound covers, the oldest held
    records are dropped; when space returns one `gap` event names how many and which ticks, so
    every tick of every account is either in the spool or inside a reported gap."""
    environ = {
        **collector_environ,
        "BRIDGE_POLL_INTERVAL_S": "1",
        "BRIDGE_COLLECTOR_HELD_MAX_RECORDS": "3",
    }
    var_dir = Path(environ["BRIDGE_VAR_DIR"])
    process = processes.start("collector", environ)

    def snapshots() -> list[dict[str, Any]]:
        return [r for r in spooled(var_dir) if r["kind"] == "snapshot"]

    await wait_until_async(lambda: len(snapshots()) >= 4, what="two ticks", timeout_s=30)
    accounts = {r["account"] for r in snapshots()}
    segment = list_segments(var_dir / "spool")[-1]
    cap = segment.path.stat().st_size + 10
    resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (cap, resource.RLIM_INFINITY))
    await wait_until_async(
        lambda: _spool_state(var_dir).get("dropped", 0) >= 6,
        what="records dropped past the bound",
        timeout_s=60,
    )
    resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    await wait_until_async(
        lambda: any(r.get("event") == "gap" for r in spooled(var_dir)),
        what="the gap event",
        timeout_s=30,
    )
    await wait_until_async(lambda: len(snapshots()) >= 10, what="ticks after", timeout_s=30)
    process.terminate()
    assert process.wait(timeout=30) == 0

    (gap,) = [r for r in spooled(var_dir) if r.get("event") == "gap"]
    assert gap["level"] == "error"
    details = gap["details"]
    assert details["reason"] == "spool_unwritable"
    dropped = ("dropped_snapshots", "dropped_events", "dropped_figures")
    assert sum(details[name] for name in dropped) >= 6
    assert _spool_state(var_dir)["dropped"] >= 6
    stored = {(r["account"], datetime.fromisoformat(r["ts"])) for r in snapshots()}
    ticks = sorted({ts for _, ts in stored})
    first, last = ticks[0], ticks[-1]
    low, high = (datetime.fromisoformat(details[key]) for key in ("from", "to"))
    missing = []
    for step in range(int((last - first).total_seconds()) + 1):
        tick = first + timedelta(seconds=step)
        for account in accounts:
            if (account, tick) not in stored and not low <= tick <= high:
                missing.append((account, tick))
    assert missing == []
    assert len(stored) == len(snapshots())  # and nothing twice
