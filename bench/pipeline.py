"""Storage benchmarks: spool-to-database latency, and replay throughput against its bounds.

Replay throughput is measured side by side on the same table with its indexes:
- ceiling: the rows already in PostgreSQL's binary format, sent by two COPYs at once (no JSON,
  no idempotency);
- ours: the replayer draining a JSONL buffer file (read, COPY as jsonb, idempotent upsert);
- naive: one INSERT and one COMMIT per row, as most hobby bridges do (measured on a sample).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

from bench import shapes
from bench.harness import fresh_database, percentile, scratch_postgres
from replayer.replayer import Replayer
from replayer.settings import ReplayerSettings
from shared.buffer import Buffer
from shared.spool import SpoolAppender

# The columns a format-3 row fills (migration 005), as the sink stores them.
_COLUMNS = (
    "id, ts, account, mode, format_version, currency, net_theta, net_vega, net_dollar_delta,"
    " net_dollar_gamma, net_beta_delta, completeness, net_liquidation, unrealized_pnl,"
    " daily_pnl, position_count, option_count, options_with_greeks, stalest_greek_age_s,"
    " underlying_symbols, underlying_figures, underlying_counts, underlying_completeness"
)
_TYPES = [
    "uuid", "timestamptz", "text", "text", "int2", "text", "float8", "float8", "float8",
    "float8", "float8", "jsonb", "float8", "float8", "float8", "int4", "int4", "int4", "float8",
    "text[]", "float8[]", "int4[]", "jsonb",
]  # fmt: skip
_COPY_IN = f"COPY portfolio_greeks ({_COLUMNS}) FROM STDIN (FORMAT BINARY)"


@dataclass
class ReplayFigures:
    rows: int
    naive_rows: int
    ceiling_rows_s: float
    ours_rows_s: float
    naive_rows_s: float


@dataclass
class LatencyFigures:
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def _rows(lines: list[bytes]) -> list[tuple[object, ...]]:
    """The format-3 lines parsed into the table's columns, for the naive path: a format-3
    line's fields are the row's values."""
    rows: list[tuple[object, ...]] = []
    for line in lines:
        body = json.loads(line)
        assert (body["v"], body["kind"]) == (3, "snapshot")
        partial = body.get("completeness")
        incomplete = body.get("underlying_completeness")
        rows.append(
            (
                body["id"], body["ts"], body["account"], body["mode"], body["v"],
                body.get("currency"), body.get("net_theta"), body.get("net_vega"),
                body.get("net_dollar_delta"), body.get("net_dollar_gamma"),
                body.get("net_beta_delta"), None if partial is None else Jsonb(partial),
                body.get("net_liquidation"), body.get("unrealized_pnl"), body.get("daily_pnl"),
                body["position_count"], body["option_count"], body["options_with_greeks"],
                body.get("stalest_greek_age_s"), body["underlying_symbols"],
                body["underlying_figures"], body["underlying_counts"],
                None if incomplete is None else Jsonb(incomplete),
            )
        )  # fmt: skip
    return rows


def _reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE portfolio_greeks, rollup_pending")
        conn.execute("CHECKPOINT")


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM portfolio_greeks").fetchone()
    assert row is not None
    return int(row[0])


def _ceiling(url: str, count: int, connections: int) -> float:
    """The `count` rows the table holds (ours just stored them), taken out in PostgreSQL's
    binary format and sent back by `connections` COPYs at once (as many as the replayer uses),
    split by account: the server's own ingest rate, nothing parsed, nothing checked."""
    streams = []
    with psycopg.connect(url) as conn:  # untimed
        for part in range(connections):
            chunks: list[bytes] = []
            query = (
                f"COPY (SELECT {_COLUMNS} FROM portfolio_greeks"  # noqa: S608  # constants
                f" WHERE abs(hashtext(account)) % {connections} = {part}) TO STDOUT (FORMAT BINARY)"
            )
            with conn.cursor().copy(query) as out:
                chunks.extend(bytes(chunk) for chunk in out)
            streams.append(b"".join(chunks))
    _reset(url)

    def send(stream: bytes) -> None:
        with psycopg.connect(url) as conn:
            with conn.cursor().copy(_COPY_IN) as copy:
                copy.write(stream)
            conn.commit()

    started = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(send, streams))
    elapsed = time.perf_counter() - started
    assert _count(url) == count
    return count / elapsed


def _naive(url: str, rows: list[tuple[object, ...]]) -> float:
    _reset(url)
    placeholders = ", ".join(["%s"] * len(_TYPES))
    statement = f"INSERT INTO portfolio_greeks ({_COLUMNS}) VALUES ({placeholders})"  # noqa: S608
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for row in rows:
            conn.execute(statement, row)
    elapsed = time.perf_counter() - started
    assert _count(url) == len(rows)
    return len(rows) / elapsed


