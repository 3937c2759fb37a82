"""A snapshot's cost as a book grows: the line, the stored row, and the server's time per line,
for books of 2, 10 and 50 underlyings per account, format 2 (before lean snapshots) beside
format 3 (now).

Each (book, format) stores the same ticks of 60 accounts into a fresh database through the
writer's own statements (`server_time.measure`: COPY into the staging the sink sends the line
to, INSERT, COMMIT, timed one by one), then measures the partitions with their indexes after a
VACUUM. The ceiling of the line is the JSON of the figures alone: the numbers a row must carry
(id, time, account, counts and every figure, as the shortest round-tripping text), with no keys,
no completeness, nothing else.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
import psycopg

from bench import server_time, shapes
from bench.harness import fresh_database, scratch_postgres
from bench.server_time import ServerTime

_ACCOUNTS = 60
_ROWS_PER_DAY = 86_400 // 5


@dataclass
class LeanFigures:
    underlyings: int
    version: int
    rows: int
    line_bytes: float
    figures_only_bytes: float
    stored_bytes: float  # table and indexes, per row
    server: ServerTime

    @property
    def account_day_mb(self) -> float:
        return self.stored_bytes * _ROWS_PER_DAY / 1e6


def _figures_only(line: bytes) -> int:
    """The line's numbers and names without their keys: the least any JSON line can carry."""
    body = orjson.loads(line)

    def values(item: object) -> list[object]:
        if isinstance(item, dict):
            return [value for key, value in item.items() if key not in ("v", "kind")
                    for value in values(value)]  # fmt: skip
        if isinstance(item, list):
            return [value for element in item for value in values(element)]
        return [item]

    figures = [value for value in values(body) if not isinstance(value, dict)]
    return len(orjson.dumps(figures))


def measure(rows: int, books: tuple[int, ...] = shapes.BOOKS) -> list[LeanFigures]:
    found = []
    with scratch_postgres() as server:
        for underlyings in books:
            for version in (2, 3):
                lines = shapes.snapshots(rows, _ACCOUNTS, underlyings=underlyings, version=version)
                url = fresh_database(server, f"bench_lean_{underlyings}_{version}")
                asyncio.run(shapes.prepare(url))
                timed = asyncio.run(
                    server_time.measure(url, server_time.sinks_staging(lines), lines)
                )
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("VACUUM ANALYZE portfolio_greeks")
                    row = conn.execute(
                        "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits"
                        " WHERE inhparent = 'portfolio_greeks'::regclass"
                    ).fetchone()
                assert row is not None
                found.append(
                    LeanFigures(
                        underlyings=underlyings,
                        version=version,
                        rows=rows,
                        line_bytes=sum(map(len, lines)) / rows,
                        figures_only_bytes=_figures_only(lines[0]),
                        stored_bytes=float(row[0]) / rows,
                        server=timed,
                    )
                )
    return found


def table(figures: list[LeanFigures]) -> str:
    rows = figures[0].rows
    lines = [
        f"### Lean snapshots: a row's cost by book ({rows:,} rows of {_ACCOUNTS} accounts each)",
        "",
        "| book | format | line | figures alone | x figures | stored B/row | MB per account-day"
        " | COPY | INSERT | COMMIT | server µs/line | x format 2 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    before = {f.underlyings: f for f in figures if f.version == 2}
    for figure in figures:
        old = before[figure.underlyings]
        name = f"**format {figure.version}**" if figure.version == 3 else "format 2"
        lines.append(
            f"| {figure.underlyings} underlyings | {name} | {figure.line_bytes:,.0f} B"
            f" | {figure.figures_only_bytes:,.0f} B"
            f" | {figure.line_bytes / figure.figures_only_bytes:.2f}"
            f" | {figure.stored_bytes:,.0f} | {figure.account_day_mb:.1f}"
            f" | {figure.server.copy_us:.1f} | {figure.server.insert_us:.1f}"
            f" | {figure.server.commit_us:.1f} | {figure.server.total_us:.1f}"
            f" | {old.server.total_us / figure.server.total_us:.2f} |"
        )
    three = sorted((f for f in figures if f.version == 3), key=lambda f: f.underlyings)
    if len(three) >= 2:
        first, last = three[0], three[-1]
        growth = (last.line_bytes - first.line_bytes) / (last.underlyings - first.underlyings)
        stored = (last.stored_bytes - first.stored_bytes) / (last.underlyings - first.underlyings)
        lines += [
            "",
            f"Format 3 grows by {growth:,.0f} B of line and {stored:,.0f} B of stored row per"
            " added underlying (all figures known).",
        ]
    lines += [
        "",
        "Each underlying holds 3 options and a share position, every figure known and complete"
        " (`bench/shapes.py`), values as the collector states them (format 3: money to the"
        " cent, share-equivalents to 9 significant digits; format 2: full precision). Server"
        " time, in µs a line: COPY into the staging the sink sends the line to (format 3: json"
        " text, its syntax checked; format 2: parsed into jsonb), INSERT (the fields and arrays"
        " read out of it), COMMIT, of batches of 160 lines over one connection"
        " (`bench/server_time.py`); stored: the partitions and their indexes after VACUUM, per"
        " row. Figures alone: the row's numbers and names as one JSON array without keys, the"
        " least a JSON line can carry.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(measure(4_000)))
