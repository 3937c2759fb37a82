"""`bridge-status` as an operator runs it: real processes, real files, a real database."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared import records
from shared.spool import SpoolAppender
from testkit.waiting import wait_until
from tests import builders
from tests.fixtures.heartbeats import publish_body
from tests.fixtures.pipeline import append, stored_ids
from tests.fixtures.processes import Processes


def _status(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "database.status", *args],
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _collector_heartbeat(run_dir: Path, *, firing: list[dict[str, object]] | None = None) -> None:
    """The collector's and the alerter's heartbeat files, as they publish them (the files are
    the contract)."""
    now = datetime.now(UTC)
    publish_body(
        run_dir, "alerter", {"state": "running", "firing": firing or []}, now=now, interval_s=5
    )
    publish_body(
        run_dir,
        "collector",
        {
            "state": "running",
            "mode": "SOCKET",
            "poll_interval_s": 5,
            "gateway": {"connected": True, "in_reset_window": False, "last_error": None},
            "accounts": {"DU0001": {"last_snapshot_ts": now.isoformat()}},
        },
        now=now,
        interval_s=5,
    )


def test_healthy_pipeline_exits_zero_and_reports_rows(
    pipeline_environ: dict[str, str],
    spool: SpoolAppender,
    processes: Processes,
    database_url: str,
) -> None:
    """With every process beating and rows stored, the check passes and says how many
    snapshots the last hour has (4 of the last minute; 2 of March, stored now, are not)."""
    writer = processes.start("writer", pipeline_environ)
    replayer = processes.start("replayer", pipeline_environ)
    ticks = [datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5 * n) for n in range(4)]
    recent = [
        builders.snapshot_v2("DU0001", ts=ts, id=records.snapshot_id("DU0001", ts)) for ts in ticks
    ]
    append(spool, [*recent, *builders.snapshots(2)])
    wait_until(lambda: len(stored_ids(database_url)) == 6, what="6 rows")
    run_dir = Path(pipeline_environ["BRIDGE_VAR_DIR"]) / "run"
    wait_until((run_dir / "replayer.json").exists, what="the replayer's heartbeat")
    _collector_heartbeat(run_dir)

    result = _status(pipeline_environ, "--json")
    body = json.loads(result.stdout)
    assert result.returncode == 0, body["findings"]
    assert body["status"] == "ok"
    assert body["facts"]["rows_last_hour"] == 4
    for process in (writer, replayer):
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    after = _status(pipeline_environ)
    assert after.returncode == 1
    assert "UNHEALTHY writer: stopped" in after.stdout
    assert "UNHEALTHY replayer: stopped" in after.stdout


def test_answers_without_any_process_or_database(tmp_path: Path) -> None:
    """Nothing running, no database: it still answers, unhealthy, with every reason."""
    environ = {"BRIDGE_VAR_DIR": str(tmp_path / "var")}
    result = _status(environ)
    assert result.returncode == 1
    for process in ("collector", "writer", "replayer", "alerter"):
        assert f"UNHEALTHY {process}: no heartbeat file" in result.stdout
    assert "rows last hour unknown" in result.stdout
    assert "database: not queried: DATABASE_URL is unset" in result.stdout


def test_shows_the_buffer_against_its_cap_and_warning(tmp_path: Path) -> None:
    """The buffer's size beside BRIDGE_BUFFER_MAX_BYTES and its warning threshold (80 % of
    4,096 = 3,276): 3,000 bytes is under it, no finding; 3,900 is past it, a warning; 4,096 is
    the cap: full, unhealthy."""
    var_dir = tmp_path / "var"
    environ = {
        "BRIDGE_VAR_DIR": str(var_dir),
        "BRIDGE_BUFFER_PATH": str(var_dir / "buffer.jsonl"),
        "BRIDGE_BUFFER_MAX_BYTES": "4096",
    }
    var_dir.mkdir()
    (var_dir / "buffer.jsonl").write_bytes(b"x" * 3000)
    first = _status(environ)
    assert "buffer         3000 bytes of 4096 (warning at 3276)" in first.stdout
    assert "buffer:" not in first.stdout
    (var_dir / "buffer.jsonl").write_bytes(b"x" * 3900)
    second = _status(environ)
    assert "buffer         3900 bytes of 4096 (warning at 3276)" in second.stdout
    assert "WARNING   buffer: 3900 of 4096 bytes, past the warning threshold" in second.stdout
    (var_dir / "buffer.jsonl").write_bytes(b"x" * 4096)
    third = _status(environ)
    assert "UNHEALTHY buffer: full: 4096 of 4096 bytes" in third.stdout


def test_reads_the_running_writers_buffer_whatever_the_shells_environment(
    pipeline_environ: dict[str, str], processes: Processes, tmp_path: Path
) -> None:
    """The writer runs with its buffer in an unusual place and a 4,096-byte cap (as the local
    profile puts it under var/); an operator's shell knows neither: bridge-status still reports
    that buffer against that cap, from the writer's heartbeat."""
    buffer_path = tmp_path / "elsewhere" / "buffer.jsonl"
    buffer_path.parent.mkdir()
    buffer_path.write_bytes(b"x" * 3900)
    writer_environ = {
        **pipeline_environ,
        "BRIDGE_BUFFER_PATH": str(buffer_path),
        "BRIDGE_BUFFER_MAX_BYTES": "4096",
    }
    processes.start("writer", writer_environ)
    run_dir = Path(pipeline_environ["BRIDGE_VAR_DIR"]) / "run"
    wait_until((run_dir / "writer.json").exists, what="the writer's heartbeat")
    shell = {"BRIDGE_VAR_DIR": pipeline_environ["BRIDGE_VAR_DIR"], "HOME": str(tmp_path)}
    result = _status(shell)
    assert "buffer         3900 bytes of 4096 (warning at 3276)" in result.stdout
    assert "WARNING   buffer: 3900 of 4096 bytes, past the warning threshold" in result.stdout
