"""The P&L explain's stored rollups and day scores (migration 012) on the real server: the
maintenance rolls a hand-worked table up into the sums a person computes, scores a day that is
over with the hand-computed Spearman correlation, folds in an interval replayed after its minute
was rolled up, changes nothing when run again, and its tables keep answering once the raw day
partitions are dropped. The views read the same before the maintenance (from the raw rows) and
after (from the stored tables)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from database import history
from database.history import HistoryKeeper, Retention
from database.schema import bootstrap
from database.sink import RecordSink
from shared import records
from tests import builders

DAY_1 = datetime(2026, 3, 2, tzinfo=UTC)
DAY_2 = DAY_1 + timedelta(days=1)
AT = builders.EPOCH  # 14:30 on day 1
TERMS = (100.0, 4.0, -2.0, 1.0, 15.0)  # each interval's delta, gamma, theta, vega, linear


def _interval(
    end: datetime, actual: float | None, explained: float | None, marks: tuple[str, ...] = ()
) -> bytes:
    record = builders.pnl_explain(actual=actual, explained=explained, marks=marks)
    moved = replace(
        record,
        id=records.explain_id(record.account, end),
        ts=end,
        start_ts=end - timedelta(seconds=5),
    )
    return records.encode(moved)


# The hand-worked table: (end, actual, explained, marks). Day 1: two scored intervals in the
# minute 14:30 and one in 14:31 (hour 14), and in 15:10 one scored, a fill, and an interval both
# filled and missing an input (unknown sums); day 2 starts with a rollover at midnight.
TABLE = [
    (AT + timedelta(seconds=5), 10.0, 8.0, ()),
    (AT + timedelta(seconds=10), -20.0, -25.0, ()),
    (AT + timedelta(minutes=1), 30.0, 30.0, ()),
    (AT + timedelta(minutes=40), 40.0, 30.0, ()),
    (AT + timedelta(minutes=40, seconds=5), 1000.0, 0.0, ("positions_changed",)),
    (AT + timedelta(minutes=40, seconds=10), None, None, ("positions_changed", "input_missing")),
    (DAY_2, 5.0, 4.0, ("pnl_rolled_over",)),
    (DAY_2 + timedelta(seconds=5), 6.0, 6.0, ()),
]
# Per bucket, worked by hand from TABLE: scored, not scored, positions_changed,
# pnl_rolled_over, input_missing; actual, explained, unexplained, Σ|actual|, Σ|unexplained| of
# the scored; the worst |unexplained| and its end (the terms are scored x TERMS).
MINUTES = {
    AT: (2, 0, 0, 0, 0, -10.0, -17.0, 7.0, 30.0, 7.0, 5.0, AT + timedelta(seconds=10)),
    AT + timedelta(minutes=1): (1, 0, 0, 0, 0, 30.0, 30.0, 0.0, 30.0, 0.0, 0.0,
                                AT + timedelta(minutes=1)),
    AT + timedelta(minutes=40): (1, 2, 2, 0, 1, 40.0, 30.0, 10.0, 40.0, 10.0, 10.0,
                                 AT + timedelta(minutes=40)),
    DAY_2: (1, 1, 0, 1, 0, 6.0, 6.0, 0.0, 6.0, 0.0, 0.0, DAY_2 + timedelta(seconds=5)),
}  # fmt: skip
HOURS = {
    AT.replace(minute=0): (3, 0, 0, 0, 0, 20.0, 13.0, 7.0, 60.0, 7.0, 5.0,
                           AT + timedelta(seconds=10)),
    AT.replace(minute=0) + timedelta(hours=1): MINUTES[AT + timedelta(minutes=40)],
    DAY_2: MINUTES[DAY_2],
}  # fmt: skip
DAYS = {
    DAY_1: (4, 2, 2, 0, 1, 60.0, 43.0, 17.0, 100.0, 17.0, 10.0, AT + timedelta(minutes=40)),
    DAY_2: MINUTES[DAY_2],
}
# Day 1's Spearman correlation by hand: the scored intervals' explained (8, -25, 30, 30) rank
# 2, 1, 3.5, 3.5 (the tie at its average rank), their actual (10, -20, 30, 40) 2, 1, 3, 4;
# Pearson's over the ranks: 4.5 / sqrt(4.5 x 5) = 3 / sqrt(10). Day 2 has one scored: none.
SPEARMAN = {DAY_1: 3 / math.sqrt(10), DAY_2: None}
_COLUMNS = (
    "scored, not_scored, positions_changed, pnl_rolled_over, input_missing, actual_pnl,"
    " explained_pnl, unexplained_pnl, abs_actual_pnl, abs_unexplained_pnl, worst_unexplained,"
    " worst_at, delta_pnl, gamma_pnl, theta_pnl, vega_pnl, linear_pnl, currency"
)
VIEWS = {
    "pnl_explain_rollup": "SELECT * FROM pnl_explain_rollup ORDER BY width, account, bucket",
    "pnl_explain_daily": "SELECT * FROM pnl_explain_daily ORDER BY account, day",
}


def _expected(buckets: dict[datetime, tuple[Any, ...]]) -> dict[datetime, tuple[Any, ...]]:
    return {
        bucket: (*sums, *(sums[0] * term for term in TERMS), "USD")
        for bucket, sums in buckets.items()
    }


async def _connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def _stored(url: str, table: str) -> dict[datetime, tuple[Any, ...]]:
    async with await _connect(url) as conn:
        cursor = await conn.execute(
            f"SELECT bucket, {_COLUMNS} FROM {table} WHERE account = 'DU0001' ORDER BY bucket"  # noqa: S608  # the test's own names
        )
        return {row[0]: tuple(row[1:]) for row in await cursor.fetchall()}


async def _views(url: str) -> dict[str, list[tuple[Any, ...]]]:
    async with await _connect(url) as conn:
        return {name: await (await conn.execute(query)).fetchall() for name, query in VIEWS.items()}


async def _maintain(url: str, now: datetime, retention: Retention | None = None) -> Any:
    async with await _connect(url) as conn:
        return await history.maintain(conn, retention or Retention(), now)


async def _store(sink: RecordSink, rows: Sequence[tuple[Any, ...]]) -> int:
    result = await sink.store([_interval(*row) for row in rows])
    assert result.rejected == []
    return result.stored


def _close(
    got: Sequence[tuple[Any, ...]], want: Sequence[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """`want` with each float replaced by `pytest.approx` of itself, for sums added up in
    another order."""
    assert len(got) == len(want)
    return [
        tuple(pytest.approx(v, abs=1e-9) if isinstance(v, float) else v for v in row)
        for row in want
    ]


async def test_the_stored_rollups_equal_the_hand_worked_sums(
    sink: RecordSink, database_url: str
) -> None:
    """Minutes, hours and days of the hand-worked table: the marked intervals counted (by mark),
    only the scored summed; the views answer the same before and after the maintenance."""
    await _store(sink, TABLE)
    live = await _views(database_url)
    report = await _maintain(database_url, DAY_2 + timedelta(hours=1))
    assert report.explain_minutes_rolled_up == len(MINUTES)
    assert await _stored(database_url, "pnl_explain_1m") == _expected(MINUTES)
    assert await _stored(database_url, "pnl_explain_1h") == _expected(HOURS)
    assert await _stored(database_url, "pnl_explain_1d") == _expected(DAYS)
    stored = await _views(database_url)
    for name in VIEWS:
        assert stored[name] == _close(stored[name], live[name]), name
    rollup = {(row[0], row[2]): row for row in stored["pnl_explain_rollup"]}
    # 007's columns as they were, then the residual, the share, the worst and the marks
    assert rollup["1d", DAY_1][3:] == (
        "USD", 4, 2, 60.0, 43.0, *(4 * term for term in TERMS), 17.0,
        pytest.approx(0.83), 10.0, AT + timedelta(minutes=40), 2, 0, 1,
    )  # fmt: skip


async def test_a_day_over_is_scored_with_the_hand_computed_spearman(
    sink: RecordSink, database_url: str
) -> None:
    """While day 1 is open its stored row has no correlation (the view scores it from the raw
    rows); once it is over the maintenance stores 3 / sqrt(10); day 2, one scored interval,
    none. The day view gives the hand-worked share, the worst and the counts by mark."""
    await _store(sink, TABLE)
    open_report = await _maintain(database_url, DAY_1 + timedelta(hours=23))
    async with await _connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT bucket, spearman, scored_at FROM pnl_explain_1d ORDER BY bucket"
        )
        while_open = await cursor.fetchall()
    assert open_report.explain_days_scored == 0
    assert while_open == [(DAY_1, None, None), (DAY_2, None, None)]
    live = (await _views(database_url))["pnl_explain_daily"]

    over = DAY_2 + timedelta(days=1, minutes=1)
    report = await _maintain(database_url, over)
    async with await _connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT bucket, spearman, scored_at FROM pnl_explain_1d ORDER BY bucket"
        )
        scored = await cursor.fetchall()
    assert report.explain_days_scored == 2
    assert [(bucket, at) for bucket, _spearman, at in scored] == [(DAY_1, over), (DAY_2, over)]
    assert scored[0][1] == pytest.approx(SPEARMAN[DAY_1], abs=1e-12)
    assert scored[1][1] is None
    days = (await _views(database_url))["pnl_explain_daily"]
    assert days == _close(days, live)
    assert days[0][:2] == ("DU0001", DAY_1.date())
    assert days[0][2:] == (
        4, 2, pytest.approx(0.83, abs=1e-12), pytest.approx(SPEARMAN[DAY_1], abs=1e-12),
        10.0, AT + timedelta(minutes=40), 2, 0, 1,
    )  # fmt: skip


async def test_an_interval_replayed_after_its_minute_was_rolled_up_is_folded_in(
    sink: RecordSink, database_url: str
) -> None:
    """Day 1 rolled up and scored; an interval of the 14:30 minute then arrives (a replay): the
    views count it at once (its minute is marked), and the history keeper's next step rolls
    its minute, hour and day up again and scores the day anew."""
    await _store(sink, TABLE)
    keeper = HistoryKeeper(lambda: _connect(database_url), Retention())
    over = DAY_2 + timedelta(days=1)
    try:
        await keeper.step(over)
        late = (AT + timedelta(seconds=15), -30.0, -20.0, ())  # |unexplained| 10, an earlier tie
        assert await _store(sink, [late]) == 1
        async with await _connect(database_url) as conn:
            cursor = await conn.execute("SELECT account, bucket FROM pnl_explain_pending")
            marked = await cursor.fetchall()
        live = await _views(database_url)
        report = await keeper.step(over + timedelta(minutes=1))
    finally:
        await keeper.close()
    assert marked == [("DU0001", AT)]
    assert (report.explain_minutes_rolled_up, report.explain_days_scored) == (1, 1)
    minute = (3, 0, 0, 0, 0, -40.0, -37.0, -3.0, 60.0, 17.0, 10.0, late[0])
    hour = (4, 0, 0, 0, 0, -10.0, -7.0, -3.0, 90.0, 17.0, 10.0, late[0])
    day = (5, 2, 2, 0, 1, 30.0, 23.0, 7.0, 130.0, 27.0, 10.0, late[0])
    assert (await _stored(database_url, "pnl_explain_1m"))[AT] == _expected({AT: minute})[AT]
    assert (await _stored(database_url, "pnl_explain_1h"))[AT.replace(minute=0)] == _expected(
        {AT: hour}
    )[AT]
    assert (await _stored(database_url, "pnl_explain_1d"))[DAY_1] == _expected({AT: day})[AT]
    stored = await _views(database_url)
    for name in VIEWS:
        assert stored[name] == _close(stored[name], live[name]), name
    # explained -25, -20, 8, 30, 30 rank 1 to 3, then 4.5 twice; actual -30, -20, 10, 30, 40
    # rank 1 to 5; paired by interval (3, 3), (1, 2), (4.5, 4), (4.5, 5), (2, 1): Pearson's
    # over the ranks 8.5 / sqrt(9.5 x 10)
    assert stored["pnl_explain_daily"][0][5] == pytest.approx(8.5 / math.sqrt(95), abs=1e-12)


async def test_the_maintenance_run_again_changes_nothing(
    sink: RecordSink, database_url: str
) -> None:
    """A second run takes no minute and scores no day, and the same intervals replayed are
    absorbed without marking a minute: every stored row stays as it was."""
    await _store(sink, TABLE)
    over = DAY_2 + timedelta(days=1)
    await _maintain(database_url, over)
    tables = ("pnl_explain_1m", "pnl_explain_1h", "pnl_explain_1d")

    async def everything() -> list[list[tuple[Any, ...]]]:
        async with await _connect(database_url) as conn:
            return [
                await (await conn.execute(f"SELECT * FROM {t} ORDER BY bucket")).fetchall()  # noqa: S608  # the test's own names
                for t in tables
            ]

    before = await everything()
    again = await _maintain(database_url, over)
    assert await _store(sink, TABLE) == 0
    replayed = await _maintain(database_url, over + timedelta(minutes=1))
    counts = [(r.explain_minutes_rolled_up, r.explain_days_scored) for r in (again, replayed)]
    assert counts == [(0, 0), (0, 0)]
    assert await everything() == before


async def test_the_rollups_and_scores_outlive_the_raw_partitions(
    sink: RecordSink, database_url: str
) -> None:
    """Rolled up and scored, then the raw days dropped past a 3-day retention: pnl_explain is
    empty, the views answer as before from the stored tables."""
    await _store(sink, TABLE)
    await _maintain(database_url, DAY_2 + timedelta(days=1))
    before = await _views(database_url)
    report = await _maintain(
        database_url, DAY_1 + timedelta(days=10), Retention(raw=timedelta(days=3))
    )
    async with await _connect(database_url) as conn:
        cursor = await conn.execute("SELECT count(*) FROM pnl_explain")
        raw = await cursor.fetchone()
    assert {"pnl_explain_p20260302", "pnl_explain_p20260303"} <= set(report.dropped)
    assert raw == (0,)
    assert await _views(database_url) == before
    assert len(before["pnl_explain_rollup"]) == len(MINUTES) + len(HOURS) + len(DAYS)


async def test_migration_012_rolls_up_the_intervals_stored_before_it(database_url: str) -> None:
    """Intervals stored under migration 011 are marked by 012 and rolled up by the first
    maintenance; the views answer as they did under 011's views meanwhile."""
    async with await _connect(database_url) as conn:
        await bootstrap(conn, up_to=11)
        for end, actual, explained, marks in TABLE:  # as 011's sink stored them
            await conn.execute(
                "INSERT INTO pnl_explain (account, ts, id, mode, start_ts, currency, actual_pnl,"
                " explained_pnl, delta_pnl, gamma_pnl, theta_pnl, vega_pnl, linear_pnl, marks,"
                " underlying_symbols) VALUES ('DU0001', %s, %s, 'SOCKET', %s, 'USD', %s, %s,"
                " %s, %s, %s, %s, %s, %s, '{ES}')",
                (end, records.explain_id("DU0001", end), end - timedelta(seconds=5), actual,
                 explained, *TERMS, list(marks)),
            )  # fmt: skip
    under_011 = await _views(database_url)
    async with await _connect(database_url) as conn:
        assert await bootstrap(conn, up_to=12) == [12]
        cursor = await conn.execute("SELECT count(*) FROM pnl_explain_pending")
        marked = await cursor.fetchone()
    assert marked == (len(MINUTES),)
    after = await _views(database_url)
    for name, width in (("pnl_explain_rollup", 13), ("pnl_explain_daily", 8)):
        kept = [row[:width] for row in after[name]]  # 007's columns; 012 adds more after them
        assert kept == _close(kept, under_011[name]), name
    await _maintain(database_url, DAY_2 + timedelta(days=1))
    assert await _stored(database_url, "pnl_explain_1d") == _expected(DAYS)
