"""The named reads, on rows stored by the real sink: the newest snapshot per account (within a
horizon), the snapshots after a mark, the login prompt, the last hour's count, the columns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from database import reads
from database.session import Connection
from database.sink import RecordSink
from shared import records
from tests import builders

NOW = datetime.now(UTC).replace(microsecond=0)


def _snapshot(account: str, age: timedelta, dollar_delta: float) -> bytes:
    ts = NOW - age
    return builders.snapshot_v2(
        account, ts=ts, id=records.snapshot_id(account, ts), net_dollar_delta=dollar_delta
    )


def _event(name: str, age: timedelta) -> bytes:
    event = records.new_api_log(ts=NOW - age, mode="PORTAL", level="info", event=name, message=name)
    return records.encode(event)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[Connection]:
    sink = RecordSink(lambda: psycopg.AsyncConnection.connect(database_url, autocommit=True))
    result = await sink.store([
        _snapshot("DU0001", timedelta(minutes=2), 10.0),
        _snapshot("DU0001", timedelta(minutes=1), 11.0),
        _snapshot("DU0002", timedelta(minutes=90), 20.0),
        _snapshot("DU0003", timedelta(days=8), 30.0),  # closed: past a week's horizon
        _event("connected", timedelta(minutes=5)),
        _event("session_required", timedelta(minutes=3)),
    ])  # fmt: skip
    assert result.stored == 6
    await sink.close()
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as opened:
        yield opened


async def test_the_newest_snapshot_of_each_account_within_the_horizon(conn: Connection) -> None:
    """One row per account, its newest, by account; an account silent past the horizon is left
    out when one is given."""
    rows = await reads.newest_per_account(conn, ("account", "net_dollar_delta"))
    assert [(row["account"], row["net_dollar_delta"]) for row in rows] == [
        ("DU0001", 11.0), ("DU0002", 20.0), ("DU0003", 30.0),
    ]  # fmt: skip
    recent = await reads.newest_per_account(conn, ("account",), within=timedelta(days=7))
    assert [row["account"] for row in recent] == ["DU0001", "DU0002"]


async def test_the_snapshots_inside_each_accounts_range_in_time_order(conn: Connection) -> None:
    """Strictly after the mark and before the end, per account, oldest first."""
    ranges = {
        "DU0001": (NOW - timedelta(minutes=3), NOW - timedelta(minutes=1)),
        "DU0002": (NOW - timedelta(hours=2), NOW),
    }
    rows = await reads.unseen_snapshots(conn, ("net_dollar_delta",), ranges)
    assert [(account, value) for account, _ts, value in rows] == [
        ("DU0002", 20.0),
        ("DU0001", 10.0),
    ]
    assert await reads.unseen_snapshots(conn, ("net_dollar_delta",), {}) == []


async def test_the_login_prompt_the_hours_count_and_the_columns(conn: Connection) -> None:
    """A login prompt after the last connection needs a login; two snapshots are of the last
    hour; the table's columns come with their types."""
    assert await reads.login_required(conn) is True
    assert await reads.rows_last_hour(conn) == 2
    columns = await reads.table_columns(conn, ("portfolio_greeks", "no_such_table"))
    assert list(columns) == ["portfolio_greeks"]
    assert columns["portfolio_greeks"]["net_dollar_delta"] == "double precision"
