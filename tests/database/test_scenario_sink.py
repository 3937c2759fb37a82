"""Scenario records into `scenario_pnl` on a real PostgreSQL: every array as sent, once; the
legs of the newest worst loss read back, the largest loss first."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

from database import reads
from database.sink import RecordSink
from shared import records
from tests import builders

TS = datetime(2026, 12, 7, 15, 0, 5, tzinfo=UTC)
GRID = tuple(float(i - 30) * 1.5 for i in range(60))


def _scenario(account: str) -> records.Scenario:
    missing = {"contributing": 0, "missing": 1, "reasons": {"no_implied_vol": 1}}
    return records.Scenario(
        id=records.scenario_id(account, TS),
        ts=TS,
        account=account,
        mode="PORTAL",
        currency="EUR",
        grid=GRID,
        beta_grid=tuple(-value for value in GRID),
        delta_gamma_10=(-40.0, 41.0),
        completeness={"grid": {"contributing": 1, "missing": 1, "reasons": {"no_implied_vol": 1}}},
        underlyings={
            "AAPL": records.UnderlyingScenario(GRID, (-40.0, 41.0), {}),
            "QQQ": records.UnderlyingScenario(None, None, {"grid": missing}),
        },
    )


async def test_a_scenario_is_stored_once_with_its_arrays(
    sink: RecordSink, database_url: str
) -> None:
    """The grids as float8 arrays (two-dimensional per underlying, a row of NULLs where
    nothing contributed), the worst P&L and its index beside them; sent twice, stored once."""
    line = records.encode(_scenario("DU1"))
    first = await sink.store([line])
    again = await sink.store([line])
    assert (first.stored, first.rejected, again.stored, again.duplicates) == (1, [], 0, 1)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT currency, grid, worst_pnl, worst_scenario, beta_worst_pnl,"
            " beta_worst_scenario, delta_gamma_10, completeness, underlying_symbols,"
            " underlying_grids[1:2][60:60], underlying_worst_pnl, underlying_worst_scenario,"
            " underlying_completeness FROM scenario_pnl"
        )
        row = await cursor.fetchone()
    assert row is not None
    assert row[0] == "EUR"
    assert row[1] == list(GRID)
    assert (row[2], row[3]) == (min(GRID), GRID.index(min(GRID)))
    assert (row[4], row[5]) == (-max(GRID), GRID.index(max(GRID)))
    assert row[6] == [-40.0, 41.0]
    assert row[7] == json.loads(line)["completeness"]
    assert row[8] == ["AAPL", "QQQ"]
    assert row[9] == [[GRID[59]], [None]]
    assert (row[10], row[11]) == ([min(GRID), None], [0, None])
    assert row[12] == {"QQQ": _scenario("DU1").underlyings["QQQ"].completeness}


async def test_a_bad_scenario_line_is_rejected_and_the_rest_stored(
    sink: RecordSink, database_url: str
) -> None:
    """A grid of 59 numbers is refused by the table's check; the good line beside it lands."""
    body = json.loads(records.encode(_scenario("DU2")))
    body["grid"] = body["grid"][:59]
    body["worst_pnl"], body["worst_scenario"] = min(body["grid"]), 0
    bad = json.dumps(body).encode() + b"\n"
    result = await sink.store([records.encode(_scenario("DU1")), bad])
    assert result.stored == 1
    assert [line for line, _ in result.rejected] == [bad]
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute("SELECT account FROM scenario_pnl")
        assert await cursor.fetchall() == [("DU1",)]


