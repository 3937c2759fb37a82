"""History maintenance: time partitions kept ahead and dropped past retention, rollups kept fresh.

One idempotent step (`maintain`), run by the replayer every period:

- partitions: the rules of `database.partitions` applied to what the catalog holds; creating is
  `CREATE TABLE … PARTITION OF`, dropping past retention is `DROP TABLE` of a whole partition
  (no DELETE, no bloat);
- rollups: the minutes marked in `rollup_pending` (a trigger marks every minute that gains raw
  rows, in the transaction that stores them, replays hours late included) are recomputed from
  the raw rows, and their hours from the minutes, then upserted. Recomputing rather than adding
  makes a replay, or a second run, change nothing;
- the P&L explain's rollups (migration 012) the same way, from their own marks
  (`pnl_explain_pending`): minutes from the raw intervals, hours from minutes, days from hours;
  then each day that is over and not scored yet gets its Spearman correlation from its raw
  intervals (docs/pnl-explain.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from psycopg import sql

from database.errors import DatabaseError
from database.partitions import Partition, Policy, Width, from_catalog, partition_at, plan
from database.session import Connection, Session
from shared import records

RAW_TABLES = ("portfolio_greeks", "api_logs")
# Tables of figures stored beside the snapshots, partitioned and kept like them (issue #16;
# docs/expiry-and-legs.md, docs/scenarios.md, docs/pnl-explain.md). The explain's positions are
# arrays of its rows since migration 015 (`pnl_explain_positions` is a view over them).
BESIDE_SNAPSHOTS = ("expiry_greeks", "position_legs", "scenario_pnl", "pnl_explain")
ROLLUPS_1M = ("portfolio_greeks_1m", "underlying_greeks_1m", "pnl_explain_1m")
ROLLUPS_1H = ("portfolio_greeks_1h", "underlying_greeks_1h", "pnl_explain_1h")
# The explain's days and their scores (migration 012): one row an account-day, kept as long as
# the hours they are folded from.
ROLLUPS_1D = ("pnl_explain_1d",)
# Format 2's figures, each with its completeness; in each underlying also the
# share-equivalents; at account level also the account's values (and net_delta and net_gamma,
# of format-1 rows only). Migration 004's rollup columns follow these lists.
COMPLETENESS_FIGURES = records.FIGURES
UNDERLYING_FIGURES = ("net_delta", "net_gamma", *records.FIGURES)
ACCOUNT_FIGURES = (*UNDERLYING_FIGURES, *records.ACCOUNT_VALUES)
# Partitions made ahead: a week of raw days, so a replayer down for days never leaves the writer
# without a partition for the current day; the next month of rollups.
RAW_AHEAD_DAYS = 7
# A format-2 snapshot is about 1.4 kB, mostly jsonb whose keys repeat (completeness): compressed
# inline past 128 B it takes 18 % less room for 13 % more insert time on the server (measured,
# docs/scaling.md). Charts of the numeric columns never decompress it. A format-3 row is below
# the 2-kB threshold at which PostgreSQL tries to compress at all up to about 15 underlyings.
RAW_STORAGE = "toast_tuple_target=128"
ROLLUP_AHEAD_MONTHS = 1
# Explain days scored by one maintenance step at most: scoring an account-day of 5-s intervals
# reads and ranks its 17,280 raw rows, 50 to 110 ms (docs/pnl-explain.md): 5 to 11 s a step,
# so the midnight of a thousand accounts is worked off over some steps rather than holding one
# replay period up.
DAYS_SCORED_PER_STEP = 100


@dataclass(frozen=True)
class Retention:
    """How long each table and resolution is kept; None: forever."""

    raw: timedelta | None = timedelta(days=90)
    api_logs: timedelta | None = timedelta(days=90)
    rollup_1m: timedelta | None = timedelta(days=730)
    rollup_1h: timedelta | None = None

    def policies(self) -> list[Policy]:
        return [
            Policy("portfolio_greeks", Width.DAY, RAW_AHEAD_DAYS, self.raw, RAW_STORAGE),
            Policy("api_logs", Width.DAY, RAW_AHEAD_DAYS, self.api_logs),
            # Beside each snapshot, kept as long (migrations 006, 008 and 011).
            *(Policy(t, Width.DAY, RAW_AHEAD_DAYS, self.raw) for t in BESIDE_SNAPSHOTS),
            *(
                Policy(t, Width.MONTH, ROLLUP_AHEAD_MONTHS, self.rollup_1m, column="bucket")
                for t in ROLLUPS_1M
            ),
            *(
                Policy(t, Width.MONTH, ROLLUP_AHEAD_MONTHS, self.rollup_1h, column="bucket")
                for t in (*ROLLUPS_1H, *ROLLUPS_1D)
            ),
        ]


@dataclass
class MaintenanceReport:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    minutes_rolled_up: int = 0
    explain_minutes_rolled_up: int = 0
    explain_days_scored: int = 0


async def partitions(conn: Connection, tables: list[str]) -> dict[Partition, str]:
    """The range partitions of `tables`, with their bounds, as the catalog holds them, and
    each one's table name (not always the name the plan would give: migration 004 turned the
    old table into the first partition)."""
    cursor = await conn.execute(
        "SELECT parent.relname, child.relname, pg_get_expr(child.relpartbound, child.oid)"
        " FROM pg_inherits JOIN pg_class parent ON parent.oid = inhparent"
        " JOIN pg_class child ON child.oid = inhrelid"
        " WHERE parent.relname = ANY(%s) AND parent.relkind = 'p'"
        " AND pg_get_expr(child.relpartbound, child.oid) <> 'DEFAULT'",
        (tables,),
    )
    return {from_catalog(parent, bound): child for parent, child, bound in await cursor.fetchall()}


async def _strays(conn: Connection, policy: Policy) -> list[datetime]:
    """The periods of the rows waiting in the table's default partition (none, normally)."""
    cursor = await conn.execute(
        sql.SQL("SELECT DISTINCT date_trunc({}, {}, 'UTC') FROM {}").format(
            sql.Literal(policy.width.value),
            sql.Identifier(policy.column),
            sql.Identifier(f"{policy.table}_default"),
        )
    )
    return [row[0] for row in await cursor.fetchall()]


