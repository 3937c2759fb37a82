"""Dashboard benchmark: a 5-day chart of one account among 60, with 5 days of 5-s history.

The table is filled server-side (generate_series, 5,184,000 rows shaped like the collector's:
two underlyings each), vacuumed and analysed as autovacuum would leave it. Then, side by side on
the same accounts:
- ours: `GET /api/series?window=5d` from the real web program (SQL buckets with date_bin, min,
  max and last per bucket; a few hundred points out), first with every minute still pending
  (raw rows only), then after the replayer's maintenance has made the rollups (1-minute rollup);
- naive: select every row of the account over the 5 days and ship them all as JSON (86,400
  rows), as a dashboard without bucketing does.

On the same table, the count /healthz and bridge-status show (snapshots of the last hour): ours
by tick (`ROWS_LAST_HOUR_SQL`), against counting by `stored_at`, which has no index.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

import aiohttp
import psycopg
from psycopg import sql

from bench import history as history_bench
from bench.harness import fresh_database, scratch_postgres
from database.reads import ROWS_LAST_HOUR_SQL
from testkit.web import serving

ACCOUNTS = 60
DAYS = 5
TICK_S = 5

# Server-side generation: one row per account per tick, figures moving smoothly, two
# underlyings per row as the collector writes them.
_FILL = """
INSERT INTO portfolio_greeks (
    id, ts, account, mode, net_delta, net_gamma, net_theta, net_vega, net_dollar_delta,
    position_count, option_count, options_with_greeks, stalest_greek_age_s, underlyings)
SELECT gen_random_uuid(), t.ts, a.account, 'SOCKET',
    300 + 50 * sin(t.n / 500.0 + a.k), 3 + sin(t.n / 700.0), -200 + 10 * cos(t.n / 900.0),
    900 + 40 * sin(t.n / 300.0), 150000 + 20000 * sin(t.n / 400.0 + a.k),
    6, 4, 3, 0.2,
    jsonb_build_object(
        'SPY', jsonb_build_object('net_delta', 380 + sin(t.n / 500.0), 'net_gamma', 2.5,
                                  'net_theta', -120.0, 'net_vega', 600.0,
                                  'net_dollar_delta', 230000 + 1000 * sin(t.n / 500.0),
                                  'position_count', 3, 'option_count', 2,
                                  'options_with_greeks', 2),
        'ES', jsonb_build_object('net_delta', -14 + cos(t.n / 500.0), 'net_gamma', 0.5,
                                 'net_theta', -80.0, 'net_vega', 300.0,
                                 'net_dollar_delta', -87000 + 1000 * cos(t.n / 500.0),
                                 'position_count', 3, 'option_count', 2,
                                 'options_with_greeks', 1))
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS t0(n)
CROSS JOIN LATERAL (SELECT t0.n AS n, to_timestamp(t0.n * %(tick)s) AS ts) t
CROSS JOIN (
    SELECT 'DU' || lpad(k::text, 7, '0') AS account, k FROM generate_series(1, %(accounts)s) k
) a
"""

_NAIVE = """
SELECT ts, net_delta, net_gamma, net_theta, net_vega, net_dollar_delta, option_count,
       options_with_greeks, underlyings
FROM portfolio_greeks WHERE account = %s AND ts >= %s AND ts <= %s ORDER BY ts
"""


@dataclass
class ChartFigures:
    rows: int
    table_mb: float
    fill_s: float
    rollup_s: float
    minutes_rolled_up: int
    points_ours: int
    points_raw: int
    points_naive: int
    ours_p50_ms: float
    ours_max_ms: float
    raw_p50_ms: float
    raw_max_ms: float
    naive_p50_ms: float
    naive_max_ms: float
    ours_bytes: int
    raw_bytes: int
    naive_bytes: int
    count_ms: float
    count_naive_ms: float


_COUNT_NAIVE = "SELECT count(*) FROM portfolio_greeks WHERE stored_at > now() - interval '1 hour'"


async def _count_ms(url: str, query: str, repeats: int = 5) -> float:
    """The best of `repeats` runs of a count, in ms (its cache warmed by the first)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            await (await conn.execute(query)).fetchone()
            best = min(best, time.perf_counter() - started)
    return best * 1000


