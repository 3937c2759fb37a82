"""The storage budget: bytes per account-day of everything the bridge stores for an account
(the snapshots, the Greeks by expiry, the legs, the scenario grids, the P&L explain and its
positions), for books of 2, 10 and 50 underlyings per account, at the default rates, as before
the budget (Greeks by expiry every tick, grids in float8, a row per explained position) and now
(`BRIDGE_EXPIRY_INTERVAL_S` 60, grids in float4, migration 010; the positions as arrays of
their interval's row, migration 015).

Every record is made as the collector makes it (`bench/shapes.py` for the snapshot,
`bench/expiry_legs.py` for the buckets and the legs, `bench/scenarios.py` for the grids,
`collector.explain` between consecutive ticks of the legs' book, its prices and implied vols
walking: 3 options and a share position per underlying, every figure known), stored through
the writer's own sink into a fresh database, and each table measured on the day partition
holding its rows, with its indexes, after VACUUM. The "before" grids and explains are the same
lines stored into a second database whose grid columns are put back to float8 as they were
before migration 010, and whose explained positions are put back into a table of a row each
as they were before migration 015 (the interval's row rewritten without the arrays). Bytes a
row times rows a day: a day is 17,280 ticks at the default 5 s (snapshots, explains and their
positions); legs, expiry and grids at 60 s are 1,440. The positions' share of an explain row
now is its bytes less those of the same row without them.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
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
    explain_row: float  # an account's interval, its positions' arrays in it (now)
    explain_row_bare: float  # the same interval's row without them (before)
    explain_position_row: float  # a position's interval, a row of its own (before)
    # Measured, not applied: the same arrays in a table of their own, a row an interval
    explain_arrays_own_row: float
    writer_us: dict[str, float]  # the writer's sink, wall µs a line of each kind (now)

    def writer_s_a_day(self) -> float:
        """Seconds the writer's sink spends a day on one account's lines at the default rates
        (now: the sink stores only the current layout, so before has no such figure)."""
        rates = {
            "snapshots": TICKS_PER_DAY,
            "expiry": MINUTES_PER_DAY,
            "legs": MINUTES_PER_DAY,
            "scenario": MINUTES_PER_DAY,
            "explain": TICKS_PER_DAY,
        }
        return sum(self.writer_us[kind] * rates[kind] for kind in rates) / 1e6

    @property
    def position_bytes(self) -> float:
        """What a position adds to its interval's row now: the arrays' bytes a position."""
        return (self.explain_row - self.explain_row_bare) / self.legs_a_tick

    @property
    def position_bytes_own_table(self) -> float:
        """What a position would cost in a table of arrays of its own (key and index too)."""
        return self.explain_arrays_own_row / self.legs_a_tick

    def mb_a_day(self, *, before: bool) -> dict[str, float]:
        """MB per account-day of each table at the default rates, before or now."""
        expiry_rows = TICKS_PER_DAY if before else MINUTES_PER_DAY
        scenario = self.scenario_row_float8 if before else self.scenario_row
        position = self.explain_position_row if before else self.position_bytes
        return {
            "snapshots": self.snapshot_row * TICKS_PER_DAY / 1e6,
            "expiry": self.expiry_row * expiry_rows / 1e6,
            "legs": self.leg_row * self.legs_a_tick * MINUTES_PER_DAY / 1e6,
            "scenario": scenario * MINUTES_PER_DAY / 1e6,
            "explain": self.explain_row_bare * TICKS_PER_DAY / 1e6,
            "explain positions": position * self.legs_a_tick * TICKS_PER_DAY / 1e6,
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


def _positions_as_rows(url: str) -> tuple[float, float]:
    """The explain as stored before migration 015, rebuilt from the rows stored now: each
    position a row of the old table (key account, ts, conid), and the interval's row without
    the arrays (rewritten, so the dropped columns take no room). Bytes a row of each."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE explain_positions_rows AS SELECT * FROM pnl_explain_positions")
        conn.execute("ALTER TABLE explain_positions_rows ADD PRIMARY KEY (account, ts, conid)")
        conn.execute("DROP VIEW pnl_explain_positions")
        conn.execute(
            "ALTER TABLE pnl_explain DROP COLUMN position_conids, DROP COLUMN position_rows,"
            " DROP COLUMN position_missing"
        )
        conn.execute("VACUUM FULL pnl_explain")
    return _per_row(url, "pnl_explain"), _per_row(url, "explain_positions_rows")


