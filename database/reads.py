"""The named reads of the bridge's tables, shared by the programs that only read.

Each is a function of one connection (run it through a `Session`, database/session.py, for the
reply bound, the breaker and the translation of errors): the newest snapshot of each account,
the snapshots after a mark, whether an operator must log in, the snapshots of the last hour, and
the columns the schema has, an account's P&L explain over a range and its day's score, the
positions of one explained interval, an account's scenario grids (newest, an hour before, the
worst loss over a range) and the legs of its newest worst loss, and the explain intervals the
alerter's running day score has not read yet. The alerter, the web program and `bridge-status`
ask these and write no SQL of their own for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from database.session import Connection

Row = dict[str, Any]

# Figures a limit can watch beside the snapshot's columns: a scenario grid's worst P&L
# (docs/scenarios.md), read as of each snapshot: the newest grid of its account at or before it,
# no older than SCENARIO_AGE (else unknown, NULL). Name -> column of scenario_pnl.
SCENARIO_FIGURES: dict[str, str] = {
    "scenario_worst_pnl": "worst_pnl",
    "scenario_beta_worst_pnl": "beta_worst_pnl",
}
# Five grids at the default BRIDGE_SCENARIO_INTERVAL_S of 60 s: a grid skipped now and then
# leaves a limit watching, a collector that stopped computing them does not.
SCENARIO_AGE = timedelta(minutes=5)
_AS_OF = """(SELECT s.{column} FROM scenario_pnl s WHERE s.account = p.account AND s.ts <= p.ts
    AND s.ts > p.ts - {age} ORDER BY s.ts DESC LIMIT 1) AS {name}"""

# The P&L explain's day score (docs/pnl-explain.md) as of each snapshot: over the scored
# intervals of its account's UTC day that end at or before it (the day so far), as the view
# pnl_explain_daily scores a whole day. Unknown (NULL) until EXPLAIN_MIN_SCORED intervals are
# scored: one interval's share or residual is noise, not a day's verdict, and a rank correlation
# of a handful of points swings from -1 to 1. 12 is one minute at the default 5-s tick. The
# alerter carries the score from one snapshot to the next (alerter/day_score.py, fed by
# `intervals_to_score`); this SQL, which ranks the day so far afresh for each snapshot, is the
# definition it is held to (tests/database/test_explain_running_score.py, bench/explain_score.py).
EXPLAIN_MIN_SCORED = 12
_RANKED = """(SELECT e.actual_pnl, e.unexplained_pnl,
           rank() OVER (ORDER BY e.explained_pnl)
             + (count(*) OVER (PARTITION BY e.explained_pnl) - 1) / 2.0 AS explained_rank,
           rank() OVER (ORDER BY e.actual_pnl)
             + (count(*) OVER (PARTITION BY e.actual_pnl) - 1) / 2.0 AS actual_rank
    FROM pnl_explain e WHERE e.account = p.account AND e.ts <= p.ts
    AND e.ts >= date_trunc('day', p.ts, 'UTC') AND cardinality(e.marks) = 0) e"""
# Name -> the figure over the day so far (the rows `_RANKED`); ranks tie at their average, as
# in the view.
EXPLAIN_FIGURES: dict[str, str] = {
    "explain_share": "1 - sum(abs(e.unexplained_pnl)) / nullif(sum(abs(e.actual_pnl)), 0)",
    "explain_spearman": "corr(e.explained_rank::float8, e.actual_rank::float8)",
    "explain_worst_unexplained": "max(abs(e.unexplained_pnl))",
}
_EXPLAIN_AS_OF = """(SELECT CASE WHEN count(*) >= {minimum} THEN {figure} END
    FROM {ranked}) AS {name}"""
# Every figure a limit can watch that is not a column of portfolio_greeks.
DERIVED_FIGURES: tuple[str, ...] = (*SCENARIO_FIGURES, *EXPLAIN_FIGURES)


def _column(name: str) -> sql.Composable:
    """A snapshot's column, or a figure as of the snapshot (`DERIVED_FIGURES`)."""
    if name in SCENARIO_FIGURES:
        return sql.SQL(_AS_OF).format(
            column=sql.Identifier(SCENARIO_FIGURES[name]),
            age=sql.Literal(SCENARIO_AGE),
            name=sql.Identifier(name),
        )
    if name in EXPLAIN_FIGURES:
        return sql.SQL(_EXPLAIN_AS_OF).format(
            minimum=sql.Literal(EXPLAIN_MIN_SCORED),
            figure=sql.SQL(EXPLAIN_FIGURES[name]),
            ranked=sql.SQL(_RANKED),
            name=sql.Identifier(name),
        )
    return sql.Identifier("p", name)


