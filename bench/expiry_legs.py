"""What Greeks by expiry and the legs cost: the line, the stored row, and the
collector's time to compute them, for books of 2, 10 and 50 underlyings per account.

Each underlying holds 3 options (expiring in 5, 40 and 200 days: three buckets) and a share
position, every figure known (the steady state, as `bench/shapes.py`). The records are built
by the collector's own functions from such holdings, stored through the writer's sink into a
fresh database, and the partitions measured with their indexes after a VACUUM. The snapshot
row beside them is `bench.lean`'s.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from bench import shapes
from bench.harness import fresh_database, scratch_postgres
from collector.expiry import by_expiry, expiry_day, expiry_record
from collector.greeks import AccountContext, Holding, OptionGreeks, OptionTerms
from collector.legs import legs_record
from database.sink import RecordSink
from shared import records

_TICKS_PER_DAY = 86_400 // 5
_CONTEXT = AccountContext("USD")


@dataclass
class Cost:
    underlyings: int
    expiry_line_bytes: float
    expiry_stored_bytes: float  # per row (account and tick), table and indexes
    legs_line_bytes: float
    leg_stored_bytes: float  # per leg row
    legs_per_tick: int
    compute_us: float  # CPU: by_expiry + legs_record + both encodes, per account and tick

    def mb_per_account_day(self, legs_interval_s: float) -> tuple[float, float]:
        """Expiry rows every tick (`BRIDGE_EXPIRY_INTERVAL_S=5`; a twelfth of it at the 60-s
        default), legs every `legs_interval_s`: MB a day each."""
        expiry = self.expiry_stored_bytes * _TICKS_PER_DAY / 1e6
        legs_ticks = 86_400 / max(legs_interval_s, 5.0)
        legs = self.leg_stored_bytes * self.legs_per_tick * legs_ticks / 1e6
        return expiry, legs


def book(underlyings: int, today: date) -> list[Holding]:
    now = datetime.combine(today, datetime.min.time(), UTC)
    holdings = []
    for index in range(underlyings):
        symbol = shapes.symbol(index)  # the same symbols as the snapshots'
        stock = Holding(1000 + index * 10, symbol, "STK", 100, 1.0, "USD", price=123.456789)
        holdings.append(stock)
        for leg, days in enumerate((5, 40, 200), start=1):
            terms = OptionTerms(
                "C", 125.0, today + timedelta(days=days), "american", "STK", 0.2345, 3.456
            )
            greeks = OptionGreeks(0.4123, 0.0123, -0.0456, 0.1789, 123.456789, now)
            quantity = (-1) ** leg * leg  # 1 short, 2 long, 3 short
            holdings.append(
                Holding(
                    1000 + index * 10 + leg,
                    symbol,
                    "OPT",
                    quantity,
                    100.0,
                    "USD",
                    greeks=greeks,
                    terms=terms,
                )
            )
    return holdings


def record_lines(underlyings: int, ticks: int) -> tuple[list[bytes], list[bytes], float]:
    """The expiry and legs lines of `ticks` ticks of one account, and the collector's CPU µs
    a tick to make them."""
    expiry_lines, legs_lines = [], []
    spent = 0.0
    for tick in range(ticks):
        ts = shapes.BASE + timedelta(seconds=5 * tick)
        holdings = book(underlyings, expiry_day(ts))
        began = time.process_time()  # CPU time: the shared machine's waits left out
        figures = by_expiry(holdings, _CONTEXT, expiry_day(ts))
        expiry = records.encode(expiry_record("DU1", ts, "SOCKET", _CONTEXT, figures))
        legs = records.encode(legs_record("DU1", ts, "SOCKET", holdings, _CONTEXT))
        spent += time.process_time() - began
        expiry_lines.append(expiry)
        legs_lines.append(legs)
    return expiry_lines, legs_lines, spent / ticks * 1e6


async def _store(url: str, lines: list[bytes]) -> None:
    async def connect() -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(url, autocommit=True)

    sink = RecordSink(connect)
    try:
        for start in range(0, len(lines), 160):
            result = await sink.store(lines[start : start + 160])
            assert not result.rejected, result.rejected[:1]
    finally:
        await sink.close()


def stored(url: str, table: str) -> tuple[float, int]:
    """Bytes of the day partition holding `table`'s rows (with its indexes, after VACUUM) and
    its rows."""
    name = sql.Identifier(table)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(name))
        row = conn.execute(
            # The day partition holding the rows, with its indexes: the empty days ahead are
            # a fixed cost, not a row's.
            sql.SQL(
                "SELECT pg_total_relation_size(tableoid), count(*) FROM {} GROUP BY tableoid"
            ).format(name)
        ).fetchone()
    assert row is not None
    return float(row[0]), int(row[1])


def measure(ticks: int, books: tuple[int, ...] = shapes.BOOKS) -> list[Cost]:
    found = []
    with scratch_postgres() as server:
        for underlyings in books:
            expiry_lines, legs_lines, compute_us = record_lines(underlyings, ticks)
            url = fresh_database(server, f"bench_expiry_{underlyings}")
            asyncio.run(shapes.prepare(url))
            asyncio.run(_store(url, expiry_lines + legs_lines))
            expiry_bytes, expiry_rows = stored(url, "expiry_greeks")
            legs_bytes, leg_rows = stored(url, "position_legs")
            found.append(
                Cost(
                    underlyings=underlyings,
                    expiry_line_bytes=sum(map(len, expiry_lines)) / ticks,
                    expiry_stored_bytes=expiry_bytes / expiry_rows,
                    legs_line_bytes=sum(map(len, legs_lines)) / ticks,
                    leg_stored_bytes=legs_bytes / leg_rows,
                    legs_per_tick=leg_rows // ticks,
                    compute_us=compute_us,
                )
            )
    return found


def table(costs: list[Cost], ticks: int) -> str:
    lines = [
        f"### Greeks by expiry and the legs: cost by book ({ticks:,} ticks of one account)",
        "",
        "| book | expiry line | expiry row | legs line | leg row | legs a tick"
        " | collector µs a tick | MB/account-day: expiry at 5 s | legs at 60 s | legs at 5 s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cost in costs:
        expiry_mb, legs_minute = cost.mb_per_account_day(60.0)
        _, legs_tick = cost.mb_per_account_day(5.0)
        lines.append(
            f"| {cost.underlyings} underlyings | {cost.expiry_line_bytes:,.0f} B"
            f" | {cost.expiry_stored_bytes:,.0f} B | {cost.legs_line_bytes:,.0f} B"
            f" | {cost.leg_stored_bytes:,.0f} B | {cost.legs_per_tick}"
            f" | {cost.compute_us:,.0f} | {expiry_mb:.1f} | {legs_minute:.1f}"
            f" | {legs_tick:.1f} |"
        )
    lines += [
        "",
        "Each underlying: 3 options (5, 40 and 200 days to expiry) and a share position, every"
        " figure known (`bench/expiry_legs.py`). Rows stored through the writer's sink; sizes"
        " are the day partition holding the rows, with its indexes, after VACUUM, per row."
        " Collector time: the CPU time of the buckets, the legs and both lines' encoding, per"
        " account and tick, on this machine.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(measure(500), 500))  # `python -m bench --only expiry` publishes it