async def _create(conn: Connection, policy: Policy, partition: Partition, stray: bool) -> None:
    """A new partition; rows of its range waiting in the default partition are moved into it
    first (PostgreSQL refuses a partition whose rows the default partition still holds)."""
    name, table = sql.Identifier(partition.name), sql.Identifier(partition.table)
    bounds = (sql.Literal(partition.start), sql.Literal(partition.end))
    storage = sql.SQL(f" WITH ({policy.storage})" if policy.storage else "")  # a constant
    if not stray:
        await conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({}){}").format(
                name, table, *bounds, storage
            )
        )
        await _copy_statistics_targets(conn, partition)
        return
    default, column = sql.Identifier(f"{partition.table}_default"), sql.Identifier(policy.column)
    # A generated column (pnl_explain's residual) must be generated in the partition too, and
    # is computed again there rather than copied (PostgreSQL refuses a value for it).
    await conn.execute(
        sql.SQL(
            "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
            " INCLUDING GENERATED){}"
        ).format(name, table, storage)
    )
    cursor = await conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0"
        " AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
        (partition.table,),
    )
    stored = sql.SQL(", ").join(sql.Identifier(row[0]) for row in await cursor.fetchall())
    await conn.execute(
        sql.SQL(
            "WITH moved AS (DELETE FROM {} WHERE {} >= {} AND {} < {} RETURNING *)"
            " INSERT INTO {} ({}) SELECT {} FROM moved"
        ).format(default, column, bounds[0], column, bounds[1], name, stored, stored)
    )
    await conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            table, name, *bounds
        )
    )
    await _copy_statistics_targets(conn, partition)


