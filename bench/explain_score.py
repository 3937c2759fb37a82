"""The alerter's catch-up over a day with a limit on `explain_spearman`: the day so far scored
afresh in SQL for every snapshot (database/reads.py `EXPLAIN_FIGURES`, what the alerter did
before) against the running day score (alerter/day_score.py) fed each interval once.

One account, one UTC day of 5-s snapshots and explain intervals (17,280 each, generated inside
PostgreSQL as bench/explain_rollups.py does: one in 97 missing an input, one in 500 a fill).
After: the catch-up as the alerter runs it, whole: the snapshots a page at a time
(reads.UNSEEN_PAGE), the day's intervals in one read, the figures as of each snapshot;
then the next step (one new snapshot and interval). Before: the same pages with the SQL figure,
timed for a page at evenly spaced places of the day (its cost grows with the day so far, so
their mean is the day's), the day's total extrapolated from them: measuring every page takes
many minutes.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from alerter.catch_up import next_ranges
from alerter.day_score import DayScores, as_of_each
from bench.explain_rollups import DAY, FILL, INTERVALS_A_DAY
from bench.harness import fresh_database, scratch_postgres
from database import history, reads
from database.schema import bootstrap

ACCOUNT = "DU0000001"
_SNAPSHOTS = """
INSERT INTO portfolio_greeks (id, ts, account, mode, net_dollar_delta, position_count,
    option_count, options_with_greeks)
SELECT gen_random_uuid(), %(day)s::timestamptz + n * interval '5 s', %(account)s, 'SOCKET',
    1000 * sin(n / 500.0), 6, 4, 4
FROM generate_series(0, %(intervals)s::integer - 1) n
"""
_STEP = timedelta(seconds=5)
# Before the day's first snapshot (at midnight) and after its last: the catch-up's open range.
_BEFORE_DAY = DAY - timedelta(seconds=1)


@dataclass(frozen=True)
class Figures:
    snapshots: int
    sql_sampled: int  # snapshots timed with the SQL figure
    sql_ms_per_snapshot: float  # their mean: the day's
    sql_late_ms_per_snapshot: float  # the last page's: late in the day
    running_pages_s: float  # the catch-up's snapshot pages, without the figure
    running_read_s: float  # the day's intervals (marked ones too), one read
    running_score_s: float  # the figures as of each snapshot, in Python
    next_step_ms: float  # the step after: one snapshot, one interval
    agree: bool  # the last snapshot's figure the same both ways
    load: float  # the machine's 1-minute load average at the end

    @property
    def running_s(self) -> float:
        return self.running_pages_s + self.running_read_s + self.running_score_s


async def _connect(url: str) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def _pages(
    conn: psycopg.AsyncConnection[Any], figures: tuple[str, ...], since: Any, until: Any
) -> list[tuple[Any, ...]]:
    """Every snapshot in (since, until) a page at a time, as the alerter's StoreReader reads."""
    found: list[tuple[Any, ...]] = []
    left = {ACCOUNT: (since, until)}
    while True:
        page = await reads.unseen_snapshots(conn, figures, left)
        found += page
        if len(page) < reads.UNSEEN_PAGE:
            return found
        left = next_ranges(left, page)


