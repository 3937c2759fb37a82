"""History at scale: bytes per row by layout, day vs week partitions, and the chart queries.

Rows are generated inside PostgreSQL (generate_series) with the collector's shape: two
underlyings, full-precision figures, so a few days at full density (60 accounts, a row each
every 5 s) are filled in seconds. Timings are the server's own (EXPLAIN ANALYZE), best of three.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import fresh_database, scratch_postgres
from database import history
from database.schema import bootstrap
from shared import records

START = datetime(2026, 3, 2, tzinfo=UTC)


def _completeness(contributing: int) -> str:
    each = f"""'{{"contributing": {contributing}, "missing": 0, "reasons": {{}}}}'::jsonb"""
    return "jsonb_build_object(" + ", ".join(f"'{name}', {each}" for name in records.FIGURES) + ")"


# Format 2, as the collector writes it: five figures and their completeness at account level
# and in each underlying (with share-equivalent delta and gamma there), account values.
_UNDERLYING = f"""jsonb_build_object(
    'net_dollar_delta', random() * 1e5, 'net_dollar_gamma', random() * 1e4,
    'net_theta', -random() * 50, 'net_vega', random() * 90, 'net_beta_delta', random() * 200,
    'net_delta', random() * 200 - 100, 'net_gamma', random(),
    'completeness', {_completeness(3)},
    'position_count', 4, 'option_count', 3, 'options_with_greeks', 3)"""

_FILL = f"""
INSERT INTO portfolio_greeks (id, ts, account, mode, format_version, currency, net_theta,
    net_vega, net_dollar_delta, net_dollar_gamma, net_beta_delta, completeness,
    net_liquidation, unrealized_pnl, daily_pnl, position_count, option_count,
    options_with_greeks, stalest_greek_age_s, underlyings)
SELECT md5(a::text || '|' || t::text)::uuid, %(start)s + t * interval '5 seconds',
    'DU' || lpad(a::text, 7, '0'), 'SOCKET', 2, 'USD', -random() * 50, random() * 90,
    random() * 1e5, random() * 1e4, random() * 200, {_completeness(6)},
    1e6 + random() * 1e5, random() * 1e4 - 5e3, random() * 2e3 - 1e3, 8, 6, 6, random() * 3,
    jsonb_build_object('SPY', {_UNDERLYING}, 'QQQ', {_UNDERLYING})
FROM generate_series(%(first)s::integer, %(last)s::integer) t,
    generate_series(1, %(accounts)s::integer) a
