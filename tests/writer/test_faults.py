"""The writer under the faults nobody stages: poison bytes, full disks, vanished segments,
corrupt checkpoints, a second writer. Each one is reported and never stops the lines behind it.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import psycopg
import pytest

from shared import heartbeat_files
from shared.errors import DeadLettersUnavailable
from shared.spool import SpoolAppender, list_segments
from testkit.postgres import PostgresServer
from testkit.waiting import wait_until, wait_until_async
from tests import builders
from tests.fixtures.pipeline import append, stored_ids
from tests.fixtures.processes import Processes
from tests.fixtures.supervisor import free_port
from writer.errors import BufferFull
from writer.settings import WriterSettings
from writer.writer import Writer


def _writer(environ: dict[str, str], **overrides: str) -> Writer:
    return Writer(WriterSettings.from_environ({**environ, **overrides}))


def _unreachable(environ: dict[str, str]) -> dict[str, str]:
    """The same pipeline with PostgreSQL out of reach (nothing listens on the port)."""
    return {
        **environ,
        "DATABASE_URL": f"postgresql://bridge@127.0.0.1:{free_port()}/bridge",
        "BRIDGE_DB_CONNECT_TIMEOUT_S": "1",
        "BRIDGE_WRITER_STARTUP_GRACE_S": "0",
    }


def _dead_letters(environ: dict[str, str]) -> list[dict[str, str]]:
    path = Path(environ["BRIDGE_VAR_DIR"]) / "deadletter.jsonl"
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def _ids(lines: list[bytes]) -> list[str]:
    return [json.loads(line)["id"] for line in lines]


async def test_lines_that_crashed_the_parser_are_dead_lettered_and_the_next_stored(
    spool: SpoolAppender, pipeline_environ: dict[str, str], database_url: str
) -> None:
    """UTF-8-encoded surrogates (ED A0 80) and a line nested 100,000 deep (1,000 already
    overflowed Python 3.11's own decoder): one dead letter each, and every good line around
    them stored."""
    good = builders.snapshots(3)
    surrogate = good[0].replace(b'"DU0000"', b'"DU\xed\xa0\x80"')
    nested = b'{"v":1,"kind":"snapshot","underlyings":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    append(spool, [good[0], surrogate, good[1], nested, good[2]])
    writer = _writer(pipeline_environ)
    try:
        report = await writer.drain_once()
    finally:
        await writer.close()
    assert (report.stored, report.dead_lettered) == (3, 2)
    assert sorted(stored_ids(database_url)) == sorted(_ids(good))
    reasons = [letter["reason"] for letter in _dead_letters(pipeline_environ)]
    assert reasons[0].startswith("not JSON: not UTF-8")
    assert reasons[1].startswith("not JSON: depth limit exceeded")


async def test_buffer_cap_leaves_records_in_the_spool_until_the_database_returns(
    spool: SpoolAppender,
    pipeline_environ: dict[str, str],
    database_url: str,
    postgres_server: PostgresServer,
) -> None:
    """PostgreSQL down and the buffer at BRIDGE_BUFFER_MAX_BYTES: the batch is refused, the
    checkpoint does not move (the records wait in the spool, on disk), the buffer stays under
    its cap; once the database is back they are stored directly, none lost, none twice."""
    clock = [0.0]
    environ = {**pipeline_environ, "BRIDGE_BUFFER_MAX_BYTES": "4096"}
    writer = Writer(WriterSettings.from_environ(environ), monotonic=lambda: clock[0])
    lines = builders.snapshots(18)
    assert sum(map(len, lines[:8])) < 4096 < sum(map(len, lines[:14]))
    try:
        await writer.store.ensure_schema()
        postgres_server.stop()
        append(spool, lines[:8])
        assert (await writer.drain_once()).buffered == 8
        append(spool, lines[8:14])
        before = writer.position
        with pytest.raises(BufferFull, match="BRIDGE_BUFFER_MAX_BYTES"):
            await writer.drain_once()
        assert writer.position == before
        buffer_path = Path(environ["BRIDGE_BUFFER_PATH"])
        assert buffer_path.read_bytes() == b"".join(lines[:8])

        postgres_server.start()
        clock[0] += 10.0
        append(spool, lines[14:])
        report = await writer.run_until_caught_up()
    finally:
        await writer.close()
    assert (report.stored, report.buffered) == (10, 0)
    assert sorted(stored_ids(database_url)) == sorted(_ids(lines[8:]))
    assert buffer_path.read_bytes() == b"".join(lines[:8])  # for the replayer


async def test_dead_letters_that_cannot_be_written_hold_the_line_in_the_spool(
    spool: SpoolAppender, pipeline_environ: dict[str, str], database_url: str
) -> None:
    """A bad line that cannot be dead-lettered (the file cannot be written) is not skipped:
    the checkpoint stays before it, and once the file can be written it is dead-lettered."""
    dead_letter_path = Path(pipeline_environ["BRIDGE_VAR_DIR"]) / "deadletter.jsonl"
    dead_letter_path.mkdir(parents=True)  # appending to it fails like a full disk would
    lines = builders.snapshots(2)
    append(spool, [lines[0], b"not json\n", lines[1]])
    writer = _writer(pipeline_environ)
    try:
        with pytest.raises(DeadLettersUnavailable):
            await writer.drain_once()
        assert writer.position.offset == 0
        dead_letter_path.rmdir()
        report = await writer.drain_once()
    finally:
        await writer.close()
    assert (report.stored, report.duplicates, report.dead_lettered) == (0, 2, 1)
    assert [letter["line"] for letter in _dead_letters(pipeline_environ)] == ["not json"]
    assert sorted(stored_ids(database_url)) == sorted(_ids(lines))


async def test_a_segment_removed_before_it_was_read_is_reported(
    pipeline_environ: dict[str, str], database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Someone deletes a segment the writer has listed but not read: an error line and an
    `spool_segment_missing` event in api_logs, instead of treating it as consumed."""
    spool_dir = Path(pipeline_environ["BRIDGE_VAR_DIR"]) / "spool"
    lines = builders.snapshots(6)
    for now_us, part in ((1, lines[:3]), (2, lines[3:])):
        appender = SpoolAppender(spool_dir, segment_max_bytes=1 << 20)
        appender.open(now_us=now_us)
        append(appender, part)
        appender.close()
    first, second = list_segments(spool_dir)
    writer = _writer(pipeline_environ, BRIDGE_WRITER_BATCH_MAX="2")
    try:
        assert (await writer.drain_once()).stored == 2
        second.path.rename(spool_dir / "moved-away.jsonl")
        await writer.run_until_caught_up()
    finally:
        await writer.close()
    assert sorted(stored_ids(database_url)) == sorted(_ids(lines[:3]))
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT level, details->>'segment' FROM api_logs WHERE event = 'spool_segment_missing'"
        ).fetchall()
    assert rows == [("error", second.name)]
    assert any(
        record.levelname == "ERROR" and "disappeared before it was consumed" in record.message
        for record in caplog.records
    )
    assert first.seq < second.seq


