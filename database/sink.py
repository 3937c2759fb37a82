"""The idempotent insert path: JSON lines in, rows of `portfolio_greeks`, `api_logs`, `betas`,
`expiry_greeks`, `position_legs`, `scenario_pnl` and the P&L explain's `pnl_explain` (its
positions in arrays of the interval's row, migration 015) out.

Lines are sent as they are, by binary COPY into temporary staging tables, and moved into the
tables by `INSERT … SELECT … ON CONFLICT … DO NOTHING` on each table's key (a snapshot's natural
key, account and tick; an event's id and time; migration 004), all in one transaction; each
kind's statement runs only when the batch may hold that kind. PostgreSQL parses the JSON, so a
bulk replay costs Python almost nothing per row (decoding in Python and sending typed rows was
measured: more CPU in all, docs/benchmarks.md, "Staging: json, jsonb, typed rows, text rows").

Two stagings, by what the server must parse. A format-3 snapshot or P&L explain line (the kinds
written every tick) whose kind is told from its first bytes goes as `json` text, read once by
`json_to_record` straight into each column's type: COPY only checks its syntax, and no figure
becomes a numeric on the way (a snapshot: 0.83 x the server's CPU a line at 10 underlyings, 0.41
x at 50, docs/benchmarks.md). Every other line goes as `jsonb`, each field read out of the
parsed value. The two read a line's values alike except where `json_kind` sends the line to
jsonb (a negative zero, which jsonb's numeric stores as +0; a JSON null for a jsonb column,
which jsonb keeps as the JSON null); the one difference left is that json refuses an integer
written as `1e2`, which jsonb reads as 100 (`records.encode` never writes one). A record
delivered twice is stored once, whichever staging took it (tests/database/test_json_staging.py).

If the server refuses a batch because of one record (a bad value, a program limit such as an
index row too big), the batch is split in halves until the offending lines are isolated: they
come back as rejected, with the server's reason, and every other line is stored. A batch the
server gives up on for its size (statement timeout, out of memory) is split the same way; a
single record that still fails is that record's fault. A race lost past its retries is split
too, and a single line that still loses comes back unstored, for the caller to keep. Only
connection-level failures are raised, as `DatabaseUnavailable`, for the caller's breaker.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import TupleRow

from database.circuit_breaker import DBCircuitBreaker
from database.errors import (
    BatchTooLarge,
    DatabaseError,
    RecordRejected,
    TransientConflict,
)
from database.schema import bootstrap
from database.session import Connection, Session

# A format-2 line is about 3 kB as jsonb, past the 2 kB at which PostgreSQL would compress it
# on the way in and decompress it again for every field the INSERT reads (twenty-odd times a
# row). The largest toast target keeps lines up to a page whole: 71 -> 42 us of server time per
# real-shaped row (docs/scaling.md). A larger line is still stored, compressed.
STAGING = """
CREATE TEMP TABLE IF NOT EXISTS bridge_staging (
    line jsonb NOT NULL CHECK (line->>'v' IN ('1', '2', '3')
        AND line->>'kind' IN ('snapshot', 'api_log', 'beta', 'expiry', 'legs', 'scenario',
            'pnl_explain'))
) WITH (toast_tuple_target = 8160) ON COMMIT DELETE ROWS
"""

# The target of each kind's two statements (from the jsonb staging and from the json one): one
# list of columns, which each statement's SELECT fills in this order.
_INTO_SNAPSHOTS = """
INSERT INTO portfolio_greeks (
    id, ts, account, mode, format_version, currency, net_delta, net_gamma, net_theta, net_vega,
    net_dollar_delta, net_dollar_gamma, net_beta_delta, completeness, net_liquidation,
    unrealized_pnl, daily_pnl, position_count, option_count, options_with_greeks,
    stalest_greek_age_s, underlyings, underlying_symbols, underlying_figures, underlying_counts,
    underlying_completeness, gateway_beta_delta, gateway_beta_delta_benchmark_shares)"""
_INTO_EXPLAINS = """
INSERT INTO pnl_explain (
    account, ts, id, mode, start_ts, currency, actual_pnl, explained_pnl, delta_pnl, gamma_pnl,
    theta_pnl, vega_pnl, linear_pnl, marks, missing, underlying_symbols, underlying_rows,
    position_conids, position_rows, position_missing, position_actual_missing)"""

# Format-3 snapshot and explain lines as json text (see the module's docstring): `kind` is the
# line's, read by the client from its first bytes. Lines up to a page stay uncompressed, as in
# the jsonb staging: json_to_record reads each once.
JSON_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS bridge_json_staging (
    kind text NOT NULL,
    line json NOT NULL
) WITH (toast_tuple_target = 8160) ON COMMIT DELETE ROWS
"""

