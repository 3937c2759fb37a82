"""Migration 016 on the real server: no planner statistics on the raw tables' arrays and
documents, in every partition, those made later included, while the columns rows are chosen by
keep theirs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from database import history
from database.history import Retention
from database.schema import bootstrap
from shared import records
from testkit.postgres import store_lines
from tests import builders

NOW = builders.EPOCH  # 2026-03-02 14:30 UTC
DAY_TICKS = 17_280  # 5-s ticks
WITHOUT_STATISTICS = ("underlying_figures", "underlying_counts", "underlying_symbols")
WITH_STATISTICS = ("account", "ts")


async def _connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def _targets(conn: psycopg.AsyncConnection[Any], column: str) -> dict[str, int | None]:
    """Each partition of portfolio_greeks and the target of `column` in it (None: the default,
    whatever the server's version writes for it)."""
    cursor = await conn.execute(
        "SELECT c.relname, nullif(a.attstattarget, -1) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = %s"
        " WHERE i.inhparent = 'portfolio_greeks'::regclass",
        (column,),
    )
    return dict(await cursor.fetchall())


async def test_every_partition_old_and_new_has_no_statistics_on_the_arrays(
    database_url: str,
) -> None:
    """The partitions before the migration, the default one, and those the maintenance makes
    after it (also the one made for a row waiting in the default partition) all leave the
    arrays out; account and ts keep the server's default."""
    async with await _connect(database_url) as conn:
        await bootstrap(conn, up_to=15)
        await history.maintain(conn, Retention(), NOW)
        before = set(await _targets(conn, "underlying_figures"))
        await bootstrap(conn)
    # A row 20 days ahead waits in the default partition until its day is made for it.
    early = NOW + timedelta(days=20)
    line = records.encode(builders.trader_snapshot("DU1", tick=20 * DAY_TICKS))
    assert (await store_lines(database_url, [line])).stored == 1
    async with await _connect(database_url) as conn:
        created = (await history.maintain(conn, Retention(), early)).created
        stray = "portfolio_greeks_p20260322"
        assert stray in created
        for column in WITHOUT_STATISTICS:
            targets = await _targets(conn, column)
            assert before < set(targets)  # new partitions were made after the migration
            assert {"portfolio_greeks_default", stray} <= set(targets)
            assert set(targets.values()) == {0}, column
        for column in WITH_STATISTICS:
            assert set((await _targets(conn, column)).values()) == {None}, column


async def test_analyze_keeps_statistics_for_account_and_time_only(database_url: str) -> None:
    """After ANALYZE of a day partition holding format-3 rows, the planner has statistics for
    the account and the time, none for the arrays."""
    async with await _connect(database_url) as conn:
        await bootstrap(conn)
        await history.maintain(conn, Retention(), NOW)
    lines = [records.encode(builders.trader_snapshot(f"DU{n}")) for n in range(20)]
    assert (await store_lines(database_url, lines)).stored == 20
    async with await _connect(database_url) as conn:
        await conn.execute("ANALYZE portfolio_greeks_p20260302")
        cursor = await conn.execute(
            "SELECT attname FROM pg_stats WHERE tablename = 'portfolio_greeks_p20260302'"
        )
        analysed = {row[0] for row in await cursor.fetchall()}
    assert set(WITH_STATISTICS) <= analysed
    assert analysed.isdisjoint(WITHOUT_STATISTICS)
