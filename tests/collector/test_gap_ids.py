"""A gap re-emitted after a crash is stored once: its id is derived from the ticks it reports."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from collector.collector import STATE_NAME, Collector
from collector.settings import CollectorSettings
from shared import records
from shared.spool import list_segments
from testkit.postgres import store_lines
from tests.collector.spooled import events


async def _ticks(environ: dict[str, str], *indices: int) -> None:
    collector = Collector(CollectorSettings.from_environ(environ))
    collector.open()
    try:
        assert await collector.connect_once()
        for index in indices:
            assert (await collector.tick_once(index)).snapshots > 0
    finally:
        await collector.close()


def test_the_id_of_an_event_is_derived_from_what_it_reports() -> None:
    """The same facts give the same id; another fact or another event gives another."""
    first = records.event_id("gap", "2026-03-02T14:30:05+00:00", "2026-03-02T14:30:20+00:00")
    again = records.event_id("gap", "2026-03-02T14:30:05+00:00", "2026-03-02T14:30:20+00:00")
    longer = records.event_id("gap", "2026-03-02T14:30:05+00:00", "2026-03-02T14:30:25+00:00")
    assert first == again
    assert len({first, longer, records.event_id("other", "2026-03-02T14:30:05+00:00")}) == 3


async def test_a_gap_re_emitted_after_a_crash_is_stored_once(
    collector_environ: dict[str, str], database_url: str
) -> None:
    """Tick 100, then 105: a gap of 101-104 is spooled. The collector crashes before its last
    tick is saved (the state still says 100); restarted, it reports the same gap again. Both
    lines reach PostgreSQL; one row is stored."""
    var_dir = Path(collector_environ["BRIDGE_VAR_DIR"])
    state = var_dir / "run" / STATE_NAME
    await _ticks(collector_environ, 100)
    saved = state.read_bytes()
    await _ticks(collector_environ, 105)
    state.write_bytes(saved)  # the crash: the state file never saw tick 105
    await _ticks(collector_environ, 105)

    gaps = [event for event in events(var_dir) if event["event"] == "gap"]
    assert len(gaps) == 2
    assert gaps[0]["id"] == gaps[1]["id"]
    assert gaps[0]["details"]["ticks"] == 4
    for segment in list_segments(var_dir / "spool"):
        await store_lines(database_url, segment.path.read_bytes().splitlines(keepends=True))
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT details FROM api_logs WHERE event = 'gap'").fetchall()
    assert [row[0]["ticks"] for row in rows] == [4]
    assert json.loads(state.read_text())["last_tick"] == 105