# One json_to_record a line gives every column in its type (a format-3 line's fields are the
# row's columns; what the line leaves out is NULL). As INSERT_SNAPSHOTS does for format 3: the
# version, and NULL, not the column's default, for the `underlyings` of formats 1 and 2.
JSON_INSERT_SNAPSHOTS = (
    _INTO_SNAPSHOTS
    + """
SELECT r.id, r.ts, r.account, r.mode, 3, r.currency, r.net_delta, r.net_gamma, r.net_theta,
    r.net_vega, r.net_dollar_delta, r.net_dollar_gamma, r.net_beta_delta, r.completeness,
    r.net_liquidation, r.unrealized_pnl, r.daily_pnl, r.position_count, r.option_count,
    r.options_with_greeks, r.stalest_greek_age_s, NULL, r.underlying_symbols,
    r.underlying_figures, r.underlying_counts, r.underlying_completeness, r.gateway_beta_delta,
    r.gateway_beta_delta_benchmark_shares
FROM bridge_json_staging CROSS JOIN LATERAL json_to_record(line) AS r(
    id uuid, ts timestamptz, account text, mode text, currency text, net_delta float8,
    net_gamma float8, net_theta float8, net_vega float8, net_dollar_delta float8,
    net_dollar_gamma float8, net_beta_delta float8, completeness jsonb, net_liquidation float8,
    unrealized_pnl float8, daily_pnl float8, position_count integer, option_count integer,
    options_with_greeks integer, stalest_greek_age_s float8, underlying_symbols text[],
    underlying_figures float8[], underlying_counts integer[], underlying_completeness jsonb,
    gateway_beta_delta float8, gateway_beta_delta_benchmark_shares float8)
WHERE kind = 'snapshot'
ON CONFLICT (account, ts) DO NOTHING
"""
)

# Fields are extracted one by one rather than with jsonb_populate_record: measured ~10 % faster
# on a backlog, and every cast names its column in the server's error message. Format 3's
# underlying arrays are the exception: jsonb_to_record turns a JSON array of arrays into a
# PostgreSQL array in one call (a line of another format has none of them: NULL). A format-1
# line has none of format 2's keys (they are stored NULL) and format 2 has no account-level
# net_delta or net_gamma; format 3 leaves out what is unknown (NULL) and writes completeness only
# where it is not complete (migration 005). So one statement stores all three.
INSERT_SNAPSHOTS = (
    _INTO_SNAPSHOTS
    + """
SELECT (line->>'id')::uuid, (line->>'ts')::timestamptz, line->>'account', line->>'mode',
    (line->>'v')::smallint, line->>'currency',
    (line->>'net_delta')::float8, (line->>'net_gamma')::float8, (line->>'net_theta')::float8,
    (line->>'net_vega')::float8, (line->>'net_dollar_delta')::float8,
    (line->>'net_dollar_gamma')::float8, (line->>'net_beta_delta')::float8,
    line->'completeness', (line->>'net_liquidation')::float8,
    (line->>'unrealized_pnl')::float8, (line->>'daily_pnl')::float8,
    (line->>'position_count')::integer, (line->>'option_count')::integer,
    (line->>'options_with_greeks')::integer, (line->>'stalest_greek_age_s')::float8,
    CASE WHEN line->>'v' IN ('1', '2') THEN coalesce(line->'underlyings', '{}') END,
    arrays.underlying_symbols, arrays.underlying_figures, arrays.underlying_counts,
    line->'underlying_completeness', (line->>'gateway_beta_delta')::float8,
    (line->>'gateway_beta_delta_benchmark_shares')::float8
FROM bridge_staging CROSS JOIN LATERAL jsonb_to_record(line) AS arrays(
    underlying_symbols text[], underlying_figures float8[], underlying_counts integer[])
WHERE line->>'kind' = 'snapshot'
ON CONFLICT (account, ts) DO NOTHING
"""
)