# Distinct accounts by a skip scan over (account, ts DESC), then each one's newest row: one
# index probe per account instead of reading every row, however long the table.
_NEWEST_PER_ACCOUNT = """
WITH RECURSIVE accounts(account) AS (
    (SELECT account FROM portfolio_greeks ORDER BY account LIMIT 1)
    UNION ALL
    SELECT (SELECT p.account FROM portfolio_greeks p WHERE p.account > a.account
            ORDER BY p.account LIMIT 1)
    FROM accounts a WHERE a.account IS NOT NULL
)
SELECT newest.* FROM accounts a
CROSS JOIN LATERAL (
    SELECT {columns} FROM {source} p
    WHERE p.account = a.account{recent}
    ORDER BY p.ts DESC LIMIT 1
) newest
WHERE a.account IS NOT NULL
ORDER BY a.account
"""
# Each account's snapshots in its own range (since, until), in time order; the floor (the
# earliest since) prunes the day partitions before the plan is made.
_UNSEEN = """
SELECT p.account, p.ts{figures}
FROM unnest(%(accounts)s::text[], %(since)s::timestamptz[], %(until)s::timestamptz[])
    AS unseen(account, since, until)
JOIN portfolio_greeks p
    ON p.account = unseen.account AND p.ts > unseen.since AND p.ts < unseen.until
WHERE p.ts > %(floor)s
ORDER BY p.ts, p.account
LIMIT %(limit)s
"""
# The most snapshots one read of the catch-up returns, so a page stays well inside the 60-s
# statement timeout however long the outage was and whatever figures it computes per snapshot.
# (The alerter scores the explain's day from `intervals_to_score`, not through `EXPLAIN_FIGURES`,
# whose ~50 ms a snapshot late in a day made this page small: docs/pnl-explain.md.)
UNSEEN_PAGE = 200
# Each account's explain intervals in its own range [since, until], oldest first: what the
# alerter's running day score (alerter/day_score.py) has not read yet. The marked ones come
# without their figures, only so that the next read starts after them. The floor (the earliest
# since) prunes the day partitions before the plan is made.
_INTERVALS_TO_SCORE = """
SELECT e.account, e.ts, scored,
    CASE WHEN scored THEN e.actual_pnl END, CASE WHEN scored THEN e.explained_pnl END,
    CASE WHEN scored THEN e.unexplained_pnl END
FROM unnest(%(accounts)s::text[], %(since)s::timestamptz[], %(until)s::timestamptz[])
    AS wanted(account, since, until)
JOIN pnl_explain e ON e.account = wanted.account AND e.ts >= wanted.since AND e.ts <= wanted.until
CROSS JOIN LATERAL (SELECT cardinality(e.marks) = 0 AS scored) marks
WHERE e.ts >= %(floor)s
ORDER BY e.ts, e.account
"""
# A login prompt newer than the last connection means an operator must log in.
_LOGIN = """
SELECT EXISTS (
    SELECT 1 FROM api_logs WHERE event = 'session_required' AND ts > coalesce(
        (SELECT max(ts) FROM api_logs WHERE event = 'connected'), '-infinity')
)
"""
# Snapshots of the last hour, by tick: the partitions of older days are pruned and the primary
# key (account, ts) answers by skip scan, however long the history. (Counting by `stored_at`,
# which has no index, read every partition: bench/web.py measures both.)
ROWS_LAST_HOUR_SQL = "SELECT count(*) FROM portfolio_greeks WHERE ts > now() - interval '1 hour'"
# An account's explained and actual P&L in (start, end]: each interval (width None), or the
# scored intervals summed per minute or hour (the view pnl_explain_rollup, migration 007).
_EXPLAIN_INTERVALS = """
SELECT ts, actual_pnl, explained_pnl, delta_pnl, gamma_pnl, theta_pnl, vega_pnl, linear_pnl,
       cardinality(marks) = 0 AS scored
FROM pnl_explain WHERE account = %(account)s AND ts > %(start)s AND ts <= %(end)s
ORDER BY ts
"""
_EXPLAIN_BUCKETS = """
SELECT bucket AS ts, actual_pnl, explained_pnl, delta_pnl, gamma_pnl, theta_pnl, vega_pnl,
       linear_pnl, scored > 0 AS scored
FROM pnl_explain_rollup
WHERE width = %(width)s AND account = %(account)s AND bucket > %(start)s AND bucket <= %(end)s
ORDER BY bucket
"""
_EXPLAIN_SCORE = """
SELECT day::text AS day, scored, not_scored, explained_share, spearman, worst_unexplained,
       worst_at
FROM pnl_explain_daily WHERE account = %(account)s ORDER BY day DESC LIMIT 1
"""
# One interval's positions, each with its leg where the legs were stored at that same tick
# (position_legs keeps them every BRIDGE_LEGS_INTERVAL_S, not at every explain): the largest
# explained P&L first, the unknown last.
_EXPLAIN_POSITIONS = """
SELECT e.conid, l.symbol, l.sec_type, l.option_right, l.strike, l.expiry, l.quantity,
       e.delta_pnl, e.gamma_pnl, e.theta_pnl, e.vega_pnl, e.linear_pnl, e.explained_pnl,
       e.actual_pnl, e.missing, e.actual_missing
FROM pnl_explain_positions e
LEFT JOIN position_legs l ON l.account = e.account AND l.ts = e.ts AND l.conid = e.conid
WHERE e.account = %(account)s AND e.ts = %(ts)s
ORDER BY abs(e.explained_pnl) DESC NULLS LAST, e.conid
"""
# The scenario grids the dashboard draws (docs/scenarios.md); every read by the primary key
# (account, ts).
_SCENARIO_COLUMNS = """ts, currency, grid, worst_pnl, worst_scenario, beta_grid, beta_worst_pnl,
    beta_worst_scenario, delta_gamma_10, completeness, underlying_symbols, underlying_grids,
    underlying_completeness"""
