"""The local profile's read-only role: the web program and the alerter read by role, not only
by their session setting (which a session can turn off)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import psycopg
import pytest

from alerter.settings import AlerterSettings
from database.embedded import READER_ROLE
from database.schema import bootstrap
from testkit.postgres import PostgresServer
from testkit.web import serving
from tests.fixtures.web import insert_snapshots, snapshot_row
from web.settings import WebSettings

WRITES = [
    "DELETE FROM api_logs",
    "INSERT INTO api_logs (id, ts, mode, level, event, message)"
    " VALUES (gen_random_uuid(), now(), 'SOCKET', 'info', 'x', 'x')",
    "UPDATE portfolio_greeks SET net_delta = 0",
    "TRUNCATE api_logs",
    "DROP TABLE api_logs",
    "CREATE TABLE intruder (id int)",
    "CREATE TABLE api_logs_p20990101 PARTITION OF api_logs"
    " FOR VALUES FROM ('2099-01-01') TO ('2099-01-02')",
]


async def test_the_reader_role_reads_every_table_and_is_refused_every_write(
    postgres_server: PostgresServer,
) -> None:
    """The embedded server's reader URL file names `bridge_reader`; with the session's
    read-only default turned off by hand, every write is still refused for lack of privilege,
    on the tables the writer creates after the role and on the partitions made later."""
    reader_file = postgres_server.var_dir / "database_reader_url"
    reader_url = reader_file.read_text().strip()
    async with await psycopg.AsyncConnection.connect(postgres_server.url, autocommit=True) as conn:
        await bootstrap(conn)  # as the writer does, as the superuser, after the role exists
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS api_logs_p20980101 PARTITION OF api_logs"
            " FOR VALUES FROM ('2098-01-01') TO ('2098-01-02')"
        )  # as the replayer's maintenance does
    refused = []
    async with await psycopg.AsyncConnection.connect(reader_url, autocommit=True) as conn:
        who = await (await conn.execute("SELECT current_user")).fetchone()
        await conn.execute("SET default_transaction_read_only = off")
        counted = await (await conn.execute("SELECT count(*) FROM portfolio_greeks")).fetchone()
        await conn.execute("SELECT count(*) FROM api_logs_p20980101")
        for statement in WRITES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute(statement)
            refused.append(statement)
    assert who == (READER_ROLE,)
    assert counted == (0,)
    assert refused == WRITES
    assert stat.S_IMODE(reader_file.stat().st_mode) == 0o600


def test_the_web_program_and_the_alerter_connect_as_the_reader(tmp_path: Path) -> None:
    """In the local profile they read the reader URL file; with an external database,
    DATABASE_READER_URL before DATABASE_URL."""
    var = tmp_path / "var"
    local = {"BRIDGE_VAR_DIR": str(var)}
    external = {
        **local,
        "DATABASE_URL": "postgresql://bridge:writer-secret@db.example/bridge",
        "DATABASE_READER_URL": "postgresql://bridge_reader:reader-secret@db.example/bridge",
    }
    for settings in (WebSettings.from_environ, AlerterSettings.from_environ):
        assert settings(local).database.url_file == var / "database_reader_url"
        assert settings(local).database.url is None
        configured = settings(external).database.url
        assert configured is not None
        assert configured.reveal() == external["DATABASE_READER_URL"]


async def test_the_web_program_serves_every_path_as_the_reader(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """Every question the web program asks (the schema, the newest rows, a 5-day chart over the
    rollups, the events, the counts) is answered to the reader role in the local profile."""
    async with await psycopg.AsyncConnection.connect(postgres_server.url, autocommit=True) as conn:
        await bootstrap(conn)
    now = datetime.now(UTC).replace(microsecond=0)
    insert_snapshots(postgres_server.url, [snapshot_row("DU_READER", now, net_dollar_delta=4.5)])
    environ = {
        "BRIDGE_VAR_DIR": str(tmp_path / "var"),
        "BRIDGE_DATABASE_READER_URL_FILE": str(postgres_server.var_dir / "database_reader_url"),
        "BRIDGE_WEB_PORT": "0",
    }
    async with serving(environ) as (server, base), aiohttp.ClientSession() as session:
        bodies = {}
        for path in ["/api/overview", "/api/series?account=DU_READER&window=5d"]:
            async with session.get(base + path) as response:
                bodies[path] = (response.status, await response.json())
        async with session.get(base + "/metrics") as response:
            metrics = await response.text()
        read_only = await server.reader.is_read_only()
    overview = bodies["/api/overview"][1]
    series = bodies["/api/series?account=DU_READER&window=5d"][1]
    assert [code for code, _body in bodies.values()] == [200, 200]
    assert overview["database"]["error"] is None
    assert series["database"]["error"] is None
    assert 4.5 in series["figures"]["net_dollar_delta"]["last"]
    assert 'ibkr_bridge_net_dollar_delta{account="DU_READER"} 4.5' in metrics
    assert "ibkr_bridge_database_up 1.0" in metrics
    assert read_only