# A scenario line's arrays (two of them of two dimensions) come from jsonb_to_record in one call;
# the grids as float4 (migration 010), the worst P&Ls as float8.
INSERT_SCENARIOS = """
INSERT INTO scenario_pnl (
    id, ts, account, mode, currency, grid, worst_pnl, worst_scenario, beta_grid, beta_worst_pnl,
    beta_worst_scenario, delta_gamma_10, completeness, underlying_symbols, underlying_grids,
    underlying_worst_pnl, underlying_worst_scenario, underlying_delta_gamma_10,
    underlying_completeness, worst_leg_conids, worst_leg_pnl, beta_worst_leg_conids,
    beta_worst_leg_pnl)
SELECT (line->>'id')::uuid, (line->>'ts')::timestamptz, line->>'account', line->>'mode',
    line->>'currency', arrays.grid, (line->>'worst_pnl')::float8,
    (line->>'worst_scenario')::smallint, arrays.beta_grid, (line->>'beta_worst_pnl')::float8,
    (line->>'beta_worst_scenario')::smallint, arrays.delta_gamma_10, line->'completeness',
    coalesce(arrays.underlying_symbols, '{}'), arrays.underlying_grids,
    arrays.underlying_worst_pnl, arrays.underlying_worst_scenario,
    arrays.underlying_delta_gamma_10, line->'underlying_completeness', arrays.worst_leg_conids,
    arrays.worst_leg_pnl, arrays.beta_worst_leg_conids, arrays.beta_worst_leg_pnl
FROM bridge_staging CROSS JOIN LATERAL jsonb_to_record(line) AS arrays(
    grid real[], beta_grid real[], delta_gamma_10 real[], underlying_symbols text[],
    underlying_grids real[], underlying_worst_pnl float8[], underlying_worst_scenario smallint[],
    underlying_delta_gamma_10 real[], worst_leg_conids bigint[], worst_leg_pnl float8[],
    beta_worst_leg_conids bigint[], beta_worst_leg_pnl float8[])
WHERE line->>'kind' = 'scenario'
ON CONFLICT (account, ts) DO NOTHING
"""

_INSERT_API_LOGS = """
INSERT INTO api_logs (id, ts, mode, level, event, code, message, details)
SELECT DISTINCT ON ((line->>'id')::uuid) (line->>'id')::uuid, (line->>'ts')::timestamptz,
    line->>'mode', line->>'level', line->>'event', (line->>'code')::integer, line->>'message',
    coalesce(line->'details', '{}')
FROM bridge_staging
WHERE line->>'kind' = 'api_log'
    -- An event re-emitted after a crash keeps its derived id but not its time: the key
    -- (id, ts) of a time-partitioned table would take it twice, the id alone does not.
    AND NOT EXISTS (SELECT FROM api_logs stored WHERE stored.id = (line->>'id')::uuid)
ORDER BY (line->>'id')::uuid, (line->>'ts')::timestamptz
ON CONFLICT (id, ts) DO NOTHING
"""

_INSERT_BETAS = """
INSERT INTO betas (id, ts, underlying, benchmark, beta, as_of, sample_size, source)
SELECT (line->>'id')::uuid, (line->>'ts')::timestamptz, line->>'underlying', line->>'benchmark',
    (line->>'beta')::float8, (line->>'as_of')::date, (line->>'sample_size')::integer,
    line->>'source'
FROM bridge_staging
WHERE line->>'kind' = 'beta'
ON CONFLICT (id) DO NOTHING
"""

