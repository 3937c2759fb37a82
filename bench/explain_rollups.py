"""The P&L explain's stored rollups (migration 012): what rolling up and scoring an account-day
costs the replayer's maintenance, what the stored rows take, and what a day's score costs a
reader, stored against computed from the raw intervals as the view of migration 007 did.

Intervals are generated inside PostgreSQL (generate_series): one UTC day of 5-s intervals per
account, one in 97 missing an input and one in 500 a fill, so every figure of the rollup is
exercised. The maintenance is timed as the replayer runs it (database/history.py), the reads as
the dashboard asks them (database/reads.py `explain_score`), best of three.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bench.harness import fresh_database, scratch_postgres
from database import history, reads
from database.schema import bootstrap

DAY = datetime(2026, 3, 2, tzinfo=UTC)
INTERVALS_A_DAY = 17_280

# One account-day of intervals per account, generated in PostgreSQL (also bench/explain_score.py).
FILL = """
INSERT INTO pnl_explain (account, ts, id, mode, start_ts, currency, actual_pnl, explained_pnl,
    delta_pnl, gamma_pnl, theta_pnl, vega_pnl, linear_pnl, marks, underlying_symbols)
SELECT 'DU' || lpad(a::text, 7, '0'), t, gen_random_uuid(), 'SOCKET', t - interval '5 s', 'USD',
    CASE WHEN n %% 97 <> 0 THEN sin(n * 0.37 + a) * 100 END,
    CASE WHEN n %% 97 <> 0 THEN sin(n * 0.37 + a) * 95 + random() END,
    sin(n * 0.37 + a) * 90, random(), -0.5, random() - 0.5, 4,
    CASE WHEN n %% 97 = 0 THEN ARRAY['input_missing'] WHEN n %% 500 = 0
         THEN ARRAY['positions_changed'] ELSE ARRAY[]::text[] END,
    ARRAY['ES']
FROM generate_series(1, %(accounts)s::integer) a,
    generate_series(0, %(intervals)s::integer - 1) n,
    LATERAL (SELECT %(day)s::timestamptz + n * interval '5 s' AS t) ends
"""

# Migration 007's day score, over the raw intervals: what every read of pnl_explain_daily
# computed before 012, for every day the raw rows keep.
_RAW_SCORE = """
WITH scored AS (
    SELECT account, ts, (ts AT TIME ZONE 'UTC')::date AS day, actual_pnl, explained_pnl,
           abs(actual_pnl - explained_pnl) AS miss
    FROM pnl_explain WHERE cardinality(marks) = 0 AND account = %(account)s
), ranked AS (
    SELECT *,
           rank() OVER (PARTITION BY account, day ORDER BY explained_pnl)
             + (count(*) OVER (PARTITION BY account, day, explained_pnl) - 1) / 2.0
             AS explained_rank,
           rank() OVER (PARTITION BY account, day ORDER BY actual_pnl)
             + (count(*) OVER (PARTITION BY account, day, actual_pnl) - 1) / 2.0 AS actual_rank
    FROM scored
)
SELECT day, 1 - sum(miss) / nullif(sum(abs(actual_pnl)), 0),
       corr(explained_rank::float8, actual_rank::float8), max(miss)