async def test_the_readmes_scenario_query_returns_the_worst_loss(
    sink: RecordSink, database_url: str
) -> None:
    """README.md's "Scenario P&L" query gives each account's latest worst P&L and its index."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("### Scenario P&L", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    assert (await sink.store([records.encode(_scenario("DU1"))])).rejected == []
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (await conn.execute(block.strip().rstrip(";"))).fetchall()
    assert rows == [("DU1", TS, "EUR", min(GRID), GRID.index(min(GRID)))]


async def test_the_legs_of_the_newest_worst_loss_largest_loss_first(
    sink: RecordSink, database_url: str
) -> None:
    """Two grids of DU1 with legs: the read takes the newer one's, the stock's -50 before the
    put's +5 (they add up to its worst, -45), each described by its newest position_legs row;
    a leg stored nowhere in position_legs keeps its P&L with NULL terms; no beta legs: none."""
    older_ts = builders.EPOCH + timedelta(seconds=5)
    newer_ts = builders.EPOCH + timedelta(seconds=10)
    two = {"grid": {"contributing": 2, "missing": 0, "reasons": {}}}
    three = {"grid": {"contributing": 3, "missing": 0, "reasons": {}}}
    older = dataclasses.replace(
        _scenario("DU1"), id=records.scenario_id("DU1", older_ts), ts=older_ts, beta_grid=None,
        completeness=two, worst_legs=((2, -46.0), (4, 1.0)),
    )  # fmt: skip
    newer = dataclasses.replace(
        older, id=records.scenario_id("DU1", newer_ts), ts=newer_ts, completeness=three,
        worst_legs=((4, -50.0), (99, 0.0), (2, 5.0)),
    )  # fmt: skip
    lines = [records.encode(builders.LEGS), records.encode(older), records.encode(newer)]
    assert (await sink.store(lines)).rejected == []
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        legs = await reads.worst_loss_legs(conn, "DU1")
        beta = await reads.worst_loss_legs(conn, "DU1", beta_weighted=True)
    assert {
        (row["ts"], row["currency"], row["worst_pnl"], row["worst_scenario"]) for row in legs
    } == {(newer_ts, "EUR", min(GRID), 0)}
    assert [
        (row["conid"], row["pnl"], row["symbol"], row["sec_type"], row["quantity"], row["strike"],
         row["expiry"], row["option_right"])
        for row in legs
    ] == [
        (4, -50.0, "AAPL", "STK", 100.0, None, None, None),
        (99, 0.0, None, None, None, None, None, None),
        (2, 5.0, "AAPL", "OPT", -1.0, 200.0, date(2026, 4, 11), "P"),
    ]  # fmt: skip
    assert sum(row["pnl"] for row in legs) == min(GRID)
    assert beta == []


async def test_grids_are_kept_to_the_stated_precision_and_the_worst_exactly(
    sink: RecordSink, database_url: str
) -> None:
    """Migration 010: each P&L of a grid is stored as float4 and read back within 2^-23 of
    itself (7 significant digits: 12 cents of $1,000,000, docs/scenarios.md "Precision"); the
    worst P&L beside it is the collector's float8, exactly."""
    fine = tuple(-1_234_567.891 + 98_765.4321 * i for i in range(60))
    record = records.Scenario(
        id=records.scenario_id("DU3", TS),
        ts=TS,
        account="DU3",
        mode="SOCKET",
        currency="USD",
        grid=fine,
        beta_grid=None,
        delta_gamma_10=(-123_456.789, 234_567.891),
        completeness={},
        underlyings={"SPY": records.UnderlyingScenario(fine, (-123_456.789, 234_567.891), {})},
    )
    assert (await sink.store([records.encode(record)])).rejected == []
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT grid, worst_pnl, delta_gamma_10, underlying_grids[1:1][1:60],"
            " underlying_worst_pnl FROM scenario_pnl WHERE account = 'DU3'"
        )
        row = await cursor.fetchone()
    assert row is not None
    grid, worst, delta_gamma, underlying, underlying_worst = row
    for stored, sent in zip(
        grid + delta_gamma + underlying[0], (*fine, -123_456.789, 234_567.891, *fine), strict=True
    ):
        assert abs(stored - sent) <= abs(sent) * 2.0**-23
    assert grid != list(fine)  # float4 indeed: the stated precision, not more
    assert (worst, underlying_worst) == (min(fine), [min(fine)])