async def _copy_statistics_targets(conn: Connection, partition: Partition) -> None:
    """Give the new partition its table's statistics target wherever the table sets one (no
    statistics on the figure arrays: migration 016). PostgreSQL applies a table's target to the
    partitions it has, not to one created later, and autoanalyze reads the partition's own."""
    cursor = await conn.execute(
        "SELECT attname, attstattarget FROM pg_attribute WHERE attrelid = %s::regclass"
        " AND attnum > 0 AND NOT attisdropped AND attstattarget >= 0 ORDER BY attnum",
        (partition.table,),
    )
    for column, target in await cursor.fetchall():
        await conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET STATISTICS {}").format(
                sql.Identifier(partition.name), sql.Identifier(column), sql.Literal(target)
            )
        )


async def apply_partition_plan(
    conn: Connection, retention: Retention, now: datetime
) -> MaintenanceReport:
    """Create the partitions due and drop those past retention, in one transaction."""
    report = MaintenanceReport()
    policies = retention.policies()
    async with conn.transaction():
        await conn.execute("SET LOCAL TimeZone = 'UTC'")
        names = await partitions(conn, [policy.table for policy in policies])
        for policy in policies:
            strays = await _strays(conn, policy)
            due = plan(policy, list(names), now, strays)
            for partition in due.drop:
                name = names[partition]
                await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                report.dropped.append(name)
            stray_starts = {partition_at(policy.table, ts, policy.width).start for ts in strays}
            for partition in due.create:
                await _create(conn, policy, partition, partition.start in stray_starts)
                report.created.append(partition.name)
    return report


@dataclass(frozen=True)
class Column:
    """One column of a rollup: how a minute computes it from raw rows and an hour from minutes.

    `figure`: last value, `_min` and `_max`; `last`: the last value only; `min`/`max`: the
    extreme of `source` (the raw column it summarises) over the bucket.
    """

    name: str
    kind: str  # "figure", "last", "min" or "max"
    source: str = ""
    sql_type: str = "float8"
    missing_of: str = ""  # a completeness count: positions left out of this figure

    def in_account(self) -> str:
        """The raw expression over `portfolio_greeks g`. A format-3 row's completeness names only
        the figures that are not complete (migration 005): one it does not name left out no
        position."""
        if self.missing_of:
            figure = f"'{self.missing_of}'"
            return (
                f"CASE WHEN g.format_version < 3 OR g.completeness ? {figure}"
                f" THEN (g.completeness->{figure}->>'missing')::integer ELSE 0 END"
            )
        return f"g.{self.raw_name}"

    def in_underlying(self) -> str:
        """The raw expression over `snapshot_underlyings() u`, whose completeness is in full."""
        if self.missing_of:
            return f"(u.completeness->'{self.missing_of}'->>'missing')::integer"
        return f"u.{self.raw_name}"

    def columns(self) -> list[str]:
        if self.kind == "figure":
            return [self.name, f"{self.name}_min", f"{self.name}_max"]
        return [self.name]

    @property
    def raw_name(self) -> str:
        return self.source or self.name

    def from_raw(self, raw: str) -> list[str]:
        """Aggregates over raw rows, `raw` being the expression of the column it summarises."""
        last = f"(array_agg({raw} ORDER BY g.ts DESC))[1]"
        if self.kind == "figure":
            return [last, f"min({raw})", f"max({raw})"]
        if self.kind == "last":
            return [last]
        return [f"{self.kind}({raw})"]

    def from_minutes(self) -> list[str]:
        last = f"(array_agg(m.{self.name} ORDER BY m.bucket DESC))[1]"
        if self.kind == "figure":
            return [last, f"min(m.{self.name}_min)", f"max(m.{self.name}_max)"]
        if self.kind == "last":
            return [last]
        return [f"{self.kind}(m.{self.name})"]


def _figures(names: tuple[str, ...]) -> list[Column]:
    return [Column(name, "figure") for name in names]


def _missing(names: tuple[str, ...]) -> list[Column]:
    """Completeness counts, kept as numbers (the jsonb would triple a rollup row): positions
    left out of each format-2 figure in the bucket's last snapshot, and at most."""
    columns = []
    for name in names:
        columns.append(Column(f"{name}_missing", "last", sql_type="integer", missing_of=name))
        columns.append(Column(f"{name}_missing_max", "max", sql_type="integer", missing_of=name))
    return columns


