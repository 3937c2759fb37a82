"""A full disk under `var/`, with the real supervisord: outage, fill, store, free, recover.

`var/` is a 1 MiB filesystem the test mounts (a tmpfs; a loop-mounted ext4 image if tmpfs is
refused), so spool, buffer, checkpoints, dead letters and heartbeats really meet ENOSPC. The
database's data and URL file and the programs' logs live outside it: the story is about the
bridge's own files, and the logs are what the test reads afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared import heartbeat_files
from testkit.waiting import wait_until
from tests.e2e.bridge_checks import ACCOUNTS, assert_promise_kept, query, rows_per_tick
from tests.fixtures.supervisor import Supervisor

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EVERYTHING = ("postgres", "simulator", "collector", "writer", "replayer")
_SIZE = "1m"


def _mount_small(target: Path, scratch: Path) -> str | None:
    """Mount a small filesystem on `target`; None when done, else why it could not be."""
    tmpfs = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={_SIZE},mode=0755", "tmpfs", str(target)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if tmpfs.returncode == 0:
        return None
    image = scratch / "var.img"
    for command in (
        ["truncate", "-s", _SIZE, str(image)],
        ["mkfs.ext4", "-q", "-F", str(image)],
        ["mount", "-o", "loop", str(image), str(target)],
    ):
        loop = subprocess.run(command, capture_output=True, text=True, check=False)
        if loop.returncode != 0:
            break
    else:
        return None
    return f"tmpfs: {tmpfs.stderr.strip()}; loop image: {loop.stderr.strip()}"


@pytest.fixture
def small_var(supervisor: Supervisor, tmp_path: Path) -> Iterator[Path]:
    """The supervisor's var/ on a 1 MiB filesystem, unmounted after supervisord has stopped."""
    var = supervisor.root / "var"
    shutil.rmtree(var)
    var.mkdir()
    problem = _mount_small(var, tmp_path)
    if problem is not None:
        pytest.skip(f"cannot mount a small filesystem for var/ (needs root): {problem}")
    try:
        (var / "run").mkdir()
        logs = tmp_path / "log"
        logs.mkdir()
        (var / "log").symlink_to(logs)
        supervisor.environ.update(
            BRIDGE_PG_DATA_DIR=str(tmp_path / "pgdata"),
            BRIDGE_DATABASE_URL_FILE=str(tmp_path / "database_url"),
        )
        yield var
    finally:
        supervisor.shutdown()
        subprocess.run(["umount", "-l", str(var)], check=False)


def _fill(path: Path) -> int:
    """Write `path` until the filesystem refuses: the disk is full. Returns the bytes written."""
    written = 0
    with path.open("wb", buffering=0) as ballast:
        try:
            while True:
                written += ballast.write(b"\0" * 65536)
        except OSError:
            pass
        try:
            while True:
                written += ballast.write(b"\0" * 512)
        except OSError:
            return written


def _beat(var: Path, process: str) -> dict[str, Any]:
    beat = heartbeat_files.read(var / "run", process)
    return beat.to_json() if beat is not None else {}


