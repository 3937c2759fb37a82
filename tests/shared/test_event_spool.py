"""A process's own event spool: events appended whole and in order, each naming its process;
those the spool refuses held in memory and appended at the next try."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.event_spool import EventSpool

NOW = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def _spooled(directory: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for segment in sorted(directory.glob("segment-*"))
        for line in segment.read_bytes().splitlines()
    ]


def test_events_a_locked_spool_refuses_are_held_then_appended_in_order(tmp_path: Path) -> None:
    """While another copy holds the spool's lock, an event waits in memory; once the lock is
    free the next event appends both, oldest first, each an api_log naming its process."""
    holder = EventSpool(tmp_path, producer="writer", mode="SOCKET", clock=lambda: NOW)
    holder.emit("info", "first", "the holder's")
    events = EventSpool(tmp_path, producer="writer", mode="PORTAL", clock=lambda: NOW)
    events.emit("warning", "breaker_opened", "writer: database breaker opened", {"for_s": 2.0})
    assert events.held == 1
    holder.close()
    events.emit("info", "breaker_closed", "writer: database breaker closed")
    assert events.held == 0
    events.close()
    spooled = _spooled(tmp_path)
    assert [(e["kind"], e["event"], e["mode"]) for e in spooled] == [
        ("api_log", "first", "SOCKET"),
        ("api_log", "breaker_opened", "PORTAL"),
        ("api_log", "breaker_closed", "PORTAL"),
    ]
    assert spooled[1]["details"] == {"process": "writer", "for_s": 2.0}
    assert spooled[1]["ts"] == NOW.isoformat(timespec="microseconds")
