"""The P&L explain in a real PostgreSQL: the sink stores each interval and its positions once,
the daily score view (migration 007) gives the hand-worked score of a day, and the alert
figures give the score of the day so far as of each snapshot."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest

from collector.explain import spearman
from database import reads
from database.sink import RecordSink
from shared import records
from tests import builders

# (actual, explained) of four scored intervals, worked by hand: |unexplained| 2, 5, 0, 10 of
# Σ|actual| 100 -> explained share 0.83; ranks of explained 2, 1, 3.5, 3.5 (a tie) against
# actual's 2, 1, 3, 4 -> Spearman 4.5 / sqrt(4.5 x 5) = 3 / sqrt(10); the worst is the 4th.
_DAY = [(10.0, 8.0), (-20.0, -25.0), (30.0, 30.0), (40.0, 30.0)]


def _lines() -> list[bytes]:
    scored = [
        builders.pnl_explain(tick=tick, actual=actual, explained=explained)
        for tick, (actual, explained) in enumerate(_DAY, start=1)
    ]
    # A fill: far off, and left out of the score (only counted).
    filled = builders.pnl_explain(
        tick=5, actual=1000.0, explained=0.0, marks=("positions_changed",)
    )
    missing = builders.pnl_explain(tick=6, actual=None, explained=None, marks=("input_missing",))
    next_day = replace(
        builders.pnl_explain(tick=7, actual=5.0, explained=4.0),
        ts=builders.EPOCH + timedelta(days=1),
        start_ts=builders.EPOCH + timedelta(days=1, seconds=-5),
        id=records.explain_id("DU0001", builders.EPOCH + timedelta(days=1)),
    )
    return [records.encode(record) for record in (*scored, filled, missing, next_day)]


async def test_each_interval_and_its_positions_are_stored_once(
    sink: RecordSink, database_url: str
) -> None:
    """Seven intervals, two positions each; delivered twice, stored once; the residual is
    actual - explained, unknown where either is."""
    lines = _lines()
    first = await sink.store(lines)
    again = await sink.store(lines)
    assert (first.stored, first.rejected) == (7, [])
    assert (again.stored, again.duplicates) == (0, 7)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT actual_pnl, explained_pnl, unexplained_pnl, marks, missing, delta_pnl,"
            " underlying_symbols, underlying_rows FROM pnl_explain ORDER BY ts"
        )
        rows = await cursor.fetchall()
        cursor = await conn.execute(
            "SELECT conid, delta_pnl, linear_pnl, explained_pnl, missing, actual_pnl"
            " FROM pnl_explain_positions WHERE ts = %s ORDER BY conid",
            (builders.EPOCH + timedelta(seconds=5),),
        )
        positions = await cursor.fetchall()
    assert [row[:3] for row in rows[:4]] == [(a, e, a - e) for a, e in _DAY]
    assert rows[4][3] == ["positions_changed"]
    assert rows[5][2:5] == (None, ["input_missing"], {"no_implied_vol": 1})
    assert rows[0][5:] == (100.0, ["ES"], [[100.0, 4.0, -2.0, 1.0, 15.0, 118.0]])
    assert positions == [
        (716002, 100.0, None, 103.0, None, 110.0),  # the option: its terms, no linear P&L
        (495512563, None, 15.0, 15.0, None, 20.0),  # the future: linear only
    ]


async def test_why_a_positions_actual_is_unknown_is_stored_beside_it(
    sink: RecordSink, database_url: str
) -> None:
    """The future in another currency than the base: its actual NULL and `actual_missing`
    pnl_currency_unstated (migration 014); the option's actual known, no reason."""
    record = builders.pnl_explain()
    option, future = record.position_rows
    unstated = replace(
        record,
        position_rows=(option, (*future[:-1], None)),
        position_actual_missing=(None, "pnl_currency_unstated"),
    )
    assert (await sink.store([records.encode(unstated)])).stored == 1
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT conid, actual_pnl, actual_missing FROM pnl_explain_positions ORDER BY conid"
        )
        positions = await cursor.fetchall()
    assert positions == [(716002, 110.0, None), (495512563, None, "pnl_currency_unstated")]


