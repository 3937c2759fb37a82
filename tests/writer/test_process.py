"""The writer as supervisord runs it: a real subprocess, real signals, a real database."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from shared.spool import SpoolAppender
from testkit.waiting import wait_until
from tests import builders
from tests.fixtures.pipeline import append, stored_ids
from tests.fixtures.processes import Processes


def test_sigterm_finishes_checkpoints_and_exits_zero(
    pipeline_environ: dict[str, str], spool: SpoolAppender, processes: Processes, database_url: str
) -> None:
    """SIGTERM after the writer caught up: exit 0 with the checkpoint at the end of the spool."""
    lines = builders.snapshots(50)
    append(spool, lines)
    writer = processes.start("writer", pipeline_environ)
    processes.read_until(writer, b"writer started")
    wait_until(lambda: len(stored_ids(database_url)) == len(lines), what="50 rows stored")
    writer.send_signal(signal.SIGTERM)
    output = writer.communicate(timeout=10)[0].decode()
    assert writer.returncode == 0, output
    assert "writer stopped" in output
    checkpoint = json.loads(
        (Path(pipeline_environ["BRIDGE_VAR_DIR"]) / "spool/writer.checkpoint").read_text()
    )
    assert spool.segment is not None
    assert checkpoint == {"seq": spool.segment.seq, "offset": spool.segment.path.stat().st_size}


@pytest.mark.slow
def test_sigkill_mid_batch_then_restart_loses_and_doubles_nothing(
    pipeline_environ: dict[str, str], spool: SpoolAppender, processes: Processes, database_url: str
) -> None:
    """kill -9 while batches are being stored; the restarted writer completes the spool once."""
    lines = builders.snapshots(40_000, accounts=60)
    for start in range(0, len(lines), 1000):
        append(spool, lines[start : start + 1000])
    environ = {**pipeline_environ, "BRIDGE_WRITER_BATCH_MAX": "500"}
    first = processes.start("writer", environ)
    wait_until(lambda: len(stored_ids(database_url)) > 0, what="a first committed batch")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert 0 < len(stored_ids(database_url)) < len(lines)

    second = processes.start("writer", environ)
    wait_until(lambda: len(stored_ids(database_url)) == len(lines), what="every row stored")
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0
    stored = stored_ids(database_url)
    assert len(stored) == len(lines)
    assert sorted(stored) == sorted(json.loads(line)["id"] for line in lines)
    assert not (Path(pipeline_environ["BRIDGE_VAR_DIR"]) / "deadletter.jsonl").exists()
