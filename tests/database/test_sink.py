"""The idempotent insert path against a real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from database.errors import DatabaseUnavailable
from database.sink import RecordSink
from shared import records
from testkit.postgres import PostgresServer
from tests import builders


async def _count(url: str, table: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def _with(line: bytes, **changes: object) -> bytes:
    body = json.loads(line)
    body.update(changes)
    return json.dumps(body).encode() + b"\n"


async def test_stores_snapshots_and_api_logs(sink: RecordSink, database_url: str) -> None:
    """Both kinds land in their own table, every column as sent."""
    lines = [
        *builders.snapshots(5),
        builders.api_log("connected"),
        builders.api_log("ib_error", 2104),
    ]
    result = await sink.store(lines)
    assert (result.stored, result.duplicates, result.rejected) == (7, 0, [])
    assert await _count(database_url, "portfolio_greeks") == 5
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT net_delta, net_vega, underlyings FROM portfolio_greeks"
            " WHERE account = 'DU0000' ORDER BY ts LIMIT 1"
        )
        row = await cursor.fetchone()
        codes = await (await conn.execute("SELECT code FROM api_logs ORDER BY code")).fetchall()
    assert row == (12.5, None, {"SPY": {"net_delta": 12.5}})
    assert [code for (code,) in codes] == [2104, None]


async def test_a_record_delivered_twice_is_stored_once(sink: RecordSink, database_url: str) -> None:
    """Replaying the same lines reports duplicates and adds no row."""
    lines = builders.snapshots(10)
    await sink.store(lines)
    again = await sink.store([*lines[:4], *builders.snapshots(12)[10:]])
    assert (again.stored, again.duplicates) == (2, 4)
    assert await _count(database_url, "portfolio_greeks") == 12


@pytest.mark.parametrize(
    ("poison", "sqlstate"),
    [
        pytest.param({"mode": "FIX"}, "23514", id="check-violation"),
        pytest.param({"ts": "2026-02-30T00:00:00+00:00"}, "22008", id="impossible-date"),
        pytest.param({"account": None}, "23502", id="not-null-violation"),
        pytest.param({"kind": "order"}, "23514", id="unknown-kind"),
        pytest.param({"options_with_greeks": 5}, "23514", id="more-greeks-than-options"),
    ],
)
async def test_poison_record_is_rejected_and_its_neighbours_stored(
    sink: RecordSink, database_url: str, poison: dict[str, object], sqlstate: str
) -> None:
    """One bad record in a batch comes back with the server's reason; the others are stored."""
    lines = builders.snapshots(9)
    bad = _with(lines[4], **poison)
    result = await sink.store([*lines[:4], bad, *lines[5:]])
    assert result.stored == 8
    assert [line for line, _ in result.rejected] == [bad]
    assert result.rejected[0][1].startswith(sqlstate)
    assert await _count(database_url, "portfolio_greeks") == 8


async def test_unparseable_line_is_rejected_alone(sink: RecordSink, database_url: str) -> None:
    """A line that is not JSON at all is isolated the same way."""
    lines = builders.snapshots(3)
    result = await sink.store([lines[0], b'{"v":1,"kind":"snap\n', lines[1], lines[2]])
    assert result.stored == 3
    assert len(result.rejected) == 1
    assert await _count(database_url, "portfolio_greeks") == 3


async def test_database_down_is_an_outage_then_recovers(
    sink: RecordSink, database_url: str, postgres_server: PostgresServer
) -> None:
    """With the server stopped the sink raises DatabaseUnavailable; once back it stores again."""
    await sink.store(builders.snapshots(2))
    postgres_server.stop()
    with pytest.raises(DatabaseUnavailable):
        await sink.store(builders.snapshots(4)[2:])
    postgres_server.start()
    result = await sink.store(builders.snapshots(4)[2:])
    assert result.stored == 2
    assert await _count(database_url, "portfolio_greeks") == 4


