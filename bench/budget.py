"""The storage budget: bytes per account-day of everything the bridge stores for an account
(the snapshots, the Greeks by expiry, the legs, the scenario grids, the P&L explain and its
positions), for books of 2, 10 and 50 underlyings per account, at the default rates, as before
the budget (Greeks by expiry every tick, grids in float8) and now (`BRIDGE_EXPIRY_INTERVAL_S`
60, grids in float4, migration 010).

Every record is made as the collector makes it (`bench/shapes.py` for the snapshot,
`bench/expiry_legs.py` for the buckets and the legs, `bench/scenarios.py` for the grids,
`collector.explain` between consecutive ticks of the legs' book: 3 options and a share position
per underlying, every figure known), stored through the writer's own sink into a fresh
database, and each table measured on the day partition holding its rows (the explain's tables
are not partitioned: the table), with its indexes, after VACUUM. The "before" grids are the same
lines stored into a database whose grid columns are put back to float8 as they were before
migration 010. Bytes a row times rows a day: a day is 17,280 ticks at the default 5 s
(snapshots, explains and their positions); legs, expiry and grids at 60 s are 1,440.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import psycopg

from bench import expiry_legs, scenarios, shapes
from bench.harness import fresh_database, scratch_postgres
from collector import explain
from collector.expiry import expiry_day
from collector.greeks import AccountContext
from collector.revaluation import revalue, scenario_record
from database.sink import RecordSink
from shared import records

_ACCOUNTS = 60
TICKS_PER_DAY = 86_400 // 5
MINUTES_PER_DAY = 86_400 // 60
# The goal for the snapshot alone at 10 underlyings (issue #20), which the budget of the
# tables beside it is read against (issue #16, "Budget").
SNAPSHOT_GOAL_MB = 10.0
# A trader's holding: 10 accounts kept for the default raw retention.
TRADER_ACCOUNTS = 10
RETENTION_DAYS = 90
_GRIDS = ("grid", "beta_grid", "delta_gamma_10", "underlying_grids", "underlying_delta_gamma_10")


@dataclass
class Budget:
    underlyings: int
    snapshot_row: float  # bytes a row, table and indexes
    expiry_row: float
    leg_row: float
    legs_a_tick: int
    scenario_row: float  # grids in float4 (now)
    scenario_row_float8: float  # the same lines, grids in float8 (before)
    explain_row: float  # an account's interval
    explain_position_row: float  # a position's interval
    writer_us: dict[str, float]  # the writer's sink, wall µs a line of each kind

    def writer_s_a_day(self, *, before: bool) -> float:
        """Seconds the writer's sink spends a day on one account's lines at the default rates."""
        minute_lines = MINUTES_PER_DAY
        rates = {
            "snapshots": TICKS_PER_DAY,
            "expiry": TICKS_PER_DAY if before else minute_lines,
            "legs": minute_lines,
            "scenario": minute_lines,
            "explain": TICKS_PER_DAY,
        }
        return sum(self.writer_us[kind] * rates[kind] for kind in rates) / 1e6

    def mb_a_day(self, *, before: bool) -> dict[str, float]:
        """MB per account-day of each table at the default rates, before or now."""
        expiry_rows = TICKS_PER_DAY if before else MINUTES_PER_DAY
        scenario = self.scenario_row_float8 if before else self.scenario_row
        return {
            "snapshots": self.snapshot_row * TICKS_PER_DAY / 1e6,
            "expiry": self.expiry_row * expiry_rows / 1e6,
            "legs": self.leg_row * self.legs_a_tick * MINUTES_PER_DAY / 1e6,
            "scenario": scenario * MINUTES_PER_DAY / 1e6,
            "explain": self.explain_row * TICKS_PER_DAY / 1e6,
            "explain positions": self.explain_position_row * self.legs_a_tick * TICKS_PER_DAY / 1e6,
        }


async def _store(url: str, lines: list[bytes]) -> float:
    """Store `lines` through the writer's sink, 160 a transaction; the µs a line it took."""

    async def connect() -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(url, autocommit=True)

    sink = RecordSink(connect)
    try:
        await sink.store(lines[:1])  # connected before the clock starts
        began = time.perf_counter()
        for start in range(1, len(lines), 160):
            result = await sink.store(lines[start : start + 160])
            assert not result.rejected, result.rejected[:1]
        return (time.perf_counter() - began) / (len(lines) - 1) * 1e6
    finally:
        await sink.close()


def _per_row(url: str, table: str) -> float:
    size, rows = expiry_legs.stored(url, table)
    return size / rows


