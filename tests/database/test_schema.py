"""Schema bootstrap against a real PostgreSQL: idempotent, versioned, safe when started twice."""

from __future__ import annotations

import asyncio

import psycopg
from psycopg import sql

from database.schema import bootstrap, migrations


async def _connect(url: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def test_bootstrap_creates_tables_and_records_versions(database_url: str) -> None:
    """A new database gets both tables and every migration recorded once."""
    async with await _connect(database_url) as conn:
        applied = await bootstrap(conn)
        cursor = await conn.execute(  # tables and views; partitions are their tables' own
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind IN ('r', 'p', 'v') AND NOT relispartition ORDER BY relname"
        )
        tables = [row[0] for row in await cursor.fetchall()]
        versions = await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()
    assert applied == [migration.version for migration in migrations()]
    assert tables == [
        "api_logs",
        "betas",
        "expiry_greeks",
        "pnl_explain",
        "pnl_explain_1d",
        "pnl_explain_1h",
        "pnl_explain_1m",
        "pnl_explain_daily",
        "pnl_explain_pending",
        "pnl_explain_positions",
        "pnl_explain_rollup",
        "portfolio_greeks",
        "portfolio_greeks_1h",
        "portfolio_greeks_1m",
        "position_legs",
        "rollup_pending",
        "scenario_pnl",
        "schema_migrations",
        "snapshots",
        "underlying_greeks",
        "underlying_greeks_1h",
        "underlying_greeks_1m",
    ]
    assert [row[0] for row in versions] == applied


async def test_bootstrap_twice_applies_nothing_the_second_time(database_url: str) -> None:
    """Restarting a process on a migrated database changes nothing."""
    async with await _connect(database_url) as conn:
        await bootstrap(conn)
        assert await bootstrap(conn) == []


async def test_concurrent_bootstraps_apply_each_migration_once(database_url: str) -> None:
    """Writer and replayer starting at the same instant: the advisory lock serialises them."""
    connections = [await _connect(database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(bootstrap(conn) for conn in connections))
    finally:
        for conn in connections:
            await conn.close()
    applied = sorted(version for result in results for version in result)
    assert applied == [migration.version for migration in migrations()]


async def test_rows_stored_before_migration_2_stay_as_they_were(database_url: str) -> None:
    """A database at migration 1 with a row: after 002 the row reads the same, as format 1."""
    first = migrations()[0]
    async with await _connect(database_url) as conn:
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute(sql.SQL(first.sql))  # a file shipped with the package
        await conn.execute("INSERT INTO schema_migrations VALUES (1, %s)", (first.name,))
        await conn.execute(
            "INSERT INTO portfolio_greeks (id, ts, account, mode, net_delta, net_dollar_delta,"
            " position_count, option_count, options_with_greeks, underlyings)"
            " VALUES (gen_random_uuid(), now(), 'DU1', 'SOCKET', 374.4, 148000, 3, 2, 2,"
            """ '{"SPY": {"net_delta": 388.6}}')"""
        )
        assert 2 in await bootstrap(conn)
        cursor = await conn.execute(
            "SELECT format_version, net_delta, net_dollar_delta, currency, completeness"
            " FROM portfolio_greeks"
        )
        row = await cursor.fetchone()
        view = await (
            await conn.execute("SELECT underlying, net_delta FROM underlying_greeks")
        ).fetchall()
    assert row == (1, 374.4, 148000.0, None, None)
    assert view == [("SPY", 388.6)]
