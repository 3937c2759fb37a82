"""Schema bootstrap: versioned migrations applied once, safely from several processes at once.

Migrations are the `NNN_name.sql` files in `database/migrations`, applied in order inside one
transaction that first takes a transaction-level advisory lock, so a writer and a replayer that
start at the same moment apply each migration exactly once; `schema_migrations` records them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from database.errors import SchemaError

# An arbitrary constant that names "the bridge's schema" among advisory locks.
_ADVISORY_LOCK_KEY = 0x1B_C0_FFEE
_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    found = []
    for entry in resources.files("database.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match is not None:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if versions != list(range(1, len(found) + 1)):
        raise SchemaError(f"migration versions must be 1..n without gaps, found {versions}")
    return found


async def bootstrap(
    conn: psycopg.AsyncConnection[TupleRow], *, up_to: int | None = None
) -> list[int]:
    """Create or migrate the schema; returns the versions this call applied.

    `up_to` stops at that version: an older layout, for migration tests and benchmarks."""
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK_KEY,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in await cursor.fetchall()}
        for migration in migrations():
            if migration.version in done or (up_to is not None and migration.version > up_to):
                continue
            await conn.execute(sql.SQL(migration.sql))  # a file shipped with the package
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied_now.append(migration.version)
    return applied_now
