"""A watcher's session (the alerter's) can read the tables and cannot write them."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from database.schema import bootstrap
from database.settings import DatabaseSettings


async def test_a_read_only_session_reads_and_is_refused_every_write(
    database_url: str, tmp_path: Path
) -> None:
    """A read-only session (the alerter's, the web program's) reads and is refused every write."""
    settings = DatabaseSettings.from_environ({"DATABASE_URL": database_url}, var_dir=tmp_path)
    async with await settings.connect("bridge-test") as conn:
        await bootstrap(conn)
    async with await settings.connect("bridge-alerter", read_only=True) as conn:
        cursor = await conn.execute("SELECT count(*) FROM portfolio_greeks")
        assert await cursor.fetchone() == (0,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await conn.execute("DELETE FROM api_logs")