# Greeks by expiry: the arrays go through jsonb_to_record like format 3's (migration 006).
_INSERT_EXPIRY = """
INSERT INTO expiry_greeks (
    account, ts, id, mode, currency, bucket_figures, linear_dollar_delta, position_count,
    option_count, completeness, underlying_symbols, underlying_figures, underlying_linear,
    underlying_counts, underlying_completeness)
SELECT line->>'account', (line->>'ts')::timestamptz, (line->>'id')::uuid, line->>'mode',
    line->>'currency', arrays.bucket_figures, (line->>'linear_dollar_delta')::float8,
    (line->>'position_count')::integer, (line->>'option_count')::integer, line->'completeness',
    arrays.underlying_symbols, arrays.underlying_figures, arrays.underlying_linear,
    arrays.underlying_counts, line->'underlying_completeness'
FROM bridge_staging CROSS JOIN LATERAL jsonb_to_record(line) AS arrays(
    bucket_figures float8[], underlying_symbols text[], underlying_figures float8[],
    underlying_linear float8[], underlying_counts integer[])
WHERE line->>'kind' = 'expiry'
ON CONFLICT (account, ts) DO NOTHING
"""

# One row per leg of each `legs` line (a leg is an array in records.LEG_FIELDS order). The
# count is of lines (an account at a time) that stored rows, like every other kind's.
_INSERT_LEGS = """
WITH stored AS (
    INSERT INTO position_legs (
        account, ts, mode, currency, conid, symbol, sec_type, quantity, multiplier, magnifier,
        price, underlying_price, implied_vol, strike, expiry, option_right, delta, gamma, theta,
        vega, dollar_delta, dollar_gamma, net_theta, net_vega, missing_reason)
    SELECT line->>'account', (line->>'ts')::timestamptz, line->>'mode', line->>'currency',
        (leg->>0)::bigint, leg->>1, leg->>2, (leg->>3)::float8, (leg->>4)::float8,
        (leg->>5)::float8, (leg->>6)::float8, (leg->>7)::float8, (leg->>8)::float8,
        (leg->>9)::float8, (leg->>10)::date, leg->>11, (leg->>12)::float8, (leg->>13)::float8,
        (leg->>14)::float8, (leg->>15)::float8, (leg->>16)::float8, (leg->>17)::float8,
        (leg->>18)::float8, (leg->>19)::float8, leg->>20
    FROM bridge_staging CROSS JOIN LATERAL jsonb_array_elements(line->'legs') AS leg
    WHERE line->>'kind' = 'legs'
    ON CONFLICT (account, ts, conid) DO NOTHING
    RETURNING account, ts)
SELECT count(DISTINCT (account, ts)) FROM stored
"""

# The explain: one row per account and interval, its per-underlying and per-position rows as
# the line carries them (JSON arrays of arrays, which jsonb_to_record reads into PostgreSQL
# arrays in one call, like a format-3 snapshot's: migrations 005 and 015). The positions' missing
# inputs and the reasons their own actual is unknown are stored only when a position has one
# (NULL: none has), as most intervals have.
INSERT_EXPLAINS = (
    _INTO_EXPLAINS
    + """
SELECT line->>'account', (line->>'ts')::timestamptz, (line->>'id')::uuid, line->>'mode',
    (line->>'start_ts')::timestamptz, line->>'currency', (line->>'actual_pnl')::float8,
    (line->>'explained_pnl')::float8, (line->>'delta_pnl')::float8,
    (line->>'gamma_pnl')::float8, (line->>'theta_pnl')::float8, (line->>'vega_pnl')::float8,
    (line->>'linear_pnl')::float8, arrays.marks, nullif(line->'missing', '{}'::jsonb),
    arrays.underlying_symbols, arrays.underlying_rows, arrays.position_conids,
    arrays.position_rows,
    CASE WHEN cardinality(array_remove(arrays.position_missing, NULL)) > 0
         THEN arrays.position_missing END,
    CASE WHEN cardinality(array_remove(arrays.position_actual_missing, NULL)) > 0
         THEN arrays.position_actual_missing END
FROM bridge_staging CROSS JOIN LATERAL jsonb_to_record(line) AS arrays(
    marks text[], underlying_symbols text[], underlying_rows float8[], position_conids bigint[],
    position_rows float8[], position_missing text[], position_actual_missing text[])
WHERE line->>'kind' = 'pnl_explain'
ON CONFLICT DO NOTHING
"""
)

