"""Ways into `portfolio_greeks`, side by side: how should PostgreSQL or Python parse a snapshot
line, so that the two together spend the least? Five paths for the same snapshot lines:

- before: each line as one jsonb value, COPY into the staging table, then every kind's
  `INSERT … SELECT … ON CONFLICT DO NOTHING` (the sink as it was: six of them find nothing);
- jsonb staging, the kinds held only: the same COPY, then only the statements of the kinds the
  batch holds (the sink after that, and still for the lines that are not format-3 snapshots
  or explains);
- now (`database/sink.py`): each line as `json` text (COPY only checks its syntax, no numeric
  is built), then one `json_to_record` a line reading every field straight into its column's
  type;
- typed, measured and not applied: each line decoded in Python (`bench/typed_rows.py`), its
  columns sent as PostgreSQL's binary values by `copy.set_types` + `write_row` into a staging
  table of the table's own columns, then one `INSERT … SELECT … ON CONFLICT DO NOTHING`;
- text rows, measured and not applied: each line cut into its columns by one regular expression
  (`bench/text_rows.py`, no JSON parser on either side), sent as COPY's text format into a
  staging table of the columns, PostgreSQL parsing each value with its column's input function.
Every path must store the same rows: the table's content (less `stored_at`) is compared.

Per line, in one run on the same lines (format 3, batches of 160 over one connection, each path
on a fresh database): the wall time of each statement, the CPU the client spent (the process's
CPU time: decoding, encoding, psycopg) and the CPU the server's backend spent (its
`/proc/<pid>/stat`: the server runs on this machine). On 2 cores the total CPU is what bounds a
writer and PostgreSQL together; CPU times move less than wall times on a busy machine. Then
replay: other lines stored in chunks of the replayer's 20,000 over two connections at once.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import server_time, shapes, text_rows, typed_rows
from bench.harness import fresh_database, scratch_postgres
from database import sink

_BATCH_LINES = 160
_CHUNK_LINES = 20_000  # the replayer's chunk (BRIDGE_REPLAY_CHUNK_RECORDS)
_CLOCK_TICKS_S = os.sysconf("SC_CLK_TCK")


@dataclass
class PathTime:
    """One path's cost per line, µs."""

    label: str
    copy_us: float
    insert_us: float
    commit_us: float
    client_cpu_us: float
    server_cpu_us: float

    @property
    def wall_us(self) -> float:
        return self.copy_us + self.insert_us + self.commit_us

    @property
    def cpu_us(self) -> float:
        return self.client_cpu_us + self.server_cpu_us


def _backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS_S  # utime, stime


def _before_statements() -> list[str]:
    """The sink's transaction after its COPY before typed rows: every kind's statement."""
    names = (
        "INSERT_SNAPSHOTS", "_INSERT_API_LOGS", "_INSERT_BETAS", "_INSERT_EXPIRY",
        "_INSERT_LEGS", "INSERT_SCENARIOS", "INSERT_EXPLAINS",
    )  # fmt: skip
    return [getattr(sink, name) for name in names]