def _fill(url: str, end: datetime, days: float) -> tuple[int, float, float]:
    last = int(end.timestamp()) // TICK_S
    first = last - int(days * 86_400) // TICK_S + 1
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        step = 86_400 // TICK_S // 4  # a quarter day per statement, so progress is steady
        for chunk in range(first, last + 1, step):
            conn.execute(
                _FILL,
                {"first": chunk, "last": min(chunk + step - 1, last), "tick": TICK_S,
                 "accounts": ACCOUNTS},
            )  # fmt: skip
        conn.execute("VACUUM ANALYZE portfolio_greeks")
        # A partitioned table's own size is 0: its partitions hold the bytes.
        row = conn.execute(
            "SELECT (SELECT count(*) FROM portfolio_greeks),"
            " (SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits"
            "  WHERE inhparent = 'portfolio_greeks'::regclass)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]) / 1e6, time.perf_counter() - started


async def _roll_up(url: str, end: datetime) -> tuple[int, float]:
    """The replayer's maintenance, run until no minute is pending: minutes rolled up, seconds."""
    started = time.perf_counter()
    report = await history_bench.maintain(url, end)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for table in ("portfolio_greeks_1m", "portfolio_greeks_1h", "rollup_pending"):
            await conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
    return report.minutes_rolled_up, time.perf_counter() - started


async def _ours(base: str, account: str) -> tuple[float, int, int]:
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.get(f"{base}/api/series?account={account}&window=5d") as response:
            body = await response.read()
        elapsed = time.perf_counter() - started
    points = len(json.loads(body)["t"])
    return elapsed, points, len(body)


async def _naive(url: str, account: str, end: datetime) -> tuple[float, int, int]:
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cursor = await conn.execute(_NAIVE, (account, end - timedelta(days=DAYS), end))
        rows = await cursor.fetchall()
    body = json.dumps(
        [[ts.isoformat(), *values, underlyings] for ts, *values, underlyings in rows]
    ).encode()
    return time.perf_counter() - started, len(rows), len(body)


Sample = tuple[float, int, int]


def chart(samples: int = 12, days: float = DAYS) -> ChartFigures:
    """`days` of history (5 for the published figures; fewer for a smoke run)."""
    end = datetime.now(UTC)
    with scratch_postgres() as server, TemporaryDirectory(prefix="bench-web-") as var:
        url = fresh_database(server, "bench_web")

        asyncio.run(history_bench.partitioned_schema(url))
        rows, table_mb, fill_s = _fill(url, end, days)
        environ = {"BRIDGE_VAR_DIR": str(Path(var)), "DATABASE_URL": url, "BRIDGE_WEB_PORT": "0"}
        accounts = [f"DU{k:07d}" for k in range(1, ACCOUNTS + 1)]

        async def rounds(base: str, ours: list[Sample], naive: list[Sample] | None) -> None:
            await _ours(base, accounts[0])  # connect and read the columns once
            for index in range(samples):
                # A different account each time, alternating who goes first.
                account = accounts[(index * 7) % ACCOUNTS]
                if naive is not None and index % 2:
                    naive.append(await _naive(url, account, end))
                ours.append(await _ours(base, account))
                if naive is not None and not index % 2:
                    naive.append(await _naive(url, account, end))

        async def measure() -> ChartFigures:
            raw: list[Sample] = []
            ours: list[Sample] = []
            naive: list[Sample] = []
            async with serving(environ) as (_server, base):
                # Every minute still pending, as before the replayer's first maintenance:
                # the same query reads raw rows only.
                await rounds(base, raw, naive)
                minutes, rollup_s = await _roll_up(url, end)
                await rounds(base, ours, None)
            count_ms = await _count_ms(url, ROWS_LAST_HOUR_SQL)
            count_naive_ms = await _count_ms(url, _COUNT_NAIVE)
            return ChartFigures(
                rows=rows,
                table_mb=table_mb,
                fill_s=fill_s,
                rollup_s=rollup_s,
                minutes_rolled_up=minutes,
                points_ours=ours[-1][1],
                points_raw=raw[-1][1],
                points_naive=naive[-1][1],
                ours_p50_ms=statistics.median(t for t, _, _ in ours) * 1000,
                ours_max_ms=max(t for t, _, _ in ours) * 1000,
                raw_p50_ms=statistics.median(t for t, _, _ in raw) * 1000,
                raw_max_ms=max(t for t, _, _ in raw) * 1000,
                naive_p50_ms=statistics.median(t for t, _, _ in naive) * 1000,
                naive_max_ms=max(t for t, _, _ in naive) * 1000,
                ours_bytes=ours[-1][2],
                raw_bytes=raw[-1][2],
                naive_bytes=naive[-1][2],
                count_ms=count_ms,
                count_naive_ms=count_naive_ms,
            )

        return asyncio.run(measure())


def table(figures: ChartFigures) -> str:
    def ratio(ms: float) -> str:
        return f"{figures.naive_p50_ms / ms:.1f}"

    return "\n".join(
        [
            f"### Dashboard: a 5-day chart of one account ({figures.rows:,} rows: {ACCOUNTS}"
            f" accounts x {DAYS} days at 5 s, {figures.table_mb:,.0f} MB with indexes)",
            "",
            "| query | points shipped | JSON size | p50 | max | x naive |",
            "|---|---:|---:|---:|---:|---:|",
            f"| **ours: `GET /api/series?window=5d`, rollups up to date (1-minute rollup)** |"
            f" {figures.points_ours:,} | {figures.ours_bytes / 1e3:,.0f} kB |"
            f" {figures.ours_p50_ms:.0f} ms | {figures.ours_max_ms:.0f} ms |"
            f" {ratio(figures.ours_p50_ms)} |",
            f"| ours, every minute still pending (raw rows only, as before the first"
            f" maintenance) | {figures.points_raw:,} | {figures.raw_bytes / 1e3:,.0f} kB |"
            f" {figures.raw_p50_ms:.0f} ms | {figures.raw_max_ms:.0f} ms |"
            f" {ratio(figures.raw_p50_ms)} |",
            f"| naive: every row of the account, as JSON | {figures.points_naive:,} |"
            f" {figures.naive_bytes / 1e3:,.0f} kB | {figures.naive_p50_ms:.0f} ms |"
            f" {figures.naive_max_ms:.0f} ms | 1.0 |",
            "",
            "Goal: under 200 ms and at least 10 x the naive query. Ours is timed end to end"
            " through the running web program (HTTP included); the naive one from its query to"
            " its JSON, without HTTP. Each sample is a different account, alternately first."
            f" The table (partitioned by day, migration 004) was filled server-side with"
            f" generate_series in {figures.fill_s:.0f} s and vacuumed, as autovacuum leaves an"
            " insert-only table; every minute it filled was marked pending by the trigger, and"
            " the raw-only row was measured then. The replayer's maintenance then rolled all"
            f" {figures.minutes_rolled_up:,} account-minutes up in {figures.rollup_s:.0f} s.",
            "",
            "One query builder serves both rows (web/reader.py `series_query`): 600-s buckets"
            " read the 1-minute rollup for the whole minutes of the window (7,200 rows instead"
            " of 86,400) and raw rows for the window's partial first and last minute and for"
            " any minute marked in `rollup_pending`; min, max and last (by `last_ts`) are then"
            " folded per `date_bin` bucket. Each bucket's underlyings are still the jsonb of"
            " its last raw row, fetched by one primary-key probe (the rollups keep the"
            " figures, not the jsonb). The raw-only row is slower than the raw chart before"
            " the rollups (98 ms, which fetched each bucket's last row by a probe): the last"
            " value is now an `array_agg` ordered by `last_ts` over every part of a bucket,"
            " the one fold that serves rollup and raw parts alike. It is the path of a window"
            " whose minutes are all pending: after migrating a large table, until the"
            " maintenance has worked off the backlog.",
            "",
            "### Health count: snapshots of the last hour (/healthz, bridge-status), same table",
            "",
            "| query | best of 5 | x naive |",
            "|---|---:|---:|",
            f"| **ours: by tick (`ts`), older days' partitions pruned, primary key by skip scan**"
            f" | {figures.count_ms:.1f} ms | {figures.count_naive_ms / figures.count_ms:.0f} |",
            f"| naive: by `stored_at` (no index: every partition read) |"
            f" {figures.count_naive_ms:.0f} ms | 1 |",
            "",
            "The naive count grows with the history kept (90 days by default); ours with the"
            " accounts only.",
        ]
    )


def main() -> None:
    import sys  # noqa: PLC0415  # `python -m bench.web [days]`: a smoke run at fewer days

    print(table(chart(days=float(sys.argv[1]) if len(sys.argv) > 1 else DAYS)))


if __name__ == "__main__":
    main()
