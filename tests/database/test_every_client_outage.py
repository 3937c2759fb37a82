"""Every client of PostgreSQL through the one seam (database/session.py), against a server that
goes silent: the writer's and replayer's store, the history keeper, the web reader, the
alerter's reads and `bridge-status`. Each gives up within the bound, says why, and answers again
once the server does, over the real PostgreSQL behind the deaf proxy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerter.catch_up import StoreReader
from database.errors import DatabaseError
from database.history import HistoryKeeper, Retention
from database.settings import DatabaseSettings
from database.status import gather
from database.store import DatabaseStore, NotStored
from shared.settings import BufferLimits, PipelinePaths
from tests import builders
from tests.fixtures.proxy import QUICK_TIMEOUTS, SILENT_BOUND_S, TcpProxy, proxy_url
from web.reader import Reader


@dataclass
class Client:
    """One client's question: `ask` returns None when answered, else the reason it was not."""

    ask: Callable[[], Awaitable[str | None]]
    close: Callable[[], Awaitable[None]]
    # What the reason says once the server is silent: a client that holds its connection waits
    # for a reply; bridge-status connects afresh, so its connection attempt times out instead.
    silent_reason: str = "no answer from the server"


def _store(settings: DatabaseSettings, _environ: dict[str, str]) -> Client:
    store = DatabaseStore("test", settings, application_name="test")

    async def ask() -> str | None:
        result = await store.store(builders.snapshots(1))
        return result.reason if isinstance(result, NotStored) else None

    return Client(ask, store.close)


def _history(settings: DatabaseSettings, _environ: dict[str, str]) -> Client:
    keeper = HistoryKeeper(
        lambda: settings.connect("test"), Retention(), reply_timeout_s=settings.reply_timeout_s
    )

    async def ask() -> str | None:
        try:
            await keeper.step(datetime.now(UTC))
        except DatabaseError as exc:
            return str(exc)
        return None

    return Client(ask, keeper.close)


def _web(settings: DatabaseSettings, _environ: dict[str, str]) -> Client:
    reader = Reader(settings)

    async def ask() -> str | None:
        return (await reader.rows_last_hour()).error

    return Client(ask, reader.close)


def _alerter(settings: DatabaseSettings, _environ: dict[str, str]) -> Client:
    reads = StoreReader(settings)

    async def ask() -> str | None:
        answer = await reads.read(("net_dollar_delta",), wants_login=True)
        return reads.last_error if answer.latest is None else None

    return Client(ask, reads.close)


def _bridge_status(settings: DatabaseSettings, environ: dict[str, str]) -> Client:
    paths = PipelinePaths.from_environ(environ)
    limits = BufferLimits.from_environ(environ)

    async def ask() -> str | None:
        # A synchronous program: asked from a thread, as it would run on its own.
        facts = await asyncio.to_thread(gather, paths, settings, limits, datetime.now(UTC))
        return facts.database_error

    async def close() -> None:
        """Nothing held between two questions."""

    return Client(ask, close, silent_reason="")


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "make", [_store, _history, _web, _alerter, _bridge_status],
    ids=["store", "history", "web", "alerter", "bridge-status"],
)  # fmt: skip
async def test_every_client_gives_up_on_a_silent_server_and_answers_once_it_does(
    make: Callable[[DatabaseSettings, dict[str, str]], Client],
    db_proxy: TcpProxy,
    pipeline_environ: dict[str, str],
    database_url: str,
    tmp_path: Path,
) -> None:
    """Answered, then the server stops answering: the client's question fails within the bound
    with the reason (nothing hangs), and once the server answers again so does the client."""
    direct = DatabaseSettings.from_environ(pipeline_environ, var_dir=tmp_path)
    schema = DatabaseStore("schema", direct, application_name="test")
    await schema.ensure_schema()  # the tables the readers read
    await schema.close()
    environ = (
        pipeline_environ | QUICK_TIMEOUTS | {"DATABASE_URL": proxy_url(database_url, db_proxy)}
    )
    client = make(DatabaseSettings.from_environ(environ, var_dir=tmp_path), environ)
    try:
        assert await client.ask() is None
        db_proxy.deaf()
        started = time.monotonic()
        reason = await asyncio.wait_for(client.ask(), SILENT_BOUND_S)
        assert time.monotonic() - started < SILENT_BOUND_S
        assert reason is not None
        assert client.silent_reason in reason
        db_proxy.healthy()
        assert await asyncio.wait_for(client.ask(), SILENT_BOUND_S) is None
    finally:
        await client.close()
