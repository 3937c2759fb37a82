"""The web program's only way to PostgreSQL: one read-only session, and every answer remembered.

The session (database/session.py) is opened with `default_transaction_read_only=on`, so the
server itself refuses any write. Each answer is kept under its question; while the database
cannot answer (down, starting, the schema not there yet) the last answer is given back with the
error beside it, so the page keeps showing what it knew, saying since when. Outages go through
the session's circuit breaker, like the writer's, so a database that is down is tried once per
breaker period, not per request.

The columns of `portfolio_greeks` and of its rollups are read from information_schema
(database/reads.py) at each connection and every minute, and every query is built from them
(see `web/figures.py`, `web/chart_windows.py`); long charts read the rollups, with raw rows for
what is not rolled up yet (`series_query`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from psycopg import sql

from database import reads
from database.errors import DatabaseError
from database.session import Connection, reading_session
from database.settings import DatabaseSettings
from shared.logs import redact
from web.chart_windows import ORIGIN, ROLLUPS, Window, rollup_usable, source
from web.errors import NoAnswer, NoSchema
from web.figures import Columns, charted

T = TypeVar("T")
Row = dict[str, Any]

# The tables (and the view) whose columns every query is built from.
_SCHEMA_TABLES = ("portfolio_greeks", "snapshots", "rollup_pending", *(t for t, _w in ROLLUPS))
_COLUMNS_MAX_AGE_S = 60.0


# The P&L explain chart's bucket per window: each interval over the last hour, else the scored
# intervals summed (pnl_explain_rollup), so a window draws at most ~1,500 bars.
EXPLAIN_WIDTHS: dict[str, str | None] = {"1h": None, "today": "1m", "5d": "1h"}


def snapshot_source(columns: Columns) -> str:
    """Where a snapshot is read in full: format 3 keeps its underlyings as arrays and its
    completeness only where it is not complete, so the view `snapshots` (migration 005), once
    it exists; the table before."""
    return "snapshots" if columns.full else "portfolio_greeks"


_REMEMBERED = 256
# A chart: min and max of each figure per bucket, and its last value, so a 5-day view ships a
# few hundred points, not 86,400. The rows are `parts`: raw rows, or for a long bucket (see
# chart_windows.source) rollup rows for the whole rollup buckets of the window, each a part with its
# own count, last, min and max. A rollup bucket with a minute still in rollup_pending (rows
# stored since the replayer last rolled it up: the newest minutes, a late replay) is read from
# the raw rows instead, so the chart shows what the raw table has. The marks are written in the
# transaction that stores the rows and cleared in the one that rolls them up, so this one
# statement sees each rollup bucket either current or marked. The bucket's last row gives the
# underlyings (the rollups do not keep the jsonb).
_SERIES_SQL = """
WITH {dirty}raw_spans(lo, hi) AS (
    {raw_spans}
),
parts AS (
    {rollup_part}SELECT p.ts AS at, 1 AS rows, p.ts AS last_ts{raw_figures}
    FROM raw_spans s CROSS JOIN LATERAL (
        SELECT * FROM portfolio_greeks p
        WHERE p.account = %(account)s AND p.ts >= s.lo AND p.ts < s.hi
        OFFSET 0) p
),
buckets AS (
    SELECT date_bin(make_interval(secs => %(step)s), at, %(origin)s) AS bucket,
           sum(rows) AS rows, max(last_ts) AS last_ts{aggregates}
    FROM parts
    GROUP BY 1
)
SELECT b.*, last.underlyings
FROM buckets b
LEFT JOIN LATERAL (
    SELECT underlyings FROM {source} p
    WHERE p.account = %(account)s AND p.ts = b.last_ts LIMIT 1
) last ON true
ORDER BY b.bucket
"""
# The rollup buckets of the covered span that have a minute marked pending.
_DIRTY_SQL = """dirty AS (
    SELECT DISTINCT date_bin(make_interval(secs => %(width)s), bucket, %(origin)s) AS bucket
    FROM rollup_pending
    WHERE account = %(account)s AND bucket >= %(covered_start)s AND bucket < %(covered_end)s
),
"""
# Raw rows before and after the covered span (the end is inclusive: timestamptz counts
# microseconds), and in each dirty rollup bucket.
_RAW_AROUND_SQL = """VALUES (%(start)s::timestamptz, %(covered_start)s::timestamptz),
           (%(covered_end)s::timestamptz, %(end)s::timestamptz + interval '1 microsecond')
    UNION ALL
    SELECT bucket, bucket + make_interval(secs => %(width)s) FROM dirty"""
_RAW_ONLY_SQL = "VALUES (%(start)s::timestamptz, %(end)s::timestamptz + interval '1 microsecond')"
_ROLLUP_PART_SQL = """SELECT r.bucket AS at, r.snapshots AS rows, r.last_ts{rollup_figures}
    FROM {rollup} r
    WHERE r.account = %(account)s
      AND r.bucket >= %(covered_start)s AND r.bucket < %(covered_end)s
      AND NOT EXISTS (SELECT FROM dirty d WHERE d.bucket = r.bucket)
    UNION ALL
    """
# The account's newest Greeks by expiry, and its newest legs (migration 006); each by the
# primary key's (account, ts) order, one index probe.
_EXPIRY_SQL = """
SELECT ts, currency, bucket_figures, linear_dollar_delta, completeness, position_count,
    option_count, underlying_symbols, underlying_figures, underlying_linear
