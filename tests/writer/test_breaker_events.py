"""The database breakers' openings and closings are `api_logs` events, recorded by the writer
and the replayer through their own spools: against the real PostgreSQL behind a TCP proxy that
goes deaf, and stored once it answers, whatever restarted meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from database.circuit_breaker import BreakerState
from replayer.replayer import Replayer
from replayer.settings import ReplayerSettings
from shared.spool import SpoolAppender
from tests import builders
from tests.fixtures.pipeline import append
from tests.fixtures.proxy import QUICK_TIMEOUTS, SILENT_BOUND_S, TcpProxy, proxy_url
from writer.settings import WriterSettings
from writer.writer import Writer


def _breaker_rows(database_url: str) -> list[tuple[str, ...]]:
    """(event, level, process) of every breaker event stored, oldest first."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT event, level, details->>'process' FROM api_logs"
            " WHERE event LIKE 'breaker_%' ORDER BY ts"
        ).fetchall()
    return [(str(event), str(level), str(process)) for event, level, process in rows]


async def _stored_by_a_writer(environ: dict[str, str], database_url: str) -> list[tuple[str, ...]]:
    """Run a writer (straight to the database) until the spools are consumed; then
    `_breaker_rows`."""
    writer = Writer(WriterSettings.from_environ(environ))
    try:
        await writer.run_until_caught_up()
    finally:
        await writer.close()
    return _breaker_rows(database_url)


def _spooled(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(directory.glob("segment-*")))


def _through_proxy(environ: dict[str, str], database_url: str, proxy: TcpProxy) -> dict[str, str]:
    return (
        environ
        | QUICK_TIMEOUTS
        | {"DATABASE_URL": proxy_url(database_url, proxy), "BRIDGE_BREAKER_FAIL_MAX": "1"}
    )


@pytest.mark.timeout(120)
async def test_the_writer_records_its_breaker_through_its_own_spool(
    db_proxy: TcpProxy,
    pipeline_environ: dict[str, str],
    spool: SpoolAppender,
    database_url: str,
) -> None:
    """The server goes deaf: the breaker opens and `breaker_opened` waits in the writer's own
    spool, not in the buffer; once the server answers the breaker closes, and the writer
    started after this one stores both events, in order, naming the writer."""
    clock = [0.0]
    environ = _through_proxy(pipeline_environ, database_url, db_proxy)
    settings = WriterSettings.from_environ(environ)
    writer = Writer(settings, monotonic=lambda: clock[0])
    lines = builders.snapshots(15)
    try:
        append(spool, lines[:5])
        assert (await writer.drain_once()).stored == 5
        db_proxy.deaf()
        append(spool, lines[5:10])
        await asyncio.wait_for(writer.drain_once(), SILENT_BOUND_S)
        deaf_view = writer.store.view
        assert deaf_view.breaker is BreakerState.OPEN
        assert b'"breaker_opened"' in _spooled(settings.paths.writer_events_dir)
        assert b"breaker_opened" not in settings.paths.buffer_path.read_bytes()

        db_proxy.healthy()
        clock[0] += 10.0  # past the breaker's reset timeout
        append(spool, lines[10:])
        assert (await asyncio.wait_for(writer.drain_once(), SILENT_BOUND_S)).stored == 5
        assert writer.store.view.breaker is BreakerState.CLOSED
    finally:
        await writer.close()
    assert _breaker_rows(database_url) == []  # recorded, not stored yet: the writer stopped

    assert await _stored_by_a_writer(pipeline_environ, database_url) == [
        ("breaker_opened", "warning", "writer"),
        ("breaker_closed", "info", "writer"),
    ]


@pytest.mark.timeout(120)
async def test_the_replayer_records_its_breaker_for_the_writer_to_store(
    db_proxy: TcpProxy, pipeline_environ: dict[str, str], database_url: str
) -> None:
    """The replayer's breaker opens on a deaf server and closes once it answers; the writer
    tails the replayer's spool and stores both events, naming the replayer."""
    clock = [0.0]
    environ = _through_proxy(pipeline_environ, database_url, db_proxy)
    replayer = Replayer(ReplayerSettings.from_environ(environ), monotonic=lambda: clock[0])
    lines = builders.snapshots(10)
    replayer.buffer.append(lines)
    try:
        db_proxy.deaf()
        report = await asyncio.wait_for(replayer.drain_once(), SILENT_BOUND_S * 2)
        assert report.interrupted
        assert replayer.store.view.breaker is BreakerState.OPEN
        db_proxy.healthy()
        clock[0] += 10.0
        report = await asyncio.wait_for(replayer.drain_once(), SILENT_BOUND_S)
        assert (report.stored, replayer.store.view.breaker) == (10, BreakerState.CLOSED)
    finally:
        await replayer.close()

    assert await _stored_by_a_writer(pipeline_environ, database_url) == [
        ("breaker_opened", "warning", "replayer"),
        ("breaker_closed", "info", "replayer"),
    ]
