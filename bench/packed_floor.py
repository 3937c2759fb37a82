"""What a codec would save, measured and not applied: the stored snapshot with its arrays, or
every figure and count, packed into one `bytea` by an exact decimal codec, beside the row as it
is stored now, for the books of `shapes.BOOKS`.

The codec is about as small as an exact one can be while each row still decodes on its own.
Every figure is the decimal the collector states (`records.kept`): money as the zigzag varint of
its cents (0: null), a share-equivalent (9 significant digits, so its scale moves with its size)
as a byte of scale and the zigzag varint of its digits; each count a varint, each symbol its
length and UTF-8. A figure takes 2 to 6 bytes where float8 takes 8. Nothing here decodes it:
every reader (the views, the web program, the rollups, the alerter) would need a decoder in SQL,
and the writer would pack every line in Python; the second is measured (`encode_us`), and the
first is why none of it is applied. This measures whether, and by how much, such a layout could
reach issue #20's 600 B a row.

Rows shaped like the collector's (`bench/shapes.py`) are stored through the writer's sink; each
layout is then a plain table of the same columns in the same order, with the arrays (or every
figure and count) replaced by one `bytea` where the first of them stood, the table's primary key
`(account, ts)` and BRIN on `ts`; after a VACUUM, its heap, TOAST and indexes per row.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from bench import shapes
from bench.harness import fresh_database, scratch_postgres
from shared import records

_ACCOUNTS = 60
_ROWS_A_DAY = 17_280  # a snapshot every 5 s
_ARRAYS = ("underlying_symbols", "underlying_figures", "underlying_counts")
_COUNTS = ("position_count", "option_count", "options_with_greeks")
_NULL = b"\xff"


def _varint(number: int) -> bytes:
    """LEB128 of a number >= 0."""
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(number: int) -> int:
    return 2 * number if number >= 0 else -2 * number - 1


def _decimal(value: float, scale: int) -> int | None:
    """m where m / 10**scale is `value` read back as a double, or None."""
    digits = round(value * 10**scale)
    return digits if float(f"{digits}e{-scale}") == value else None


def packed_figure(name: str, value: float | None) -> bytes:
    """One figure. Money (stated to the cent): the zigzag varint of its cents, plus 1 (0: null).
    A share-equivalent (9 significant digits, so its scale moves with its size): a byte of scale
    (255: null) and the zigzag varint of its digits. Only figures as the collector states them
    (`records.kept`) have such a form: the benchmark packs nothing else."""
    if name not in records.SHARE_EQUIVALENTS:
        if value is None:
            return b"\x00"
        cents = _decimal(value, 2)
        if cents is not None:
            return _varint(_zigzag(cents) + 1)
    elif value is None:
        return _NULL
    else:
        # The scale `records.kept` rounded it to (a zero: any scale).
        scale = 0 if value == 0 else records.stated_decimals(name, value)
        digits = _decimal(value, scale)
        if digits is not None:
            return bytes([scale + 64]) + _varint(_zigzag(digits))
    raise ValueError(f"{name} {value!r} is not a figure as the collector states it")


def packed_count(value: int | None) -> bytes:
    return b"\x00" if value is None else _varint(value + 1)


def packed_symbols(symbols: Sequence[str]) -> bytes:
    out = _varint(len(symbols))
    for symbol in symbols:
        encoded = symbol.encode()
        out += _varint(len(encoded)) + encoded
    return out


def packed_underlyings(
    symbols: Sequence[str], figures: Sequence[Sequence[float | None]], counts: Sequence[Any]
) -> bytes:
    """The three arrays in one value: symbols, then each underlying's figures and counts."""
    out = bytearray(packed_symbols(symbols))
    for row, count_row in zip(figures, counts, strict=True):
        out += b"".join(map(packed_figure, records.UNDERLYING_FIGURES, row))
        out += b"".join(map(packed_count, count_row))
    return bytes(out)