_SCENARIO_NEWEST = """
SELECT {columns} FROM scenario_pnl WHERE account = %(account)s ORDER BY ts DESC LIMIT 1
"""
# The row nearest `at` within `within` either side, strictly before `before` (the newest row
# is not its own hour-ago): the nearest at or before it, the nearest after it, the closer one.
_SCENARIO_NEAREST = """
SELECT * FROM (
    (SELECT {columns} FROM scenario_pnl
     WHERE account = %(account)s AND ts <= %(at)s AND ts >= %(at)s - %(within)s
     ORDER BY ts DESC LIMIT 1)
    UNION ALL
    (SELECT {columns} FROM scenario_pnl
     WHERE account = %(account)s AND ts > %(at)s AND ts <= %(at)s + %(within)s
       AND ts < %(before)s
     ORDER BY ts LIMIT 1)
) near
ORDER BY abs(extract(epoch FROM near.ts - %(at)s)), near.ts LIMIT 1
"""
_SCENARIO_WORST = """
SELECT ts, worst_pnl, beta_worst_pnl FROM scenario_pnl
WHERE account = %(account)s AND ts > %(start)s AND ts <= %(end)s
ORDER BY ts
"""
# How far from an hour before the newest grid a row may be and still stand for "an hour ago":
# a quarter of the hour, so a gap in the grids shows as none rather than as a wrong hour.
SCENARIO_HOUR_AGO = timedelta(hours=1)
SCENARIO_HOUR_AGO_WITHIN = timedelta(minutes=15)
# The legs of an account's newest worst loss: its newest scenario row with legs, unnested, the
# largest loss first; each leg described by its newest stored position_legs row at or before
# the grid (BRIDGE_LEGS_INTERVAL_S apart: NULLs when none is stored yet).
_WORST_LEGS = """
SELECT s.ts, s.currency, s.{worst_pnl} AS worst_pnl, s.{scenario} AS worst_scenario,
       leg.conid, leg.pnl, described.symbol, described.sec_type, described.quantity,
       described.strike, described.expiry, described.option_right
FROM (SELECT * FROM scenario_pnl WHERE account = %(account)s AND {conids} IS NOT NULL
      ORDER BY ts DESC LIMIT 1) s
CROSS JOIN LATERAL unnest(s.{conids}, s.{pnls}) AS leg(conid, pnl)
LEFT JOIN LATERAL (
    SELECT l.symbol, l.sec_type, l.quantity, l.strike, l.expiry, l.option_right
    FROM position_legs l
    WHERE l.account = s.account AND l.conid = leg.conid AND l.ts <= s.ts
      AND l.ts > s.ts - interval '1 day'
    ORDER BY l.ts DESC LIMIT 1
) described ON true
ORDER BY leg.pnl, leg.conid
"""
_COLUMNS = """
SELECT table_name, column_name, data_type FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = ANY(%(tables)s)
ORDER BY table_name, ordinal_position
"""


