"""Long charts read the rollups, over the real PostgreSQL with the maintenance that fills them.

The oracle is the same chart computed from raw rows only (the one query builder, told there are
no rollups). The rollups are made by the replayer's own step (`database.history.maintain`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from database import history
from database.settings import DatabaseSettings
from testkit.web import serving
from tests.fixtures.web import insert_snapshots, prepare_schema, snapshot_row
from web.chart_windows import Window, source, window
from web.figures import Columns
from web.reader import Reader, series_query

NOW = datetime(2026, 3, 2, 15, 0, 7, tzinfo=UTC)  # 7 s into a minute
HISTORY = timedelta(hours=3)


def _value(tick: int, seed: int) -> float | None:
    """A figure that moves every tick and is unknown now and then (never 0 for unknown)."""
    if (tick + seed) % 37 == 0:
        return None
    return round(1000 * math.sin(tick / (40 + seed)) + seed, 3)


def _row(account: str, tick: int, ts: datetime) -> dict[str, Any]:
    seed = 1 if account == "DU1" else 7
    return snapshot_row(
        account, ts,
        net_dollar_delta=_value(tick, seed), net_gamma=_value(tick, seed + 1),
        net_theta=_value(tick, seed + 2), net_vega=_value(tick, seed + 3),
        underlyings={"SPY": {"net_delta": float(tick)}} if tick % 3 else {"ES": {"net_delta": 1.0}},
    )  # fmt: skip


def _history(end: datetime) -> list[dict[str, Any]]:
    ticks = int(HISTORY.total_seconds()) // 5
    return [
        _row(account, tick, end - timedelta(seconds=5 * (ticks - tick)))
        for account in ("DU1", "DU2")
        for tick in range(ticks + 1)
    ]


async def _maintain(url: str, now: datetime) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await history.maintain(conn, history.Retention(), now)


async def _chart(url: str, columns: Columns, span: Window) -> list[dict[str, Any]]:
    query, params = series_query(columns, "DU1", span)
    async with (
        await psycopg.AsyncConnection.connect(url) as conn,
        conn.cursor(row_factory=dict_row) as cursor,
    ):
        await cursor.execute(query, params)
        return await cursor.fetchall()


async def _columns(url: str, tmp_path: Path) -> Columns:
    reader = Reader(DatabaseSettings.from_environ({"DATABASE_URL": url}, var_dir=tmp_path))
    try:
        return (await reader.schema()).value
    finally:
        await reader.close()


def _raw_only(columns: Columns) -> Columns:
    return replace(columns, rollups={})


SPANS = [
    # 10-min buckets over 3 h, starting 13 s past a minute: the 1-minute rollup.
    Window("10m", NOW - HISTORY + timedelta(seconds=13), NOW, 600),
    # 1-h buckets starting 11:59:54: the hourly rollup for 12:00-15:00.
    Window("1h", NOW - HISTORY - timedelta(seconds=13), NOW, 3600),
    # 1-min buckets over the last 40 min.
    Window("1m", NOW - timedelta(minutes=40), NOW, 60),
]


async def test_a_long_range_read_through_rollups_equals_the_raw_series(
    database_url: str, tmp_path: Path
) -> None:
    """Over a week of rows rolled up, each long window read through its rollup table gives the same
    last, min and max per bucket as reading the raw rows."""
    await prepare_schema(database_url)
    insert_snapshots(database_url, _history(NOW))
    await _maintain(database_url, NOW)
    columns = await _columns(database_url, tmp_path)
    assert set(columns.rollups) == {"portfolio_greeks_1m", "portfolio_greeks_1h"}
    for span, table in zip(
        SPANS, ["portfolio_greeks_1m", "portfolio_greeks_1h", "portfolio_greeks_1m"], strict=True
    ):
        assert source(span, set(columns.rollups)).rollup == table
        rolled = await _chart(database_url, columns, span)
        raw = await _chart(database_url, _raw_only(columns), span)
        assert len(raw) > 2
        assert rolled == raw, span.name

    # The rollup is what is read for whole minutes: a value planted in one shows in its bucket.
    planted = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE portfolio_greeks_1m SET net_theta_min = -1e9"
            " WHERE account = 'DU1' AND bucket = %s",
            (planted,),
        )
    rolled = await _chart(database_url, columns, SPANS[0])
    assert [row["net_theta__min"] for row in rolled if row["bucket"] == planted] == [-1e9]


async def test_the_newest_minutes_and_a_late_row_show_before_they_are_rolled_up(
    database_url: str, tmp_path: Path, web_environ: dict[str, str]
) -> None:
    """Rows stored after the last rollup (the newest minutes, and a late row with a new low inside a
    minute already rolled up) show on the chart at once."""
    await prepare_schema(database_url)
    insert_snapshots(database_url, _history(NOW))
    await _maintain(database_url, NOW)
    # Stored after the replayer's last maintenance: two new minutes, and a late row inside a
    # rolled-up minute an hour back with a new low.
    later = NOW + timedelta(minutes=2)
    newest = [_row("DU1", 10_000 + n, NOW + timedelta(seconds=5 * n)) for n in range(1, 25)]
    late = snapshot_row("DU1", NOW - timedelta(hours=1, seconds=2), net_theta=-5000.0)
    insert_snapshots(database_url, [*newest, late])
    columns = await _columns(database_url, tmp_path)
    span = Window("10m", NOW - HISTORY + timedelta(seconds=13), later, 600)
    hourly = Window("1h", NOW - HISTORY - timedelta(seconds=13), later, 3600)

    for each in (span, hourly):
        rolled = await _chart(database_url, columns, each)
        assert rolled == await _chart(database_url, _raw_only(columns), each), each.name
        assert rolled[-1]["last_ts"] == newest[-1]["ts"]
        assert min(row["net_theta__min"] for row in rolled) == -5000.0

    # Through the web program: the 5-day window (600-s buckets) ends with the newest row.
    async with serving(web_environ, clock=lambda: later) as (server, _base):
        answer = await server.reader.series("DU1", window("5d", later))
    assert answer.value[-1]["last_ts"] == newest[-1]["ts"]
    assert answer.value[-1]["net_dollar_delta__last"] == newest[-1]["net_dollar_delta"]

    # Once rolled up, the same charts again, now from the rollups.
    await _maintain(database_url, later)
    for each in (span, hourly):
        rolled = await _chart(database_url, columns, each)
        assert rolled == await _chart(database_url, _raw_only(columns), each), each.name
