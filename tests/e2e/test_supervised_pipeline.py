"""The storage pipeline under the real supervisord, operated the way an operator would."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import psycopg
import pytest

from shared.spool import SpoolAppender
from testkit.waiting import wait_until
from tests import builders
from tests.fixtures.pipeline import stored_ids
from tests.fixtures.supervisor import Supervisor, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PIPELINE = ("postgres", "writer", "replayer")


def _no_gateway(supervisor: Supervisor) -> None:
    """Point the collector at a gateway that never answers: it runs (and can be stopped) but
    spools no snapshot, so the rows stored are the test's own, however long the start takes (a
    tick against the simulator before the test stopped the collector made 102 rows of 100)."""
    supervisor.environ["IB_PORT"] = str(free_port())
    supervisor.environ["IB_PORTAL_URL"] = f"https://127.0.0.1:{free_port()}/v1/api"


def _spool(supervisor: Supervisor) -> SpoolAppender:
    """Play the collector: stop the real one (it holds the spool's lock) and append directly."""
    assert "collector: stopped" in supervisor.ctl("stop", "collector").stdout
    appender = SpoolAppender(supervisor.root / "var/spool", segment_max_bytes=1 << 20)
    appender.open(now_us=time.time_ns() // 1000)
    return appender


def _seen(supervisor: Supervisor, url: str, awaited: str) -> str:
    """What a wait that timed out saw: rows stored, each program's state, the pipeline's last
    log lines (the tests' folders are removed after the run)."""
    tails = {
        program: supervisor.log(program).splitlines()[-12:] for program in ("writer", "replayer")
    }
    return (
        f"{awaited}; {len(stored_ids(url))} stored; states {supervisor.states()};"
        f" last log lines {json.dumps(tails, indent=1)}"
    )


def _restarted(supervisor: Supervisor, program: str, old_pid: int) -> Callable[[], bool]:
    def check() -> bool:
        return supervisor.states()[program][0] == "RUNNING" and supervisor.pid(program) != old_pid

    return check


@pytest.mark.timeout(240)  # the first rows' 90 s, two restarts and 300 rows on a busy machine
def test_local_profile_survives_kill_9_of_each_process_and_stores_everything_once(
    supervisor: Supervisor,
) -> None:
    """Every program runs; a SIGKILLed writer or replayer is restarted alone while the others
    keep their pids; records spooled before, during and after are stored exactly once; a
    stopped writer exits 0; the control socket and database URL are private to the owner."""
    # Lines spooled while the writer's breaker is still open from the database's start-up are
    # buffered: a short replay period brings them in quickly.
    supervisor.environ["BRIDGE_REPLAY_INTERVAL_S"] = "1"
    _no_gateway(supervisor)
    supervisor.start()
    supervisor.wait_running(*PIPELINE)
    url_file = supervisor.root / "var/database_url"
    wait_until(url_file.exists, what="the embedded database's URL")
    assert stat.S_IMODE(url_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((supervisor.root / "var/run/supervisor.sock").stat().st_mode) == 0o700
    url = url_file.read_text().strip()

    lines = builders.snapshots(300, accounts=5)
    spool = _spool(supervisor)
    spool.append(lines[:100], now_us=0)
    # The first rows wait for every program's start and the writer's start-up breaker (or the
    # buffer and a replay): 30 s was twice too short on a machine running two suites at once.
    wait_until(
        lambda: len(stored_ids(url)) == 100,
        what=lambda: _seen(supervisor, url, "the first 100 rows"),
        timeout_s=90,
    )

    for victim in ("writer", "replayer"):
        before = {name: supervisor.pid(name) for name in PIPELINE}
        os.kill(before[victim], signal.SIGKILL)
        wait_until(_restarted(supervisor, victim, before[victim]), what=f"{victim} restarted")
        after = {name: supervisor.pid(name) for name in PIPELINE}
        assert {name for name in PIPELINE if after[name] != before[name]} == {victim}
        spool.append(lines[100:200] if victim == "writer" else lines[200:], now_us=0)

    wait_until(lambda: len(stored_ids(url)) == len(lines), what="every row")
    assert sorted(stored_ids(url)) == sorted(json.loads(line)["id"] for line in lines)

    assert "writer: stopped" in supervisor.ctl("stop", "writer").stdout
    assert (
        "stopped: writer (exit status 0)"
        in (supervisor.root / "var/log/supervisord.log").read_text()
    )
    assert supervisor.ctl("start", "writer").returncode == 0
    spool.close()


# `database_url` first: fixtures are torn down in reverse, so supervisord and its connections
# are gone before the test's database is dropped.
def test_external_database_url_skips_the_embedded_server(
    database_url: str, supervisor: Supervisor
) -> None:
    """With DATABASE_URL set, `postgres` exits 0 and stays down; the writer uses that URL."""
    supervisor.environ["DATABASE_URL"] = database_url
    _no_gateway(supervisor)
    supervisor.start()
    supervisor.wait_running("writer", "replayer")
    wait_until(lambda: supervisor.states()["postgres"][0] == "EXITED", what="postgres EXITED")
    assert "DATABASE_URL is set" in supervisor.log("postgres")
    assert not (supervisor.root / "var/pgdata").exists()
    spool = _spool(supervisor)
    spool.append(builders.snapshots(7), now_us=0)
    wait_until(lambda: len(stored_ids(database_url)) == 7, what="7 rows in the external database")
    spool.close()
    password = urlsplit(database_url).password
    assert password
    assert password not in supervisor.log("writer") + supervisor.log("replayer")


def test_schema_is_bootstrapped_at_start_before_any_record(supervisor: Supervisor) -> None:
    """An operator can query the tables as soon as the bridge is up, even with nothing spooled."""
    # Nothing is spooled, however long the schema takes to show on a loaded machine.
    _no_gateway(supervisor)
    supervisor.start()
    supervisor.wait_running("postgres", "writer", "replayer")
    url_file = supervisor.root / "var/database_url"
    wait_until(url_file.exists, what="the embedded database's URL")
    url = url_file.read_text().strip()

    def tables() -> set[str]:
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchall()
        return {row[0] for row in rows}

    wait_until(lambda: {"portfolio_greeks", "api_logs"} <= tables(), what="the schema")
    assert stored_ids(url) == []