def _bridge_status(supervisor: Supervisor) -> dict[str, Any]:
    result = subprocess.run(
        [str(supervisor.root / ".venv/bin/bridge-status"), "--json"],
        env={"PATH": "/usr/bin:/bin", **supervisor.environ, "BRIDGE_PROFILE": "local",
             "BRIDGE_VAR_DIR": str(supervisor.root / "var")},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def _findings(body: dict[str, Any]) -> list[str]:
    return [f"{f['level']} {f['subject']}: {f['message']}" for f in body["findings"]]


@pytest.mark.timeout(420)
def test_outage_then_full_disk_then_recovery_keeps_every_tick(
    supervisor: Supervisor, small_var: Path, tmp_path: Path
) -> None:
    """PostgreSQL stops; the buffer reaches its cap and records wait in the spool; then the
    disk fills: the collector holds records in memory and, past its bound, drops the oldest,
    reported as a gap. PostgreSQL returns while the disk is still full: the spool is stored
    and its segments deleted, the buffer replayed and deleted, so storing records frees space.
    The ballast goes. No process ever died, bridge-status said what was wrong at each step,
    and every tick of every account is stored once or lies inside a reported gap."""
    var = small_var
    supervisor.environ.update(
        BRIDGE_POLL_INTERVAL_S="1",
        BRIDGE_REPLAY_INTERVAL_S="2",
        BRIDGE_BUFFER_MAX_BYTES="4096",
        BRIDGE_SPOOL_SEGMENT_MAX_BYTES="4096",
        BRIDGE_COLLECTOR_HELD_MAX_RECORDS="4",
        BRIDGE_BREAKER_RESET_S="1",
    )
    supervisor.start()
    supervisor.wait_running(*EVERYTHING)
    url_file = tmp_path / "database_url"
    wait_until(url_file.exists, what="the database URL", timeout_s=60)
    url = url_file.read_text().strip()

    def complete_ticks() -> int:
        return sum(1 for count in rows_per_tick(url).values() if count == len(ACCOUNTS))

    wait_until(lambda: complete_ticks() >= 3, what="3 complete ticks", timeout_s=90)
    pids = {name: supervisor.pid(name) for name in ("collector", "writer", "replayer")}

    # 1. The outage: the buffer fills to its cap, then records wait in the spool.
    assert "postgres: stopped" in supervisor.ctl("stop", "postgres").stdout
    wait_until(
        lambda: "BRIDGE_BUFFER_MAX_BYTES" in str(_beat(var, "writer").get("troubles")),
        what="the writer holding records in the spool at the buffer's cap",
        timeout_s=60,
    )
    # The batch is bounded by the room left, so the buffer fills to within a line of its cap.
    wait_until(
        lambda: any(
            f.startswith("unhealthy buffer: full") for f in _findings(_bridge_status(supervisor))
        ),
        what="bridge-status calling the buffer full",
        timeout_s=30,
    )

    # 2. The disk fills: the collector holds records, then drops the oldest past its bound.
    ballast = var / "ballast"
    _fill(ballast)
    wait_until(
        lambda: (_beat(var, "collector").get("spool") or {}).get("dropped", 0) >= 4,
        what="the collector dropping held records past its bound",
        timeout_s=60,
    )
    findings = _findings(_bridge_status(supervisor))
    assert any("cannot append to the spool" in f for f in findings), "\n".join(findings)

    # 3. PostgreSQL returns with the disk still full: storing records frees their space.
    assert "postgres: started" in supervisor.ctl("start", "postgres").stdout
    buffer = var / "buffer.jsonl"
    wait_until(
        lambda: not buffer.exists() and not buffer.with_name("buffer.jsonl.draining").exists(),
        what="the buffer replayed and deleted",
        timeout_s=90,
    )
    assert ballast.exists()

    # 4. Space freed: everything flows again, the held records and the gap event included.
    ballast.unlink()
    wait_until(
        lambda: bool(query(url, "SELECT 1 FROM api_logs WHERE event = 'gap' "
                                "AND details->>'reason' = 'spool_unwritable'")),
        what="the gap of the dropped records stored",
        timeout_s=60,
    )  # fmt: skip
    resumed = time.monotonic()
    wait_until(
        lambda: (
            not (_beat(var, "writer").get("troubles") or {})
            and (_beat(var, "collector").get("spool") or {}).get("pending_in_memory") == 0
        ),
        what="writer and collector without trouble",
        timeout_s=60,
    )
    wait_until(lambda: complete_ticks() >= 3 + 5, what="ticks after the recovery", timeout_s=60)
    assert time.monotonic() - resumed < 60

    assert {name: supervisor.pid(name) for name in pids} == pids, "a process restarted"
    kept = assert_promise_kept(url, tick_s=timedelta(seconds=1))
    assert kept["gaps"] >= 1
    # Every dropped line is counted in the gap: snapshots, events, and the figures beside the
    # snapshots (each tick's P&L explain; the Greeks by expiry and the legs once a minute).
    (dropped,) = query(
        url,
        "SELECT (details->>'dropped_snapshots')::int, (details->>'dropped_events')::int, "
        "(details->>'dropped_figures')::int "
        "FROM api_logs WHERE event = 'gap' AND details->>'reason' = 'spool_unwritable'",
    )
    assert sum(dropped) >= 4
    assert dropped[0] >= 1
    writer_log = supervisor.log("writer")
    assert "records held in the spool; retrying" in writer_log
    assert "Traceback" not in writer_log + supervisor.log("replayer")