def unpacked_underlyings(data: bytes) -> tuple[list[str], list[list[float | None]], list[Any]]:
    """The three arrays back from `packed_underlyings`: the benchmark checks every row it
    measures reads back exactly, so the sizes are those of an exact codec."""
    at = 0

    def varint() -> int:
        nonlocal at
        number = shift = 0
        while True:
            byte = data[at]
            at += 1
            number |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return number

    def signed(number: int) -> int:
        return number // 2 if number % 2 == 0 else -(number + 1) // 2

    def text() -> str:
        nonlocal at
        length = varint()
        at += length
        return data[at - length : at].decode()

    def figure(name: str) -> float | None:
        nonlocal at
        if name not in records.SHARE_EQUIVALENTS:
            cents = varint()
            return None if cents == 0 else float(f"{signed(cents - 1)}e-2")
        scale = data[at]
        at += 1
        return None if scale == _NULL[0] else float(f"{signed(varint())}e{64 - scale}")

    symbols = [text() for _ in range(varint())]
    figures: list[list[float | None]] = []
    counts: list[Any] = []
    for _ in symbols:
        figures.append([figure(name) for name in records.UNDERLYING_FIGURES])
        counts.append([None if (count := varint()) == 0 else count - 1 for _ in range(3)])
    assert at == len(data), "the packed value holds more than its arrays"
    return symbols, figures, counts


def _packed_exactly(row: dict[str, Any]) -> bytes:
    """The row's arrays packed, having checked that they read back as they are."""
    arrays = tuple(row[name] for name in _ARRAYS)
    packed = packed_underlyings(*arrays)
    if unpacked_underlyings(packed) != arrays:
        raise AssertionError(f"the codec does not read back {arrays!r}")
    return packed


@dataclass
class Layout:
    name: str
    packed_bytes: float  # the packed value's average size in the tuple
    tuple_bytes: float
    total_bytes: float  # heap, TOAST and indexes per row

    @property
    def mb_per_account_day(self) -> float:
        return self.total_bytes * _ROWS_A_DAY / 1e6


def _columns(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    found = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'portfolio_greeks'::regclass AND attnum > 0 AND NOT attisdropped"
        " ORDER BY attnum"
    ).fetchall()
    return [(str(name), str(kind)) for name, kind in found]


def _store_layout(
    conn: psycopg.Connection[Any],
    table: str,
    columns: list[tuple[str, str]],
    packed_names: tuple[str, ...],
    rows: Iterable[tuple[dict[str, Any], bytes]],
) -> Layout:
    """A table of `columns` with `packed_names` replaced by one bytea `packed`, filled with
    `rows` (the row's columns by name, its packed value), measured after VACUUM."""
    layout = [(name, kind) for name, kind in columns if name not in packed_names]
    if packed_names:
        first = min(index for index, (name, _) in enumerate(columns) if name in packed_names)
        layout.insert(first, ("packed", "bytea"))
    conn.execute(
        sql.SQL("CREATE TABLE {} ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
                for name, kind in layout
            ),
        )
    )
    names = [name for name, _ in layout]
    with conn.cursor() as cur:
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names))
        )
        with cur.copy(copy_sql) as copy:
            for values, packed in rows:
                row = {**values, "packed": packed}
                copy.write_row(
                    [
                        Jsonb(row[name]) if isinstance(row[name], dict) else row[name]
                        for name in names
                    ]
                )
    conn.execute(
        sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (account, ts)").format(sql.Identifier(table))
    )
    conn.execute(sql.SQL("CREATE INDEX ON {} USING brin (ts)").format(sql.Identifier(table)))
    conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
    found = conn.execute(
        sql.SQL(
            "SELECT avg(pg_column_size({packed})), avg(pg_column_size(t.*)), count(*),"
            " (SELECT pg_relation_size(oid) + pg_indexes_size(oid)"
            " + coalesce(pg_relation_size(nullif(reltoastrelid, 0)), 0)"
            " + coalesce(pg_indexes_size(nullif(reltoastrelid, 0)), 0)"
            " FROM pg_class WHERE oid = {name}::regclass)"
            " FROM {table} t"
        ).format(
            packed=sql.SQL("t.packed" if packed_names else "NULL::bytea"),
            name=sql.Literal(table),
            table=sql.Identifier(table),
        )
    ).fetchone()
    assert found is not None
    packed_bytes, tuple_bytes, count, total = found
    return Layout(table, float(packed_bytes or 0), float(tuple_bytes), float(total) / int(count))


