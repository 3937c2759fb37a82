"""A real PostgreSQL on demand: `python -m database.embedded` in a subprocess, which can be stopped
and started again to stage an outage. The tests' fixtures and the benchmarks' scratch servers
both run it; `store_lines` stores spool lines in it as the writer does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest

from database.sink import RecordSink, StoreResult

READY_TIMEOUT_S = 60


class PostgresServer:
    """`python -m database.embedded` in a subprocess, started and stopped on demand."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.url_file = var_dir / "database_url"
        self._process: subprocess.Popen[str] | None = None
        self.log: list[str] = []

    @property
    def url(self) -> str:
        return self.url_file.read_text().strip()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self._process is not None:  # it died on its own: reap it and close its pipe
            self.stop()
        environ = {key: value for key, value in os.environ.items() if not key.startswith("BRIDGE_")}
        environ.pop("DATABASE_URL", None)
        environ["BRIDGE_VAR_DIR"] = str(self.var_dir)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "database.embedded"],
            env=environ,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = threading.Event()
        self._follower = threading.Thread(
            target=self._follow, args=(self._process, ready), daemon=True
        )
        self._follower.start()
        if not ready.wait(READY_TIMEOUT_S) or not self.running:
            self.stop()
            pytest.fail("embedded PostgreSQL did not start:\n" + "".join(self.log[-30:]))

    def _follow(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.log.append(line)
            if " INFO postgres ready " in line:
                ready.set()
        ready.set()  # exited: let start() report it instead of waiting out the timeout

    def stop(self) -> None:
        """A real outage: the server shuts down (fast) and stops listening."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        self._process.wait(timeout=60)
        self._follower.join(timeout=10)  # it ends at the pipe's end of file
        assert self._process.stderr is not None
        self._process.stderr.close()
        self._process = None


async def store_lines(database_url: str, lines: Sequence[bytes]) -> StoreResult:
    """`lines` stored through the writer's own sink over one connection, opened and closed here;
    what was stored, duplicated and rejected."""
    sink = RecordSink(lambda: psycopg.AsyncConnection.connect(database_url, autocommit=True))
    try:
        return await sink.store(lines)
    finally:
        await sink.close()
