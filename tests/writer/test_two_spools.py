"""The writer tails two spools, the collector's and the alerter's, each with its own checkpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.spool import SpoolAppender, load_checkpoint
from tests import builders
from tests.fixtures.pipeline import append, stored_ids
from writer.settings import WriterSettings
from writer.writer import Writer


@pytest.fixture
def alerter_spool(pipeline_environ: dict[str, str]) -> Iterator[SpoolAppender]:
    appender = SpoolAppender(
        Path(pipeline_environ["BRIDGE_VAR_DIR"]) / "alerter-spool",
        segment_max_bytes=64 * 1024,
        lock_name="alerter.lock",
    )
    appender.open(now_us=time.time_ns() // 1000)
    yield appender
    appender.close()


async def test_both_spools_are_stored_and_each_checkpointed_on_its_own(
    spool: SpoolAppender,
    alerter_spool: SpoolAppender,
    pipeline_environ: dict[str, str],
    database_url: str,
) -> None:
    """Snapshots from the collector's spool and events from the alerter's are stored by one
    step; a restarted writer reads neither again, and a new alerter line alone is read alone."""
    snapshots = builders.snapshots(4)
    events = [builders.api_log("alert_fired"), builders.api_log("alert_resolved")]
    append(spool, snapshots)
    append(alerter_spool, events)
    writer = Writer(WriterSettings.from_environ(pipeline_environ))
    try:
        report = await writer.drain_once()
    finally:
        await writer.close()
    assert (report.read, report.stored) == (4 + 2, 4 + 2)
    assert sorted(stored_ids(database_url, "api_logs")) == sorted(
        json.loads(line)["id"] for line in events
    )
    var = Path(pipeline_environ["BRIDGE_VAR_DIR"])
    collector_end = load_checkpoint(var / "spool")
    alerter_end = load_checkpoint(var / "alerter-spool")
    assert spool.segment is not None
    assert alerter_spool.segment is not None
    assert collector_end.seq == spool.segment.seq
    assert alerter_end.seq == alerter_spool.segment.seq
    assert alerter_end.offset == sum(len(line) for line in events)

    later = builders.api_log("alert_fired")
    append(alerter_spool, [later])
    second = Writer(WriterSettings.from_environ(pipeline_environ))
    try:
        report = await second.drain_once()
    finally:
        await second.close()
    assert (report.read, report.stored) == (1, 1)
    assert load_checkpoint(var / "spool") == collector_end
    assert len(stored_ids(database_url, "api_logs")) == 3