ORDER BY t, a
"""  # noqa: S608  # built from this module's constants


async def _connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def partitioned_schema(url: str) -> None:
    """The schema as shipped (migration 004: partitions, rollups)."""
    async with await _connect(url) as conn:
        await bootstrap(conn)


async def old_schema(url: str) -> None:
    """The schema before migration 004: one table each, a uuid key."""
    async with await _connect(url) as conn:
        await bootstrap(conn, up_to=3)


async def fill(url: str, accounts: int, days: float, *, chunk_ticks: int = 1440) -> int:
    """`days` of ticks for `accounts` accounts, from START, in chunks of ticks."""
    ticks = int(days * 17_280)
    async with await _connect(url) as conn:
        for first in range(0, ticks, chunk_ticks):
            await conn.execute(
                _FILL,
                {
                    "start": START,
                    "first": first,
                    "last": min(ticks, first + chunk_ticks) - 1,
                    "accounts": accounts,
                },
            )
    return ticks * accounts


@dataclass
class Footprint:
    layout: str
    rows: int
    heap_bytes: int
    index_bytes: int

    @property
    def bytes_per_row(self) -> float:
        return (self.heap_bytes + self.index_bytes) / self.rows


async def footprint(url: str, layout: str, tables: list[str]) -> Footprint:
    """Heap (with TOAST) and index bytes of `tables` and all their partitions."""
    async with await _connect(url) as conn:
        await conn.execute("VACUUM ANALYZE")
        cursor = await conn.execute(
            "SELECT coalesce(sum(pg_table_size(relid)), 0),"
            " coalesce(sum(pg_indexes_size(relid)), 0)"
            " FROM unnest(%s::regclass[]) parent, LATERAL (SELECT relid FROM"
            " pg_partition_tree(parent) UNION SELECT parent) tree",
            (tables,),
        )
        heap, indexes = await cursor.fetchone() or (0, 0)
        cursor = await conn.execute("SELECT count(*) FROM portfolio_greeks")
        rows = (await cursor.fetchone() or (0,))[0]
    return Footprint(layout, int(rows), int(heap), int(indexes))


_NARROW = """
CREATE TABLE underlying_rows (
    account text NOT NULL, ts timestamptz NOT NULL, underlying text NOT NULL,
    net_dollar_delta float8, net_dollar_gamma float8, net_theta float8, net_vega float8,
    net_beta_delta float8, net_delta float8, net_gamma float8, completeness jsonb,
    position_count integer, option_count integer, options_with_greeks integer,
    PRIMARY KEY (account, ts, underlying)
) PARTITION BY RANGE (ts);
"""


async def narrow_variant(url: str) -> None:
    """Move `underlyings` into one narrow row per underlying; the jsonb column keeps '{}'."""
    async with await _connect(url) as conn:
        await conn.execute(_NARROW)
        cursor = await conn.execute(
            "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits"
            " JOIN pg_class c ON c.oid = inhrelid WHERE inhparent = 'portfolio_greeks'::regclass"
        )
        for index, (bound,) in enumerate(await cursor.fetchall()):
            await conn.execute(
                f"CREATE TABLE underlying_rows_{index} PARTITION OF underlying_rows {bound}"
            )
        await conn.execute(
            "INSERT INTO underlying_rows SELECT g.account, g.ts, u.key,"
            " (u.value->>'net_dollar_delta')::float8, (u.value->>'net_dollar_gamma')::float8,"
            " (u.value->>'net_theta')::float8, (u.value->>'net_vega')::float8,"
            " (u.value->>'net_beta_delta')::float8, (u.value->>'net_delta')::float8,"
            " (u.value->>'net_gamma')::float8, u.value->'completeness',"
            " (u.value->>'position_count')::integer,"
            " (u.value->>'option_count')::integer, (u.value->>'options_with_greeks')::integer"
            " FROM portfolio_greeks g, jsonb_each(g.underlyings) u"
        )
        await conn.execute("UPDATE portfolio_greeks SET underlyings = '{}'")
        await conn.execute("VACUUM FULL")


@dataclass
class QueryTiming:
    name: str
    rows: int
    planning_ms: float
    execution_ms: float
    partitions: int


async def explain(url: str, name: str, query: str, params: dict[str, object]) -> QueryTiming:
    """Best of three runs of EXPLAIN (ANALYZE, FORMAT JSON)."""
    best: QueryTiming | None = None
    async with await _connect(url) as conn:
        for _ in range(3):
            cursor = await conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query,
                params,
            )
            row = await cursor.fetchone()
            assert row is not None
            plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
            top = plan[0]
            timing = QueryTiming(
                name,
                int(top["Plan"]["Actual Rows"]),
                float(top["Planning Time"]),
                float(top["Execution Time"]),
                _scanned(top["Plan"]),
            )
            if best is None or timing.execution_ms < best.execution_ms:
                best = timing
    assert best is not None
    return best


def _scanned(node: dict[str, Any]) -> int:
    """Partitions a plan actually scanned (scans not pruned at run time)."""
    count = 0
    if "Relation Name" in node and node.get("Actual Loops", 0):
        count += 1
    for child in node.get("Plans", []) or []:
        count += _scanned(child)
    return count


CHART_5_DAYS = """
SELECT ts, net_delta, net_gamma, net_theta, net_vega, net_dollar_delta
FROM portfolio_greeks
WHERE account = %(account)s AND ts >= %(since)s AND ts < %(until)s
ORDER BY ts
"""

CHART_5_DAYS_1M = """
SELECT bucket, net_delta, net_delta_min, net_delta_max, net_dollar_delta
FROM portfolio_greeks_1m
WHERE account = %(account)s AND bucket >= %(since)s AND bucket < %(until)s
ORDER BY bucket
"""

YEAR_HOURLY = """
SELECT bucket, net_delta, net_delta_min, net_delta_max, net_dollar_delta
FROM portfolio_greeks_1h
WHERE account = %(account)s AND bucket >= %(since)s AND bucket < %(until)s
ORDER BY bucket
"""


def _fill_rollup_sql() -> str:
    """Every account-rollup column filled: random figures, the last completeness."""
    names, values = [], []
    for column in history.ACCOUNT_ROLLUP:
        for name in column.columns():
            names.append(name)
            values.append(
                {"jsonb": _completeness(6), "text": "'USD'", "smallint": "2", "integer": "6"}.get(
                    column.sql_type, "random()"
                )
            )
    return (
        f"INSERT INTO {{table}} (account, bucket, snapshots, last_ts, {', '.join(names)})\n"
        "SELECT 'DU' || lpad(a::text, 7, '0'), b, {snapshots}, b + {last},\n"
        + "    "
        + ", ".join(values).replace("{", "{{").replace("}", "}}")
        + "\n"
        "FROM generate_series(%(first)s::timestamptz, %(last)s::timestamptz, {step}) b,\n"
        "    generate_series(1, %(accounts)s::integer) a\n"
        "ORDER BY b, a"
    )


_FILL_ROLLUP = _fill_rollup_sql()


async def fill_rollup(  # one call per table
    url: str, table: str, *, step: timedelta, first: datetime, last: datetime, accounts: int
) -> None:
    """Synthetic rollup rows at full density (the values do not matter for sizes and plans)."""
    snapshots, last_offset = (
        (12, "interval '55 seconds'")
        if step.seconds == 60
        else (
            720,
            "interval '3595 seconds'",
        )
    )
    sql = _FILL_ROLLUP.format(
        table=table,
        snapshots=snapshots,
        last=last_offset,
        step=f"interval '{int(step.total_seconds())} seconds'",
    )
    async with await _connect(url) as conn:
        await conn.execute(sql, {"first": first, "last": last, "accounts": accounts})


@dataclass
class HistoryFigures:
    footprints: list[Footprint] = field(default_factory=list)
    queries: list[QueryTiming] = field(default_factory=list)
    partition_counts: dict[str, int] = field(default_factory=dict)
    rollup_bytes_per_row: dict[str, float] = field(default_factory=dict)
    rollup_refresh: tuple[int, float] = (0, 0.0)  # minutes rolled up, seconds
    days: float = 0.0
    accounts: int = 0
    notes: list[str] = field(default_factory=list)


async def maintain(url: str, now: datetime) -> history.MaintenanceReport:
    """The replayer's maintenance step, once, as of `now`."""
    async with await _connect(url) as conn:
        return await history.maintain(conn, history.Retention(), now)