async def newest_per_account(
    conn: Connection,
    columns: Sequence[str],
    *,
    source: str = "portfolio_greeks",
    within: timedelta | None = None,
) -> list[Row]:
    """The newest snapshot of each account, by account: `columns` of it, read from `source`
    (the table, or the view `snapshots` that shows every format in full); `within`: only the
    accounts with a snapshot that recent (the others are closed or filtered out)."""
    recent = sql.SQL("") if within is None else sql.SQL(" AND p.ts > now() - {}").format(within)
    query = sql.SQL(_NEWEST_PER_ACCOUNT).format(
        columns=sql.SQL(", ").join(_column(name) for name in columns),
        source=sql.Identifier(source),
        recent=recent,
    )
    return await dict_rows(conn, query, {})


async def explain_intervals(
    conn: Connection, account: str, start: datetime, end: datetime, *, width: str | None
) -> list[Row]:
    """`account`'s P&L explain in (start, end], oldest first: every interval (`width` None) or
    the scored ones summed per bucket of `width` ("1m", "1h", "1d")."""
    query = _EXPLAIN_INTERVALS if width is None else _EXPLAIN_BUCKETS
    params = {"account": account, "start": start, "end": end, "width": width}
    return await dict_rows(conn, sql.SQL(query), params)


async def explain_score(conn: Connection, account: str) -> Row | None:
    """The score of `account`'s latest day with an explain (pnl_explain_daily), or None."""
    rows = await dict_rows(conn, sql.SQL(_EXPLAIN_SCORE), {"account": account})
    return rows[0] if rows else None


async def explain_positions(conn: Connection, account: str, ts: datetime) -> list[Row]:
    """The positions of `account`'s explained interval ending at `ts`, each with its leg's
    symbol, type and terms where the legs were stored at that tick; the largest first."""
    return await dict_rows(conn, sql.SQL(_EXPLAIN_POSITIONS), {"account": account, "ts": ts})


def _scenario_sql(template: str) -> sql.Composed:
    return sql.SQL(template).format(columns=sql.SQL(_SCENARIO_COLUMNS))


async def scenario_rows(
    conn: Connection, account: str, start: datetime, end: datetime
) -> tuple[Row | None, Row | None, list[Row]]:
    """`account`'s newest scenario row (None before any), the row nearest an hour before it
    (None when no row is within SCENARIO_HOUR_AGO_WITHIN of that), and the worst P&L of every
    row in (start, end], oldest first: (ts, worst_pnl, beta_worst_pnl)."""
    params: dict[str, Any] = {"account": account}
    newest_rows = await dict_rows(conn, _scenario_sql(_SCENARIO_NEWEST), params)
    newest = newest_rows[0] if newest_rows else None
    hour_ago = None
    if newest is not None:
        near = await dict_rows(
            conn,
            _scenario_sql(_SCENARIO_NEAREST),
            params
            | {
                "at": newest["ts"] - SCENARIO_HOUR_AGO,
                "within": SCENARIO_HOUR_AGO_WITHIN,
                "before": newest["ts"],
            },
        )
        hour_ago = near[0] if near else None
    worst = await dict_rows(conn, sql.SQL(_SCENARIO_WORST), params | {"start": start, "end": end})
    return newest, hour_ago, worst