def _lines_copy(conn: psycopg.Connection[Any], batch: Sequence[bytes]) -> None:
    with conn.cursor().copy("COPY bridge_staging (line) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(sink.copy_payload(batch))


def _typed_copy(conn: psycopg.Connection[Any], batch: Sequence[bytes]) -> None:
    rows = [typed_rows.typed_row(line) for line in batch]
    with conn.cursor().copy(typed_rows.COPY) as copy:
        copy.set_types(typed_rows.TYPES)
        for row in rows:
            assert row is not None, "a shaped line the sink would not type"
            copy.write_row(row)


@dataclass(frozen=True)
class _Path:
    label: str
    staging: str
    copy: Callable[[psycopg.Connection[Any], Sequence[bytes]], None]
    statements: list[str]


def _json_copy(conn: psycopg.Connection[Any], batch: Sequence[bytes]) -> None:
    """The sink's json staging: each line as `json` text with its kind."""
    with conn.cursor().copy(server_time.JSON.copy) as copy:
        copy.write(server_time.JSON.payload(batch))


def _text_copy(conn: psycopg.Connection[Any], batch: Sequence[bytes]) -> None:
    rows = [text_rows.text_row(line) for line in batch]
    assert all(row is not None for row in rows), "a shaped line the regex would not cut"
    with conn.cursor().copy(text_rows.COPY) as copy:
        copy.write(b"".join(row + b"\n" for row in rows if row is not None))


def _paths() -> list[_Path]:
    before = _before_statements()
    return [
        _Path("before: jsonb staging, every kind's INSERT", sink.STAGING, _lines_copy, before),
        _Path("jsonb staging, the kinds held only", sink.STAGING, _lines_copy, before[:1]),
        _Path("**now: json staging, one json_to_record**", server_time.JSON.create, _json_copy,
              [server_time.JSON.insert]),
        _Path("measured, not applied: typed rows by binary COPY", typed_rows.STAGING, _typed_copy,
              [typed_rows.INSERT]),
        _Path("measured, not applied: text rows cut by a regex", text_rows.STAGING, _text_copy,
              [text_rows.INSERT]),
    ]  # fmt: skip


def _stored(url: str) -> str:
    """A digest of every stored row but its `stored_at`: equal digests, equal rows."""
    with _connect(url) as conn:
        columns = [
            name
            for (name,) in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'portfolio_greeks' AND column_name <> 'stored_at'"
                " ORDER BY ordinal_position"
            )
        ]
        query = (
            "SELECT md5(string_agg(r::text, E'\\n' ORDER BY r.account, r.ts))"  # noqa: S608
            f" FROM (SELECT {', '.join(columns)} FROM portfolio_greeks) r"
        )
        row = conn.execute(query).fetchone()
    assert row is not None
    return str(row[0])


def _connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def _measure(url: str, path: _Path, lines: list[bytes]) -> PathTime:
    spent = {"copy": 0.0, "insert": 0.0, "commit": 0.0, "client": 0.0, "server": 0.0}
    with _connect(url) as conn:
        conn.execute(path.staging)
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        backend = int(row[0])
        for start in range(0, len(lines), _BATCH_LINES):
            batch = lines[start : start + _BATCH_LINES]
            cpu, server = time.process_time(), _backend_cpu_s(backend)
            began = time.perf_counter()
            conn.execute("BEGIN")
            path.copy(conn, batch)
            copied = time.perf_counter()
            stored = sum(conn.execute(statement).rowcount for statement in path.statements[:1])
            for statement in path.statements[1:]:
                conn.execute(statement)
            inserted = time.perf_counter()
            conn.execute("COMMIT")
            committed = time.perf_counter()
            spent["client"] += time.process_time() - cpu
            spent["server"] += _backend_cpu_s(backend) - server
            assert stored == len(batch), (stored, len(batch))
            spent["copy"] += copied - began
            spent["insert"] += inserted - copied
            spent["commit"] += committed - inserted
    per = {name: seconds / len(lines) * 1e6 for name, seconds in spent.items()}
    return PathTime(
        path.label, per["copy"], per["insert"], per["commit"], per["client"], per["server"]
    )


