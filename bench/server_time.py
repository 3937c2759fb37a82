"""The server's share of storing a batch: COPY into staging, INSERT into the table, COMMIT.

Times each statement of the writer's transaction (`database/sink.py`) from one connection, on
batches of real-shaped lines (`bench/shapes.py`) into the partitioned table, per line:
- ours: the staging table as the sink makes it (lines up to a page kept uncompressed);
- compressed staging: the same table with PostgreSQL's default toast target, as it was: a line
  past 2 kB as jsonb is compressed in COPY and decompressed for every field the INSERT reads.
What PostgreSQL spends here is what the writer's capacity waits on (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass

import psycopg

from bench import shapes
from bench.harness import fresh_database, scratch_postgres
from database.sink import INSERT_SNAPSHOTS, STAGING, copy_payload

_BATCH_LINES = 160  # 16,000 rows/s appended every 10 ms


@dataclass
class ServerTime:
    label: str
    copy_us: float
    insert_us: float
    commit_us: float

    @property
    def total_us(self) -> float:
        return self.copy_us + self.insert_us + self.commit_us


async def _measure(url: str, label: str, staging: str, lines: list[bytes]) -> ServerTime:
    spent = {"copy": 0.0, "insert": 0.0, "commit": 0.0}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(staging)
        for start in range(0, len(lines), _BATCH_LINES):
            batch = lines[start : start + _BATCH_LINES]
            began = time.perf_counter()
            await conn.execute("BEGIN")
            async with conn.cursor().copy(
                "COPY bridge_staging (line) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                await copy.write(copy_payload(batch))
            copied = time.perf_counter()
            stored = await conn.execute(INSERT_SNAPSHOTS)
            inserted = time.perf_counter()
            await conn.execute("COMMIT")
            committed = time.perf_counter()
            assert stored.rowcount == len(batch)
            spent["copy"] += copied - began
            spent["insert"] += inserted - copied
            spent["commit"] += committed - inserted
    per_line = {name: seconds / len(lines) * 1e6 for name, seconds in spent.items()}
    return ServerTime(label, per_line["copy"], per_line["insert"], per_line["commit"])


def server_time(line_count: int) -> list[ServerTime]:
    """Both stagings, each on a fresh database, the same lines (60 accounts' worth of ticks)."""
    lines = shapes.snapshots(line_count, accounts=60)
    compressed = STAGING.replace("WITH (toast_tuple_target = 8160) ", "")
    assert compressed != STAGING, "the sink's staging statement changed: update this benchmark"
    figures = []
    with scratch_postgres() as server:
        for label, staging in (("ours", STAGING), ("compressed staging", compressed)):
            url = fresh_database(server, "bench_server_time")
            asyncio.run(shapes.prepare(url))
            figures.append(asyncio.run(_measure(url, label, staging, lines)))
    return figures


def table(figures: list[ServerTime], line_count: int) -> str:
    ours = figures[0]
    lines = [
        f"### The server's time per line ({line_count:,} format-3 lines of {shapes.BOOK}"
        f" underlyings, {_BATCH_LINES} a batch)",
        "",
        "| staging | COPY | INSERT | COMMIT | total | x ours |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for figure in figures:
        name = f"**{figure.label}**" if figure is ours else figure.label
        lines.append(
            f"| {name} | {figure.copy_us:.1f} µs | {figure.insert_us:.1f} µs |"
            f" {figure.commit_us:.1f} µs | {figure.total_us:.1f} µs |"
            f" {figure.total_us / ours.total_us:.2f} |"
        )
    lines += [
        "",
        "One connection times each statement of the writer's transaction (`database/sink.py`)"
        " into the partitioned table; `bench/server_time.py`. Compressed staging is the same"
        " table with PostgreSQL's default toast target, as it was before: the line is"
        " compressed in COPY and decompressed for every field the INSERT reads.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 32_000
    print(table(server_time(count), count))