async def worst_loss_legs(
    conn: Connection, account: str, *, beta_weighted: bool = False
) -> list[Row]:
    """The legs of `account`'s newest worst loss (scenario_pnl), the largest loss first: each
    contributing position's P&L (`pnl`, base currency) at the worst scenario, with the grid's
    `ts`, `currency`, `worst_pnl` (their sum) and `worst_scenario`, and the position's symbol,
    type, quantity, strike, expiry and right where position_legs has them. `beta_weighted`: at
    the beta-weighted grid's worst instead. Empty when no grid with legs is stored."""
    prefix = "beta_" if beta_weighted else ""
    query = sql.SQL(_WORST_LEGS).format(
        worst_pnl=sql.Identifier(f"{prefix}worst_pnl"),
        scenario=sql.Identifier(f"{prefix}worst_scenario"),
        conids=sql.Identifier(f"{prefix}worst_leg_conids"),
        pnls=sql.Identifier(f"{prefix}worst_leg_pnl"),
    )
    return await dict_rows(conn, query, {"account": account})


async def unseen_snapshots(
    conn: Connection,
    figures: Sequence[str],
    ranges: dict[str, tuple[datetime, datetime]],
) -> list[tuple[Any, ...]]:
    """Each account's snapshots strictly inside its range (since, until), in time order, as
    rows of (account, ts, *figures): the first UNSEEN_PAGE of them (the caller asks again
    after the last one it got)."""
    if not ranges:
        return []
    columns = sql.SQL("").join(sql.SQL(", {}").format(_column(name)) for name in figures)
    since = [start for start, _end in ranges.values()]
    params = {
        "accounts": list(ranges),
        "since": since,
        "until": [end for _start, end in ranges.values()],
        "floor": min(since),
        "limit": UNSEEN_PAGE,
    }
    cursor = await conn.execute(sql.SQL(_UNSEEN).format(figures=columns), params)
    return list(await cursor.fetchall())


async def intervals_to_score(
    conn: Connection, ranges: dict[str, tuple[datetime, datetime]]
) -> list[tuple[Any, ...]]:
    """Each account's P&L explain intervals ending inside its range [since, until], oldest
    first, as rows of (account, ts, scored, actual_pnl, explained_pnl, unexplained_pnl): the
    P&L None where the interval is marked (not scored)."""
    if not ranges:
        return []
    since = [start for start, _end in ranges.values()]
    params = {
        "accounts": list(ranges),
        "since": since,
        "until": [end for _start, end in ranges.values()],
        "floor": min(since),
    }
    cursor = await conn.execute(_INTERVALS_TO_SCORE, params)
    return list(await cursor.fetchall())


async def login_required(conn: Connection) -> bool:
    """Is a login prompt (`session_required`) newer than the last connection stored?"""
    row = await (await conn.execute(_LOGIN)).fetchone()
    return bool(row and row[0])


async def rows_last_hour(conn: Connection) -> int:
    """How many snapshots were stored with a tick in the last hour."""
    row = await (await conn.execute(ROWS_LAST_HOUR_SQL)).fetchone()
    return int(row[0]) if row else 0


async def table_columns(conn: Connection, tables: Sequence[str]) -> dict[str, dict[str, str]]:
    """The columns of those of `tables` (or views) that exist: table -> column -> data type,
    in table order."""
    found: dict[str, dict[str, str]] = {}
    for row in await dict_rows(conn, sql.SQL(_COLUMNS), {"tables": list(tables)}):
        found.setdefault(row["table_name"], {})[row["column_name"]] = row["data_type"]
    return found


async def dict_rows(
    conn: Connection, query: sql.SQL | sql.Composed, params: dict[str, Any]
) -> list[Row]:
    """The rows of `query`, each a dict by column name."""
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        return await cursor.fetchall()