def _arrays_own_table(url: str) -> float:
    """Bytes a row of the positions' arrays in a table of their own, key (account, ts): the
    layout measured against the arrays in the interval's row, and not applied."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE explain_arrays_own (account text NOT NULL, ts timestamptz NOT NULL,"
            " position_conids bigint[], position_rows float8[], position_missing text[],"
            " PRIMARY KEY (account, ts))"
        )
        conn.execute(
            "INSERT INTO explain_arrays_own SELECT account, ts, position_conids, position_rows,"
            " position_missing FROM pnl_explain"
        )
    return _per_row(url, "explain_arrays_own")


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
    """One account's explains of `rows` consecutive intervals in a moving market, so that
    every term of every position is a number of its own, as in a real book: each underlying
    at its own price, walking about 0.02 % a 5-s step (20 % a year), its options' implied vol
    about 0.01 vol point a step; each position's own daily P&L (as SOCKET gives it) and the
    account's walking too. A book whose prices stand still explains only theta, the same in
    every underlying: its arrays would compress to a few bytes a position."""
    walk = random.Random(20_261_207)
    prices = [100.0 + 7.3 * index for index in range(underlyings)]
    vols = [0.20 + 0.003 * index for index in range(underlyings)]
    own_pnl: dict[int, float] = {}
    account_pnl = 1234.5

    def end(tick: int) -> explain.End:
        nonlocal account_pnl
        at = shapes.BASE + timedelta(seconds=5 * tick)
        for index in range(underlyings):
            prices[index] *= math.exp(walk.gauss(0.0, 0.0002))
            vols[index] += walk.gauss(0.0, 0.0001)
        moved = []
        for standing in expiry_legs.book(underlyings, expiry_day(at)):
            index = (standing.conid - 1000) // 10
            own_pnl[standing.conid] = own_pnl.get(standing.conid, 0.0) + walk.gauss(0.0, 25.0)
            holding = replace(standing, daily_pnl=own_pnl[standing.conid])
            if holding.greeks is None or holding.terms is None:
                moved.append(replace(holding, price=prices[index]))
                continue
            greeks = replace(holding.greeks, underlying_price=prices[index])
            terms = replace(holding.terms, implied_vol=vols[index])
            moved.append(replace(holding, greeks=greeks, terms=terms))
        account_pnl += walk.gauss(0.0, 25.0 * underlyings)
        return explain.End(at, tuple(moved), AccountContext("USD", daily_pnl=account_pnl))

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
            asyncio.run(_store(before, explain_lines))
            explain_row_bare, explain_position_row = _positions_as_rows(before)
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
                    explain_row_bare=explain_row_bare,
                    explain_position_row=explain_position_row,
                    explain_arrays_own_row=_arrays_own_table(url),
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
            busy = budget.writer_s_a_day()
            when = (
                "before (expiry every tick, float8 grids, a row a position)"
                if before
                else "**now**"
            )
            writer = " | — | —" if before else f" | {busy:,.0f} | {86_400 / busy:,.0f}"
            lines.append(
                f"| {budget.underlyings} underlyings | {when}"
                + "".join(f" | {value:.1f}" for value in tables.values())
                + f" | **{total:.1f}** | {total / SNAPSHOT_GOAL_MB:.1f}"
                f" | {total * TRADER_ACCOUNTS * RETENTION_DAYS / 1e3:.1f}{writer} |"
            )
    lines += [
        "",
        "| book | snapshot row | expiry row | leg row | legs a tick | grid row float8"
        " | grid row float4 | explain row, without → with its positions | a position a tick,"
        " a row → in arrays | the arrays in a table of their own (not applied)"
        " | writer µs a line: snapshot, expiry, legs, grid, explain |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for budget in budgets:
        lines.append(
            f"| {budget.underlyings} underlyings | {budget.snapshot_row:,.0f} B"
            f" | {budget.expiry_row:,.0f} B | {budget.leg_row:,.0f} B | {budget.legs_a_tick}"
            f" | {budget.scenario_row_float8:,.0f} B | {budget.scenario_row:,.0f} B"
            f" | {budget.explain_row_bare:,.0f} → {budget.explain_row:,.0f} B"
            f" | {budget.explain_position_row:,.0f} → {budget.position_bytes:,.0f} B"
            f" | {budget.position_bytes_own_table:,.0f} B | "
            + ", ".join(f"{us:,.0f}" for us in budget.writer_us.values())
            + " |"
        )
    lines += [
        "",
        "At the default rates: a snapshot and an explain (with its positions) every 5 s"
        " (17,280 a day), the legs, the Greeks by expiry and the scenario grid once a minute"
        " (1,440; before, the Greeks by expiry went with every snapshot). Each underlying holds"
        " 3 options and a share position, every figure known; records made by the collector's"
        " own functions and stored through the writer's sink (`bench/budget.py`); each table's"
        " day partition with its indexes after VACUUM, per row. Before migration 015 each"
        " explained position was a row of `pnl_explain_positions`; now its figures are arrays"
        " in its interval's `pnl_explain` row (the view `pnl_explain_positions` reads them),"
        " so the explain column is the row without them and the positions' column what they"
        " add to it; before is rebuilt from the same rows in the old layout; not applied, the"
        " same arrays in a table of their own (a row an interval, its key and index). The"
        " explains are those of a moving market (each underlying's price and implied vol walk),"
        " so that every position's terms are numbers of their own. The snapshot goal"
        f" is issue #20's {SNAPSHOT_GOAL_MB:.0f} MB per account-day at"
        " 10 underlyings; the last column is a trader's 10 accounts kept for the default raw"
        f" retention ({RETENTION_DAYS} days), rollups left out. Writer: the wall time of the"
        " writer's sink (`database/sink.py`, 160 lines a transaction, one connection, Python"
        " and PostgreSQL on the same 2 cores) per line of each kind, times the lines of an"
        " account-day (now only: the sink writes the current layout); accounts a writer: how"
        " many would keep one connection busy all day.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(measure(300), 300))  # `python -m bench --only budget` publishes it
