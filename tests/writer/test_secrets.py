"""A planted credential never reaches a log line, a heartbeat file, the buffer or a row."""

from __future__ import annotations

import signal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from shared.buffer import Buffer
from shared.spool import SpoolAppender
from testkit.waiting import wait_until
from tests import builders
from tests.fixtures.pipeline import append
from tests.fixtures.processes import Processes

SENTINEL = "SENTINEL-pw-4b1d9e"


def test_database_password_never_leaks(
    pipeline_environ: dict[str, str],
    spool: SpoolAppender,
    processes: Processes,
    database_url: str,
) -> None:
    """With a wrong sentinel password the writer and replayer log the outage and buffer, and
    the sentinel appears in none of their output, heartbeats or files."""
    parts = urlsplit(database_url)
    wrong = parts._replace(netloc=f"postgres:{SENTINEL}@{parts.hostname}:{parts.port}")
    environ = {
        **pipeline_environ,
        "DATABASE_URL": urlunsplit(wrong),
        "BRIDGE_LOG_LEVEL": "DEBUG",
        "BRIDGE_REPLAY_INTERVAL_S": "0.2",
        "BRIDGE_WRITER_STARTUP_GRACE_S": "0",  # buffer at once: the database never answers
    }
    append(spool, builders.snapshots(3))
    writer = processes.start("writer", environ)
    replayer = processes.start("replayer", environ)
    var_dir = Path(pipeline_environ["BRIDGE_VAR_DIR"])
    buffer = Buffer(Path(pipeline_environ["BRIDGE_BUFFER_PATH"]))
    # The replayer may claim (rename) the buffer at any moment: count both files.
    wait_until(lambda: buffer.stats().pending_bytes > 0, what="buffered lines")
    for process in (writer, replayer):
        process.send_signal(signal.SIGTERM)
    output = b"".join(process.communicate(timeout=30)[0] for process in (writer, replayer))
    assert b"database unavailable" in output
    assert b"postgres:***@" in output
    files = [path for path in var_dir.rglob("*") if path.is_file()]
    assert {buffer.path, buffer.draining_path} & set(files)
    leaks = [str(path) for path in files if SENTINEL.encode() in path.read_bytes()]
    assert SENTINEL.encode() not in output
    assert leaks == []