def _replay(url: str, path: _Path, lines: list[bytes]) -> float:
    """Rows/s storing `lines` in replay chunks over two connections at once (threads of one
    process, as the replayer's two connections share one)."""
    chunks = [lines[start : start + _CHUNK_LINES] for start in range(0, len(lines), _CHUNK_LINES)]
    taken = iter(chunks)
    lock = threading.Lock()
    stored = [0]

    def work() -> None:
        with _connect(url) as conn:
            conn.execute(path.staging)
            while True:
                with lock:
                    chunk = next(taken, None)
                if chunk is None:
                    return
                conn.execute("BEGIN")
                path.copy(conn, chunk)
                count = conn.execute(path.statements[0]).rowcount
                for statement in path.statements[1:]:
                    conn.execute(statement)
                conn.execute("COMMIT")
                with lock:
                    stored[0] += count

    workers = [threading.Thread(target=work) for _ in range(2)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    assert stored[0] == len(lines), (stored[0], len(lines))
    return len(lines) / elapsed


@dataclass
class TypedFigures:
    lines: int
    replay_rows: int
    underlyings: int
    paths: list[PathTime]
    replay_rows_s: list[float]


def measure(line_count: int, replay_rows: int, underlyings: int = shapes.BOOK) -> TypedFigures:
    lines = shapes.snapshots(line_count, accounts=60, underlyings=underlyings)
    replay_lines = shapes.snapshots(
        replay_rows, accounts=60, first_tick=line_count, underlyings=underlyings
    )
    times, rates, digests = [], [], set()
    with scratch_postgres() as server:
        for number, path in enumerate(_paths()):
            url = fresh_database(server, f"bench_typed_{number}")
            asyncio.run(shapes.prepare(url))
            times.append(_measure(url, path, lines))
            rates.append(_replay(url, path, replay_lines))
            digests.add(_stored(url))
    assert len(digests) == 1, "the paths stored different rows"
    return TypedFigures(line_count, replay_rows, underlyings, times, rates)


def table(books: list[TypedFigures]) -> str:
    first = books[0]
    lines = [
        f"### Staging: json, jsonb, typed rows, text rows ({first.lines:,} format-3 lines a book,"
        f" {_BATCH_LINES} a batch; replay of {first.replay_rows:,})",
        "",
        "| book | path | COPY | INSERTs | COMMIT | wall µs/line | client CPU | server CPU"
        " | CPU µs/line | x before | replay rows/s | x before |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for figures in books:
        before = figures.paths[0]
        for figure, rate in zip(figures.paths, figures.replay_rows_s, strict=True):
            lines.append(
                f"| {figures.underlyings} underlyings | {figure.label} | {figure.copy_us:.1f}"
                f" | {figure.insert_us:.1f} | {figure.commit_us:.1f} | {figure.wall_us:.1f}"
                f" | {figure.client_cpu_us:.1f} | {figure.server_cpu_us:.1f}"
                f" | {figure.cpu_us:.1f} | {figure.cpu_us / before.cpu_us:.2f} | {rate:,.0f}"
                f" | {rate / figures.replay_rows_s[0]:.2f} |"
            )
    for figures in books:
        before, held, now, typed, text = figures.paths
        names = ("before", "held", "now", "typed", "text")
        rates = dict(zip(names, figures.replay_rows_s, strict=True))
        lines.append(
            f"\n{figures.underlyings} underlyings: json staging"
            f" {now.cpu_us / held.cpu_us:.2f} x the CPU of jsonb staging (the kinds held only),"
            f" {now.server_cpu_us / held.server_cpu_us:.2f} x the server's, replay at"
            f" {rates['now'] / rates['held']:.2f} x its rows/s."
            f" Typed rows: {typed.cpu_us / now.cpu_us:.2f} x the CPU of now, replay at"
            f" {rates['typed'] / rates['now']:.2f} x; text rows: {text.cpu_us / now.cpu_us:.2f} x,"
            f" replay at {rates['text'] / rates['now']:.2f} x."
            f" Skipping the kinds a batch does not hold: {held.cpu_us / before.cpu_us:.2f} x the"
            f" CPU of before, replay at {rates['held'] / rates['before']:.2f} x."
        )
    lines += [
        "",
        "µs a line. Wall: each statement as the client waits for it (the typed path's COPY"
        " includes the encoding in Python); client CPU: this process's CPU time (decoding,"
        " checking, encoding, psycopg); server CPU: the backend's, from `/proc`. Replay: other"
        " lines of the same book in chunks of 20,000 over two connections at once (threads of"
        " one process). Every path stored the same rows (compared, less `stored_at`)."
        " `bench/typed_staging.py`, the typed decoder `bench/typed_rows.py`, the text rows'"
        " cutter `bench/text_rows.py`.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 16_000
    replay = int(sys.argv[2]) if len(sys.argv) > 2 else 60_000
    books = [int(arg) for arg in sys.argv[3:]] or [shapes.BOOK]
    print(table([measure(count, replay, book) for book in books]))