def _stage_out_of_memory_above(database_url: str, rows: int) -> None:
    """The server answers 53200 (out of memory) to any insert of more than `rows` rows."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION staged_oom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " IF (SELECT count(*) FROM new_rows) > {} THEN"
                "  RAISE EXCEPTION 'out of memory' USING ERRCODE = '53200'; END IF;"
                " RETURN NULL; END $$"
            ).format(sql.Literal(rows))
        )
        conn.execute(
            "CREATE TRIGGER staged_oom AFTER INSERT ON portfolio_greeks"
            " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION staged_oom()"
        )


@pytest.mark.parametrize(
    ("limit", "stored", "rejected"),
    [
        # 10 lines over a limit of 4: split 10 -> 5+5 -> (2+3)+(2+3): 3 splits, all stored.
        pytest.param(4, 10, 0, id="split-until-it-fits"),
        # Even one row is too many: split down to single lines, each then the record's fault.
        pytest.param(0, 0, 10, id="one-record-still-fails"),
    ],
)
async def test_a_batch_the_server_has_no_memory_for_is_split(
    sink: RecordSink, database_url: str, limit: int, stored: int, rejected: int
) -> None:
    """Out of memory is the batch's size, not an outage: halves until it passes; a single
    record that still fails is that record's fault and comes back rejected."""
    await sink.connect()
    _stage_out_of_memory_above(database_url, limit)
    result = await sink.store(builders.snapshots(10))
    assert (result.stored, len(result.rejected)) == (stored, rejected)
    assert result.splits >= 1
    assert all(reason.startswith("53200") for _, reason in result.rejected)
    assert await _count(database_url, "portfolio_greeks") == stored


async def test_a_second_snapshot_of_the_same_account_and_tick_is_absorbed(
    sink: RecordSink, database_url: str
) -> None:
    """The natural key (account, ts): a snapshot with another id for a tick already stored is
    a duplicate, absorbed like one, never an error and never a second row."""
    original = builders.snapshot("DU0001", 7)
    other_id = _with(original, id="00000000-0000-4000-8000-000000000007", net_vega=1.0)
    first = await sink.store([original])
    again = await sink.store([other_id, builders.snapshot("DU0001", 8)])
    assert (first.stored, again.stored, again.duplicates, again.rejected) == (1, 1, 1, [])
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT id::text, net_vega FROM portfolio_greeks WHERE account = 'DU0001' ORDER BY ts"
        )
        rows = await cursor.fetchall()
    assert rows[0] == (json.loads(original)["id"], None)
    assert len(rows) == 2


async def test_format_2_snapshots_fill_their_columns(sink: RecordSink, database_url: str) -> None:
    """Every format-2 key lands in its column; account-level share-equivalents stay NULL."""
    result = await sink.store([builders.snapshot_v2("DU9"), builders.snapshot("DU8")])
    assert (result.stored, result.rejected) == (2, [])
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT account, format_version, currency, net_delta, net_gamma, net_dollar_delta,"
            " net_dollar_gamma, net_theta, net_vega, net_beta_delta, completeness,"
            " net_liquidation, unrealized_pnl, daily_pnl FROM portfolio_greeks ORDER BY account"
        )
        rows = await cursor.fetchall()
        view = await (
            await conn.execute(
                "SELECT account, underlying, net_delta, net_dollar_delta FROM underlying_greeks"
                " ORDER BY account"
            )
        ).fetchall()
    counts = {"contributing": 2, "missing": 1, "reasons": {"no_beta": 1}}
    assert rows == [
        ("DU8", 1, None, 12.5, 0.25, None, None, -3.5, None, None, None, None, None, None),
        ("DU9", 2, "EUR", None, None, 150_000.0, 1_250.0, -35.5, 120.25, 280.5,
         {"net_beta_delta": counts}, 1_000_000.0, -2_500.0, 310.0),
    ]  # fmt: skip
    assert view == [("DU8", "SPY", 12.5, None), ("DU9", "SPY", 300.0, 150_000.0)]


