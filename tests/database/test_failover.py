"""PostgreSQL high availability: a primary, a synchronous streaming standby, and the bridge on a
libpq multi-host `DATABASE_URL` with `target_session_attrs=read-write`. The primary's host is
lost (immediate stop), the standby is promoted, and the writer and replayer carry on against it
with nothing lost and nothing stored twice.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest

from shared.spool import SpoolAppender
from testkit.waiting import wait_until
from tests import builders
from tests.fixtures.pipeline import append, stored_ids
from tests.fixtures.processes import Processes
from tests.fixtures.replication import ReplicatedPostgres

pytestmark = [pytest.mark.slow]


def _read_write(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=3) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return row is not None and row[0] is False


@pytest.mark.timeout(180)
def test_writer_follows_a_promoted_standby(
    replicated_postgres: ReplicatedPostgres, processes: Processes, tmp_path: Path
) -> None:
    """The primary crashes mid-stream and the synchronous standby is promoted: through the multi-
    host URL the writer and the replayer land on it, and every row, those written while no server
    took writes included, is stored once."""
    url = replicated_postgres.failover_url()
    environ = {
        "BRIDGE_VAR_DIR": str(tmp_path / "var"),
        "BRIDGE_BUFFER_PATH": str(tmp_path / "var" / "buffer.jsonl"),
        "DATABASE_URL": url,
        "BRIDGE_BREAKER_RESET_S": "0.2",
        "BRIDGE_DB_CONNECT_TIMEOUT_S": "2",
        "BRIDGE_REPLAY_INTERVAL_S": "1",
    }
    spool = SpoolAppender(tmp_path / "var" / "spool", segment_max_bytes=64 * 1024)
    spool.open(now_us=time.time_ns() // 1000)
    processes.start("writer", environ)
    processes.start("replayer", environ)
    lines = builders.snapshots(300, accounts=5)

    append(spool, lines[:100])
    wait_until(lambda: len(stored_ids(url)) == 100, what="100 rows on the primary", timeout_s=60)
    standby = replicated_postgres.standby.url("bridge")
    assert len(stored_ids(standby)) == 100  # synchronous: committed means on the standby too

    replicated_postgres.primary.crash()
    append(spool, lines[100:200])  # written while no server accepts writes
    replicated_postgres.promote_standby()
    assert _read_write(url)  # the multi-host URL now lands on the promoted standby
    append(spool, lines[200:])

    wait_until(
        lambda: len(stored_ids(url)) == 300, what="every row on the new primary", timeout_s=90
    )
    spool.close()
    assert sorted(stored_ids(standby)) == sorted(json.loads(line)["id"] for line in lines)
