"""Schema bootstrap against a real PostgreSQL: idempotent, versioned, safe when started twice."""

from __future__ import annotations

import asyncio

import psycopg

from database.schema import bootstrap, migrations


async def _connect(url: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def test_bootstrap_creates_tables_and_records_versions(database_url: str) -> None:
    """A new database gets both tables and every migration recorded once."""
    async with await _connect(database_url) as conn:
        applied = await bootstrap(conn)
        cursor = await conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' ORDER BY table_name"
        )
        tables = [row[0] for row in await cursor.fetchall()]
        versions = await (await conn.execute("SELECT version FROM schema_migrations")).fetchall()
    assert applied == [migration.version for migration in migrations()]
    assert tables == [
        "api_logs",
        "betas",
        "portfolio_greeks",
        "schema_migrations",
        "underlying_greeks",
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