async def _measure(url: str, samples: int) -> Figures:
    end = DAY + INTERVALS_A_DAY * _STEP
    params = {"accounts": 1, "intervals": INTERVALS_A_DAY, "day": DAY, "account": ACCOUNT}
    async with await _connect(url) as conn:
        await bootstrap(conn)
        await history.apply_partition_plan(conn, history.Retention(), DAY)
        await conn.execute(FILL, params)
        await conn.execute(_SNAPSHOTS, params)
        await conn.execute("VACUUM ANALYZE")
    async with await _connect(url) as conn:
        last = end - _STEP
        started = time.perf_counter()
        snapshots = [(account, ts) for account, ts in await _pages(conn, (), _BEFORE_DAY, last)]
        pages_s = time.perf_counter() - started
        scores = DayScores()
        started = time.perf_counter()
        ranges = scores.to_read({ACCOUNT: (snapshots[0][1], snapshots[-1][1])})
        intervals = await reads.intervals_to_score(conn, ranges)
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        answers = as_of_each(scores, snapshots, intervals)
        score_s = time.perf_counter() - started
        assert len(answers) == INTERVALS_A_DAY - 1
        started = time.perf_counter()
        window = {ACCOUNT: (last - _STEP, end)}
        ((_account, newest),) = await reads.unseen_snapshots(conn, (), window)
        ranges = scores.to_read({ACCOUNT: (newest, newest)})
        (newest_figures,) = as_of_each(
            scores, [(ACCOUNT, newest)], await reads.intervals_to_score(conn, ranges)
        )
        next_step_ms = (time.perf_counter() - started) * 1e3
        per_snapshot = []
        for place in range(1, samples + 1):
            # The page of snapshots ending at the place-th of `samples` evenly spaced places.
            first = place * INTERVALS_A_DAY // samples - reads.UNSEEN_PAGE
            since = DAY + first * _STEP - timedelta(seconds=1)
            started = time.perf_counter()
            page = await reads.unseen_snapshots(
                conn, ("explain_spearman",), {ACCOUNT: (since, end)}
            )
            per_snapshot.append((time.perf_counter() - started) * 1e3 / len(page))
        (*_, (_account, last_ts, sql_spearman)) = page
    return Figures(
        snapshots=INTERVALS_A_DAY,
        sql_sampled=samples * reads.UNSEEN_PAGE,
        sql_ms_per_snapshot=sum(per_snapshot) / len(per_snapshot),
        sql_late_ms_per_snapshot=per_snapshot[-1],
        running_pages_s=pages_s,
        running_read_s=read_s,
        running_score_s=score_s,
        next_step_ms=next_step_ms,
        agree=last_ts == newest
        and abs(sql_spearman - (newest_figures["explain_spearman"] or 0.0)) < 1e-9,
        load=os.getloadavg()[0],
    )


def measure(samples: int) -> Figures:
    """The day on a scratch server, caught up both ways (`samples` pages timed in SQL)."""
    with scratch_postgres() as server:
        return asyncio.run(_measure(fresh_database(server, "bench_explain_score"), samples))


def table(figures: Figures) -> str:
    n = figures.snapshots
    sql_total_s = figures.sql_ms_per_snapshot * n / 1e3
    return "\n".join(
        [
            f"### The alerter's catch-up of a day with a limit on `explain_spearman`"
            f" ({n:,} snapshots and 5-s intervals, one account)",
            "",
            "| the day so far as of each snapshot | ms a snapshot | the day's catch-up |",
            "|---|---:|---:|",
            f"| before: scored afresh in SQL per snapshot (mean of {figures.sql_sampled:,}"
            f" timed, evenly spaced) | {figures.sql_ms_per_snapshot:.1f}"
            f" (late in the day {figures.sql_late_ms_per_snapshot:.1f}) |"
            f" {sql_total_s:.0f} s (extrapolated) |",
            f"| after: the running day score (alerter/day_score.py) |"
            f" {figures.running_s * 1e3 / n:.3f} | {figures.running_s:.1f} s |",
            f"| of which the snapshots' pages, without the figure | |"
            f" {figures.running_pages_s:.1f} s |",
            f"| of which the day's intervals, one read | | {figures.running_read_s:.2f} s |",
            f"| of which the figures as of each snapshot (Python, numpy) | |"
            f" {figures.running_score_s:.1f} s |",
            "",
            f"The step after the catch-up (one new snapshot and interval, late in the day):"
            f" {figures.next_step_ms:.1f} ms with the running score, against"
            f" {figures.sql_late_ms_per_snapshot:.1f} ms for the SQL figure of one snapshot."
            f" The last snapshot's correlation is the same both ways: {figures.agree}. The"
            f" machine's load average at the end of the run: {figures.load:.1f} (other work"
            " shares it).",
        ]
    )
