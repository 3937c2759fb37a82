"""The alerter's running day score (alerter/day_score.py) against the SQL it replaces, in a real
PostgreSQL: as of each snapshot of a hand-built day, the figures reads.EXPLAIN_FIGURES computes
afresh per snapshot equal those carried from the intervals `reads.intervals_to_score` returns,
read at once or in two steps; at the day's end, both equal the view pnl_explain_daily."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest

from alerter.day_score import DayScores, as_of_each
from database import reads
from database.sink import RecordSink
from shared import records
from tests import builders

TICKS = 40
# Marked intervals: a fill far off (positions_changed) and one lacking an input (no sums).
FILLS = {8, 20}
MISSING = {15}


def _pair(tick: int) -> tuple[float, float]:
    """(actual, explained) of tick's interval: small integers, so both sides tie often; the
    explained the same through tick 14, so the correlation is unknown (no spread of ranks) for a
    while after the twelfth scored interval."""
    actual = float((tick * 7) % 5 - 2)
    explained = 1.0 if tick <= 14 else float((tick * 3) % 4 - 1)
    return actual, explained


def _lines() -> list[bytes]:
    lines = [builders.snapshot_v2(tick=tick) for tick in range(1, TICKS + 1)]
    for tick in range(1, TICKS + 1):
        if tick in FILLS:
            explain = builders.pnl_explain(
                tick=tick, actual=1e6, explained=0.0, marks=("positions_changed",)
            )
        elif tick in MISSING:
            explain = builders.pnl_explain(
                tick=tick, actual=None, explained=None, marks=("input_missing",)
            )
        else:
            actual, explained = _pair(tick)
            explain = builders.pnl_explain(tick=tick, actual=actual, explained=explained)
        lines.append(records.encode(explain))
    yesterday = builders.EPOCH - timedelta(days=1)  # another day: far off, in neither score
    lines.append(
        records.encode(
            replace(
                builders.pnl_explain(tick=1, actual=1e6, explained=-1e6),
                ts=yesterday,
                start_ts=yesterday - timedelta(seconds=5),
                id=records.explain_id("DU0001", yesterday),
            )
        )
    )
    return lines


def _same(carried: float | None, computed: float | None) -> bool:
    """Both unknown, or equal but for the order in which the sums were added."""
    if carried is None or computed is None:
        return carried is computed
    return carried == pytest.approx(computed, rel=1e-12, abs=1e-15)


async def test_the_running_score_equals_the_sql_as_of_each_snapshot(
    sink: RecordSink, database_url: str
) -> None:
    """Forty snapshots: the SQL's figures and the carried ones agree at every one (None through
    the 13th, where 12 intervals are scored, the 15th missing, and the correlation None while
    every explained ties), whether the intervals are read at once or after the 25th snapshot."""
    assert (await sink.store(_lines())).rejected == []
    figures = tuple(reads.EXPLAIN_FIGURES)
    window = {"DU0001": (builders.EPOCH, builders.EPOCH + timedelta(minutes=5))}
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        computed = await reads.unseen_snapshots(conn, figures, window)
        snapshots = [(account, ts) for account, ts, *_ in computed]
        assert len(snapshots) == TICKS
        at_once = DayScores()
        intervals = await reads.intervals_to_score(
            conn, at_once.to_read({"DU0001": (snapshots[0][1], snapshots[-1][1])})
        )
        carried = as_of_each(at_once, snapshots, intervals)
        in_two = DayScores()
        halves = []
        for part in (snapshots[:25], snapshots[25:]):
            ranges = in_two.to_read({"DU0001": (part[0][1], part[-1][1])})
            halves += as_of_each(in_two, part, await reads.intervals_to_score(conn, ranges))
        daily = await (
            await conn.execute(
                "SELECT scored, explained_share, spearman, worst_unexplained"
                " FROM pnl_explain_daily WHERE account = 'DU0001' AND day = %s",
                (builders.EPOCH.date(),),
            )
        ).fetchone()
    assert len(intervals) == TICKS  # the marked ones too, without their P&L
    scored_count = TICKS - len(FILLS) - len(MISSING)
    assert [row[3] is None for row in intervals].count(True) == len(FILLS) + len(MISSING)
    # Unknown until the 12th scored interval: the 13th snapshot (the 8th marked).
    assert [row[2] is None for row in computed].index(False) == 12
    assert any(row[3] is None for row in computed[12:])  # no spread of explained ranks yet
    assert any(row[3] is not None for row in computed)
    for (_account, _ts, *sql_figures), running, again in zip(
        computed, carried, halves, strict=True
    ):
        for name, value in zip(figures, sql_figures, strict=True):
            assert _same(running[name], value), name
            assert _same(again[name], value), name
    assert daily is not None
    scored, share, spearman, worst = daily
    last = carried[-1]
    assert scored == scored_count
    assert _same(last["explain_share"], share)
    assert _same(last["explain_spearman"], spearman)
    assert last["explain_worst_unexplained"] == worst
