"""The server's share of storing a batch: COPY into staging, INSERT into the table, COMMIT.

Times each statement of the writer's transaction (`database/sink.py`) from one connection, on
batches of real-shaped lines (`bench/shapes.py`) into the partitioned table, per line:
- ours: the staging the sink sends a format-3 snapshot to, json text read by json_to_record;
- jsonb staging: the one it sends any other line to, as every line went before: the line parsed
  into jsonb (every figure a numeric), each field read out of it;
- compressed jsonb staging: that table with PostgreSQL's default toast target, as it was before
  that: a line past 2 kB as jsonb compressed in COPY and decompressed for every field read.
What PostgreSQL spends here is what the writer's capacity waits on (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import psycopg

from bench import shapes
from bench.harness import fresh_database, scratch_postgres
from database.sink import (
    COPY_JSON,
    COPY_JSONB,
    INSERT_SNAPSHOTS,
    JSON_INSERT_SNAPSHOTS,
    JSON_STAGING,
    STAGING,
    copy_payload,
    json_copy_payload,
    json_kind,
)

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


def _as_json(lines: Sequence[bytes]) -> bytes:
    return json_copy_payload([("snapshot", line) for line in lines])


@dataclass(frozen=True)
class Staging:
    """One way into `portfolio_greeks`: the staging table, its COPY and payload, the INSERT."""

    label: str
    create: str
    copy: str
    payload: Callable[[Sequence[bytes]], bytes]
    insert: str


JSON = Staging("ours: json staging", JSON_STAGING, COPY_JSON, _as_json, JSON_INSERT_SNAPSHOTS)
JSONB = Staging("jsonb staging", STAGING, COPY_JSONB, copy_payload, INSERT_SNAPSHOTS)


def sinks_staging(lines: Sequence[bytes]) -> Staging:
    """The staging the sink sends these snapshot lines to (all of one format)."""
    return JSON if json_kind(lines[0]) == "snapshot" else JSONB


async def measure(url: str, staging: Staging, lines: list[bytes]) -> ServerTime:
    spent = {"copy": 0.0, "insert": 0.0, "commit": 0.0}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(staging.create)
        for start in range(0, len(lines), _BATCH_LINES):
            batch = lines[start : start + _BATCH_LINES]
            began = time.perf_counter()
            await conn.execute("BEGIN")
            async with conn.cursor().copy(staging.copy) as copy:
                await copy.write(staging.payload(batch))
            copied = time.perf_counter()
            stored = await conn.execute(staging.insert)
            inserted = time.perf_counter()
            await conn.execute("COMMIT")
            committed = time.perf_counter()
            assert stored.rowcount == len(batch)
            spent["copy"] += copied - began
            spent["insert"] += inserted - copied
            spent["commit"] += committed - inserted
    per_line = {name: seconds / len(lines) * 1e6 for name, seconds in spent.items()}
    return ServerTime(staging.label, per_line["copy"], per_line["insert"], per_line["commit"])


def server_time(line_count: int) -> list[ServerTime]:
    """The stagings, each on a fresh database, the same lines (60 accounts' worth of ticks)."""
    lines = shapes.snapshots(line_count, accounts=60)
    assert sinks_staging(lines) is JSON, "the sink no longer sends these lines as json"
    compressed = STAGING.replace("WITH (toast_tuple_target = 8160) ", "")
    assert compressed != STAGING, "the sink's staging statement changed: update this benchmark"
    figures = []
    with scratch_postgres() as server:
        for staging in (JSON, JSONB, replace(JSONB, label="compressed jsonb staging",
                                             create=compressed)):  # fmt: skip
            url = fresh_database(server, "bench_server_time")
            asyncio.run(shapes.prepare(url))
            figures.append(asyncio.run(measure(url, staging, lines)))
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
        " into the partitioned table; `bench/server_time.py`. Ours: the json staging, where the"
        " sink sends a format-3 snapshot (json text, COPY only checks its syntax, one"
        " json_to_record a line); jsonb staging: where every line went before, and any other"
        " line goes (the line parsed into jsonb, every figure a numeric, each field read out);"
        " compressed: that table with PostgreSQL's default toast target, as it was before that"
        " (the line compressed in COPY and decompressed for every field the INSERT reads).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 32_000
    print(table(server_time(count), count))