FROM ranked GROUP BY day ORDER BY day DESC LIMIT 1
"""


@dataclass(frozen=True)
class Figures:
    accounts: int
    roll_s: float  # every account-day's minutes, hours and day
    score_s: float  # every account-day's Spearman correlation
    minute_row_bytes: float  # table and key, per stored minute
    account_day_bytes: float  # minutes, hours and day of one account-day
    raw_day_bytes: float  # the raw intervals of one account-day (table and key)
    stored_read_s: float  # a scored day's score through pnl_explain_daily
    open_read_s: float  # a day rolled up, not over: pnl_explain_daily from the raw intervals
    raw_read_s: float  # 007's view, over one day of raw intervals
    load: float  # the machine's 1-minute load average at the end (a shared machine)

    def per_account_day_ms(self, seconds: float) -> float:
        return 1_000 * seconds / self.accounts


async def _connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def _timed_read(url: str, query: str, params: dict[str, Any]) -> float:
    best = float("inf")
    async with await _connect(url) as conn:
        for _ in range(3):
            started = time.perf_counter()
            await (await conn.execute(query, params)).fetchall()
            best = min(best, time.perf_counter() - started)
    return best


async def _score_read(url: str) -> float:
    best = float("inf")
    async with await _connect(url) as conn:
        for _ in range(3):
            started = time.perf_counter()
            await reads.explain_score(conn, "DU0000001")
            best = min(best, time.perf_counter() - started)
    return best


async def _bytes(url: str, tables: list[str]) -> int:
    async with await _connect(url) as conn:
        await conn.execute("VACUUM ANALYZE")
        cursor = await conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)"
            " FROM unnest(%s::regclass[]) parent, LATERAL (SELECT relid FROM"
            " pg_partition_tree(parent)) tree",
            (tables,),
        )
        return int((await cursor.fetchone() or (0,))[0])


async def _measure(url: str, accounts: int) -> Figures:
    over = DAY + timedelta(days=1, minutes=1)
    async with await _connect(url) as conn:
        await bootstrap(conn)
        await history.apply_partition_plan(conn, history.Retention(), DAY)
        params = {"accounts": accounts, "intervals": INTERVALS_A_DAY, "day": DAY}
        await conn.execute(FILL, params)
        await conn.execute("ANALYZE")
    async with await _connect(url) as conn:
        started = time.perf_counter()
        while await history.refresh_explain_rollups(conn) > 0:
            pass
        roll_s = time.perf_counter() - started
    open_read_s = await _score_read(url)  # rolled up, not over yet: as today's is read
    async with await _connect(url) as conn:
        started = time.perf_counter()
        while await history.score_explain_days(conn, over) > 0:
            pass
        score_s = time.perf_counter() - started
        cursor = await conn.execute("SELECT count(*) FROM pnl_explain_1m")
        minutes = (await cursor.fetchone() or (0,))[0]
    rollups = await _bytes(url, ["pnl_explain_1m", "pnl_explain_1h", "pnl_explain_1d"])
    return Figures(
        accounts=accounts,
        roll_s=roll_s,
        score_s=score_s,
        minute_row_bytes=await _bytes(url, ["pnl_explain_1m"]) / minutes,
        account_day_bytes=rollups / accounts,
        raw_day_bytes=await _bytes(url, ["pnl_explain"]) / accounts,
        stored_read_s=await _score_read(url),
        open_read_s=open_read_s,
        raw_read_s=await _timed_read(url, _RAW_SCORE, {"account": "DU0000001"}),
        load=os.getloadavg()[0],
    )


def measure(accounts: int) -> Figures:
    """A day of `accounts` accounts on a scratch server, rolled up, scored and read."""
    with scratch_postgres() as server:
        return asyncio.run(_measure(fresh_database(server, "bench_explain_rollups"), accounts))


def table(figures: Figures) -> str:
    ms = figures.per_account_day_ms
    return "\n".join(
        [
            f"### The P&L explain's rollups ({figures.accounts} account-days of 5-s intervals)",
            "",
            "| what | per account-day |",
            "|---|---:|",
            f"| maintenance: minutes, hours and day rolled up | {ms(figures.roll_s):.0f} ms |",
            f"| maintenance: the day scored (Spearman over its intervals) |"
            f" {ms(figures.score_s):.0f} ms |",
            f"| stored: minutes, hours and day (a minute row {figures.minute_row_bytes:.0f} B"
            f" with its key) | {figures.account_day_bytes / 1e6:.2f} MB |",
            f"| the raw intervals, for comparison | {figures.raw_day_bytes / 1e6:.1f} MB |",
            "",
            "| a day's score read (one account, one day kept) | ms |",
            "|---|---:|",
            f"| `pnl_explain_daily`, the day scored and stored |"
            f" {figures.stored_read_s * 1e3:.1f} |",
            f"| `pnl_explain_daily`, the day not over (scored from its raw intervals) |"
            f" {figures.open_read_s * 1e3:.1f} |",
            f"| migration 007's view, from the raw intervals of every day kept |"
            f" {figures.raw_read_s * 1e3:.1f} |",
            "",
            "The raw rows here have no per-underlying arrays (the budget above measures real"
            " ones). 007's view read every day the raw rows keep (90 by default) at each read;"
            " the stored score reads one row. The machine's load average at the end of the run:"
            f" {figures.load:.1f} (other work shares it).",
        ]
    )