# The explain through the json staging, as INSERT_EXPLAINS reads it from jsonb.
JSON_INSERT_EXPLAINS = (
    _INTO_EXPLAINS
    + """
SELECT r.account, r.ts, r.id, r.mode, r.start_ts, r.currency, r.actual_pnl, r.explained_pnl,
    r.delta_pnl, r.gamma_pnl, r.theta_pnl, r.vega_pnl, r.linear_pnl, r.marks,
    nullif(r.missing, '{}'::jsonb), r.underlying_symbols, r.underlying_rows, r.position_conids,
    r.position_rows,
    CASE WHEN cardinality(array_remove(r.position_missing, NULL)) > 0 THEN r.position_missing END,
    CASE WHEN cardinality(array_remove(r.position_actual_missing, NULL)) > 0
         THEN r.position_actual_missing END
FROM bridge_json_staging CROSS JOIN LATERAL json_to_record(line) AS r(
    account text, ts timestamptz, id uuid, mode text, start_ts timestamptz, currency text,
    actual_pnl float8, explained_pnl float8, delta_pnl float8, gamma_pnl float8, theta_pnl float8,
    vega_pnl float8, linear_pnl float8, marks text[], missing jsonb, underlying_symbols text[],
    underlying_rows float8[], position_conids bigint[], position_rows float8[],
    position_missing text[], position_actual_missing text[])
WHERE kind = 'pnl_explain'
ON CONFLICT DO NOTHING
"""
)

# A line's version and kind as records.encode writes them, first: each kind's statement is a
# round trip and a scan of the whole staging table, so one a batch cannot hold is not run
# (for batches of 160 snapshot lines of 10 underlyings the statements that found nothing took
# the INSERTs from 25 to 34 µs of wall a line, 59 to 97 on a busier machine:
# bench/typed_staging.py). PostgreSQL reads the last of a key written twice: a line whose kind
# is not read so (another writer, a second key "kind", one spelled with a \u escape) may hold
# any kind, and every statement runs.
_KIND = re.compile(rb'\{"v":([0-9]+),"kind":"([a-z_]+)"[,}]')
_KIND_KEY = b'"kind"'
_ESCAPE = b"\\u"
# What json and jsonb would read differently, sent to jsonb: a number written as a negative zero
# (jsonb's numeric has no signed zero and stores +0; json stores -0), and a JSON null for a
# jsonb column (jsonb keeps the JSON null, json_to_record gives SQL NULL). A match in an
# exponent (`1e-0,`) or a string only sends a line the other way, to be stored the same.
_NEGATIVE_ZERO = re.compile(rb"-0(?:\.0*)?(?:[eE][+-]?[0-9]+)?[,\]}]")
_JSONB_NULLS = (b'completeness":null', b'"missing":null')

# Each kind's statements, in the order the transaction runs them: the jsonb staging's, and the
# json staging's for the kinds it takes. Each counts the lines that stored rows: a rowcount, or
# for the legs (a row per leg) the count of lines the statement returns.
_STATEMENTS = (
    ("snapshot", INSERT_SNAPSHOTS),
    ("api_log", _INSERT_API_LOGS),
    ("beta", _INSERT_BETAS),
    ("expiry", _INSERT_EXPIRY),
    ("legs", _INSERT_LEGS),
    ("scenario", INSERT_SCENARIOS),
    ("pnl_explain", INSERT_EXPLAINS),
)
_JSON_STATEMENTS = {"snapshot": JSON_INSERT_SNAPSHOTS, "pnl_explain": JSON_INSERT_EXPLAINS}