async def test_a_format_2_row_with_account_share_equivalents_is_refused(
    sink: RecordSink, database_url: str
) -> None:
    """The table itself refuses an account-level net_delta in format 2; neighbours are stored."""
    bad = _with(builders.snapshot_v2("DU1"), net_delta=374.4)
    result = await sink.store([bad, builders.snapshot_v2("DU2")])
    assert result.stored == 1
    assert [reason[:5] for _, reason in result.rejected] == ["23514"]  # check_violation


async def test_betas_are_stored_once_per_underlying_and_day(
    sink: RecordSink, database_url: str
) -> None:
    """A beta is stored once per underlying, benchmark and day; the same again counts as a
    duplicate."""
    lines = [builders.beta("AAPL", value=1.2), builders.beta("QQQ", value=1.1)]
    first = await sink.store(lines)
    again = await sink.store([builders.beta("AAPL", value=1.2)])
    assert (first.stored, again.stored, again.duplicates) == (2, 0, 1)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT underlying, benchmark, beta, as_of, sample_size, source FROM betas"
            " ORDER BY underlying"
        )
        rows = await cursor.fetchall()
    day = builders.EPOCH.date()
    assert rows == [
        ("AAPL", "SPY", 1.2, day, 250, "history"),
        ("QQQ", "SPY", 1.1, day, 250, "history"),
    ]


async def test_the_readmes_queries_run_on_stored_rows(sink: RecordSink, database_url: str) -> None:
    """Every query of README.md's "Querying" section runs against rows of both formats, and
    the beta-weighted one returns the stored figures."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("## Querying", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    queries = [q.strip() for q in block.split(";") if q.strip()]
    now = datetime.now(UTC).replace(microsecond=0)
    lines = [
        builders.snapshot_v2("DU1234567", ts=now, id=records.snapshot_id("DU1234567", now)),
        builders.snapshot("DU7654321"),
        builders.beta("AAPL", as_of=now.date()),
    ]
    assert (await sink.store(lines)).rejected == []
    results = []
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for query in queries:
            results.append(await (await conn.execute(query)).fetchall())
    assert len(queries) >= 6
    beta_weighted = results[0]  # "Beta-weighted delta and theta of every account ..."
    assert beta_weighted == [("DU1234567", now, "EUR", 280.5, -35.5, 1)]


@pytest.mark.parametrize("underlyings", [2, 400])
async def test_lines_small_and_larger_than_a_page_store_whole(
    sink: RecordSink, database_url: str, underlyings: int
) -> None:
    """Staging keeps lines up to a page uncompressed; a line past it (400 underlyings, about
    60 kB) is still stored, and both come back exactly as sent."""
    figures = {"net_delta": 1.0000000000000002, "net_dollar_delta": -1234.5678901234567}
    held = {f"U{index:04d}": dict(figures, position_count=index) for index in range(underlyings)}
    line = builders.snapshot_v2(underlyings=held)
    assert (len(line) > 8192) == (underlyings == 400)
    result = await sink.store([line])
    assert (result.stored, result.rejected) == (1, [])
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute("SELECT underlyings FROM portfolio_greeks")
        row = await cursor.fetchone()
    assert row is not None
    assert row[0] == held


@pytest.mark.parametrize(
    "second_key",
    [pytest.param(b'"kind"', id="written-twice"), pytest.param(b'"\\u006bind"', id="escaped")],
)
async def test_a_line_naming_its_kind_twice_is_stored_as_its_last(
    sink: RecordSink, database_url: str, second_key: bytes
) -> None:
    """A JSON object's last key decides, for PostgreSQL and the writer's check alike: the kind
    at the line's start alone would skip the statement of the kind it is (a beta here), and
    count the line as a duplicate."""
    beta = builders.beta()
    line = b'{"v":3,"kind":"api_log",' + beta[1:].replace(b'"kind"', second_key, 1)
    assert isinstance(records.decode(line), records.Beta)
    result = await sink.store([line])
    assert (result.stored, result.duplicates) == (1, 0)
    assert await _count(database_url, "betas") == 1
    assert await _count(database_url, "api_logs") == 0