def measure(rows: int, underlyings: int = shapes.BOOK) -> list[Layout]:
    """Now, the arrays packed, every figure and count packed: each measured on the same rows."""
    lines = shapes.snapshots(rows, _ACCOUNTS, underlyings=underlyings)
    with scratch_postgres() as server:
        url = fresh_database(server, "bench_packed_floor")
        asyncio.run(shapes.prepare(url))
        shapes.store(url, lines)
        with psycopg.connect(url, autocommit=True) as conn:
            columns = _columns(conn)
            stored = [
                dict(zip([name for name, _ in columns], row, strict=True))
                for row in conn.execute("SELECT * FROM portfolio_greeks").fetchall()
            ]
            stated = {*records.GREEK_FIELDS, *records.FIGURES, *records.ACCOUNT_VALUES}
            stated |= set(records.GATEWAY_FIGURES)
            figures = [name for name, _ in columns if name in stated]
            now = _store_layout(conn, "now", columns, (), ((row, b"") for row in stored))
            arrays = _store_layout(
                conn,
                "arrays_packed",
                columns,
                _ARRAYS,
                ((row, _packed_exactly(row)) for row in stored),
            )
            everything = _store_layout(
                conn,
                "all_packed",
                columns,
                (*figures, *_COUNTS, *_ARRAYS),
                (
                    (
                        row,
                        b"".join(packed_figure(name, row[name]) for name in figures)
                        + b"".join(packed_count(row[name]) for name in _COUNTS)
                        + packed_underlyings(*(row[name] for name in _ARRAYS)),
                    )
                    for row in stored
                ),
            )
    return [now, arrays, everything]


def encode_us(underlyings: int, rows: int = 2_000) -> float:
    """The writer's cost of packing a line's arrays (µs a line, in Python, best of 3): what the
    codec would add to each line the writer stores."""
    bodies = [
        orjson.loads(line) for line in shapes.snapshots(rows, _ACCOUNTS, underlyings=underlyings)
    ]
    arrays = [[body[name] for name in _ARRAYS] for body in bodies]
    best = math.inf
    for _ in range(3):
        started = time.perf_counter()
        for symbols, figures, counts in arrays:
            packed_underlyings(symbols, figures, counts)
        best = min(best, time.perf_counter() - started)
    return best / rows * 1e6


def table(layouts_by_book: dict[int, list[Layout]], encode_us_by_book: dict[int, float]) -> str:
    lines = [
        "### A stored snapshot packed by a codec (measured, not applied: `bench/packed_floor.py`)",
        "",
        "| book | layout | packed value | tuple | table and indexes, B/row | MB per account-day"
        " | the writer's packing of the arrays, µs a line |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    names = {
        "now": "now: arrays of float8, int4 and text",
        "arrays_packed": "the three arrays packed in one bytea",
        "all_packed": "every figure and count packed in one bytea",
    }
    for book, layouts in layouts_by_book.items():
        for layout in layouts:
            packing = f"{encode_us_by_book[book]:.0f}" if layout.name == "arrays_packed" else ""
            packed = "" if layout.name == "now" else f"{layout.packed_bytes:.0f} B"
            lines.append(
                f"| {book} underlyings | {names[layout.name]} | {packed}"
                f" | {layout.tuple_bytes:.0f} B | {layout.total_bytes:,.0f}"
                f" | {layout.mb_per_account_day:.1f} | {packing} |"
            )
    lines += [
        "",
        "Issue #20's goal at 10 underlyings: 600 B a row and 10 MB an account-day. The same rows"
        f" ({_ACCOUNTS} accounts, every figure known and complete, `bench/shapes.py`) in each"
        " layout: a plain table of the partition's columns, with the arrays (or every figure and"
        " count) replaced by one bytea where the first of them stood, its primary key"
        " `(account, ts)` and BRIN on `ts`, after VACUUM; heap, TOAST and indexes per row. The"
        " codec is exact: money as its cents, a share-equivalent as its 9 significant digits and"
        " their scale, each a varint, so a figure takes 2 to 6 bytes where float8 takes 8. No"
        " reader could read it without a decoder in SQL. The writer's packing: the arrays of a"
        " line already parsed, packed in Python (best of 3), what each stored line would add to"
        " the writer's 40-45 µs of CPU. At 50 underlyings a packed row still passes"
        " PostgreSQL's 2 kB TOAST threshold, and its value moves out of line.",
    ]
    return "\n".join(lines)