async def _ours(url: str, buffer_dir: Path, lines: list[bytes]) -> float:
    _reset(url)
    environ = {
        "DATABASE_URL": url,
        "BRIDGE_VAR_DIR": str(buffer_dir),
        "BRIDGE_BUFFER_PATH": str(buffer_dir / "buffer.jsonl"),
    }
    replayer = Replayer(ReplayerSettings.from_environ(environ))
    Buffer(buffer_dir / "buffer.jsonl").append(lines)
    for connection in range(replayer.store.connections):  # connect and bootstrap untimed
        await replayer.store.store(lines[:1], connection=connection)
    _reset(url)
    started = time.perf_counter()
    report = await replayer.drain_once()
    elapsed = time.perf_counter() - started
    await replayer.close()
    assert report.stored == len(lines), report
    return len(lines) / elapsed


@dataclass
class RecoveryFigures:
    outage: str
    rows: int
    seconds: float


def recovery(outages: dict[str, int]) -> list[RecoveryFigures]:
    """Time for the replayer to drain the backlog an outage leaves (60 accounts, one row per
    account every 5 s: 43,200 rows an hour), into the tables with their indexes."""
    figures = []
    with scratch_postgres() as server:
        url = fresh_database(server, "bench_recovery")
        asyncio.run(shapes.prepare(url))
        for outage, rows in outages.items():
            lines = shapes.snapshots(rows, accounts=60)
            buffer_dir = Path(server.var_dir) / f"recovery-{rows}"
            buffer_dir.mkdir()
            seconds = rows / asyncio.run(_ours(url, buffer_dir, lines))
            figures.append(RecoveryFigures(outage, rows, seconds))
    return figures


def replay(row_count: int, naive_count: int) -> ReplayFigures:
    lines = shapes.snapshots(row_count, accounts=60)
    with scratch_postgres() as server:
        url = fresh_database(server, "bench_replay")
        asyncio.run(shapes.prepare(url))
        buffer_dir = Path(server.var_dir) / "bench"
        buffer_dir.mkdir()
        ours = asyncio.run(_ours(url, buffer_dir, lines))
        ceiling = _ceiling(url, row_count, connections=2)
        naive = _naive(url, _rows(lines[:naive_count]))
    return ReplayFigures(row_count, naive_count, ceiling, ours, naive)


def latency(samples: int, spacing_s: float) -> LatencyFigures:
    """Append one snapshot at a time to the spool of a running writer process; the latency of a
    record is the database's `stored_at` (transaction start) minus the wall-clock time it was
    appended (its `ts`)."""
    with scratch_postgres() as server:
        url = fresh_database(server, "bench_latency")
        var_dir = Path(server.var_dir) / "latency"
        environ = {"DATABASE_URL": url, "BRIDGE_VAR_DIR": str(var_dir), "PATH": "/usr/bin:/bin"}
        writer = subprocess.Popen(
            [sys.executable, "-m", "writer"], env=environ, stderr=subprocess.DEVNULL
        )
        spool = SpoolAppender(var_dir / "spool", segment_max_bytes=1 << 24)
        spool.open(now_us=time.time_ns() // 1000)
        try:
            # The writer's start (connect, schema bootstrap) is not part of the latency.
            spool.append([shapes.snapshot("WARMUP", 0)], now_us=0)
            _wait_for_rows(url, 1)
            for index in range(samples):
                line = shapes.snapshot(f"DU{index % 60:08d}", index)
                body = json.loads(line)
                body["ts"] = datetime.now(UTC).isoformat()
                spool.append([json.dumps(body).encode() + b"\n"], now_us=0)
                time.sleep(spacing_s)
            _wait_for_rows(url, samples + 1)
            with psycopg.connect(url) as conn:
                delays = conn.execute(
                    "SELECT extract(epoch FROM stored_at - ts) * 1000 FROM portfolio_greeks"
                    " WHERE account <> 'WARMUP'"
                ).fetchall()
        finally:
            spool.close()
            writer.terminate()
            writer.wait(timeout=30)
    values = [float(row[0]) for row in delays]
    assert len(values) == samples, f"only {len(values)} of {samples} rows stored"
    return LatencyFigures(samples, percentile(values, 0.5), percentile(values, 0.99), max(values))


def _wait_for_rows(url: str, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if _count(url) >= count:
                return
        except psycopg.errors.UndefinedTable:
            pass  # the writer has not bootstrapped the schema yet
        time.sleep(0.05)
    raise TimeoutError(f"fewer than {count} rows after {timeout_s} s")
