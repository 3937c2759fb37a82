"""Format 3 on the real server says what format 2 said: the same snapshots stored once in each
format read back the same through `snapshots` and `underlying_greeks`, and roll up to the same
minutes and hours. Format 2 is the reference here, not a computation of this test's own: its
rows are stored as they always were, and the rollups of format 2 are proved against an oracle in
test_history.py.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from database import history
from database.schema import bootstrap
from shared import records
from testkit.postgres import store_lines
from tests import builders

pytestmark = [pytest.mark.slow]

_TICKS = 36  # three minutes at 5 s


def _book(tick: int) -> records.Snapshot:
    """The trader's snapshot moving with the tick: figures scaled, ZC's greeks missing on odd
    ticks, an unknown account value on every third, QQQ held only on even ticks, every account
    figure complete on every fourth."""
    base = builders.trader_snapshot("DU_V2", tick)
    scale = 1.0 + tick / 97.0
    underlyings: dict[str, Any] = {}
    for symbol, values in base.underlyings.items():
        moved = {
            name: (value * scale if isinstance(value, float) else value)
            for name, value in values.items()
        }
        underlyings[symbol] = moved
    if tick % 2:
        zc = dict(underlyings["ZC"])
        zc["net_vega"] = None
        zc["completeness"] = {
            **zc["completeness"],
            "net_vega": {"contributing": 0, "missing": 2, "reasons": {"no_greek": 2}},
        }
        underlyings["ZC"] = zc
    else:
        underlyings["QQQ"] = {
            **underlyings["SPY"],
            "net_dollar_delta": -1234.5 * scale,
        }
    completeness = base.completeness
    if tick % 4 == 3:  # a minute's last tick among them: the rollups' last value
        completeness = {name: records.complete_counts(name, 7, 5) for name in records.FIGURES}
    return dataclasses.replace(
        base,
        completeness=completeness,
        net_dollar_delta=(base.net_dollar_delta or 0.0) * scale,
        daily_pnl=None if tick % 3 == 0 else base.daily_pnl,
        options_with_greeks=4 - tick % 2,
        underlyings=underlyings,
    )


def _as(snapshot: records.Snapshot, account: str, version: int) -> records.Snapshot:
    return dataclasses.replace(
        snapshot,
        account=account,
        id=records.snapshot_id(account, snapshot.ts),
        version=version,
    )


async def _stored(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await bootstrap(conn)
        await history.maintain(conn, history.Retention(), builders.EPOCH)
    book = [_book(tick) for tick in range(_TICKS)]
    lines = [records.encode(_as(s, "DU_V2", 2)) for s in book]
    lines += [records.encode(_as(s, "DU_V3", 3)) for s in book]
    result = await store_lines(url, lines)
    assert (result.stored, result.rejected) == (2 * _TICKS, [])
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await history.maintain(conn, history.Retention(), builders.EPOCH + timedelta(hours=2))


def _rows(url: str, query: str) -> dict[str, list[dict[str, Any]]]:
    """The rows of `query` by account, without the columns that name the account or format."""
    found: dict[str, list[dict[str, Any]]] = {"DU_V2": [], "DU_V3": []}
    with psycopg.connect(url) as conn:
        cursor = conn.execute(query)
        names = [column.name for column in cursor.description or []]
        for row in cursor.fetchall():
            values = dict(zip(names, row, strict=True))
            account = values.pop("account")
            for name in ("snapshot_id", "id", "format_version", "stored_at"):
                values.pop(name, None)
            found[account].append(values)
    return found


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM snapshots ORDER BY account, ts",
        "SELECT * FROM underlying_greeks ORDER BY account, ts, underlying",
        "SELECT * FROM portfolio_greeks_1m ORDER BY account, bucket",
        "SELECT * FROM portfolio_greeks_1h ORDER BY account, bucket",
        "SELECT * FROM underlying_greeks_1m ORDER BY account, underlying, bucket",
        "SELECT * FROM underlying_greeks_1h ORDER BY account, underlying, bucket",
    ],
)
async def test_format_3_reads_and_rolls_up_as_format_2(database_url: str, query: str) -> None:
    """Every figure, count and reason of format-3 rows equals the same snapshots in format 2,
    read in full and rolled up."""
    await _stored(database_url)
    found = _rows(database_url, query)
    assert len(found["DU_V2"]) > 0
    assert found["DU_V3"] == found["DU_V2"]


async def test_a_complete_format_3_row_stores_no_completeness_and_no_jsonb(
    database_url: str,
) -> None:
    """What makes a row lean: nothing stored for what is complete, the underlyings as arrays;
    the view still writes every figure's counts out."""
    snapshot = builders.trader_snapshot()
    complete = {
        symbol: {**values, "completeness": {
            name: records.complete_counts(name, values["position_count"], values["option_count"])
            for name in records.UNDERLYING_COMPLETENESS}}
        for symbol, values in snapshot.underlyings.items()
    }  # fmt: skip
    lean = dataclasses.replace(
        snapshot,
        underlyings=complete,
        completeness={name: records.complete_counts(name, 7, 5) for name in records.FIGURES},
    )
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await bootstrap(conn)
        await history.maintain(conn, history.Retention(), builders.EPOCH)
    await store_lines(database_url, [records.encode(lean)])
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT completeness, underlyings, underlying_completeness, underlying_symbols"
            " FROM portfolio_greeks"
        ).fetchone()
        full = conn.execute("SELECT completeness, underlyings FROM snapshots").fetchone()
    assert stored == (None, None, None, ["SPY", "ZC"])
    assert full is not None
    assert full[0] == lean.completeness
    assert full[1] == complete


def _readme_queries() -> list[str]:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("## Querying", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    return [query.strip() for query in block.split(";") if "portfolio" in query or "snap" in query]


async def test_the_readmes_queries_answer_the_same_for_either_format(database_url: str) -> None:
    """Each snapshot query of README.md's "Querying" section gives the same answer whether the
    last hour was stored in format 2 or in format 3."""
    queries = _readme_queries()
    assert len(queries) == 4
    now = datetime.now(UTC).replace(microsecond=0)
    book = [
        dataclasses.replace(_book(tick), ts=now - timedelta(seconds=5 * tick))
        for tick in range(1, 13)
    ]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await bootstrap(conn)
        await history.maintain(conn, history.Retention(), now)
    answers = []
    for version in (2, 3):
        lines = [records.encode(_as(s, "DU1234567", version)) for s in book]
        assert (await store_lines(database_url, lines)).stored == len(lines)
        with psycopg.connect(database_url) as conn:
            answers.append([conn.execute(query).fetchall() for query in queries])
            conn.execute("TRUNCATE portfolio_greeks")
    assert all(answers[0])  # every query found the rows
    assert answers[1] == answers[0]


async def test_the_dollar_gamma_column_says_what_is_computed_and_the_other_convention(
    database_url: str,
) -> None:
    """The column's comment says dollar gamma is the delta a 1 % rise adds, valued at the price,
    and that the gamma P&L of that move is 0.005 x it (migration 002 called it the change of
    dollar delta, which also holds 1 % of dollar delta)."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await bootstrap(conn)
        cursor = await conn.execute(
            "SELECT col_description('portfolio_greeks'::regclass, attnum) FROM pg_attribute"
            " WHERE attrelid = 'portfolio_greeks'::regclass AND attname = 'net_dollar_gamma'"
        )
        row = await cursor.fetchone()
    assert row is not None
    comment = str(row[0])
    assert "delta a 1 % rise of every underlying adds" in comment
    assert "gamma P&L of that move is 0.005" in comment
    assert "change of dollar delta" not in comment
