"""The tables of migration 006 against a real PostgreSQL: expiry and legs lines stored once
each, every value as sent; their day partitions made ahead and dropped with the raw retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from database import history
from database.history import Retention
from database.schema import bootstrap
from database.sink import RecordSink
from shared import records
from tests.builders import EXPIRY, LEGS, PUT, STOCK

TS = EXPIRY.ts


@pytest.fixture
async def sink(database_url: str) -> AsyncIterator[RecordSink]:
    async def connect() -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(database_url, autocommit=True)

    sink = RecordSink(connect)
    yield sink
    await sink.close()


async def test_expiry_and_legs_are_stored_once_each(sink: RecordSink, database_url: str) -> None:
    """Each line counts once, however many legs it holds; sent again, each is a duplicate and
    no row is added; the values are those sent."""
    later = replace(LEGS, ts=TS + timedelta(seconds=5), legs=(PUT,))
    lines = [records.encode(EXPIRY), records.encode(LEGS), records.encode(later)]
    first = await sink.store(lines)
    assert (first.stored, first.duplicates, first.rejected) == (3, 0, [])
    again = await sink.store(lines)
    assert (again.stored, again.duplicates) == (0, 3)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        legs = await (
            await conn.execute(
                "SELECT ts, conid, option_right, expiry, dollar_delta, missing_reason"
                " FROM position_legs ORDER BY ts, conid"
            )
        ).fetchall()
        expiry = await (
            await conn.execute(
                "SELECT bucket_figures[1][2], bucket_figures[2][1], linear_dollar_delta,"
                " completeness ? 'net_theta', underlying_symbols, underlying_figures[1][3][4],"
                " underlying_linear, underlying_counts, underlying_completeness ? 'SPY'"
                " FROM expiry_greeks"
            )
        ).fetchone()
    assert legs == [
        (TS, PUT.conid, "P", PUT.expiry, PUT.dollar_delta, None),
        (TS, STOCK.conid, None, None, None, "no_price"),
        (later.ts, PUT.conid, "P", PUT.expiry, PUT.dollar_delta, None),
    ]
    aapl = EXPIRY.underlyings["AAPL"]
    assert expiry == (
        EXPIRY.total.buckets[0][1], None, EXPIRY.total.linear_dollar_delta, True,
        ["AAPL", "SPY"], aapl.buckets[2][3], [aapl.linear_dollar_delta, None], [[3, 2], [1, 1]],
        True,
    )  # fmt: skip


async def test_their_partitions_follow_the_raw_retention(database_url: str) -> None:
    """Maintenance makes each table's days ahead, and drops a day once it is past the raw
    snapshots' retention, with the snapshots' own day."""
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    retention = Retention(raw=timedelta(days=3))
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await bootstrap(conn)
        await history.maintain(conn, retention, now)
        tables = [*history.BESIDE_SNAPSHOTS, "portfolio_greeks"]
        made = {p.table: p for p in await history.partitions(conn, tables)}
        assert set(made) == set(tables)
        ahead = {p.start for p in await history.partitions(conn, ["position_legs"])}
        assert datetime(2026, 3, 9, tzinfo=UTC) in ahead  # a week ahead, like the snapshots'
        report = await history.maintain(conn, retention, now + timedelta(days=4))
    for table in tables:
        assert f"{table}_p20260302" in report.dropped, table
