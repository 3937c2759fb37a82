"""Migration 011 on the real server: the P&L explain's tables, unpartitioned with rows, become
partitioned by day with every row kept and the rollup and day-score views answering as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from database import history
from database.schema import bootstrap
from database.sink import RecordSink
from shared import records
from tests import builders

BEFORE_011 = 10
EPOCH = datetime(2026, 3, 2, 23, 59, 50, tzinfo=UTC)  # the rows straddle midnight
# (end, actual, explained, marks) of four intervals over two UTC days.
INTERVALS = [
    (EPOCH, 10.0, 8.0, []),
    (EPOCH + timedelta(seconds=5), -20.0, -25.0, []),
    (EPOCH + timedelta(seconds=10), 30.0, 30.0, []),
    (EPOCH + timedelta(seconds=15), 1000.0, 0.0, ["positions_changed"]),
]
SELECTS = {
    "pnl_explain": "SELECT * FROM pnl_explain ORDER BY account, ts",
    "pnl_explain_positions": "SELECT * FROM pnl_explain_positions ORDER BY account, ts, conid",
    "pnl_explain_rollup": "SELECT * FROM pnl_explain_rollup ORDER BY width, account, bucket",
    "pnl_explain_daily": "SELECT * FROM pnl_explain_daily ORDER BY account, day",
}


async def _connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def _everything(url: str) -> dict[str, list[tuple[Any, ...]]]:
    async with await _connect(url) as conn:
        return {
            name: await (await conn.execute(query)).fetchall() for name, query in SELECTS.items()
        }


async def test_the_explain_tables_become_partitioned_keeping_every_row(database_url: str) -> None:
    """Four intervals and their positions over two days, stored before 011: after it, the same
    rows (the residual computed again alike), the same view answers, one day partition for each
    day, a week ahead, the default one; a new interval stores; the key on (id, ts) holds."""
    async with await _connect(database_url) as conn:
        await bootstrap(conn, up_to=BEFORE_011)
        for end, actual, explained, marks in INTERVALS:
            await conn.execute(
                "INSERT INTO pnl_explain (account, ts, id, mode, start_ts, currency, actual_pnl,"
                " explained_pnl, delta_pnl, marks, underlying_symbols, underlying_rows)"
                " VALUES ('DU0001', %s, %s, 'SOCKET', %s, 'USD', %s, %s, %s, %s, '{ES}',"
                " '{{1, 2, 3, 4, 5, 6}}')",
                (end, records.explain_id("DU0001", end), end - timedelta(seconds=5), actual,
                 explained, explained, marks),
            )  # fmt: skip
            for conid in (716002, 495512563):
                await conn.execute(
                    "INSERT INTO pnl_explain_positions (account, ts, conid, delta_pnl,"
                    " explained_pnl, actual_pnl) VALUES ('DU0001', %s, %s, %s, %s, %s)",
                    (end, conid, explained / 2, explained / 2, actual / 2),
                )
    before = await _everything(database_url)
    assert [len(rows) for rows in before.values()] == [4, 8, 6, 2]

    async with await _connect(database_url) as conn:
        assert await bootstrap(conn, up_to=11) == [11]
    assert await _everything(database_url) == before
    async with await _connect(database_url) as conn:
        # The positions stay a partitioned table until migration 015 makes them arrays.
        await bootstrap(conn, up_to=14)

    async with await _connect(database_url) as conn:
        await conn.execute("SET TimeZone = 'UTC'")
        cursor = await conn.execute(
            "SELECT relname, relkind FROM pg_class"
            " WHERE relname IN ('pnl_explain', 'pnl_explain_positions') ORDER BY 1"
        )
        kinds = await cursor.fetchall()
        made = await history.partitions(conn, ["pnl_explain", "pnl_explain_positions"])
        cursor = await conn.execute(
            "SELECT count(*) FROM pnl_explain_default UNION ALL"
            " SELECT count(*) FROM pnl_explain_positions_default"
        )
        waiting = [row[0] for row in await cursor.fetchall()]
    assert kinds == [("pnl_explain", "p"), ("pnl_explain_positions", "p")]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for table in ("pnl_explain", "pnl_explain_positions"):
        days = {p.start for p in made if p.table == table}
        old_days = {datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)}
        assert old_days | {today + timedelta(days=n) for n in range(8)} == days, table
    assert waiting == [0, 0]  # every old row in its day's partition

    async with await _connect(database_url) as conn:
        await bootstrap(conn)  # the later migrations, which the sink below writes for
    sink = RecordSink(lambda: _connect(database_url))
    later = builders.pnl_explain(tick=1)
    result = await sink.store([records.encode(later), records.encode(later)])
    await sink.close()
    assert (result.stored, result.rejected) == (1, [])
    after = await _everything(database_url)
    assert (len(after["pnl_explain"]), len(after["pnl_explain_positions"])) == (5, 10)


async def test_an_interval_without_its_day_waits_in_the_default_partition_and_is_moved_in(
    database_url: str,
) -> None:
    """An interval of a day with no partition yet (a replay from before the install) is stored
    in the default partition; the maintenance makes its day and moves it in, the residual
    generated again there (PostgreSQL refuses to copy a value into a generated column)."""
    async with await _connect(database_url) as conn:
        await bootstrap(conn)
    sink = RecordSink(lambda: _connect(database_url))
    result = await sink.store([records.encode(builders.pnl_explain(actual=130.0, explained=118.0))])
    await sink.close()
    assert (result.stored, result.rejected) == (1, [])

    async def where() -> list[tuple[Any, ...]]:
        async with await _connect(database_url) as conn:
            cursor = await conn.execute(
                "SELECT tableoid::regclass::text, unexplained_pnl FROM pnl_explain"
            )
            return await cursor.fetchall()

    assert await where() == [("pnl_explain_default", 12.0)]
    async with await _connect(database_url) as conn:
        report = await history.maintain(conn, history.Retention(), builders.EPOCH)
    assert "pnl_explain_p20260302" in report.created
    assert await where() == [("pnl_explain_p20260302", 12.0)]