async def test_heartbeat_goes_on_while_records_cannot_be_buffered(
    spool: SpoolAppender, pipeline_environ: dict[str, str]
) -> None:
    """PostgreSQL down and the buffer unwritable: the writer retries and keeps publishing its
    heartbeat, with the trouble in it, so bridge-status does not call it silent."""
    environ = {**_unreachable(pipeline_environ), "BRIDGE_STATUS_INTERVAL_S": "0.1"}
    Path(environ["BRIDGE_BUFFER_PATH"]).mkdir(parents=True)  # cannot be appended to
    append(spool, builders.snapshots(2))
    writer = _writer(environ)
    run_dir = Path(environ["BRIDGE_VAR_DIR"]) / "run"
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    try:
        await wait_until_async(
            lambda: "spool" in _writer_beat(run_dir).troubles,
            what="the writer's heartbeat naming the held records",
            timeout_s=30,
        )
        first = _writer_beat(run_dir).at
        await wait_until_async(
            lambda: _writer_beat(run_dir).at != first,
            what="a later heartbeat",
        )
    finally:
        stop.set()
        await task
    assert writer.position.offset == 0


def test_heartbeat_during_the_start_up_grace(
    pipeline_environ: dict[str, str], processes: Processes
) -> None:
    """While the writer waits for the database to start, its heartbeat says so."""
    environ = {**_unreachable(pipeline_environ), "BRIDGE_WRITER_STARTUP_GRACE_S": "60"}
    processes.start("writer", environ)
    run_dir = Path(environ["BRIDGE_VAR_DIR"]) / "run"
    wait_until(
        lambda: _writer_beat(run_dir).state == "starting",
        what="a heartbeat during the grace",
    )