def _certain_kind(line: bytes) -> tuple[bytes, bytes] | None:
    """The line's version and kind where records.encode writes them, when they can be read for
    certain (see _KIND), else None: the line may hold any kind."""
    found = _KIND.match(line)
    if found is None or line.count(_KIND_KEY) != 1 or _ESCAPE in line:
        return None
    return found[1], found[2]


def json_kind(line: bytes) -> str | None:
    """The kind of a line the json staging takes, or None: the line goes as jsonb. Only a
    format-3 line of a kind with a json statement, its kind read for certain, and nothing in it
    that json and jsonb read differently (the module's docstring)."""
    return _json_kind(line, _certain_kind(line))


def _json_kind(line: bytes, certain: tuple[bytes, bytes] | None) -> str | None:
    if certain is None or certain[0] != b"3":
        return None
    kind = certain[1].decode()
    if (
        kind not in _JSON_STATEMENTS
        or any(null in line for null in _JSONB_NULLS)
        or (b"-0" in line and _NEGATIVE_ZERO.search(line))
    ):
        return None
    return kind


class _Routed:
    """A batch's lines by staging, and the kinds each staging may hold."""

    def __init__(self, lines: Sequence[bytes]) -> None:
        self.as_json: list[tuple[str, bytes]] = []
        self.as_jsonb: list[bytes] = []
        self._json_kinds: set[str] = set()
        self._jsonb_kinds: set[bytes] = set()
        self._jsonb_any = False
        for line in lines:
            certain = _certain_kind(line)
            kind = _json_kind(line, certain)
            if kind is not None:
                self.as_json.append((kind, line))
                self._json_kinds.add(kind)
            else:
                self.as_jsonb.append(line)
                if certain is None:
                    self._jsonb_any = True
                else:
                    self._jsonb_kinds.add(certain[1])

    def statements(self) -> Iterator[str]:
        """The statements the batch needs, in _STATEMENTS' order: each kind's jsonb statement
        when the jsonb staging may hold that kind, then its json one when the json staging
        does."""
        for kind, statement in _STATEMENTS:
            if self._jsonb_any or kind.encode() in self._jsonb_kinds:
                yield statement
            if kind in self._json_kinds:
                yield _JSON_STATEMENTS[kind]


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
_JSONB_VERSION = b"\x01"
# A serialization failure or deadlock is a race, not an outage: retry this many times.
_CONFLICT_RETRIES = 3


def copy_payload(lines: Sequence[bytes]) -> bytes:
    """The binary COPY stream of one jsonb column holding each line (its newline dropped)."""
    parts = [_COPY_HEADER]
    for line in lines:
        body = line.removesuffix(b"\n")
        parts.append(struct.pack("!hi", 1, len(body) + 1))
        parts.append(_JSONB_VERSION)
        parts.append(body)
    parts.append(_COPY_TRAILER)
    return b"".join(parts)


def json_copy_payload(lines: Sequence[tuple[str, bytes]]) -> bytes:
    """The binary COPY stream of the json staging's (kind, line) rows: binary text and json are
    the text itself (newlines dropped)."""
    parts = [_COPY_HEADER]
    for kind, line in lines:
        body = line.removesuffix(b"\n")
        name = kind.encode()
        parts.append(struct.pack("!hi", 2, len(name)))
        parts.append(name)
        parts.append(struct.pack("!i", len(body)))
        parts.append(body)
    parts.append(_COPY_TRAILER)
    return b"".join(parts)


@dataclass
class StoreResult:
    stored: int = 0
    duplicates: int = 0
    rejected: list[tuple[bytes, str]] = field(default_factory=list)
    # Lines the server failed while answering, through no fault of theirs (conflicts past their
    # retries): not stored now, for the caller to keep and retry later.
    unstored: list[tuple[bytes, str]] = field(default_factory=list)
    splits: int = 0  # batches split in halves because the server refused them whole


