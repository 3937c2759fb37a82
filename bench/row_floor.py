"""Where a stored snapshot's bytes go: the row of a book of `shapes.BOOK` underlyings taken
apart with `pg_column_size`, beside what the table and its indexes take per row on disk.

Rows shaped like the collector's (format 3, every figure known and complete: `bench/shapes.py`)
of 60 accounts are stored through the writer's sink into a fresh database; after a VACUUM each
column's average size is read from the rows themselves (`pg_column_size`, the bytes the column
takes in the tuple, its header included), the whole tuple's (`pg_column_size` of the row), and
the heap and index sizes of the day partition holding them (the empty partitions made ahead
hold a page or three of index each: a cost per day, not per row, left out here). What is
neither a column nor the tuple is the tuple's header and alignment; what the page holds beyond
the tuples is its line pointers, its header and the room left when the next tuple does not fit.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import psycopg

from bench import shapes
from bench.harness import fresh_database, scratch_postgres

_ACCOUNTS = 60


@dataclass
class RowFloor:
    underlyings: int
    rows: int
    columns: list[tuple[str, float]]  # a column's average bytes in the tuple (NULL: 0)
    tuple_bytes: float  # the whole tuple, header included
    heap_bytes: float  # the partitions' heap per row (pages, their headers, free space)
    index_bytes: dict[str, float]  # per index, per row
    rows_per_page: float

    @property
    def header_bytes(self) -> float:
        return self.tuple_bytes - sum(size for _, size in self.columns)

    @property
    def page_bytes(self) -> float:
        return self.heap_bytes - self.tuple_bytes

    @property
    def total_bytes(self) -> float:
        return self.heap_bytes + sum(self.index_bytes.values())


def measure(rows: int, underlyings: int = shapes.BOOK) -> RowFloor:
    lines = shapes.snapshots(rows, _ACCOUNTS, underlyings=underlyings)
    with scratch_postgres() as server:
        url = fresh_database(server, "bench_row_floor")
        asyncio.run(shapes.prepare(url))
        shapes.store(url, lines)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE portfolio_greeks")
            names = [
                str(name)
                for (name,) in conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = 'portfolio_greeks'::regclass"
                    " AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
                ).fetchall()
            ]
            sizes = ", ".join(f'avg(coalesce(pg_column_size(g."{name}"), 0))' for name in names)
            found = conn.execute(
                f"SELECT {sizes}, avg(pg_column_size(g.*)), count(*) FROM portfolio_greeks g"  # noqa: S608
            ).fetchone()
            assert found is not None
            assert int(found[-1]) == rows
            heap = conn.execute(
                "SELECT sum(pg_relation_size(inhrelid)), sum(pg_relation_size(inhrelid))"
                " / current_setting('block_size')::int FROM pg_inherits"
                " WHERE inhparent = 'portfolio_greeks'::regclass AND pg_relation_size(inhrelid) > 0"
            ).fetchone()
            assert heap is not None
            indexes = conn.execute(
                "SELECT parent.relname, sum(pg_relation_size(child.indexrelid))"
                " FROM pg_index parent_index"
                " JOIN pg_class parent ON parent.oid = parent_index.indexrelid"
                " JOIN pg_inherits link ON link.inhparent = parent.oid"
                " JOIN pg_index child ON child.indexrelid = link.inhrelid"
                " WHERE parent_index.indrelid = 'portfolio_greeks'::regclass"
                " AND pg_relation_size(child.indrelid) > 0"
                " GROUP BY parent.relname ORDER BY parent.relname"
            ).fetchall()
    return RowFloor(
        underlyings=underlyings,
        rows=rows,
        columns=[(name, float(size)) for name, size in zip(names, found, strict=False)],
        tuple_bytes=float(found[-2]),
        heap_bytes=float(heap[0]) / rows,
        index_bytes={str(name): float(size) / rows for name, size in indexes},
        rows_per_page=rows / float(heap[1]),
    )


def table(floor: RowFloor) -> str:
    lines = [
        f"### A stored snapshot by part ({floor.rows:,} rows of {floor.underlyings} underlyings,"
        f" {_ACCOUNTS} accounts)",
        "",
        "| part | B/row |",
        "|---|---:|",
        f"| tuple header and alignment | {floor.header_bytes:.0f} |",
    ]
    lines += [f"| `{name}` | {size:.1f} |" for name, size in floor.columns if size]
    lines += [
        f"| **the tuple** (`pg_column_size` of the row) | **{floor.tuple_bytes:.0f}** |",
        f"| page: line pointer, page header, room left ({floor.rows_per_page:.1f} rows a page)"
        f" | {floor.page_bytes:.0f} |",
        f"| **heap** | **{floor.heap_bytes:.0f}** |",
    ]
    lines += [f"| index `{name}` | {size:.1f} |" for name, size in floor.index_bytes.items()]
    lines += [
        f"| **table and indexes** | **{floor.total_bytes:.0f}** |",
        "",
        "The day partition holding the rows, its heap (main fork) and its indexes;"
        " columns that are NULL in every row (format 3 leaves out `underlyings`, a complete row"
        " its completeness; `net_delta`, `net_gamma` are format 1's, `gateway_beta_delta` PORTAL's)"
        " take no byte but their bit in the tuple's null bitmap. Rows stored through the"
        " writer's sink, then VACUUM; `bench/row_floor.py`.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(table(measure(count)))
