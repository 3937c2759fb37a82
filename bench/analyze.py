"""What an ANALYZE of a day partition costs, the work autoanalyze does while the day grows.

Autoanalyze reads a sample of at most 30,000 rows of the partition (300 x the default
statistics target) at most once a minute per table (autovacuum_naptime), on one of the cores
the writer and its backends share. Before migration 016 it computed statistics for every
column, the figure arrays' elements included: 30,000 rows of 10 underlyings hold 2.1 million
figures. Measured on one partition of format-3 rows (40,000 in `make bench`, more than a sample
takes; figures drawn afresh for every row: `shapes.snapshot`), for each book, with:
- every column analysed (before 016);
- ours: no statistics on the arrays and documents (016);
- the ceiling: account and ts only, the columns rows are chosen by.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from bench import shapes
from bench.harness import fresh_database, scratch_postgres

_ACCOUNTS = 400
_REPEATS = 3
_PARTITION = "portfolio_greeks_p20260302"  # shapes.BASE's day


@dataclass
class AnalyzeCost:
    underlyings: int
    rows: int
    every_column_ms: float
    ours_ms: float
    ceiling_ms: float


def _columns_without_statistics(conn: psycopg.Connection[tuple[Any, ...]]) -> list[str]:
    cursor = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped AND attstattarget = 0 ORDER BY attnum",
        (_PARTITION,),
    )
    return [row[0] for row in cursor.fetchall()]


def _timed_ms(conn: psycopg.Connection[tuple[Any, ...]], statement: str) -> float:
    spent = []
    for _ in range(_REPEATS):
        began = time.perf_counter()
        conn.execute(statement)
        spent.append((time.perf_counter() - began) * 1000)
    return statistics.median(spent)


def measure(rows: int, underlyings: int) -> AnalyzeCost:
    lines = [
        shapes.snapshot(f"DU{index % _ACCOUNTS:08d}", index // _ACCOUNTS, underlyings)
        for index in range(rows)
    ]
    with scratch_postgres() as server:
        url = fresh_database(server, "bench_analyze")
        asyncio.run(shapes.prepare(url))
        shapes.store(url, lines)
        with psycopg.connect(url, autocommit=True) as conn:
            skipped = _columns_without_statistics(conn)
            assert "underlying_figures" in skipped, "migration 016 no longer applies here"
            ours = _timed_ms(conn, f"ANALYZE {_PARTITION}")
            ceiling = _timed_ms(conn, f"ANALYZE {_PARTITION} (account, ts)")
            for column in skipped:
                conn.execute(f"ALTER TABLE {_PARTITION} ALTER COLUMN {column} SET STATISTICS -1")
            every = _timed_ms(conn, f"ANALYZE {_PARTITION}")
    figures = AnalyzeCost(underlyings, rows, every, ours, ceiling)
    print(f"analyze: {underlyings} underlyings: {figures}", file=sys.stderr)
    return figures


def table(costs: list[AnalyzeCost]) -> str:
    rows = costs[0].rows if costs else 0
    lines = [
        f"### ANALYZE of a day partition ({rows:,} format-3 rows, median of {_REPEATS})",
        "",
        "| book | every column (before 016) | ours: no statistics on the arrays | x before"
        " | ceiling: account and ts only | x ceiling |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for cost in costs:
        lines.append(
            f"| {cost.underlyings} underlyings | {cost.every_column_ms:,.0f} ms"
            f" | {cost.ours_ms:,.0f} ms | {cost.every_column_ms / cost.ours_ms:.1f}"
            f" | {cost.ceiling_ms:,.0f} ms | {cost.ours_ms / cost.ceiling_ms:.2f} |"
        )
    lines += [
        "",
        "Autoanalyze does this to the day's partition at most once a minute while it grows"
        " (a sample of at most 30,000 rows, whatever the partition's size), on one of the 2 cores"
        " the writer and its backends share. Ours: migration 016, no statistics on the raw"
        " tables' arrays and documents, which no query filters by. Ceiling: only the columns rows"
        " are chosen by. Figures drawn afresh for every row (`bench/shapes.py`).",
    ]
    return "\n".join(lines)