async def _week_partitions(url: str, weeks: int) -> None:
    """Replace the raw table's partitions by ISO weeks from START (a Monday)."""
    async with await _connect(url) as conn:
        for index in range(weeks):
            lo = START + timedelta(days=7 * index)
            hi = lo + timedelta(days=7)
            await conn.execute(
                f"CREATE TABLE portfolio_greeks_w{index} PARTITION OF portfolio_greeks"
                f" FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
            )


async def _empty_partitions(url: str, table: str, count: int, width: timedelta) -> None:
    """`count` empty partitions before START: a year of history's worth of pruning to do."""
    async with await _connect(url) as conn:
        for index in range(1, count + 1):
            lo = START - width * index
            await conn.execute(
                f"CREATE TABLE {table}_old{index} PARTITION OF {table}"
                f" FOR VALUES FROM ('{lo.isoformat()}') TO ('{(lo + width).isoformat()}')"
            )


async def _measure(root: Path, server_url: str, accounts: int, days: float) -> HistoryFigures:  # noqa: PLR0915  # one script, in order
    figures = HistoryFigures(days=days, accounts=accounts)
    base = server_url.rsplit("/", 1)[0]
    del root

    # Bytes per row: the old layout against the partitioned one and two variants of it.
    sample_days = min(days, 0.1)
    for layout in ("old", "partitioned", "uncompressed", "narrow"):
        url = f"{base}/bench_bytes_{layout}"
        if layout == "old":
            await old_schema(url)
        else:
            await partitioned_schema(url)
            await maintain(url, START)
            if layout == "uncompressed":
                # The partitions as PostgreSQL makes them by default: jsonb compressed only
                # in rows over 2 kB.
                async with await _connect(url) as conn:
                    cursor = await conn.execute(
                        "SELECT inhrelid::regclass::text FROM pg_inherits"
                        " WHERE inhparent = 'portfolio_greeks'::regclass"
                    )
                    for (name,) in await cursor.fetchall():
                        await conn.execute(f"ALTER TABLE {name} RESET (toast_tuple_target)")
        await fill(url, 60, sample_days)
        tables = ["portfolio_greeks"] + (["underlying_rows"] if layout == "narrow" else [])
        if layout == "narrow":
            await narrow_variant(url)
        figures.footprints.append(await footprint(url, layout, tables))

    # Day against week partitions: the same rows, the 5-day chart of one account.
    until = START + timedelta(days=days)
    since = until - timedelta(days=min(5.0, days))
    for width in ("day", "week"):
        url = f"{base}/bench_{width}"
        await partitioned_schema(url)
        if width == "day":
            await maintain(url, START)
            await _empty_partitions(url, "portfolio_greeks", 90, timedelta(days=1))
        else:
            await _week_partitions(url, int(days // 7) + 2)
            await _empty_partitions(url, "portfolio_greeks", 13, timedelta(days=7))
        started = time.perf_counter()
        rows = await fill(url, accounts, days)
        figures.notes.append(
            f"{width}: filled {rows:,} rows in {time.perf_counter() - started:.0f} s"
        )
        async with await _connect(url) as conn:
            await conn.execute("VACUUM ANALYZE portfolio_greeks")
        figures.queries.append(
            await explain(
                url,
                f"{days:g}-day raw chart, one account ({width} partitions, 90 days of them)"
                if width == "day"
                else f"{days:g}-day raw chart, one account (week partitions, 13 of them)",
                CHART_5_DAYS,
                {"account": "DU0000001", "since": since, "until": until},
            )
        )
        if width == "day":
            started = time.perf_counter()
            report = await maintain(url, until)
            figures.rollup_refresh = (report.minutes_rolled_up, time.perf_counter() - started)
    figures.partition_counts = {"day": 365, "week": 53}

    # Rollups at full density: 1-minute rows for 60 accounts over 7 days, 1-hour for a year.
    url = f"{base}/bench_rollups"
    await partitioned_schema(url)
    year_start = START - timedelta(days=365)
    async with await _connect(url) as conn:
        await history.apply_partition_plan(conn, history.Retention(), year_start)
        await history.apply_partition_plan(conn, history.Retention(), START + timedelta(days=7))
    await fill_rollup(
        url,
        "portfolio_greeks_1m",
        step=timedelta(minutes=1),
        first=START - timedelta(days=2),
        last=START + timedelta(days=5),
        accounts=60,
    )
    await fill_rollup(
        url, "portfolio_greeks_1h", step=timedelta(hours=1), first=year_start, last=START,
        accounts=60,
    )  # fmt: skip
    async with await _connect(url) as conn:
        await conn.execute("VACUUM ANALYZE")
        for table in ("portfolio_greeks_1m", "portfolio_greeks_1h"):
            cursor = await conn.execute(
                f"SELECT sum(pg_total_relation_size(relid)), (SELECT count(*) FROM {table})"  # noqa: S608  # two fixed names
                " FROM pg_partition_tree(%s)",
                (table,),
            )
            size, count = await cursor.fetchone() or (0, 1)
            figures.rollup_bytes_per_row[table] = int(size) / max(1, int(count))
    figures.queries.append(
        await explain(
            url,
            "5-day chart at 1 minute, one account of 60",
            CHART_5_DAYS_1M,
            {"account": "DU0000001", "since": START, "until": START + timedelta(days=5)},
        )
    )
    figures.queries.append(
        await explain(
            url,
            "1-year chart at 1 hour, one account of 60",
            YEAR_HOURLY,
            {"account": "DU0000001", "since": year_start, "until": START},
        )
    )
    return figures


def measure(accounts: int = 60, days: float = 5.0) -> HistoryFigures:
    with scratch_postgres() as server:
        names = [
            "bytes_old",
            "bytes_partitioned",
            "bytes_narrow",
            "bytes_uncompressed",
            "day",
            "week",
        ]
        for name in [*names, "rollups"]:
            fresh_database(server, f"bench_{name}")
        return asyncio.run(_measure(Path(server.var_dir), server.url, accounts, days))


if __name__ == "__main__":
    import sys

    arguments = [float(arg) for arg in sys.argv[1:]]
    result = measure(
        int(arguments[0]) if arguments else 60, arguments[1] if len(arguments) > 1 else 5.0
    )
    for item in result.footprints:
        print(item, f"{item.bytes_per_row:.0f} B/row")
    for query in result.queries:
        print(query)
    print(result.rollup_bytes_per_row, result.rollup_refresh, result.notes)
