"""The replayer under a full disk, a corrupt offset and a second copy of itself."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import datetime
from pathlib import Path

from replayer.replayer import Replayer
from replayer.settings import ReplayerSettings
from shared import heartbeat_files
from shared.buffer import Buffer
from testkit.waiting import wait_until, wait_until_async
from tests import builders
from tests.fixtures.pipeline import stored_ids
from tests.fixtures.processes import Processes


def _ids(lines: list[bytes]) -> list[str]:
    return [json.loads(line)["id"] for line in lines]


def _buffer(environ: dict[str, str]) -> Buffer:
    return Buffer(Path(environ["BRIDGE_BUFFER_PATH"]))


def test_a_full_disk_under_the_offset_is_retried_and_the_buffer_freed(
    pipeline_environ: dict[str, str], processes: Processes, database_url: str
) -> None:
    """No file may grow past 10 bytes: the offset after each chunk cannot be saved. That error
    used to leave the TaskGroup as an ExceptionGroup nothing caught, and the replayer crashed.
    Now it says so once, stores every chunk, deletes the drained file (freeing its space) and
    exits 0 on SIGTERM."""
    lines = builders.snapshots(50)
    buffer = _buffer(pipeline_environ)
    buffer.append(lines)
    environ = {**pipeline_environ, "BRIDGE_REPLAY_CHUNK_RECORDS": "10"}
    replayer = processes.start("tests.run_limited", environ, "10", "replayer")
    wait_until(lambda: len(stored_ids(database_url)) == 50, what="every row")
    wait_until(lambda: buffer.stats().pending_bytes == 0, what="the drained file deleted")
    assert replayer.poll() is None
    replayer.send_signal(signal.SIGTERM)
    output = replayer.communicate(timeout=30)[0].decode()
    assert replayer.returncode == 0, output
    assert output.count("cannot save the replay offset; retrying") == 1
    assert "ExceptionGroup" not in output
    assert sorted(stored_ids(database_url)) == sorted(_ids(lines))


def test_a_corrupt_offset_is_reported_and_the_file_stored_from_its_start(
    pipeline_environ: dict[str, str], processes: Processes, database_url: str
) -> None:
    """A torn `.offset` beside a claimed file: reported, the file is stored again from its
    start (inserts are idempotent), nothing crash-loops."""
    lines = builders.snapshots(30)
    buffer = _buffer(pipeline_environ)
    buffer.append(lines)
    assert buffer.claim() is not None
    buffer.offset_path.write_bytes(b'{"offset": 12')
    replayer = processes.start("replayer", pipeline_environ)
    wait_until(lambda: len(stored_ids(database_url)) == 30, what="every row")
    wait_until(lambda: not buffer.draining_path.exists(), what="the claim finished")
    replayer.send_signal(signal.SIGTERM)
    output = replayer.communicate(timeout=30)[0].decode()
    assert replayer.returncode == 0, output
    assert "replay offset unreadable: storing the file again" in output
    assert not buffer.offset_path.exists()


def test_a_second_replayer_is_refused_with_one_line(
    pipeline_environ: dict[str, str], processes: Processes
) -> None:
    """A second replayer on the same buffer exits non-zero with one line naming the lock it could
    not take."""
    first = processes.start("replayer", pipeline_environ)
    processes.read_until(first, b"replayer started")
    second = processes.start("replayer", pipeline_environ)
    output = second.communicate(timeout=60)[0].decode()
    assert second.returncode != 0
    lock = _buffer(pipeline_environ).replayer_lock_path
    assert output.splitlines() == [
        f"bridge-replayer: another replayer is running (it holds {lock})"
    ]
    assert first.poll() is None


async def test_heartbeat_is_published_between_replay_periods(
    pipeline_environ: dict[str, str],
) -> None:
    """With a 60-s replay period the heartbeat still refreshes every status interval, so a
    replayer waiting for its period (or stuck in a long drain) is never shown as silent."""
    environ = {
        **pipeline_environ,
        "BRIDGE_REPLAY_INTERVAL_S": "60",
        "BRIDGE_STATUS_INTERVAL_S": "0.1",
    }
    replayer = Replayer(ReplayerSettings.from_environ(environ))
    run_dir = Path(environ["BRIDGE_VAR_DIR"]) / "run"
    stamps: set[datetime | None] = set()

    def beats() -> bool:
        beat = heartbeat_files.read(run_dir, "replayer")
        if beat is not None:
            stamps.add(beat.at)
        return len(stamps) >= 3

    stop = asyncio.Event()
    task = asyncio.create_task(replayer.run(stop))
    try:
        await wait_until_async(beats, what="three heartbeats inside one period", timeout_s=20)
    finally:
        stop.set()
        await task
    beat = heartbeat_files.read(run_dir, "replayer")
    assert beat is not None
    assert (beat.state, beat.interval_s, beat.details["replay_interval_s"]) == ("stopped", 0.1, 60)
    assert os.getpid() == beat.pid