FROM expiry_greeks WHERE account = %(account)s ORDER BY ts DESC LIMIT 1
"""
_LEGS_SQL = """
SELECT * FROM position_legs
WHERE account = %(account)s
  AND ts = (SELECT max(ts) FROM position_legs WHERE account = %(account)s)
ORDER BY conid
"""
_EVENTS_SQL = """
SELECT ts, level, event, code, message, details FROM api_logs
WHERE ts >= %(start)s AND ts <= %(end)s
  AND (event = ANY(%(events)s) OR level IN ('warning', 'error', 'critical'))
ORDER BY ts DESC
LIMIT %(limit)s
"""
# Rows since a moment, per event and UTC day (api_logs' partition: one dropped past retention
# takes whole days away), by tick: the partitions before the moment are pruned.
_EVENT_COUNTS_SQL = """
SELECT event, (ts AT TIME ZONE 'UTC')::date AS day, count(*) AS events
FROM api_logs WHERE ts >= %(since)s
GROUP BY 1, 2
"""


@dataclass(frozen=True)
class Answer(Generic[T]):
    """A value from the database, when it was read, and the error that kept it from being newer."""

    value: T
    as_of: datetime
    error: str | None = None


class Reader:
    def __init__(
        self,
        database: DatabaseSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reply_s = database.reply_timeout_s
        self._clock = clock
        self._monotonic = monotonic
        self._session = reading_session(
            database, "bridge-web", prepare=self._new_connection, monotonic=monotonic
        )
        self._lock = asyncio.Lock()
        self._columns: Columns | None = None
        self._columns_at = 0.0
        self._known: OrderedDict[Hashable, Answer[Any]] = OrderedDict()
        self.last_error: str | None = None

    @property
    def columns(self) -> Columns | None:
        """The table's columns as last read; None before the first successful connection."""
        return self._columns

    async def close(self) -> None:
        await self._session.close()

    # ---- the questions -------------------------------------------------------------------

    async def schema(self) -> Answer[Columns]:
        return await self._ask(("schema",), lambda _conn, columns: _constant(columns))

    async def latest(self) -> Answer[list[Row]]:
        async def work(conn: Connection, columns: Columns) -> list[Row]:
            wanted = [name for name in columns.full or columns.types if name != "id"]
            return await reads.newest_per_account(conn, wanted, source=snapshot_source(columns))

        return await self._ask(("latest",), work)

    async def series(self, account: str, span: Window) -> Answer[list[Row]]:
        async def work(conn: Connection, columns: Columns) -> list[Row]:
            query, params = series_query(columns, account, span)
            return await reads.dict_rows(conn, query, params)

        return await self._ask(("series", account, span.name), work)

    async def positions(self, account: str) -> Answer[tuple[Row | None, list[Row]]]:
        """The account's newest Greeks by expiry (None before any) and its newest legs."""

        async def work(_conn: Connection, _columns: Columns) -> tuple[Row | None, list[Row]]:
            expiry = await reads.dict_rows(_conn, sql.SQL(_EXPIRY_SQL), {"account": account})
            legs = await reads.dict_rows(_conn, sql.SQL(_LEGS_SQL), {"account": account})
            return (expiry[0] if expiry else None), legs

        return await self._ask(("positions", account), work)

    async def explain(self, account: str, span: Window) -> Answer[dict[str, Any]]:
        """The P&L explain of `account` over `span` (every interval over the last hour, per
        minute today, per hour over 5 days) and its latest day's score."""
        width = EXPLAIN_WIDTHS.get(span.name)

        async def work(conn: Connection, _columns: Columns) -> dict[str, Any]:
            rows = await reads.explain_intervals(conn, account, span.start, span.end, width=width)
            return {"width": width, "rows": rows, "score": await reads.explain_score(conn, account)}

        return await self._ask(("explain", account, span.name), work)

    async def events(
        self, span: Window, names: list[str], *, limit: int = 2000
    ) -> Answer[list[Row]]:
        async def work(conn: Connection, _columns: Columns) -> list[Row]:
            params = {"start": span.start, "end": span.end, "events": names, "limit": limit}
            return await reads.dict_rows(conn, sql.SQL(_EVENTS_SQL), params)

        return await self._ask(("events", span.name), work)

    async def event_counts(self, since: datetime) -> Answer[dict[tuple[str, date], int]]:
        """api_logs rows per event and UTC day whose tick is at or after `since`."""

        async def work(conn: Connection, _columns: Columns) -> dict[tuple[str, date], int]:
            rows = await reads.dict_rows(conn, sql.SQL(_EVENT_COUNTS_SQL), {"since": since})
            return {(row["event"], row["day"]): int(row["events"]) for row in rows}

        return await self._ask(("event_counts",), work)

    async def rows_last_hour(self, *, wait_s: float | None = None) -> Answer[int]:
        async def work(conn: Connection, _columns: Columns) -> int:
            return await reads.rows_last_hour(conn)

        return await self._ask(("rows_last_hour",), work, wait_s=wait_s)

    async def ping(self, *, wait_s: float | None = None) -> Answer[bool]:
        """Is the database answering now (the cheapest question)?"""

        async def work(conn: Connection, _columns: Columns) -> bool:
            await conn.execute("SELECT 1")
            return True

        return await self._ask(("ping",), work, wait_s=wait_s)

    async def is_read_only(self) -> bool:
        """What the server says of this session's default (for the tests and the logs)."""

        async def work(conn: Connection, _columns: Columns) -> bool:
            cursor = await conn.execute("SHOW default_transaction_read_only")
            row = await cursor.fetchone()
            return bool(row and row[0] == "on")

        return (await self._ask(("read_only",), work)).value

    # ---- the machinery -------------------------------------------------------------------

    async def _ask(
        self,
        key: Hashable,
        work: Callable[[Connection, Columns], Awaitable[T]],
        *,
        wait_s: float | None = None,
    ) -> Answer[T]:
        """`work`'s answer, or the last one known with the error beside it. `wait_s` bounds the
        wait for the one connection while another question holds it (the reply timeout when
        None): a caller that must answer soon (/healthz) gives up on it."""
        error: str | None = None
        if not self._session.allows():
            error = self.last_error or "database breaker open"
        elif not await self._acquired(self._reply_s if wait_s is None else wait_s):
            # Not an outage of its own: the question holding the connection will say.
            error = f"still busy with an earlier question after {wait_s or self._reply_s:g} s"
        else:
            try:
                # A server that stops answering must not hold every request (and /healthz)
                # behind the lock: silent past the reply timeout, it is an outage (the session).
                columns = await self._session.run(self._current_columns)
                value = await self._session.run(lambda conn: work(conn, columns))
            except (DatabaseError, NoSchema) as exc:
                self._failed(exc)
                error = self.last_error
            else:
                self.last_error = None
                answer = Answer(value, self._clock())
                self._remember(key, answer)
                return answer
            finally:
                self._lock.release()
        known = self._known.get(key)
        error = error or "database breaker open"
        if known is None:
            raise NoAnswer(error)
        return replace(known, error=error)

    async def _acquired(self, wait_s: float) -> bool:
        """Take the connection's lock within `wait_s`. A wait given up (or cancelled) that
        takes the lock after all hands it straight back, so it is never left held."""
        acquiring: asyncio.Future[bool] = asyncio.ensure_future(self._lock.acquire())
        try:
            done, _ = await asyncio.wait({acquiring}, timeout=wait_s)
        except asyncio.CancelledError:
            self._abandon(acquiring)
            raise
        if not done:
            self._abandon(acquiring)
            return False
        return True

    def _abandon(self, acquiring: asyncio.Future[bool]) -> None:
        def release_if_taken(task: asyncio.Future[bool]) -> None:
            if not task.cancelled() and task.exception() is None:
                self._lock.release()

        acquiring.cancel()
        acquiring.add_done_callback(release_if_taken)

    def _failed(self, exc: DatabaseError | NoSchema) -> None:
        self.last_error = redact(str(exc)) or type(exc).__name__
        # A missing table or column means the schema moved: read it again at the next answer.
        # Until then the last columns read stay, so the remembered answers keep their shape.
        self._columns_at = -math.inf

    def _remember(self, key: Hashable, answer: Answer[Any]) -> None:
        self._known[key] = answer
        self._known.move_to_end(key)
        while len(self._known) > _REMEMBERED:
            self._known.popitem(last=False)

    async def _new_connection(self, _conn: Connection) -> None:
        self._columns_at = -math.inf  # a new connection may be to a migrated schema

    async def _current_columns(self, conn: Connection) -> Columns:
        now = self._monotonic()
        if self._columns is None or now - self._columns_at > _COLUMNS_MAX_AGE_S:
            tables = await reads.table_columns(conn, _SCHEMA_TABLES)
            # A rollup is read only with its marks of what is not rolled up yet.
            marked = "rollup_pending" in tables
            rollups = {
                table: frozenset(tables[table])
                for table, _width in ROLLUPS
                if marked and table in tables
            }
            found = Columns(
                tables.get("portfolio_greeks", {}), rollups, tuple(tables.get("snapshots", {}))
            )
            if not found.types:
                raise NoSchema("portfolio_greeks does not exist yet")
            self._columns, self._columns_at = found, now
        return self._columns


