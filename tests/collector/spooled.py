"""What a collector under test has spooled, read back as the writer reads it: whole lines, oldest
first; snapshots in full whatever their format, events, and one tick's snapshots by account."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collector.collector import Collector
from shared import records
from shared.spool import list_segments


def spool_lines(var_dir: Path) -> list[bytes]:
    """Every line in the spool as written, oldest first: whole lines only, as the writer reads
    them, since a running collector may be in the middle of appending the last one."""
    found: list[bytes] = []
    if not (var_dir / "spool").exists():
        return found
    for segment in list_segments(var_dir / "spool"):
        data = segment.path.read_bytes()
        found += data[: data.rfind(b"\n") + 1].splitlines(keepends=True)
    return found


def spooled(var_dir: Path) -> list[dict[str, Any]]:
    """Every record in the spool, oldest first (`spool_lines`); a snapshot is read in full
    (`records.expanded`), whatever its format."""
    return [_readable(line) for line in spool_lines(var_dir)]


def _readable(line: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(line)
    if body.get("kind") != "snapshot":
        return body
    snapshot = records.decode(line)
    assert isinstance(snapshot, records.Snapshot)
    return records.expanded(snapshot)


def events(var_dir: Path) -> list[dict[str, Any]]:
    return [record for record in spooled(var_dir) if record["kind"] == "api_log"]


def event_names(collector: Collector) -> list[str]:
    """The names of the events `collector` spooled, oldest first."""
    return [event["event"] for event in events(collector.settings.paths.var_dir)]


def snapshots_at(collector: Collector, index: int) -> dict[str, dict[str, Any]]:
    """The snapshots `collector` spooled for tick number `index`, by account."""
    tick = collector.schedule.at(index).isoformat(timespec="microseconds")
    return {
        record["account"]: record
        for record in spooled(collector.settings.paths.var_dir)
        if record["kind"] == "snapshot" and record["ts"] == tick
    }