# The rollups' columns, named as the snapshot's (migration 004 creates them in this order).
ACCOUNT_ROLLUP: tuple[Column, ...] = (
    *_figures(ACCOUNT_FIGURES),
    Column("format_version", "last", sql_type="smallint"),
    Column("currency", "last", sql_type="text"),
    *_missing(COMPLETENESS_FIGURES),
    Column("position_count", "last", sql_type="integer"),
    Column("option_count", "last", sql_type="integer"),
    Column("options_with_greeks", "last", sql_type="integer"),
    Column("options_with_greeks_min", "min", "options_with_greeks", "integer"),
    Column("stalest_greek_age_s", "last"),
    Column("stalest_greek_age_s_max", "max", "stalest_greek_age_s"),
)
UNDERLYING_ROLLUP: tuple[Column, ...] = (
    *_figures(UNDERLYING_FIGURES),
    *_missing(records.UNDERLYING_COMPLETENESS),
    Column("position_count", "last", sql_type="integer"),
    Column("option_count", "last", sql_type="integer"),
    Column("options_with_greeks", "last", sql_type="integer"),
    Column("options_with_greeks_min", "min", "options_with_greeks", "integer"),
)


def _upsert(table: str, key: str, columns: tuple[Column, ...], select: str) -> str:
    names = [name for column in columns for name in column.columns()]
    updates = ", ".join(f"{name} = excluded.{name}" for name in ["snapshots", "last_ts", *names])
    return (
        f"INSERT INTO {table} ({key}, snapshots, last_ts, {', '.join(names)})\n{select}\n"
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def _list(items: list[str]) -> str:
    return ",\n    ".join(items)


# Up to %(limit)s marks, oldest first, moved out of a pending table into a temporary batch
# (`_refresh` names both).
_TAKE = """
CREATE TEMP TABLE {batch} ON COMMIT DROP AS
WITH taken AS (
    DELETE FROM {pending}
    WHERE (account, bucket) IN (
        SELECT account, bucket FROM {pending} ORDER BY bucket LIMIT %(limit)s)
    RETURNING account, bucket)
SELECT account, bucket FROM taken
"""

# The raw rows of the taken minutes, fetched minute by minute through the primary key (OFFSET 0
# keeps the subquery a per-minute lookup: joined as a whole, the planner merges on the account
# alone and filters millions of rows by time).
_ROWS = """
CREATE TEMP TABLE rollup_rows ON COMMIT DROP AS
SELECT g.*, b.bucket FROM rollup_batch b CROSS JOIN LATERAL (
    SELECT * FROM portfolio_greeks g
    WHERE g.account = b.account AND g.ts >= b.bucket AND g.ts < b.bucket + interval '1 minute'
    OFFSET 0) g
"""

_ACCOUNT_VALUES = [
    item for column in ACCOUNT_ROLLUP for item in column.from_raw(column.in_account())
]
_ACCOUNT_1M = _upsert(
    "portfolio_greeks_1m",
    "account, bucket",
    ACCOUNT_ROLLUP,
    f"""SELECT g.account, g.bucket, count(*), max(g.ts),
    {_list(_ACCOUNT_VALUES)}
FROM rollup_rows g
GROUP BY g.account, g.bucket""",  # noqa: S608  # names from this module only
)


_UNDERLYING_VALUES = [
    item for column in UNDERLYING_ROLLUP for item in column.from_raw(column.in_underlying())
]
_UNDERLYING_1M = _upsert(
    "underlying_greeks_1m",
    "account, underlying, bucket",
    UNDERLYING_ROLLUP,
    f"""SELECT g.account, u.underlying, g.bucket, count(*), max(g.ts),
    {_list(_UNDERLYING_VALUES)}
FROM rollup_rows g CROSS JOIN LATERAL snapshot_underlyings(g.underlyings, g.underlying_symbols,
    g.underlying_figures, g.underlying_counts, g.underlying_completeness) u
GROUP BY g.account, u.underlying, g.bucket""",  # noqa: S608  # names from this module only
)

_HOURS = """
CREATE TEMP TABLE rollup_hours ON COMMIT DROP AS
SELECT DISTINCT account, date_trunc('hour', bucket, 'UTC') AS bucket FROM rollup_batch
"""

_ACCOUNT_1H = _upsert(
    "portfolio_greeks_1h",
    "account, bucket",
    ACCOUNT_ROLLUP,
    f"""SELECT h.account, h.bucket, sum(m.snapshots), max(m.last_ts),
    {_list([item for column in ACCOUNT_ROLLUP for item in column.from_minutes()])}
FROM rollup_hours h JOIN portfolio_greeks_1m m
    ON m.account = h.account AND m.bucket >= h.bucket AND m.bucket < h.bucket + interval '1 hour'
GROUP BY h.account, h.bucket""",  # noqa: S608  # names from this module only
)

_UNDERLYING_1H = _upsert(
    "underlying_greeks_1h",
    "account, underlying, bucket",
    UNDERLYING_ROLLUP,
    f"""SELECT h.account, m.underlying, h.bucket, sum(m.snapshots), max(m.last_ts),
    {_list([item for column in UNDERLYING_ROLLUP for item in column.from_minutes()])}
FROM rollup_hours h JOIN underlying_greeks_1m m
    ON m.account = h.account AND m.bucket >= h.bucket AND m.bucket < h.bucket + interval '1 hour'
GROUP BY h.account, m.underlying, h.bucket""",  # noqa: S608  # names from this module only
)


async def refresh_rollups(conn: Connection, *, max_minutes: int = 20_000) -> int:
    """Recompute up to `max_minutes` pending (account, minute) buckets and their hours; returns
    how many were taken. One transaction: on failure the marks stay for the next run."""
    statements = (_ROWS, _ACCOUNT_1M, _UNDERLYING_1M, _HOURS, _ACCOUNT_1H, _UNDERLYING_1H)
    return await _refresh(conn, "rollup_pending", "rollup_batch", statements, max_minutes)


async def _refresh(
    conn: Connection, pending: str, batch: str, statements: tuple[str, ...], max_minutes: int
) -> int:
    """Take up to `max_minutes` marks of `pending` into the temporary table `batch`, then run
    `statements` over it, in one transaction; returns how many marks were taken."""
    take = _TAKE.format(batch=batch, pending=pending)  # names from this module only
    async with conn.transaction():
        cursor = await conn.execute(take, {"limit": max_minutes})
        taken = cursor.rowcount
        if taken:
            await conn.execute(f"ANALYZE {batch}")
            for statement in statements:
                await conn.execute(statement)
        else:
            await conn.execute(f"DROP TABLE {batch}")
    return max(taken, 0)


# The P&L explain's rollup columns (migration 012 creates them in this order) and how an hour
# folds them from its minutes and a day from its hours: counts and sums add up, the worst is the
# largest and its time the earliest of the largest (as among the raw intervals).
EXPLAIN_SUMS = (
    "scored",
    "not_scored",
    *records.EXPLAIN_MARKS,
    "actual_pnl",
    "explained_pnl",
    "unexplained_pnl",
    *records.EXPLAIN_TERMS,
    "abs_actual_pnl",
    "abs_unexplained_pnl",
)
EXPLAIN_ROLLUP: tuple[tuple[str, str], ...] = (
    ("currency", "min(m.currency)"),
    *((name, f"sum(m.{name})") for name in EXPLAIN_SUMS),
    ("worst_unexplained", "max(m.worst_unexplained)"),
    (
        "worst_at",
        "(array_agg(m.worst_at ORDER BY m.worst_unexplained DESC, m.worst_at)"
        " FILTER (WHERE m.worst_unexplained IS NOT NULL))[1]",
    ),
)
_EXPLAIN_NAMES = [name for name, _fold in EXPLAIN_ROLLUP]


def _explain_upsert(table: str, select: str, *, reset: tuple[str, ...] = ()) -> str:
    """`reset`: columns set back to NULL when the bucket is made again (a day's score)."""
    updates = [f"{name} = excluded.{name}" for name in _EXPLAIN_NAMES]
    updates += [f"{name} = NULL" for name in reset]
    return (
        f"INSERT INTO {table} (account, bucket, {', '.join(_EXPLAIN_NAMES)})\n{select}\n"
        f"ON CONFLICT (account, bucket) DO UPDATE SET {', '.join(updates)}"
    )


# Each taken minute from its raw intervals, by the function the views use for what is not
# rolled up yet (pnl_explain_sums: a range scan of the key per minute).
_EXPLAIN_1M = _explain_upsert(
    "pnl_explain_1m",
    f"""SELECT b.account, b.bucket, {", ".join(f"s.{name}" for name in _EXPLAIN_NAMES)}
FROM explain_batch b
CROSS JOIN LATERAL pnl_explain_sums(b.account, b.bucket, b.bucket + interval '1 minute') s""",  # noqa: S608  # names from this module only
)


def _explain_fold(target: str, source: str, width: str, *, reset: tuple[str, ...] = ()) -> str:
    """The buckets of `width` ("hour", "day") holding a taken minute, folded from `source`."""
    folds = ", ".join(fold for _name, fold in EXPLAIN_ROLLUP)
    return _explain_upsert(
        target,
        f"""SELECT t.account, t.bucket, {folds}
FROM (SELECT DISTINCT account, date_trunc('{width}', bucket, 'UTC') AS bucket
      FROM explain_batch) t
JOIN {source} m
    ON m.account = t.account AND m.bucket >= t.bucket AND m.bucket < t.bucket + interval '1 {width}'
GROUP BY t.account, t.bucket""",  # noqa: S608  # names from this module only
        reset=reset,
    )


_EXPLAIN_1H = _explain_fold("pnl_explain_1h", "pnl_explain_1m", "hour")
# A day made again is open again: its score is computed anew once it is over.
_EXPLAIN_1D = _explain_fold(
    "pnl_explain_1d", "pnl_explain_1h", "day", reset=("spearman", "scored_at")
)
# The days that are over and not scored, oldest first: each one's Spearman correlation from its
# raw intervals (pnl_explain_day_score, as the view scores a day not scored yet). A day whose
# raw intervals are gone keeps its sums and gets no correlation.
_EXPLAIN_SCORE = """
WITH due AS (
    SELECT account, bucket FROM pnl_explain_1d
    WHERE scored_at IS NULL AND bucket <= %(now)s - interval '1 day'
    ORDER BY bucket LIMIT %(limit)s)
UPDATE pnl_explain_1d d SET spearman = s.spearman, scored_at = %(now)s
FROM due LEFT JOIN LATERAL pnl_explain_day_score(due.account, due.bucket) s ON true
WHERE d.account = due.account AND d.bucket = due.bucket
"""


async def refresh_explain_rollups(conn: Connection, *, max_minutes: int = 20_000) -> int:
    """Recompute up to `max_minutes` pending (account, minute) buckets of the P&L explain, their
    hours and their days; returns how many were taken. One transaction: on failure the marks
    stay for the next run."""
    statements = (_EXPLAIN_1M, _EXPLAIN_1H, _EXPLAIN_1D)
    return await _refresh(conn, "pnl_explain_pending", "explain_batch", statements, max_minutes)


async def score_explain_days(
    conn: Connection, now: datetime, *, max_days: int = DAYS_SCORED_PER_STEP
) -> int:
    """Score up to `max_days` account-days that are over at `now` and not scored; returns how
    many were."""
    async with conn.transaction():
        cursor = await conn.execute(_EXPLAIN_SCORE, {"now": now, "limit": max_days})
    return max(cursor.rowcount, 0)


async def maintain(
    conn: Connection,
    retention: Retention,
    now: datetime,
    *,
    max_minutes: int = 20_000,
    max_days: int = DAYS_SCORED_PER_STEP,
) -> MaintenanceReport:
    """Partitions first (a replayed backlog may need the days it covers), then every pending
    minute, batch after batch, the explain's too, then every explain day due its score."""
    report = await apply_partition_plan(conn, retention, now)
    while (taken := await refresh_rollups(conn, max_minutes=max_minutes)) > 0:
        report.minutes_rolled_up += taken
        if taken < max_minutes:
            break
    while (taken := await refresh_explain_rollups(conn, max_minutes=max_minutes)) > 0:
        report.explain_minutes_rolled_up += taken
        if taken < max_minutes:
            break
    while (scored := await score_explain_days(conn, now, max_days=max_days)) > 0:
        report.explain_days_scored += scored
        if scored < max_days:
            break
    return report


@dataclass(frozen=True)
class HistoryFacts:
    """What bridge-status shows about history: size, oldest raw row, next partition to drop."""

    database_bytes: int
    oldest_raw_ts: datetime | None
    next_drop: str | None
    next_drop_at: datetime | None
    pending_minutes: int


async def facts(conn: Connection, retention: Retention) -> HistoryFacts:
    cursor = await conn.execute(
        "SELECT pg_database_size(current_database()), (SELECT min(ts) FROM portfolio_greeks),"
        " (SELECT count(*) FROM rollup_pending)"
    )
    row = await cursor.fetchone()
    assert row is not None
    size, oldest, pending = row
    next_drop: tuple[datetime, str] | None = None
    policies = retention.policies()
    names = await partitions(conn, [policy.table for policy in policies])
    for policy in policies:
        if policy.retention is None:
            continue
        for partition, name in names.items():
            if partition.table == policy.table:
                due = partition.end + policy.retention
                if next_drop is None or due < next_drop[0]:
                    next_drop = (due, name)
    return HistoryFacts(
        database_bytes=int(size),
        oldest_raw_ts=oldest.astimezone(UTC) if oldest is not None else None,
        next_drop=next_drop[1] if next_drop else None,
        next_drop_at=next_drop[0] if next_drop else None,
        pending_minutes=int(pending),
    )


class HistoryKeeper:
    """The maintenance step of a supervised process (the replayer runs it every period).

    Its own connection, opened when needed and dropped when it breaks, so a maintenance
    statement never waits behind a replay chunk. Each step does a bounded amount of rollup work
    (`max_minutes`), so a first run over years of migrated rows never holds up the replay: the
    backlog of minutes is worked off period after period; so does the scoring of the explain's
    days (`max_days`). psycopg's errors come out translated.
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[Connection]],
        retention: Retention,
        *,
        max_minutes: int = 20_000,
        max_days: int = DAYS_SCORED_PER_STEP,
        reply_timeout_s: float | None = None,
    ) -> None:
        # A server that stops answering mid-step is hung up on, not waited for: the replayer's
        # drain comes after this step.
        self._session = Session(connect, reply_timeout_s=reply_timeout_s)
        self.retention = retention
        self._max_minutes = max_minutes
        self._max_days = max_days
        self.last_facts: HistoryFacts | None = None

    async def step(self, now: datetime) -> MaintenanceReport:
        """Partitions due at `now`, one batch of rollups, then the facts for the heartbeat."""
        return await self._session.run(lambda conn: self._maintain(conn, now))

    async def _maintain(self, conn: Connection, now: datetime) -> MaintenanceReport:
        report = await apply_partition_plan(conn, self.retention, now)
        report.minutes_rolled_up = await refresh_rollups(conn, max_minutes=self._max_minutes)
        report.explain_minutes_rolled_up = await refresh_explain_rollups(
            conn, max_minutes=self._max_minutes
        )
        report.explain_days_scored = await score_explain_days(conn, now, max_days=self._max_days)
        self.last_facts = await facts(conn, self.retention)
        return report

    async def close(self) -> None:
        await self._session.close()


__all__ = ["DatabaseError", "HistoryKeeper", "Retention", "maintain"]