def series_query(
    columns: Columns, account: str, span: Window
) -> tuple[sql.Composed, dict[str, Any]]:
    """The one chart query, from raw rows or a rollup (chart_windows.source decides which)."""
    names = charted(columns)
    usable = {table for table, _width in ROLLUPS if rollup_usable(columns, table, names)}
    chosen = source(span, usable)
    params: dict[str, Any] = {
        "account": account,
        "start": span.start,
        "end": span.end,
        "step": span.step_s,
        "origin": ORIGIN,
        "width": chosen.width_s,
        "covered_start": chosen.covered_start,
        "covered_end": chosen.covered_end,
    }

    def each(template: str, **parts: str) -> sql.Composed:
        return sql.SQL("").join(
            sql.SQL(template).format(
                **{key: sql.Identifier(value.format(name=name)) for key, value in parts.items()}
            )
            for name in names
        )

    figure = {"last": "{name}__last", "lo": "{name}__min", "hi": "{name}__max"}
    raw_figures = each(", p.{c} AS {last}, p.{c} AS {lo}, p.{c} AS {hi}", c="{name}", **figure)
    aggregates = each(
        ", min({lo}) AS {lo}, max({hi}) AS {hi},"
        " (array_agg({last} ORDER BY last_ts DESC))[1] AS {last}",
        **figure,
    )
    rollup_part: sql.Composable = sql.SQL("")
    if chosen.rollup is None:
        dirty, raw_spans = sql.SQL(""), sql.SQL(_RAW_ONLY_SQL)
    else:
        dirty, raw_spans = sql.SQL(_DIRTY_SQL), sql.SQL(_RAW_AROUND_SQL)
        rollup_part = sql.SQL(_ROLLUP_PART_SQL).format(
            rollup=sql.Identifier(chosen.rollup),
            rollup_figures=each(
                ", r.{c} AS {last}, r.{cmin} AS {lo}, r.{cmax} AS {hi}",
                c="{name}", cmin="{name}_min", cmax="{name}_max", **figure,
            ),
        )  # fmt: skip
    query = sql.SQL(_SERIES_SQL).format(
        dirty=dirty,
        raw_spans=raw_spans,
        rollup_part=rollup_part,
        raw_figures=raw_figures,
        aggregates=aggregates,
        source=sql.Identifier(snapshot_source(columns)),
    )
    return query, params


async def _constant(value: T) -> T:
    return value
