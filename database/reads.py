"""The named reads of the bridge's tables, shared by the programs that only read.

Each is a function of one connection (run it through a `Session`, database/session.py, for the
reply bound, the breaker and the translation of errors): the newest snapshot of each account,
the snapshots after a mark, whether an operator must log in, the snapshots of the last hour, and
the columns the schema has, an account's P&L explain over a range and its day's score. The
alerter, the web program and `bridge-status` ask these and write no SQL of their own for them.
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


def _column(name: str) -> sql.Composable:
    """A snapshot's column, or a scenario figure as of the snapshot (`SCENARIO_FIGURES`)."""
    if name not in SCENARIO_FIGURES:
        return sql.Identifier("p", name)
    return sql.SQL(_AS_OF).format(
        column=sql.Identifier(SCENARIO_FIGURES[name]),
        age=sql.Literal(SCENARIO_AGE),
        name=sql.Identifier(name),
    )


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


async def unseen_snapshots(
    conn: Connection,
    figures: Sequence[str],
    ranges: dict[str, tuple[datetime, datetime]],
) -> list[tuple[Any, ...]]:
    """Each account's snapshots strictly inside its range (since, until), in time order, as
    rows of (account, ts, *figures)."""
    if not ranges:
        return []
    columns = sql.SQL("").join(sql.SQL(", {}").format(_column(name)) for name in figures)
    since = [start for start, _end in ranges.values()]
    params = {
        "accounts": list(ranges),
        "since": since,
        "until": [end for _start, end in ranges.values()],
        "floor": min(since),
    }
    cursor = await conn.execute(sql.SQL(_UNSEEN).format(figures=columns), params)
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
