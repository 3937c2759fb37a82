"""Migration 3: a snapshot's natural key (account, ts), on a database that already has rows."""

from __future__ import annotations

import psycopg
from psycopg import sql

from database.schema import bootstrap, migrations


async def _connect(url: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def test_the_natural_key_migration_keeps_the_first_of_two_rows_for_one_tick(
    database_url: str,
) -> None:
    """A database migrated before the (account, ts) key, holding two rows for one account and
    tick under different ids: migration 3 keeps the one stored first, then enforces the key."""
    async with await _connect(database_url) as conn:
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in migrations():
            if migration.version < 3:
                await conn.execute(sql.SQL(migration.sql))  # a file shipped with the package
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
        for id_, stored_at in (
            ("00000000-0000-4000-8000-000000000002", "2026-03-02T14:31:00Z"),
            ("00000000-0000-4000-8000-000000000001", "2026-03-02T14:30:01Z"),
        ):
            await conn.execute(
                "INSERT INTO portfolio_greeks (id, ts, account, mode, position_count,"
                " option_count, options_with_greeks, stored_at)"
                " VALUES (%s, '2026-03-02T14:30:00Z', 'DU0001', 'SOCKET', 1, 0, 0, %s)",
                (id_, stored_at),
            )
        assert 3 in await bootstrap(conn)
        cursor = await conn.execute("SELECT id::text FROM portfolio_greeks")
        kept = [row[0] for row in await cursor.fetchall()]
    assert kept == ["00000000-0000-4000-8000-000000000001"]