class RecordSink:
    """Stores lines over one `Session` (database/session.py): opened lazily, prepared with the
    schema and the staging table, each statement answered within `reply_timeout_s`, dropped
    when it breaks, its outages counted against `breaker` (the store's, shared by its sinks)."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Connection]],
        *,
        reply_timeout_s: float | None = None,
        breaker: DBCircuitBreaker | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = Session(
            connect,
            reply_timeout_s=reply_timeout_s,
            prepare=_prepare,
            breaker=breaker,
            monotonic=monotonic,
        )

    async def store(self, lines: Sequence[bytes]) -> StoreResult:
        """Store every line once; raises DatabaseUnavailable (or SchemaError) for the caller."""
        result = StoreResult()
        if lines:
            await self._store_or_split(list(lines), result)
        return result

    async def _store_or_split(self, lines: list[bytes], result: StoreResult) -> None:
        try:
            stored = await self._store_batch(lines)
        except (RecordRejected, BatchTooLarge, TransientConflict) as refused:
            if len(lines) == 1:
                reason = f"{refused.sqlstate}: {refused}"
                if isinstance(refused, TransientConflict):  # a race, not the record's fault
                    result.unstored.append((lines[0], reason))
                else:
                    result.rejected.append((lines[0], reason))
                return
            result.splits += 1
            middle = len(lines) // 2
            await self._store_or_split(lines[:middle], result)
            await self._store_or_split(lines[middle:], result)
            return
        result.stored += stored
        result.duplicates += len(lines) - stored

    async def _store_batch(self, lines: list[bytes]) -> int:
        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                return await self._session.run(
                    lambda conn: self._transaction(conn, lines), bounded=False
                )
            except TransientConflict:
                if attempt == _CONFLICT_RETRIES:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _transaction(self, conn: Connection, lines: list[bytes]) -> int:
        # Statement by statement (the connection is in autocommit), so that each one is bounded
        # by the reply timeout, the commit included.
        routed = _Routed(lines)
        answered = self._session.answered
        await answered(conn, conn.execute("BEGIN"))
        try:
            if routed.as_jsonb:
                await answered(conn, _copy(conn, COPY_JSONB, copy_payload(routed.as_jsonb)))
            if routed.as_json:
                await answered(conn, _copy(conn, COPY_JSON, json_copy_payload(routed.as_json)))
            stored = 0
            for statement in routed.statements():
                cursor = await answered(conn, conn.execute(statement))
                stored += await self._lines_stored(conn, cursor)
            await answered(conn, conn.execute("COMMIT"))
        except psycopg.Error:
            if not (conn.broken or conn.closed):
                await answered(conn, conn.execute("ROLLBACK"))
            raise
        return stored

    async def _lines_stored(self, conn: Connection, cursor: psycopg.AsyncCursor[TupleRow]) -> int:
        """The lines a statement stored: its rowcount, or the count it returns (the legs')."""
        if cursor.description is None:
            return cursor.rowcount
        row = await self._session.answered(conn, cursor.fetchone())
        return int(row[0]) if row is not None else 0

    @property
    def connected(self) -> bool:
        return self._session.connected

    def allows(self) -> bool:
        """May the database be tried now? False while the session's breaker is open."""
        return self._session.allows()

    async def connect(self) -> None:
        """Connect and bootstrap the schema now (processes do this at start)."""
        await self._session.connect()

    async def close(self) -> None:
        await self._session.close()


async def _prepare(conn: Connection) -> None:
    await bootstrap(conn)
    await conn.execute(STAGING)
    await conn.execute(JSON_STAGING)
    await conn.commit()


COPY_JSONB = "COPY bridge_staging (line) FROM STDIN (FORMAT BINARY)"
COPY_JSON = "COPY bridge_json_staging (kind, line) FROM STDIN (FORMAT BINARY)"


async def _copy(conn: Connection, statement: str, payload: bytes) -> None:
    async with conn.cursor().copy(statement) as copy:
        await copy.write(payload)


__all__ = [
    "COPY_JSON",
    "COPY_JSONB",
    "DatabaseError",
    "RecordSink",
    "StoreResult",
    "copy_payload",
    "json_copy_payload",
    "json_kind",
]
