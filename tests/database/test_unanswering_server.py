"""A server that accepts connections and then never answers, or answers slowly: the database
timeouts in the settings and the breaker, against the real PostgreSQL behind a TCP proxy."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from database.circuit_breaker import BreakerState
from database.settings import DatabaseSettings
from database.store import DatabaseStore, NotStored
from replayer.replayer import Replayer
from replayer.settings import ReplayerSettings
from shared.spool import SpoolAppender
from tests import builders
from tests.fixtures.pipeline import append, stored_ids
from tests.fixtures.proxy import QUICK_TIMEOUTS, SILENT_BOUND_S, TcpProxy, proxy_url
from writer.settings import WriterSettings
from writer.writer import Writer


def _ids(lines: list[bytes]) -> list[str]:
    return [json.loads(line)["id"] for line in lines]


@pytest.mark.timeout(60)
async def test_connecting_to_a_deaf_server_fails_within_the_connect_timeout(
    db_proxy: TcpProxy, database_url: str, tmp_path: Path
) -> None:
    """The proxy accepts the connection and never answers the start-up: the attempt fails as
    an outage within the bound, and counts against the breaker."""
    db_proxy.deaf()
    settings = DatabaseSettings.from_environ(
        {"DATABASE_URL": proxy_url(database_url, db_proxy), "BRIDGE_BREAKER_FAIL_MAX": "1"}
        | QUICK_TIMEOUTS,
        var_dir=tmp_path,
    )
    store = DatabaseStore("test", settings, application_name="test")
    started = time.monotonic()
    await asyncio.wait_for(store.ensure_schema(), SILENT_BOUND_S)
    assert time.monotonic() - started < SILENT_BOUND_S
    assert db_proxy.accepted >= 1
    assert store.view.breaker is BreakerState.OPEN
    assert "timeout" in (store.view.last_error or "")
    await store.close()


@pytest.mark.timeout(120)
async def test_a_server_gone_deaf_mid_stream_opens_the_breaker_and_loses_nothing(
    db_proxy: TcpProxy,
    pipeline_environ: dict[str, str],
    spool: SpoolAppender,
    database_url: str,
) -> None:
    """Connected, then the server stops answering: the writer's statement is given up after
    the statement timeout plus the connect timeout (it never hangs), the breaker opens, the
    batches are buffered; once the server answers again everything is stored exactly once."""
    clock = [0.0]
    environ = (
        pipeline_environ
        | QUICK_TIMEOUTS
        | {
            "DATABASE_URL": proxy_url(database_url, db_proxy),
            "BRIDGE_BREAKER_FAIL_MAX": "1",
        }
    )
    writer = Writer(WriterSettings.from_environ(environ), monotonic=lambda: clock[0])
    lines = builders.snapshots(20)
    try:
        append(spool, lines[:5])
        assert (await writer.drain_once()).stored == 5

        db_proxy.deaf()
        append(spool, lines[5:10])
        started = time.monotonic()
        report = await asyncio.wait_for(writer.drain_once(), SILENT_BOUND_S)
        assert time.monotonic() - started < SILENT_BOUND_S
        assert (report.stored, report.buffered) == (0, 5)
        deaf_view = writer.store.view
        assert deaf_view.breaker is BreakerState.OPEN
        assert "no answer from the server within 2 s" in (deaf_view.last_error or "")

        append(spool, lines[10:15])  # the breaker is open: buffered without waiting at all
        started = time.monotonic()
        assert (await writer.drain_once()).buffered == 5
        assert time.monotonic() - started < 1.0

        db_proxy.healthy()
        clock[0] += 10.0  # past the breaker's reset timeout
        append(spool, lines[15:])
        assert (await asyncio.wait_for(writer.drain_once(), SILENT_BOUND_S)).stored == 5
        assert writer.store.view.breaker is BreakerState.CLOSED
    finally:
        await writer.close()

    replayer = Replayer(ReplayerSettings.from_environ(pipeline_environ))
    try:
        replayed = await replayer.drain_once()
    finally:
        await replayer.close()
    assert (replayed.stored, replayed.duplicates) == (10, 0)
    assert sorted(stored_ids(database_url)) == sorted(_ids(lines))


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("delay_s", "stored"),
    [
        # 0.05 s per chunk each way: slow, but answered within the 2-s bound: stored.
        pytest.param(0.05, True, id="slow-but-answering"),
        # 3 s per chunk: past the bound, the server is taken as unavailable, nothing hangs.
        pytest.param(3.0, False, id="slower-than-the-bound"),
    ],
)
async def test_a_slow_server_is_waited_for_only_within_the_bound(
    db_proxy: TcpProxy, database_url: str, tmp_path: Path, delay_s: float, stored: bool
) -> None:
    """A slow server that answers within the bound stores the batch; one slower than it is taken as
    unavailable and nothing hangs."""
    settings = DatabaseSettings.from_environ(
        {"DATABASE_URL": proxy_url(database_url, db_proxy)} | QUICK_TIMEOUTS, var_dir=tmp_path
    )
    store = DatabaseStore("test", settings, application_name="test")
    try:
        await store.ensure_schema()
        db_proxy.slow(delay_s)
        started = time.monotonic()
        result = await asyncio.wait_for(store.store(builders.snapshots(3)), SILENT_BOUND_S)
        elapsed_s = time.monotonic() - started
    finally:
        await store.close()
    assert isinstance(result, NotStored) is not stored
    assert elapsed_s < SILENT_BOUND_S
    assert len(stored_ids(database_url)) == (3 if stored else 0)


@pytest.mark.timeout(60)
async def test_the_history_maintenance_gives_up_on_a_server_gone_deaf(
    db_proxy: TcpProxy, pipeline_environ: dict[str, str], database_url: str
) -> None:
    """The replayer's maintenance step runs before each drain: connected, then the server stops
    answering, the step is given up within the bound (it never holds up the replay for good),
    and the next one, once the server answers, works on a new connection."""
    environ = (
        pipeline_environ | QUICK_TIMEOUTS | {"DATABASE_URL": proxy_url(database_url, db_proxy)}
    )
    replayer = Replayer(ReplayerSettings.from_environ(environ))
    try:
        await replayer.store.ensure_schema()  # as its run() does first
        assert await replayer.maintain_history() is not None
        db_proxy.deaf()
        started = time.monotonic()
        assert await asyncio.wait_for(replayer.maintain_history(), SILENT_BOUND_S) is None
        assert time.monotonic() - started < SILENT_BOUND_S
        db_proxy.healthy()
        assert await replayer.maintain_history() is not None
    finally:
        await replayer.close()
