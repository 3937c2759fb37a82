"""The replayer's history maintenance as it runs: a real writer and replayer, rows through the
spool, rollups appearing within a period, the facts in the heartbeat, and bridge-status showing
the database size, the oldest raw row and the next partition to drop.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from database.schema import bootstrap
from shared import records
from shared.spool import SpoolAppender
from testkit.snapshots import snapshot
from testkit.waiting import wait_until
from tests.fixtures.pipeline import append
from tests.fixtures.processes import Processes

pytestmark = [pytest.mark.slow]


async def _schema(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await bootstrap(conn)


def _snapshot(account: str, ts: datetime, delta: float) -> bytes:
    return records.encode(
        snapshot(
            account,
            ts,
            net_theta=-1.0,
            net_vega=2.0,
            net_dollar_delta=delta,
            position_count=1,
            option_count=1,
            options_with_greeks=1,
            stalest_greek_age_s=0.1,
            underlyings={"SPY": {"net_delta": delta}},
            currency="USD",
        )
    )


def _minute_rows(url: str) -> list[tuple[str, datetime, int, float, float, float]]:
    with psycopg.connect(url) as conn:
        return [
            (account, bucket, snapshots, last, low, high)
            for account, bucket, snapshots, last, low, high in conn.execute(
                "SELECT account, bucket, snapshots, net_dollar_delta, net_dollar_delta_min,"
                " net_dollar_delta_max"
                " FROM portfolio_greeks_1m ORDER BY account, bucket"
            ).fetchall()
        ]


@pytest.mark.timeout(120)
def test_rollups_follow_the_spool_and_bridge_status_shows_history(
    pipeline_environ: dict[str, str],
    spool: SpoolAppender,
    processes: Processes,
    database_url: str,
) -> None:
    """Rows through the spool are rolled up within a replay period, the replayer's heartbeat carries
    the history's facts, and bridge-status shows the database size, the oldest raw row and the
    next drop."""
    asyncio.run(_schema(database_url))
    environ = {**pipeline_environ, "BRIDGE_REPLAY_INTERVAL_S": "0.5"}
    processes.start("writer", environ)
    processes.start("replayer", environ)
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    # 12 ticks of one minute, dollar deltas 1..12: last 12, min 1, max 12
    append(spool, [_snapshot("DU1", minute + timedelta(seconds=5 * n), n + 1.0) for n in range(12)])
    wait_until(
        lambda: _minute_rows(database_url) == [("DU1", minute, 12, 12.0, 1.0, 12.0)],
        what="the minute's rollup",
        timeout_s=60,
    )

    run_dir = Path(pipeline_environ["BRIDGE_VAR_DIR"]) / "run"

    def history() -> dict[str, object] | None:
        try:
            beat = json.loads((run_dir / "replayer.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        facts = beat.get("history")
        return facts if facts and facts.get("oldest_raw_ts") else None

    wait_until(lambda: history() is not None, what="history facts in the heartbeat")
    facts = history()
    assert facts is not None
    assert datetime.fromisoformat(str(facts["oldest_raw_ts"])) == minute
    assert int(str(facts["database_bytes"])) > 0
    # Raw days are kept 90 days: the oldest day partition (today's) is the next to drop.
    assert str(facts["next_drop"]).startswith(("portfolio_greeks_p", "api_logs_p"))

    result = subprocess.run(
        [sys.executable, "-m", "database.status"],
        env={"PATH": "/usr/bin:/bin", **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    line = next(line for line in result.stdout.splitlines() if "history" in line)
    assert "database" in line
    assert f"oldest raw row {minute:%Y-%m-%d %H:%M:%S}" in line
    assert f"next drop {facts['next_drop']}" in line
