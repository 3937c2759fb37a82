"""History at scale on the real server: the migration to time partitions keeps every row, the
maintenance step creates and drops partitions by an injected clock, and the rollups equal what a
computation over the raw rows gives, after late replays and replays twice.

The rollup oracle is computed here in Python from the raw rows, independently of the SQL under
test.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

import testkit.snapshots
from database import history
from database.history import (
    ACCOUNT_FIGURES,
    COMPLETENESS_FIGURES,
    UNDERLYING_FIGURES,
    Retention,
)
from database.schema import bootstrap, migrations
from shared import records
from testkit.postgres import store_lines
from tests import builders

EPOCH = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


async def _connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


OLD_LAYOUT = 3  # the schema before migration 004: one table each, no partitions


async def _old_layout(url: str) -> None:
    async with await _connect(url) as conn:
        await bootstrap(conn, up_to=OLD_LAYOUT)


async def _migrate(url: str) -> None:
    """What the writer or the replayer does on connecting: migrate to the shipped schema."""
    async with await _connect(url) as conn:
        shipped = [migration.version for migration in migrations()]
        assert await bootstrap(conn) == [v for v in shipped if v > OLD_LAYOUT]


def _varying(tick: int, seed: int) -> float | None:
    """A figure that moves tick by tick and is unknown now and then."""
    return None if (tick + seed) % 7 == 3 else float((tick * (31 + seed)) % 101 - 50)


def _snapshot(account: str, tick: int) -> records.Snapshot:
    """Format 2 for DU1 and DU2 (no account-level share-equivalents), format 1 for DU3; two
    underlyings, QQQ held only on even ticks; completeness moving with the tick."""
    ts = EPOCH + timedelta(seconds=5 * tick)
    version = 1 if account == "DU3" else 2

    def underlying(seed: int) -> dict[str, Any]:
        entry: dict[str, Any] = {
            name: _varying(tick, seed + n) for n, name in enumerate(UNDERLYING_FIGURES)
        }
        missing = tick % 3
        entry.update(
            completeness={"net_beta_delta": {"contributing": 2 - missing // 2, "missing": missing,
                                             "reasons": {"no_beta": missing}}},
            position_count=2,
            option_count=2,
            options_with_greeks=2 - tick % 3 // 2,
        )  # fmt: skip
        return entry

    underlyings = {"SPY": underlying(1)}
    if tick % 2 == 0:
        underlyings["QQQ"] = underlying(5)
    figures = {name: _varying(tick, n) for n, name in enumerate(ACCOUNT_FIGURES)}
    if version == 2:
        figures.update(net_delta=None, net_gamma=None)
        extra: dict[str, Any] = {
            "currency": "EUR",
            "completeness": {"net_dollar_delta": {"contributing": 3, "missing": tick % 2,
                                                  "reasons": {"no_price": tick % 2}}},
        }  # fmt: skip
    else:
        extra = {name: None for name in ACCOUNT_FIGURES[2:] if name not in records.GREEK_FIELDS}
    return testkit.snapshots.snapshot(
        account,
        ts,
        net_delta=figures["net_delta"],
        net_gamma=figures["net_gamma"],
        net_theta=figures["net_theta"],
        net_vega=figures["net_vega"],
        net_dollar_delta=figures["net_dollar_delta"],
        position_count=3,
        option_count=3,
        options_with_greeks=3 - tick % 4 // 3,
        stalest_greek_age_s=None if tick % 10 == 0 else tick % 6 * 0.5,
        underlyings=underlyings,
        version=version,
        **({
            "net_dollar_gamma": figures["net_dollar_gamma"],
            "net_beta_delta": figures["net_beta_delta"],
            "net_liquidation": figures["net_liquidation"],
            "unrealized_pnl": figures["unrealized_pnl"],
            "daily_pnl": figures["daily_pnl"],
            **extra,
        } if version == 2 else {}),
    )  # fmt: skip


async def _store(url: str, snapshots: Iterable[records.Snapshot]) -> int:
    """Store through the bridge's own sink; duplicates are absorbed by the table's key."""
    result = await store_lines(url, [records.encode(snapshot) for snapshot in snapshots])
    assert result.rejected == []
    return result.stored


async def _store_in_old_layout(url: str, lines: list[bytes]) -> None:
    """Rows as the old layout's sink stored them (the sink of today migrates on connecting):
    every key of a line is its column, `v` is `format_version`."""
    async with await _connect(url) as conn:
        for line in lines:
            body = json.loads(line)
            table = "portfolio_greeks" if body.pop("kind") == "snapshot" else "api_logs"
            version = body.pop("v")
            if table == "portfolio_greeks":
                body["format_version"] = version
            body["stored_at"] = datetime.now(UTC).isoformat()
            await conn.execute(
                sql.SQL("INSERT INTO {} SELECT * FROM jsonb_populate_record(NULL::{}, %s)").format(
                    sql.Identifier(table), sql.Identifier(table)
                ),
                (Jsonb(body),),
            )


def _missing_count(completeness: Any, figure: str) -> int | None:
    counts = (completeness or {}).get(figure)
    return None if counts is None else int(counts["missing"])


def _missing_counts(completeness_by_ts: list[Any]) -> dict[str, int | None]:
    """Positions left out of each figure: in the last snapshot, and at most."""
    entry: dict[str, int | None] = {}
    for figure in COMPLETENESS_FIGURES:
        counts = [_missing_count(c, figure) for c in completeness_by_ts]
        known = [count for count in counts if count is not None]
        entry[f"{figure}_missing"] = counts[-1]
        entry[f"{figure}_missing_max"] = max(known) if known else None
    return entry


def _value(snapshot: records.Snapshot, name: str) -> Any:
    if name == "format_version":
        return snapshot.version
    return getattr(snapshot, name)


def _oracle(
    raw: Sequence[records.Snapshot], width: timedelta
) -> dict[tuple[str, datetime], dict[str, Any]]:
    """Account rollups computed in Python: last, min and max of each figure per bucket."""
    buckets: dict[tuple[str, datetime], list[records.Snapshot]] = defaultdict(list)
    for s in raw:
        start = (
            EPOCH.replace(hour=0, minute=0)
            + (s.ts - EPOCH.replace(hour=0, minute=0)) // width * width
        )
        buckets[(s.account, start)].append(s)
    result = {}
    for key, rows in buckets.items():
        rows.sort(key=lambda s: s.ts)
        last = rows[-1]
        entry: dict[str, Any] = {"snapshots": len(rows), "last_ts": last.ts}
        for name in ACCOUNT_FIGURES:
            known = [_value(s, name) for s in rows if _value(s, name) is not None]
            entry[name] = _value(last, name)
            entry[f"{name}_min"] = min(known) if known else None
            entry[f"{name}_max"] = max(known) if known else None
        for name in ("format_version", "currency", "options_with_greeks"):
            entry[name] = _value(last, name)
        entry.update(_missing_counts([s.completeness for s in rows]))
        entry["options_with_greeks_min"] = min(s.options_with_greeks for s in rows)
        entry["stalest_greek_age_s"] = last.stalest_greek_age_s
        ages = [s.stalest_greek_age_s for s in rows if s.stalest_greek_age_s is not None]
        entry["stalest_greek_age_s_max"] = max(ages) if ages else None
        result[key] = entry
    return result


def _underlying_oracle(
    raw: Sequence[records.Snapshot], width: timedelta
) -> dict[tuple[str, str, datetime], dict[str, Any]]:
    day = EPOCH.replace(hour=0, minute=0)
    buckets: dict[tuple[str, str, datetime], list[tuple[datetime, dict[str, Any]]]] = defaultdict(
        list
    )
    for s in raw:
        start = day + (s.ts - day) // width * width
        for symbol, values in s.underlyings.items():
            buckets[(s.account, symbol, start)].append((s.ts, dict(values)))
    result = {}
    for key, rows in buckets.items():
        rows.sort(key=lambda pair: pair[0])
        entry: dict[str, Any] = {"snapshots": len(rows)}
        for name in UNDERLYING_FIGURES:
            known = [values[name] for _, values in rows if values[name] is not None]
            entry[name] = rows[-1][1][name]
            entry[f"{name}_min"] = min(known) if known else None
            entry[f"{name}_max"] = max(known) if known else None
        entry.update(_missing_counts([values["completeness"] for _, values in rows]))
        entry["options_with_greeks_min"] = min(v["options_with_greeks"] for _, v in rows)
        result[key] = entry
    return result


async def _table(
    url: str, table: str, keys: Sequence[str]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    async with await _connect(url) as conn:
        cursor = await conn.execute(f"SELECT * FROM {table}")  # noqa: S608
        names = [column.name for column in cursor.description or []]
        rows = await cursor.fetchall()
    found = {}
    for row in rows:
        values = dict(zip(names, row, strict=True))
        found[tuple(values[key] for key in keys)] = values
    return found


def _assert_matches(
    stored: dict[tuple[Any, ...], dict[str, Any]], expected: dict[Any, dict[str, Any]]
) -> None:
    assert set(stored) == set(expected)
    for key, entry in expected.items():
        row = stored[key]
        for name, value in entry.items():
            wanted = pytest.approx(value) if isinstance(value, float) else value
            assert row[name] == wanted, (key, name, row[name], value)


def _ticks(accounts: Sequence[str], ticks: Iterable[int]) -> list[records.Snapshot]:
    return [_snapshot(account, tick) for tick in ticks for account in accounts]


async def _columns(url: str, table: str) -> str:
    """The columns `table` has now, as a select list."""
    async with await _connect(url) as conn:
        cursor = await conn.execute(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [table],
        )
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def _all_rows(url: str, table: str, columns: str) -> list[tuple[Any, ...]]:
    """Every row of `table`, by id, in `columns` (those of the old layout: later migrations
    add columns, NULL in the rows stored before them)."""
    async with await _connect(url) as conn:
        cursor = await conn.execute(f"SELECT {columns} FROM {table} ORDER BY id")  # noqa: S608
        return await cursor.fetchall()


async def _partitions(url: str, table: str) -> list[str]:
    async with await _connect(url) as conn:
        found = await history.partitions(conn, [table])
    return sorted(p.name for p in found)


async def test_migration_from_the_old_layout_keeps_every_row(database_url: str) -> None:
    """Migrating three days of the old unpartitioned tables keeps every row and column, nothing
    more, in one partition covering the old days."""
    await _old_layout(database_url)
    # Three days of the old layout: ticks 0.. spread over March 2 to March 4.
    day_ticks = [tick + day * 17_280 for day in range(3) for tick in range(0, 40)]
    snapshots = [records.encode(s) for s in _ticks(["DU1", "DU2"], day_ticks)]
    logs = [builders.api_log(f"event_{n}") for n in range(25)]
    await _store_in_old_layout(database_url, snapshots + logs)
    tables = ("portfolio_greeks", "api_logs")
    old_columns = {t: await _columns(database_url, t) for t in tables}
    before = {t: await _all_rows(database_url, t, old_columns[t]) for t in tables}

    await _migrate(database_url)

    after = {t: await _all_rows(database_url, t, old_columns[t]) for t in tables}
    assert after == before  # every row, every column, nothing more
    # The old rows are one partition from March 2 (UTC) to the end of March 4.
    async with await _connect(database_url) as conn:
        await conn.execute("SET TimeZone = 'UTC'")
        old = [
            p
            for p in await history.partitions(conn, ["portfolio_greeks"])
            if p.start == datetime(2026, 3, 2, tzinfo=UTC)
        ]
        cursor = await conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
            " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'portfolio_greeks'::regclass"
            " AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)"
        )
        key = [row[0] for row in await cursor.fetchall()]
        cursor = await conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index"
            " WHERE indrelid = 'portfolio_greeks_p20260302'::regclass ORDER BY 1"
        )
        old_indexes = [row[0] for row in await cursor.fetchall()]
        # Migration 002's view follows the new table: SPY in each of 240 snapshots, QQQ in the
        # 120 of even ticks.
        cursor = await conn.execute("SELECT count(*) FROM underlying_greeks")
        view_rows = (await cursor.fetchone() or (0,))[0]
    assert [(p.start, p.end) for p in old] == [
        (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 5, tzinfo=UTC))
    ]
    assert key == ["account", "ts"]
    assert view_rows == 360
    # The old uuid key and (account, ts) index are gone; its BRIN was adopted, not rebuilt.
    assert old_indexes == ["portfolio_greeks_p20260302_pkey", "portfolio_greeks_ts_brin_legacy"]
    # The same tick under another id is refused by the natural key.
    clash = _snapshot("DU1", 0)
    other = records.Snapshot(
        **{**{f: getattr(clash, f) for f in clash.__slots__}, "id": uuid.uuid4()}
    )
    assert await _store(database_url, [other]) == 0


async def test_rollups_equal_the_raw_rows_after_late_and_repeated_replays(
    database_url: str,
) -> None:
    """After a 20-minute hole arrives late and batches are replayed twice, every minute and hour
    rolled up equals what the raw rows give."""
    await _old_layout(database_url)
    await _migrate(database_url)
    retention = Retention()
    async with await _connect(database_url) as conn:
        await history.maintain(conn, retention, EPOCH)
    accounts = ["DU1", "DU2", "DU3"]
    # Two hours of ticks with a 20-minute hole (ticks 480..719) that arrives later.
    on_time = _ticks(accounts, [*range(0, 480), *range(720, 1440)])
    late = _ticks(accounts, range(480, 720))
    await _store(database_url, on_time)
    async with await _connect(database_url) as conn:
        report = await history.maintain(conn, retention, EPOCH + timedelta(hours=2))
    # 100 minutes of rows per account: 3 x 100 minute buckets
    assert report.minutes_rolled_up == 300

    async def check(raw: list[records.Snapshot]) -> None:
        minute, hour = timedelta(minutes=1), timedelta(hours=1)
        _assert_matches(
            await _table(database_url, "portfolio_greeks_1m", ["account", "bucket"]),
            _oracle(raw, minute),
        )
        _assert_matches(
            await _table(database_url, "portfolio_greeks_1h", ["account", "bucket"]),
            _oracle(raw, hour),
        )
        _assert_matches(
            await _table(database_url, "underlying_greeks_1m", ["account", "underlying", "bucket"]),
            _underlying_oracle(raw, minute),
        )
        _assert_matches(
            await _table(database_url, "underlying_greeks_1h", ["account", "underlying", "bucket"]),
            _underlying_oracle(raw, hour),
        )

    await check(on_time)
    await _store(database_url, late)  # replayed hours late
    async with await _connect(database_url) as conn:
        report = await history.maintain(conn, retention, EPOCH + timedelta(hours=5))
    assert report.minutes_rolled_up == 3 * 20  # only the minutes that gained rows
    await check(on_time + late)
    # Everything replayed again: nothing is stored, nothing marked, nothing counted twice.
    assert await _store(database_url, on_time + late) == 0
    async with await _connect(database_url) as conn:
        report = await history.maintain(conn, retention, EPOCH + timedelta(hours=6))
    assert report.minutes_rolled_up == 0
    await check(on_time + late)


async def test_partitions_are_made_ahead_and_dropped_past_retention(database_url: str) -> None:
    """Maintenance makes the partitions of today and the days ahead (compressed inline), nothing
    twice, and drops those past retention."""
    await _old_layout(database_url)
    await _migrate(database_url)
    retention = Retention(raw=timedelta(days=3), api_logs=timedelta(days=3))
    async with await _connect(database_url) as conn:
        first = await history.maintain(conn, retention, EPOCH)
        again = await history.maintain(conn, retention, EPOCH)
    assert "portfolio_greeks_p20260302" in first.created
    assert "portfolio_greeks_p20260309" in first.created  # March 2 + 7 days ahead
    assert "portfolio_greeks_p20260310" not in first.created
    async with await _connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT reloptions FROM pg_class WHERE relname = 'portfolio_greeks_p20260309'"
        )
        assert await cursor.fetchone() == (["toast_tuple_target=128"],)  # compressed inline
    assert (again.created, again.dropped) == ([], [])  # idempotent
    await _store(database_url, [_snapshot("DU1", 0), _snapshot("DU1", 2 * 17_280)])  # 2nd, 4th

    async with await _connect(database_url) as conn:
        # March 6 12:00 - 3 days = March 3 12:00: only the 2nd has ended by then
        later = await history.maintain(conn, retention, EPOCH + timedelta(days=4))
        cursor = await conn.execute("SELECT account, ts FROM portfolio_greeks")
        left = await cursor.fetchall()
    assert "portfolio_greeks_p20260302" in later.dropped
    assert "portfolio_greeks_p20260303" not in later.dropped
    assert left == [("DU1", EPOCH + timedelta(days=2))]
    assert "portfolio_greeks_p20260313" in later.created  # March 6 + 7
    names = await _partitions(database_url, "portfolio_greeks")
    assert "portfolio_greeks_p20260302" not in names

    async with await _connect(database_url) as conn:
        facts = await history.facts(conn, retention)
    assert facts.database_bytes > 0
    assert facts.oldest_raw_ts == EPOCH + timedelta(days=2)
    assert facts.next_drop is not None
    assert facts.next_drop.startswith(("portfolio_greeks_p", "api_logs_p"))


async def test_the_readmes_rollup_queries_run(database_url: str) -> None:
    """The rollup queries of README.md's "Querying" section run on the migrated schema."""
    await _old_layout(database_url)
    await _migrate(database_url)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("read the rollups", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
    queries = [q.strip() for q in block.split(";") if q.strip()]
    assert len(queries) == 2
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    hour = now.replace(minute=0)  # two minutes of one hour
    async with await _connect(database_url) as conn:
        await history.maintain(conn, Retention(), now)
    await _store(
        database_url,
        [
            records.Snapshot(
                **{
                    **_fields(_snapshot("DU1234567", n)),
                    "ts": ts,
                    "id": records.snapshot_id("DU1234567", ts),
                }
            )
            for n, ts in enumerate([hour + timedelta(minutes=1), hour + timedelta(minutes=2)])
        ],
    )
    async with await _connect(database_url) as conn:
        await history.maintain(conn, Retention(), now)
        results = [await (await conn.execute(query)).fetchall() for query in queries]
    assert [len(rows) for rows in results] == [1, 2]  # one hour; two minutes of SPY


def _fields(snapshot: records.Snapshot) -> dict[str, Any]:
    return {name: getattr(snapshot, name) for name in snapshot.__slots__}


async def test_a_row_without_a_partition_waits_in_the_default_one_and_is_moved_in(
    database_url: str,
) -> None:
    """A replay of a day the maintenance has not made yet is stored, not refused; the next
    maintenance makes the day and moves the row into it; a row past retention stays put."""
    await _old_layout(database_url)
    await _migrate(database_url)
    early, old = EPOCH + timedelta(days=20), EPOCH - timedelta(days=400)
    rows = [_snapshot("DU1", 20 * 17_280), _snapshot("DU1", -400 * 17_280)]
    assert [row.ts for row in rows] == [early, old]
    assert await _store(database_url, rows) == 2

    async def where() -> list[tuple[str, datetime]]:
        async with await _connect(database_url) as conn:
            cursor = await conn.execute(
                "SELECT tableoid::regclass::text, ts FROM portfolio_greeks ORDER BY ts"
            )
            return await cursor.fetchall()

    assert await where() == [("portfolio_greeks_default", old), ("portfolio_greeks_default", early)]
    async with await _connect(database_url) as conn:
        report = await history.maintain(conn, Retention(), early)
    assert "portfolio_greeks_p20260322" in report.created  # March 2 + 20 days
    # 400 days before March 2 is past 90 days of retention: left where it is
    assert await where() == [
        ("portfolio_greeks_default", old),
        ("portfolio_greeks_p20260322", early),
    ]
