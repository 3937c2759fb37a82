"""The writer's drain step against a real PostgreSQL and a real spool directory."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from database.circuit_breaker import BreakerState
from shared.buffer import Buffer
from shared.spool import SpoolAppender, list_segments
from testkit.postgres import PostgresServer
from tests import builders
from tests.fixtures.pipeline import append, backends, stored_ids
from writer.settings import WriterSettings
from writer.writer import Writer


@pytest.fixture
async def writer(pipeline_environ: dict[str, str]) -> AsyncIterator[Writer]:
    writer = Writer(WriterSettings.from_environ(pipeline_environ))
    yield writer
    await writer.close()


def _breaker(writer: Writer) -> BreakerState:
    return writer.store.view.breaker


def _ids(lines: list[bytes]) -> list[str]:
    return [json.loads(line)["id"] for line in lines]


def _dead_letters(environ: dict[str, str]) -> list[dict[str, str]]:
    path = Path(environ["BRIDGE_VAR_DIR"]) / "deadletter.jsonl"
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


async def test_new_lines_are_stored_and_checkpointed(
    writer: Writer, spool: SpoolAppender, database_url: str
) -> None:
    """Lines appended by the collector are stored by one drain step, and not read again."""
    lines = builders.snapshots(7)
    append(spool, lines)
    report = await writer.drain_once()
    assert (report.read, report.stored, report.buffered) == (7, 7, 0)
    assert sorted(stored_ids(database_url)) == sorted(_ids(lines))
    assert (await writer.drain_once()).read == 0


async def test_a_large_batch_is_stored_over_two_connections(
    writer: Writer, spool: SpoolAppender, database_url: str
) -> None:
    """A batch of many accounts is spread over the writer's two connections (both backends
    seen by the server) and every line is stored once; a small one uses the first only."""
    lines = builders.snapshots(240, accounts=12)
    append(spool, lines[:5])
    assert (await writer.drain_once()).stored == 5
    assert backends(database_url, "bridge-writer") == 1
    append(spool, lines[5:])
    report = await writer.drain_once()
    assert (report.read, report.stored, report.buffered) == (235, 235, 0)
    assert backends(database_url, "bridge-writer") == 2
    assert sorted(stored_ids(database_url)) == sorted(_ids(lines))


async def test_restarted_writer_resumes_after_its_checkpoint(
    writer: Writer, spool: SpoolAppender, pipeline_environ: dict[str, str], database_url: str
) -> None:
    """A new writer process continues where the last one checkpointed, reading nothing twice."""
    append(spool, builders.snapshots(3))
    await writer.drain_once()
    append(spool, builders.snapshots(5)[3:])
    second = Writer(WriterSettings.from_environ(pipeline_environ))
    try:
        report = await second.drain_once()
    finally:
        await second.close()
    assert (report.read, report.stored) == (2, 2)
    assert len(stored_ids(database_url)) == 5


async def test_poison_line_is_dead_lettered_and_the_next_lines_stored(
    writer: Writer, spool: SpoolAppender, pipeline_environ: dict[str, str], database_url: str
) -> None:
    """A line that is not a valid record goes to the dead-letter file with its reason."""
    good = builders.snapshots(4)
    poison = good[0].replace(json.loads(good[0])["id"].encode(), b"not-a-uuid")
    append(spool, [good[0], poison, *good[1:]])
    report = await writer.drain_once()
    assert (report.stored, report.dead_lettered) == (4, 1)
    letters = _dead_letters(pipeline_environ)
    assert [letter["line"] for letter in letters] == [poison.decode().rstrip("\n")]
    assert letters[0]["reason"] == "id is missing or not a UUID"
    assert sorted(stored_ids(database_url)) == sorted(_ids(good))


async def test_torn_tail_of_a_crashed_collector_is_reported_and_the_rest_stored(
    writer: Writer, pipeline_environ: dict[str, str], database_url: str
) -> None:
    """A collector killed mid-append leaves a fragment; its restart seals it, and the writer
    reports the fragment as torn while storing every complete record on both sides of it."""
    spool_dir = Path(pipeline_environ["BRIDGE_VAR_DIR"]) / "spool"
    lines = builders.snapshots(6)
    crashed = SpoolAppender(spool_dir, segment_max_bytes=1 << 20)
    crashed.open(now_us=1)
    append(crashed, lines[:3])
    assert crashed.segment is not None
    fd = os.open(crashed.segment.path, os.O_WRONLY | os.O_APPEND)
    os.write(fd, lines[3][:40])  # the kill -9 lands mid-write
    os.close(fd)
    crashed.close()
    assert (await writer.drain_once()).read == 3  # the fragment may still be completed: wait

    restarted = SpoolAppender(spool_dir, segment_max_bytes=1 << 20)
    restarted.open(now_us=2)
    append(restarted, lines[3:])
    restarted.close()
    report = await writer.run_until_caught_up()
    assert (report.read, report.dead_lettered) == (3, 1)
    letter = _dead_letters(pipeline_environ)[0]
    assert letter["reason"] == "torn line"
    assert letter["line"] == lines[3][:40].decode()
    assert sorted(stored_ids(database_url)) == sorted(_ids(lines))


async def test_consumed_segments_are_removed(
    writer: Writer, pipeline_environ: dict[str, str]
) -> None:
    """Disk use stays bounded: a sealed segment is deleted once every line of it is stored."""
    spool_dir = Path(pipeline_environ["BRIDGE_VAR_DIR"]) / "spool"
    small = SpoolAppender(spool_dir, segment_max_bytes=2000)
    small.open(now_us=1)
    for line in builders.snapshots(30):
        append(small, [line])
    assert len(list_segments(spool_dir)) > 5
    await writer.run_until_caught_up()
    await writer.drain_once()
    assert [segment.path for segment in list_segments(spool_dir)] == [small.segment.path]  # type: ignore[union-attr]
    small.close()


async def test_database_outage_buffers_and_recovery_resumes_live_writes(
    spool: SpoolAppender,
    pipeline_environ: dict[str, str],
    database_url: str,
    postgres_server: PostgresServer,
) -> None:
    """While PostgreSQL is stopped, batches go to the fsynced buffer and the breaker opens;
    once it is back, the breaker closes and new lines are stored directly again."""
    clock = [0.0]
    writer = Writer(WriterSettings.from_environ(pipeline_environ), monotonic=lambda: clock[0])
    lines = builders.snapshots(12)
    append(spool, lines[:2])
    await writer.drain_once()
    postgres_server.stop()
    for index in range(2, 8):
        append(spool, [lines[index]])
        report = await writer.drain_once()
        assert report.buffered == 1
    assert _breaker(writer) is BreakerState.OPEN
    buffered = Path(pipeline_environ["BRIDGE_BUFFER_PATH"]).read_bytes().splitlines(keepends=True)
    assert buffered == lines[2:8]

    postgres_server.start()
    append(spool, lines[8:10])
    assert (await writer.drain_once()).buffered == 2  # still open: the timeout has not passed
    clock[0] += 0.2
    append(spool, lines[10:])
    assert (await writer.drain_once()).stored == 2
    assert _breaker(writer) is BreakerState.CLOSED
    await writer.close()
    assert sorted(stored_ids(database_url)) == sorted(_ids(lines[:2] + lines[10:]))
    assert Buffer(Path(pipeline_environ["BRIDGE_BUFFER_PATH"])).stats().pending_bytes > 0


async def test_conflicts_past_their_retries_buffer_the_batch_without_crashing(
    writer: Writer, spool: SpoolAppender, pipeline_environ: dict[str, str], database_url: str
) -> None:
    """A serialization failure on every try is not an outage and not a crash: the batch is
    buffered (the replayer retries it later), the checkpoint moves and the breaker stays closed."""
    await writer.store.ensure_schema()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION staged_failure() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'staged' USING ERRCODE = '40001'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER staged_failure BEFORE INSERT ON portfolio_greeks"
            " FOR EACH STATEMENT EXECUTE FUNCTION staged_failure()"
        )
    lines = builders.snapshots(3)
    append(spool, lines)
    report = await writer.drain_once()
    assert (report.read, report.stored, report.buffered) == (3, 0, 3)
    assert _breaker(writer) is BreakerState.CLOSED
    buffered = Path(pipeline_environ["BRIDGE_BUFFER_PATH"]).read_bytes()
    assert buffered == b"".join(lines)
    assert (await writer.drain_once()).read == 0