async def test_the_daily_score_view_gives_the_hand_worked_score(
    sink: RecordSink, database_url: str
) -> None:
    """pnl_explain_daily: share 0.83, Spearman 3/sqrt(10) with a tie, the worst interval 10 at
    the fourth; the marked intervals counted, not scored; the next day on its own row."""
    await sink.store(_lines())
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT scored, not_scored, explained_share, spearman, worst_unexplained, worst_at"
            " FROM pnl_explain_daily WHERE account = 'DU0001' ORDER BY day"
        )
        days = await cursor.fetchall()
    first, second = days
    assert first[:2] == (4, 2)
    assert first[2] == pytest.approx(0.83, abs=1e-12)
    assert first[3] == pytest.approx(3 / math.sqrt(10), abs=1e-12)
    assert first[4:] == (10.0, builders.EPOCH + timedelta(seconds=20))
    assert second[:3] == (1, 0, pytest.approx(0.8))  # 1 - 1/5
    assert second[3] is None  # fewer than three intervals: no correlation


async def test_the_rollup_sums_scored_intervals_per_minute_hour_and_day(
    sink: RecordSink, database_url: str
) -> None:
    """pnl_explain_rollup: the first day's six intervals fall in one minute (14:30), one hour
    (14:00) and one day; only the four scored ones are summed."""
    await sink.store(_lines())
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT width, bucket, scored, not_scored, actual_pnl, explained_pnl"
            " FROM pnl_explain_rollup WHERE bucket <= %s ORDER BY width",
            (builders.EPOCH,),
        )
        rows = await cursor.fetchall()
    total_actual = sum(actual for actual, _ in _DAY)
    total_explained = sum(explained for _, explained in _DAY)
    day = builders.EPOCH.replace(hour=0, minute=0)
    buckets = {"1d": day, "1h": builders.EPOCH.replace(minute=0), "1m": builders.EPOCH}
    assert rows == [
        (width, bucket, 4, 2, total_actual, total_explained) for width, bucket in buckets.items()
    ]


# Twelve scored intervals (EXPLAIN_MIN_SCORED), worked by hand: actual 10 x k; explained the
# same but 20 at the 3rd (|unexplained| 10) and 100 at the 12th (20): share 1 - 30 / 780 = 25/26,
# the worst 20.
_SO_FAR = [(10.0 * k, {3: 20.0, 12: 100.0}.get(k, 10.0 * k)) for k in range(1, 13)]


async def test_the_alert_figures_score_the_day_so_far_from_the_twelfth_interval(
    sink: RecordSink, database_url: str
) -> None:
    """As of each snapshot: unknown for the first eleven intervals, then the hand-worked share
    and worst and the pure Spearman of the same pairs; a marked interval (a fill far off) and
    the day before (far off too) change nothing."""
    assert len(_SO_FAR) == reads.EXPLAIN_MIN_SCORED
    lines = [builders.snapshot_v2(tick=tick) for tick in range(1, 14)]
    lines += [
        records.encode(builders.pnl_explain(tick=tick, actual=actual, explained=explained))
        for tick, (actual, explained) in enumerate(_SO_FAR, start=1)
    ]
    lines.append(
        records.encode(
            builders.pnl_explain(tick=13, actual=1e6, explained=0.0, marks=("positions_changed",))
        )
    )
    yesterday = builders.EPOCH - timedelta(days=1)
    lines.append(
        records.encode(
            replace(
                builders.pnl_explain(tick=1, actual=1e6, explained=0.0),
                ts=yesterday,
                start_ts=yesterday - timedelta(seconds=5),
                id=records.explain_id("DU0001", yesterday),
            )
        )
    )
    assert (await sink.store(lines)).rejected == []
    figures = tuple(reads.EXPLAIN_FIGURES)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await reads.unseen_snapshots(
            conn, figures, {"DU0001": (builders.EPOCH, builders.EPOCH + timedelta(minutes=5))}
        )
    assert [row[1] for row in rows] == [
        builders.EPOCH + timedelta(seconds=5 * tick) for tick in range(1, 14)
    ]
    assert all(row[2:] == (None, None, None) for row in rows[:11])
    expected_spearman = spearman([e for _, e in _SO_FAR], [a for a, _ in _SO_FAR])
    for row in rows[11:]:
        share, rank_correlation, worst = row[2:]
        assert share == pytest.approx(25 / 26, abs=1e-12)
        assert rank_correlation == pytest.approx(expected_spearman, abs=1e-12)
        assert worst == 20.0