def _scenario_lines(underlyings: int, rows: int) -> list[bytes]:
    holdings, context = scenarios.book(3 * underlyings, underlyings)
    grids = revalue(holdings, context, scenarios.MARKET, scenarios.NOW)
    made = []
    for index in range(rows):
        ts = shapes.BASE + timedelta(seconds=60 * (index // _ACCOUNTS))
        account = f"DU{index % _ACCOUNTS:05d}"
        made.append(records.encode(scenario_record(account, ts, "SOCKET", context, grids)))
    return made


def _explain_lines(underlyings: int, rows: int) -> list[bytes]:
    """One account's explains of `rows` consecutive intervals, each position with its own daily
    P&L (as SOCKET gives it), the account's daily P&L moving."""

    def end(tick: int) -> explain.End:
        at = shapes.BASE + timedelta(seconds=5 * tick)
        holdings = expiry_legs.book(underlyings, expiry_day(at))
        with_pnl = tuple(replace(h, daily_pnl=12.34 * tick + h.conid) for h in holdings)
        return explain.End(at, with_pnl, AccountContext("USD", daily_pnl=1234.5 + 6.78 * tick))

    ends = [end(tick) for tick in range(rows + 1)]
    return [
        records.encode(explain.record("DU1", "SOCKET", explain.explain(start, stop)))
        for start, stop in itertools.pairwise(ends)
    ]


def measure(rows: int, books: tuple[int, ...] = shapes.BOOKS) -> list[Budget]:
    """`rows` snapshots (of 60 accounts), expiry ticks, leg ticks and grids of each book."""
    found = []
    with scratch_postgres() as server:
        for underlyings in books:
            expiry_lines, legs_lines, _ = expiry_legs.record_lines(underlyings, rows)
            grid_lines = _scenario_lines(underlyings, rows)
            explain_lines = _explain_lines(underlyings, rows)
            url = fresh_database(server, f"bench_budget_{underlyings}")
            asyncio.run(shapes.prepare(url))
            snapshot_lines = shapes.snapshots(rows, _ACCOUNTS, underlyings=underlyings)
            kinds = {
                "snapshots": snapshot_lines,
                "expiry": expiry_lines,
                "legs": legs_lines,
                "scenario": grid_lines,
                "explain": explain_lines,
            }
            writer_us = {kind: asyncio.run(_store(url, made)) for kind, made in kinds.items()}
            before = fresh_database(server, f"bench_budget_{underlyings}_float8")
            asyncio.run(shapes.prepare(before))
            with psycopg.connect(before, autocommit=True) as conn:
                conn.execute(
                    "ALTER TABLE scenario_pnl "
                    + ", ".join(f"ALTER COLUMN {name} TYPE float8[]" for name in _GRIDS)
                )
            asyncio.run(_store(before, grid_lines))
            _, leg_rows = expiry_legs.stored(url, "position_legs")
            found.append(
                Budget(
                    underlyings=underlyings,
                    snapshot_row=_per_row(url, "portfolio_greeks"),
                    expiry_row=_per_row(url, "expiry_greeks"),
                    leg_row=_per_row(url, "position_legs"),
                    legs_a_tick=leg_rows // rows,
                    scenario_row=_per_row(url, "scenario_pnl"),
                    scenario_row_float8=_per_row(before, "scenario_pnl"),
                    explain_row=_per_row(url, "pnl_explain"),
                    explain_position_row=_per_row(url, "pnl_explain_positions"),
                    writer_us=writer_us,
                )
            )
    return found


def table(budgets: list[Budget], rows: int) -> str:
    lines = [
        f"### Storage budget: MB per account-day of everything stored ({rows:,} rows of each"
        " kind a book)",
        "",
        "| book | when | snapshots | Greeks by expiry | legs | scenario grids | explain"
        " | explain positions | total | x snapshot goal | GB for 10 accounts x 90 days"
        " | writer s a day | accounts a writer |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for budget in budgets:
        for before in (True, False):
            tables = budget.mb_a_day(before=before)
            total = sum(tables.values())
            busy = budget.writer_s_a_day(before=before)
            when = "before (expiry every tick, float8 grids)" if before else "**now**"
            lines.append(
                f"| {budget.underlyings} underlyings | {when}"
                + "".join(f" | {value:.1f}" for value in tables.values())
                + f" | **{total:.1f}** | {total / SNAPSHOT_GOAL_MB:.1f}"
                f" | {total * TRADER_ACCOUNTS * RETENTION_DAYS / 1e3:.1f}"
                f" | {busy:,.0f} | {86_400 / busy:,.0f} |"
            )
    lines += [
        "",
        "| book | snapshot row | expiry row | leg row | legs a tick | grid row float8"
        " | grid row float4 | explain row | explain position row | writer µs a line:"
        " snapshot, expiry, legs, grid, explain |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for budget in budgets:
        lines.append(
            f"| {budget.underlyings} underlyings | {budget.snapshot_row:,.0f} B"
            f" | {budget.expiry_row:,.0f} B | {budget.leg_row:,.0f} B | {budget.legs_a_tick}"
            f" | {budget.scenario_row_float8:,.0f} B | {budget.scenario_row:,.0f} B"
            f" | {budget.explain_row:,.0f} B | {budget.explain_position_row:,.0f} B | "
            + ", ".join(f"{us:,.0f}" for us in budget.writer_us.values())
            + " |"
        )
    lines += [
        "",
        "At the default rates: a snapshot and an explain (with a row per position) every 5 s"
        " (17,280 a day), the legs, the Greeks by expiry and the scenario grid once a minute"
        " (1,440; before, the Greeks by expiry went with every snapshot). Each underlying holds"
        " 3 options and a share position, every figure known; records made by the collector's"
        " own functions and stored through the writer's sink (`bench/budget.py`); each table's"
        " day partition (the explain's tables have none) with its indexes after VACUUM, per"
        f" row. The snapshot goal is issue #20's {SNAPSHOT_GOAL_MB:.0f} MB per account-day at"
        " 10 underlyings; the last column is a trader's 10 accounts kept for the default raw"
        f" retention ({RETENTION_DAYS} days), rollups left out. Writer: the wall time of the"
        " writer's sink (`database/sink.py`, 160 lines a transaction, one connection, Python"
        " and PostgreSQL on the same 2 cores) per line of each kind, times the lines of an"
        " account-day; accounts a writer: how many would keep one connection busy all day.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(measure(300), 300))  # `python -m bench --only budget` publishes it
