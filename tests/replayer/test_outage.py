"""The storage promise across a real database outage: writer and replayer together."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from database.circuit_breaker import BreakerState
from replayer.replayer import Replayer
from replayer.settings import ReplayerSettings
from shared.spool import SpoolAppender
from testkit.postgres import PostgresServer
from tests import builders
from tests.fixtures.pipeline import append, stored_ids
from writer.settings import WriterSettings
from writer.writer import Writer


async def test_database_stopped_and_restarted_stores_every_record_exactly_once(
    pipeline_environ: dict[str, str],
    spool: SpoolAppender,
    database_url: str,
    postgres_server: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL stops mid-stream: the writer's breaker opens and it buffers; when it is back
    the breaker closes, live records flow again and the replayer drains the backlog; every
    record ends up stored once and nothing is left in the buffer."""
    clock = [0.0]
    writer = Writer(WriterSettings.from_environ(pipeline_environ), monotonic=lambda: clock[0])
    replayer = Replayer(ReplayerSettings.from_environ(pipeline_environ), monotonic=lambda: clock[0])
    caplog.set_level(logging.DEBUG, logger="database")
    lines = builders.snapshots(60, accounts=4)
    try:
        append(spool, lines[:10])
        await writer.run_until_caught_up()

        postgres_server.stop()
        for tick in range(10, 40, 5):  # the collector keeps appending, a tick at a time
            append(spool, lines[tick : tick + 5])
            await writer.drain_once()
        assert (await replayer.drain_once()).interrupted

        postgres_server.start()
        clock[0] += 10.0
        append(spool, lines[40:])
        report = await writer.run_until_caught_up()
        assert report.stored == 20
        assert writer.store.view.breaker is BreakerState.CLOSED
        replayed = await replayer.drain_once()
    finally:
        await writer.close()
        await replayer.close()

    logged = [
        getattr(record, "fields", {}) for record in caplog.records if record.name == "database"
    ]
    transitions = [
        fields["transition"]
        for fields in logged
        if fields.get("process") == "writer" and "transition" in fields
    ]
    assert transitions == ["closed->open", "open->half_open", "half_open->closed"]
    assert (replayed.stored, replayed.duplicates, replayed.interrupted) == (30, 0, False)
    expected = sorted(json.loads(line)["id"] for line in lines)
    assert sorted(stored_ids(database_url)) == expected
    assert replayer.buffer.stats().pending_bytes == 0
    assert not Path(pipeline_environ["BRIDGE_VAR_DIR"], "deadletter.jsonl").exists()