def test_a_second_writer_is_refused_with_one_line(
    pipeline_environ: dict[str, str], processes: Processes
) -> None:
    """A second writer on the same spool exits non-zero with one line naming the lock it could not
    take."""
    first = processes.start("writer", pipeline_environ)
    processes.read_until(first, b"writer started")
    second = processes.start("writer", pipeline_environ)
    output = second.communicate(timeout=60)[0].decode()
    assert second.returncode != 0
    assert output.splitlines() == [
        f"bridge-writer: another writer is running (it holds "
        f"{Path(pipeline_environ['BRIDGE_VAR_DIR']) / 'spool' / 'writer.lock'})"
    ]
    assert first.poll() is None


@pytest.mark.slow
def test_a_corrupt_checkpoint_is_reported_and_the_spool_stored_from_its_start(
    pipeline_environ: dict[str, str], spool: SpoolAppender, processes: Processes, database_url: str
) -> None:
    """The checkpoint two writers once spliced: reported, the writer starts over from the
    oldest segment, and everything is stored once (inserts are idempotent)."""
    lines = builders.snapshots(20)
    append(spool, lines)
    checkpoint = Path(pipeline_environ["BRIDGE_VAR_DIR"]) / "spool/writer.checkpoint"
    checkpoint.write_bytes(b'{"seq": 1, "offset": 99}456}')
    writer = processes.start("writer", pipeline_environ)
    wait_until(lambda: len(stored_ids(database_url)) == 20, what="every row")
    writer.send_signal(signal.SIGTERM)
    output = writer.communicate(timeout=30)[0].decode()
    assert writer.returncode == 0, output
    assert "spool checkpoint unreadable: starting over from the oldest segment" in output
    assert json.loads(checkpoint.read_bytes())["offset"] == sum(map(len, lines))
    assert sorted(stored_ids(database_url)) == sorted(_ids(lines))


@pytest.mark.slow
def test_a_full_disk_under_the_checkpoint_is_retried_not_fatal(
    pipeline_environ: dict[str, str], spool: SpoolAppender, processes: Processes, database_url: str
) -> None:
    """No file may grow past 20 bytes (a full disk): the writer stores the spool, cannot save
    its checkpoint or heartbeat, says so once, and keeps running; SIGTERM exits 0."""
    lines = builders.snapshots(30)
    append(spool, lines)
    writer = processes.start("tests.run_limited", pipeline_environ, "20", "writer")
    wait_until(lambda: len(stored_ids(database_url)) == 30, what="every row")
    append(spool, builders.snapshots(40)[30:])
    wait_until(lambda: len(stored_ids(database_url)) == 40, what="the rows after")
    assert writer.poll() is None
    writer.send_signal(signal.SIGTERM)
    output = writer.communicate(timeout=30)[0].decode()
    assert writer.returncode == 0, output
    assert output.count("cannot save the spool checkpoint; retrying") == 1
    assert not (Path(pipeline_environ["BRIDGE_VAR_DIR"]) / "spool/writer.checkpoint").exists()


def _writer_beat(run_dir: Path) -> heartbeat_files.Heartbeat:
    """The writer's heartbeat; one saying nothing before its first."""
    beat = heartbeat_files.read(run_dir, "writer")
    return beat or heartbeat_files.Heartbeat("writer", at=None, interval_s=1.0, state="not started")
