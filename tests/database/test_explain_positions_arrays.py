"""Migration 015 on the real server: the P&L explain's positions become arrays of their
interval's row; the view `pnl_explain_positions` answers as the table did, for the rows stored
before it and for the sink's rows after it, and the drill-down (database/reads.py) with them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from database import reads
from database.schema import bootstrap
from database.sink import RecordSink
from shared import records
from tests import builders

BEFORE_015 = 14
END = datetime(2026, 3, 2, 14, 30, 5, tzinfo=UTC)
# (ts, conid, delta, gamma, theta, vega, linear, explained, missing, actual, actual_missing) as
# migrations 007 and 014 left the table: an option, a future, an option lacking its implied vol
# (terms and sum unknown), a position whose own actual is unknown (not in the base currency);
# and a second interval.
OLD_POSITIONS = [
    (END, 716002, 100.5, 4.25, -2.0, 1.0, None, 103.75, None, 110.01, None),
    (END, 495512563, None, None, None, None, 15.0, 15.0, None, 20.0, None),
    (END, 716003, None, None, -1.5, None, None, None, "no_implied_vol", -3.0, None),
    (END, 716004, 0.01, 0.0, 0.0, 0.0, None, 0.01, None, None, "pnl_currency_unstated"),
    (END + timedelta(seconds=5), 716002, -7.0, 0.5, -2.0, 0.0, None, -8.5, None, -9.0, None),
]
ALL_POSITIONS = "SELECT * FROM pnl_explain_positions ORDER BY account, ts, conid"


async def _connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def _store_before_015(conn: psycopg.AsyncConnection[Any]) -> None:
    """Two intervals and their positions in migration 007's table, a leg at the first tick,
    and a position whose interval is gone (its day dropped first)."""
    for end in (END, END + timedelta(seconds=5)):
        await conn.execute(
            "INSERT INTO pnl_explain (account, ts, id, mode, start_ts, currency, actual_pnl,"
            " explained_pnl, marks, missing, underlying_symbols) VALUES ('DU0001', %s, %s,"
            " 'SOCKET', %s, 'USD', NULL, NULL, '{input_missing}', '{\"no_implied_vol\": 1}',"
            " '{ES}')",
            (end, records.explain_id("DU0001", end), end - timedelta(seconds=5)),
        )
    orphan = (END - timedelta(seconds=5), 716002, *[1.0] * 6, None, 1.0, None)
    for row in [*OLD_POSITIONS, orphan]:
        await conn.execute(
            "INSERT INTO pnl_explain_positions (ts, conid, delta_pnl, gamma_pnl, theta_pnl,"
            " vega_pnl, linear_pnl, explained_pnl, missing, actual_pnl, actual_missing, account)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'DU0001')",
            row,
        )
    await conn.execute(
        "INSERT INTO position_legs (account, ts, mode, currency, conid, symbol, sec_type,"
        " quantity, strike, expiry, option_right) VALUES ('DU0001', %s, 'SOCKET', 'USD', 716002,"
        " 'ES', 'FOP', -2, 5000, '2026-03-20', 'C')",
        (END,),
    )


async def test_positions_stored_before_015_read_the_same_after_it(database_url: str) -> None:
    """Five positions of two intervals: after 015 the view gives every column of every row as
    the table did, the drill-down the same legs in the same order; the rows live in the
    intervals' arrays (a missing input only where one lacked it); the orphan is gone."""
    async with await _connect(database_url) as conn:
        await bootstrap(conn, up_to=BEFORE_015)
        await _store_before_015(conn)
        before = await (await conn.execute(ALL_POSITIONS)).fetchall()
        drill_down = await reads.explain_positions(conn, "DU0001", END)
        assert await bootstrap(conn, up_to=15) == [15]
        after = await (await conn.execute(ALL_POSITIONS)).fetchall()
        assert await reads.explain_positions(conn, "DU0001", END) == drill_down
        cursor = await conn.execute(
            "SELECT position_conids, position_rows, position_missing, position_actual_missing"
            " FROM pnl_explain ORDER BY ts"
        )
        arrays = await cursor.fetchall()
        cursor = await conn.execute(
            "SELECT relkind FROM pg_class WHERE relname = 'pnl_explain_positions'"
        )
        kind = await cursor.fetchone()
    assert len(before) == 6
    assert after == [row for row in before if row[1] != END - timedelta(seconds=5)]
    assert [row["conid"] for row in drill_down] == [716002, 495512563, 716004, 716003]
    assert (drill_down[0]["symbol"], drill_down[0]["strike"], drill_down[1]["symbol"]) == (
        "ES",
        5000.0,
        None,
    )
    assert arrays[0][0] == [716002, 716003, 716004, 495512563]
    assert arrays[0][2] == [None, "no_implied_vol", None, None]
    assert arrays[0][3] == [None, None, "pnl_currency_unstated", None]
    assert arrays[1] == ([716002], [[-7.0, 0.5, -2.0, 0.0, None, -8.5, -9.0]], None, None)
    assert kind == ("v",)


async def test_the_sink_stores_an_intervals_positions_in_its_row_once(
    sink: RecordSink, database_url: str
) -> None:
    """Delivered twice, stored once: the line's positions are the row's arrays, read back
    through the view as the record holds them; the missing inputs only when one lacked it."""
    lacking = builders.pnl_explain(tick=2, actual=None, explained=None, marks=("input_missing",))
    lacking = replace(
        lacking,
        position_rows=(
            (None, None, -2.0, None, None, None, 110.0),
            (*lacking.position_rows[1][:6], None),
        ),
        position_missing=("no_implied_vol", None),
        position_actual_missing=(None, "pnl_currency_unstated"),
    )
    lines = [records.encode(record) for record in (builders.pnl_explain(tick=1), lacking)]
    assert (await sink.store(lines)).stored == 2
    assert (await sink.store(lines)).duplicates == 2
    async with await _connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT position_conids, position_rows, position_missing, position_actual_missing"
            " FROM pnl_explain ORDER BY ts"
        )
        arrays = await cursor.fetchall()
        positions = await (await conn.execute(ALL_POSITIONS)).fetchall()
    complete = builders.pnl_explain(tick=1)
    conids = [716002, 495512563]
    assert arrays == [
        (conids, [list(row) for row in complete.position_rows], None, None),
        (
            conids,
            [list(row) for row in lacking.position_rows],
            ["no_implied_vol", None],
            [None, "pnl_currency_unstated"],
        ),
    ]
    assert positions == [
        ("DU0001", complete.ts, conid, *row[:6], None, row[6], None)
        for conid, row in zip(complete.position_conids, complete.position_rows, strict=True)
    ] + [
        ("DU0001", lacking.ts, 716002, *lacking.position_rows[0][:6], "no_implied_vol",
         lacking.position_rows[0][6], None),
        ("DU0001", lacking.ts, 495512563, *lacking.position_rows[1][:6], None,
         lacking.position_rows[1][6], "pnl_currency_unstated"),
    ]  # fmt: skip


async def test_arrays_out_of_step_are_refused(database_url: str) -> None:
    """The view reads the arrays by position: a row whose arrays differ in length is refused."""
    async with await _connect(database_url) as conn:
        await bootstrap(conn)
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute(
                "INSERT INTO pnl_explain (account, ts, id, mode, start_ts, marks,"
                " underlying_symbols, position_conids, position_rows) VALUES ('DU0001', %s,"
                " gen_random_uuid(), 'SOCKET', %s, '{input_missing}', '{}', '{1, 2}',"
                " '{{1, 2, 3, 4, 5, 6, 7}}')",
                (END, END - timedelta(seconds=5)),
            )
