"""The replayer against a real PostgreSQL, with real files and real concurrent processes."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from database.sink import RecordSink
from replayer.replayer import Replayer
from replayer.settings import ReplayerSettings
from shared.buffer import Buffer
from testkit.postgres import PostgresServer
from testkit.waiting import wait_until_async
from tests import builders
from tests.fixtures.pipeline import stored_ids
from tests.fixtures.processes import Processes


def _settings(environ: dict[str, str], **overrides: str) -> ReplayerSettings:
    return ReplayerSettings.from_environ({**environ, **overrides})


@pytest.fixture
async def replayer(pipeline_environ: dict[str, str]) -> AsyncIterator[Replayer]:
    replayer = Replayer(_settings(pipeline_environ, BRIDGE_REPLAY_CHUNK_RECORDS="10"))
    yield replayer
    await replayer.close()


def _ids(lines: list[bytes]) -> list[str]:
    return [json.loads(line)["id"] for line in lines]


async def test_drains_the_buffer_and_removes_it(replayer: Replayer, database_url: str) -> None:
    """Everything buffered is stored in chunks, then the buffer files are gone."""
    lines = builders.snapshots(45)
    replayer.buffer.append(lines)
    report = await replayer.drain_once()
    assert (report.stored, report.files_finished, report.interrupted) == (45, 1, False)
    assert sorted(stored_ids(database_url)) == sorted(_ids(lines))
    assert replayer.buffer.stats().pending_bytes == 0
    assert not replayer.buffer.offset_path.exists()


async def test_a_killed_drain_is_finished_by_the_next_start(
    replayer: Replayer, pipeline_environ: dict[str, str], database_url: str
) -> None:
    """A claimed file with a checkpointed offset is resumed there, not re-read from the start."""
    lines = builders.snapshots(30)
    replayer.buffer.append(lines)
    claimed = replayer.buffer.claim()
    assert claimed is not None
    earlier_run = RecordSink(lambda: psycopg.AsyncConnection.connect(database_url, autocommit=True))
    await earlier_run.store(lines[:10])
    await earlier_run.close()
    replayer.buffer.save_drained_offset(sum(len(line) for line in lines[:10]))
    replayer.buffer.append(builders.snapshots(33)[30:])  # the writer keeps buffering meanwhile

    restarted = Replayer(_settings(pipeline_environ, BRIDGE_REPLAY_CHUNK_RECORDS="10"))
    try:
        report = await restarted.drain_once()
    finally:
        await restarted.close()
    assert (report.stored, report.duplicates, report.files_finished) == (23, 0, 2)
    assert sorted(stored_ids(database_url)) == sorted(_ids(builders.snapshots(33)))


async def test_database_down_postpones_the_replay_and_keeps_the_claim(
    pipeline_environ: dict[str, str], database_url: str, postgres_server: PostgresServer
) -> None:
    """With PostgreSQL stopped nothing is lost; after it returns the same file is finished."""
    clock = [0.0]
    replayer = Replayer(_settings(pipeline_environ), monotonic=lambda: clock[0])
    lines = builders.snapshots(20)
    replayer.buffer.append(lines)
    postgres_server.stop()
    report = await replayer.drain_once()
    assert (report.stored, report.interrupted) == (0, True)
    assert replayer.buffer.draining_path.read_bytes() == b"".join(lines)
    postgres_server.start()
    clock[0] += 1.0  # past the breaker's reset timeout
    report = await replayer.drain_once()
    await replayer.close()
    assert (report.stored, report.interrupted) == (20, False)
    assert sorted(stored_ids(database_url)) == sorted(_ids(lines))


async def test_a_line_the_server_rejects_is_dead_lettered(
    replayer: Replayer, pipeline_environ: dict[str, str], database_url: str
) -> None:
    """A buffered line PostgreSQL refuses is quarantined with the server's reason."""
    lines = builders.snapshots(5)
    bad = lines[2].replace(b'"mode":"SOCKET"', b'"mode":"TELEX"')
    replayer.buffer.append([*lines[:2], bad, *lines[3:]])
    report = await replayer.drain_once()
    assert (report.stored, report.dead_lettered) == (4, 1)
    letters = (Path(pipeline_environ["BRIDGE_VAR_DIR"]) / "deadletter.jsonl").read_text()
    (letter,) = [json.loads(line) for line in letters.splitlines()]
    assert letter["reason"].startswith("rejected by PostgreSQL: 23514")
    assert letter["line"].encode() + b"\n" == bad


@pytest.mark.slow
async def test_writer_and_replayer_on_the_buffer_at_once_lose_and_double_nothing(
    pipeline_environ: dict[str, str], database_url: str, processes: Processes
) -> None:
    """Two processes append batches while the real replayer claims and drains every 100 ms."""
    buffer_path = pipeline_environ["BRIDGE_BUFFER_PATH"]
    Path(buffer_path).parent.mkdir(parents=True)
    rounds, batch = 3000, 10
    replayer = processes.start("replayer", {**pipeline_environ, "BRIDGE_REPLAY_INTERVAL_S": "0.1"})
    appender = processes.start(
        "tests.replayer.buffer_appender", {}, buffer_path, str(rounds), str(batch)
    )
    assert appender.wait(timeout=90) == 0
    replayer.send_signal(signal.SIGTERM)
    output = replayer.communicate(timeout=30)[0].decode()
    assert replayer.returncode == 0, output
    claims = sum(int(count) for count in re.findall(r" files=(\d+)", output))
    assert claims >= 3, f"the two processes did not overlap: {output}"
    final = Replayer(_settings(pipeline_environ))
    try:
        await final.drain_once()  # whatever arrived after the replayer's last period
    finally:
        await final.close()
    expected = _ids(builders.snapshots(rounds * batch, accounts=7))
    stored = stored_ids(database_url)
    assert len(stored) == len(expected)
    assert sorted(stored) == sorted(expected)
    assert Buffer(Path(buffer_path)).stats().pending_bytes == 0


@pytest.mark.slow
async def test_sigkill_mid_drain_then_restart_stores_everything_once(
    pipeline_environ: dict[str, str], database_url: str, processes: Processes
) -> None:
    """A replayer killed while draining a large buffer finishes it on its next start."""
    lines = builders.snapshots(60_000, accounts=60)
    buffer = Buffer(Path(pipeline_environ["BRIDGE_BUFFER_PATH"]))
    buffer.append(lines)
    environ = {**pipeline_environ, "BRIDGE_REPLAY_CHUNK_RECORDS": "2000"}
    first = processes.start("replayer", environ)
    # The first chunk is committed and checkpointed: kill it mid-drain.
    await wait_until_async(buffer.offset_path.exists, what="the first replay checkpoint")
    first.kill()
    first.wait(timeout=30)
    assert buffer.draining_path.exists()
    killed_at = buffer.drained_offset()
    assert 0 < killed_at < sum(len(line) for line in lines)

    restarted = Replayer(_settings(environ))
    try:
        report = await restarted.drain_once()
    finally:
        await restarted.close()
    assert report.files_finished == 1
    stored = stored_ids(database_url)
    assert len(stored) == len(lines)
    assert len(set(stored)) == len(lines)
