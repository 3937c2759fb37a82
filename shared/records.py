"""The record kinds that travel through the spool, and their one-line JSON form.

A record is one JSON object per line. Its keys are exactly the columns of its table (plus
`v`, the format version, and `kind`), so PostgreSQL reads the line itself and the replayer never
re-parses JSON in Python.

- `snapshot` -> table `portfolio_greeks`: the figures of one account at one 5-s tick.
- `api_log`  -> table `api_logs`: one event of the IBKR connection.
- `beta`     -> table `betas`: one underlying's beta against the benchmark, once a day.
- `expiry`   -> table `expiry_greeks`: one account's Greeks by expiry bucket at one tick,
  overall and per underlying, as arrays (migration 006; docs/expiry-and-legs.md).
- `legs`     -> table `position_legs`: one account's positions at one time, each its inputs and
  results, one row each (a leg travels as an array in `LEG_FIELDS` order).
- `pnl_explain` -> table `pnl_explain` (migration 007): how much of the gateway's own P&L change
  over one interval between two snapshots the Greeks explain, per account, per underlying and
  per position (parallel arrays, like format 3's, stored as arrays of the row since migration
  013 and read a position a row through the view `pnl_explain_positions`; docs/pnl-explain.md).
- `scenario` -> table `scenario_pnl`: one account's scenario P&L grids (docs/scenarios.md),
  from format 3 on; its underlyings travel as parallel arrays like a format-3 snapshot's.

Format 2 (written since migration 002) carries money in the account's base currency
(`currency`), dollar gamma, beta-weighted delta, completeness per figure and the account's
value; its account level has no `net_delta`/`net_gamma` (share-equivalents of unlike underlyings
do not add up; they stay inside `underlyings`). Format 3 (migration 005) says the same in a line
whose cost stays flat per underlying: a figure's completeness is written only when it is not the
complete one (`complete_counts`), an unknown account figure is left out rather than written
null, and the underlyings travel as three parallel arrays (`underlying_symbols`,
`underlying_figures` in `UNDERLYING_FIGURES` order, `underlying_counts` in `UNDERLYING_COUNTS`
order) that PostgreSQL stores as arrays, plus `underlying_completeness` for the incomplete ones.
Since migration 009 a figure's completeness may also say `rounding_bound`, `imprecise` and
`market_data` (written, like any incomplete figure's, only where they apply; since issue 17's
recomputed Greeks also `recomputed` and `model_disagrees`, counts of positions), and a PORTAL line
carries `gateway_beta_delta` when the gateway gave it: a SOCKET line is no longer than before.
Since migration 013 a PORTAL line may also carry `gateway_beta_delta_benchmark_shares`, the
gateway's figure in shares of our benchmark, when SPX's price is known.
In memory every format is the same `Snapshot`, completeness and underlyings in full. Format 1
and 2 lines (older spools and buffers) are still read and stored as they are;
docs/ibkr-conventions.md says what format 1's figures meant.

Unknown is null, never 0: a Greek that no option reported is `None` here and NULL there.
Validation is pure (no I/O, no clock) so the writer can quarantine a bad line and go on.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import chain
from typing import Any, ClassVar, Final, Literal

import orjson

from shared.errors import RecordError

FORMAT_VERSION: Final = 3
READABLE_VERSIONS: Final = (1, 2, 3)
MODES: Final = ("SOCKET", "PORTAL")
LEVELS: Final = ("debug", "info", "warning", "error", "critical")

# uuid5 namespace for snapshot ids: the same account and tick always give the same id, so one
# tick can never become two rows, whoever delivers it and however often.
SNAPSHOT_NAMESPACE: Final = uuid.UUID("6f1c3a52-8f0e-4c0e-9a59-2a1d7c5f0b10")
# uuid5 namespace for events that report a fact (a gap: its first and last missing tick): the
# same fact re-emitted, by a collector restarted after a crash, is stored once.
EVENT_NAMESPACE: Final = uuid.UUID("57a9049e-a5e6-4ad8-8426-017dcf61da76")

Mode = Literal["SOCKET", "PORTAL"]
Level = Literal["debug", "info", "warning", "error", "critical"]
_FIGURE_TYPES: Final = frozenset({float, int, type(None)})
# One figure's completeness: {"contributing": n, "missing": n, "reasons": {reason: n}}.
Counts = dict[str, Any]

GREEK_FIELDS: Final = ("net_delta", "net_gamma", "net_theta", "net_vega", "net_dollar_delta")
# Format 2's figures, at account level and inside every underlying.
FIGURES: Final = (
    "net_dollar_delta",
    "net_dollar_gamma",
    "net_theta",
    "net_vega",
    "net_beta_delta",
)
ACCOUNT_VALUES: Final = ("net_liquidation", "unrealized_pnl", "daily_pnl")
# The gateway's own figures, kept beside ours to compare (migration 009): written only when
# known, so a line without them is any older line.
GATEWAY_FIGURES: Final = ("gateway_beta_delta", "gateway_beta_delta_benchmark_shares")
# Format 3's per-underlying arrays: the figures (money, then share-equivalents), the counts.
UNDERLYING_FIGURES: Final = (*FIGURES, "net_delta", "net_gamma")
UNDERLYING_COUNTS: Final = ("position_count", "option_count", "options_with_greeks")
# What the bridge states of a snapshot's figure (`kept`; docs/scaling.md, "Lean snapshots"):
# money to the cent (from $10M up, to 9 significant digits: within $0.05), share
# equivalents (net_delta, net_gamma, beta-weighted delta) to 9 significant digits. A double's 17
# digits are twice what the gateway's inputs carry, a third of the line, and most of what
# PostgreSQL spends parsing it.
SIGNIFICANT_DIGITS: Final = 9
_CENTS: Final = 2
SHARE_EQUIVALENTS: Final = frozenset(
    {
        "net_beta_delta",
        "net_delta",
        "net_gamma",
        "gateway_beta_delta",
        "gateway_beta_delta_benchmark_shares",
    }
)
# The figures every position counts in (a linear one included); the other three count options
# (and positions of unsupported types, which are missing from all five).
_COUNTED_BY_POSITION: Final = frozenset({"net_dollar_delta", "net_beta_delta", "net_delta"})
# An underlying's completeness also covers its share-equivalents (format 3 on).
UNDERLYING_COMPLETENESS: Final = (*FIGURES, "net_delta", "net_gamma")
BETA_SOURCES: Final = ("history", "file")
# Greeks by expiry (`expiry` records): the buckets in calendar days to expiry, the figures of
# each bucket (rows of `bucket_figures`, in this order).
EXPIRY_BUCKETS: Final = ("0-7", "8-30", "31-90", "91-365", "366+")
EXPIRY_FIGURES: Final = ("net_dollar_delta", "net_dollar_gamma", "net_theta", "net_vega")
# A leg's values in the order a `legs` line writes them (the columns of `position_legs`).
LEG_FIELDS: Final = (
    "conid", "symbol", "sec_type", "quantity", "multiplier", "magnifier", "price",
    "underlying_price", "implied_vol", "strike", "expiry", "option_right", "delta", "gamma",
    "theta", "vega", "dollar_delta", "dollar_gamma", "net_theta", "net_vega", "missing_reason",
)  # fmt: skip
_LEG_NUMBERS: Final = frozenset(LEG_FIELDS[3:10] + LEG_FIELDS[12:20])
# The P&L explain's terms, in the order of its per-underlying and per-position rows (each row
# ends with their sum, the explained P&L), and why an interval is left out of the score.
EXPLAIN_TERMS: Final = ("delta_pnl", "gamma_pnl", "theta_pnl", "vega_pnl", "linear_pnl")
EXPLAIN_ROW: Final = (*EXPLAIN_TERMS, "explained_pnl")
# A position's row adds the gateway's own P&L change of the position (SOCKET reqPnLSingle).
EXPLAIN_POSITION_ROW: Final = (*EXPLAIN_ROW, "actual_pnl")
# Why a position's own P&L change, which the gateway gave, is not its actual (a row's
# `position_actual_missing`, migration 014): IBKR does not state the currency of
# reqPnLSingle's values, so a position in another currency than the base has none; the base
# currency or the position's unknown. docs/pnl-explain.md, "Actual".
EXPLAIN_ACTUAL_UNKNOWN: Final = ("pnl_currency_unstated", "no_fx_rate")
EXPLAIN_MARKS: Final = ("positions_changed", "pnl_rolled_over", "input_missing")
# uuid5 namespace for explain ids: one per account and interval end, like snapshots'.
EXPLAIN_NAMESPACE: Final = uuid.UUID("c3b1f6a4-2d7e-4f0a-9e55-7a16d0e4b816")
# uuid5 namespace for beta ids: one row per underlying, benchmark and day.
BETA_NAMESPACE: Final = uuid.UUID("0b7e6c1d-3f55-4f7e-8d0a-5c1f2e9a4b21")
# uuid5 namespace for scenario ids: one row per account and tick, like snapshots.
SCENARIO_NAMESPACE: Final = uuid.UUID("3d0f7b6e-2c41-4a8e-b5d3-9e7a1c6f4b80")
# A scenario grid: 10 moves x 3 vol shifts x (now, a day later) = 60 P&Ls (docs/scenarios.md).
SCENARIO_GRID_SIZE: Final = 60
# The delta-gamma approximation beside the grid: at a 10 % fall and a 10 % rise.
DELTA_GAMMA_SIZE: Final = 2
# The legs of a worst scenario add up to its P&L within this share of Σ |leg P&L|: floats summed
# in another order differ by a few units in the last place per leg, far below it.
WORST_LEGS_ROUNDING: Final = 1e-9
# The figures whose completeness a scenario record carries.
SCENARIO_FIGURES: Final = ("grid", "beta_grid", "delta_gamma")


def kept(name: str, value: float | None) -> float | None:
    """Figure `name` as a snapshot states it: money to the cent (to 9 significant digits from
    $10M up), share-equivalents to 9 significant digits; None stays None. Zero is +0.0: a
    negative zero (-$0.001 to the cent) says nothing more, and the writer sends a line holding
    one the slower way (database/sink.py)."""
    if value is None or not math.isfinite(value):
        return value
    if value == 0:
        return 0.0
    # + 0.0 turns -0.0 into 0.0, and nothing else
    return float(round(value, stated_decimals(name, value))) + 0.0


def stated_decimals(name: str, value: float) -> int:
    """The decimals `kept` states figure `name` to at `value` (finite, not 0): 9 significant
    digits, at most the cent's 2 for money; below 0 for a figure of 10 digits or more."""
    digits = SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(value)))
    return digits if name in SHARE_EQUIVALENTS else min(digits, _CENTS)


def snapshot_id(account: str, tick_ts: datetime) -> uuid.UUID:
    """The id of an account's snapshot at one tick: derived, never random."""
    return uuid.uuid5(SNAPSHOT_NAMESPACE, f"{account}|{_iso(tick_ts)}")


def event_id(event: str, *facts: str) -> uuid.UUID:
    """The id of an event derived from what it reports, for events that report a fact."""
    return uuid.uuid5(EVENT_NAMESPACE, "|".join((event, *facts)))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The figures of one account at one tick (`ts`, UTC), as stored in `portfolio_greeks`.

    `version` 1 records (read from old spools) have no currency, dollar gamma, beta delta,
    completeness or account values; version 2 records have no account-level net_delta or
    net_gamma (always None)."""

    id: uuid.UUID
    ts: datetime
    account: str
    mode: Mode
    net_delta: float | None
    net_gamma: float | None
    net_theta: float | None
    net_vega: float | None
    net_dollar_delta: float | None
    position_count: int
    option_count: int
    options_with_greeks: int
    stalest_greek_age_s: float | None
    underlyings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    version: int = FORMAT_VERSION
    currency: str | None = None
    net_dollar_gamma: float | None = None
    net_beta_delta: float | None = None
    completeness: Mapping[str, Any] | None = None
    net_liquidation: float | None = None
    unrealized_pnl: float | None = None
    daily_pnl: float | None = None
    # PORTAL: Σ field 7696 ("SPX Delta") x qty x multiplier over the positions in
    # net_beta_delta, in SPX units (docs/ibkr-conventions.md); None when not every one had it.
    gateway_beta_delta: float | None = None
    # The same in shares of our benchmark, ours' unit (x SPX's price / the benchmark's, both in
    # the base currency: migration 013); None when SPX's price or a rate is unknown.
    gateway_beta_delta_benchmark_shares: float | None = None

    kind: ClassVar[Literal["snapshot"]] = "snapshot"


@dataclass(frozen=True, slots=True)
class Beta:
    """One underlying's beta against the benchmark as of a day, as stored in `betas`.

    `source` "history": the OLS slope over `sample_size` daily returns served by the gateway;
    "file": set by BRIDGE_BETAS_FILE (no sample)."""

    id: uuid.UUID
    ts: datetime  # when it was computed
    underlying: str
    benchmark: str
    beta: float
    as_of: date
    sample_size: int | None
    source: Literal["history", "file"]

    kind: ClassVar[Literal["beta"]] = "beta"


def beta_id(underlying: str, benchmark: str, as_of: date) -> uuid.UUID:
    """One beta per underlying, benchmark and day, however often it is recomputed."""
    return uuid.uuid5(BETA_NAMESPACE, f"{underlying}|{benchmark}|{as_of.isoformat()}")


@dataclass(frozen=True, slots=True)
class ApiLog:
    """One event of the IBKR connection, as stored in `api_logs`."""

    id: uuid.UUID
    ts: datetime
    mode: Mode
    level: Level
    event: str
    code: int | None
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    kind: ClassVar[Literal["api_log"]] = "api_log"


@dataclass(frozen=True, slots=True)
class ExpiryScope:
    """The Greeks by expiry of one account or one underlying: `buckets[b][f]` is figure
    EXPIRY_FIGURES[f] of bucket EXPIRY_BUCKETS[b] (None: nothing contributed), the delta-one
    positions' dollar delta beside them, and each figure's completeness in full."""

    buckets: tuple[tuple[float | None, ...], ...]
    linear_dollar_delta: float | None
    position_count: int
    option_count: int
    completeness: Mapping[str, Counts]


@dataclass(frozen=True, slots=True)
class ExpiryGreeks:
    """One account's Greeks by expiry at one tick, as stored in `expiry_greeks`; its id is the
    snapshot's of the same account and tick."""

    id: uuid.UUID
    ts: datetime
    account: str
    mode: Mode
    currency: str | None
    total: ExpiryScope
    underlyings: Mapping[str, ExpiryScope] = field(default_factory=dict)

    kind: ClassVar[Literal["expiry"]] = "expiry"


@dataclass(frozen=True, slots=True)
class Leg:
    """One position's inputs (as the gateway gave them) and results (what it adds to each
    figure, in the base currency), as a row of `position_legs`; None: unknown or n/a."""

    conid: int
    symbol: str
    sec_type: str
    quantity: float | None
    multiplier: float | None
    magnifier: float | None
    price: float | None
    underlying_price: float | None
    implied_vol: float | None
    strike: float | None
    expiry: date | None
    option_right: Literal["C", "P"] | None
    delta: float | None
    gamma: float | None
    theta: float | None
    vega: float | None
    dollar_delta: float | None
    dollar_gamma: float | None
    net_theta: float | None
    net_vega: float | None
    missing_reason: str | None


@dataclass(frozen=True, slots=True)
class Legs:
    """One account's legs at one time; its id is the snapshot's of the same account and tick.
    `currency` is the account's base currency (the results' unit)."""

    id: uuid.UUID
    ts: datetime
    account: str
    mode: Mode
    currency: str | None
    legs: tuple[Leg, ...]

    kind: ClassVar[Literal["legs"]] = "legs"


def scenario_id(account: str, tick_ts: datetime) -> uuid.UUID:
    """One scenario row per account and tick."""
    return uuid.uuid5(SCENARIO_NAMESPACE, f"{account}|{_iso(tick_ts)}")


@dataclass(frozen=True, slots=True)
class UnderlyingScenario:
    """One underlying's scenario figures inside a `Scenario` (its own moves only)."""

    grid: tuple[float, ...] | None  # None: nothing contributed
    delta_gamma_10: tuple[float, ...] | None
    # grid, delta_gamma; empty when every position contributed to both (the line names only
    # the incomplete underlyings)
    completeness: Mapping[str, Counts]

    @property
    def worst(self) -> tuple[float, int] | None:
        return worst_of(self.grid)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One account's scenario P&L at one tick, in its base currency, as stored in
    `scenario_pnl`: each grid is SCENARIO_GRID_SIZE P&Ls (None: nothing contributed)."""

    id: uuid.UUID
    ts: datetime
    account: str
    mode: Mode
    currency: str | None
    grid: tuple[float, ...] | None
    beta_grid: tuple[float, ...] | None
    delta_gamma_10: tuple[float, ...] | None
    completeness: Mapping[str, Counts]  # grid, beta_grid, delta_gamma
    underlyings: Mapping[str, UnderlyingScenario] = field(default_factory=dict)
    # Each contributing position's P&L at the grid's worst scenario (`worst`), as (conid, P&L):
    # they add up to the worst P&L. None: not computed (a line from before) or no grid.
    worst_legs: tuple[tuple[int, float], ...] | None = None
    beta_worst_legs: tuple[tuple[int, float], ...] | None = None  # at beta_grid's worst

    kind: ClassVar[Literal["scenario"]] = "scenario"

    @property
    def worst(self) -> tuple[float, int] | None:
        """The grid's lowest P&L (a loss when negative) and its index."""
        return worst_of(self.grid)

    @property
    def beta_worst(self) -> tuple[float, int] | None:
        return worst_of(self.beta_grid)


def worst_of(grid: tuple[float, ...] | None) -> tuple[float, int] | None:
    """The lowest value of a grid and its index (the first, if tied); None for no grid."""
    if grid is None:
        return None
    index = min(range(len(grid)), key=grid.__getitem__)
    return grid[index], index


@dataclass(frozen=True, slots=True)
class PnlExplain:
    """The P&L explain of one account over the interval from `start_ts` to `ts` (two
    consecutive snapshots), in the base currency `currency`.

    `actual_pnl`: the change of the gateway's daily P&L; `explained_pnl`: the sum of every
    position's terms, None when any position's input is missing (`missing`: reason -> count).
    `marks` (from EXPLAIN_MARKS): why the interval is left out of the score; empty: scored, and
    then both sums are known. Rows of `underlying_rows` are EXPLAIN_ROW, of `position_rows`
    EXPLAIN_POSITION_ROW."""

    id: uuid.UUID
    ts: datetime
    account: str
    mode: Mode
    start_ts: datetime
    currency: str | None
    actual_pnl: float | None
    explained_pnl: float | None
    terms: Mapping[str, float | None]  # EXPLAIN_TERMS -> the account's sum
    marks: tuple[str, ...]
    missing: Mapping[str, int]
    underlying_symbols: tuple[str, ...]
    underlying_rows: tuple[tuple[float | None, ...], ...]
    position_conids: tuple[int, ...]
    position_rows: tuple[tuple[float | None, ...], ...]
    position_missing: tuple[str | None, ...]  # each position's missing input, or None
    # Each position's reason from EXPLAIN_ACTUAL_UNKNOWN, or None; empty: none had one (a line
    # written before migration 014, or one whose every position's actual was known or not given)
    position_actual_missing: tuple[str | None, ...] = ()

    kind: ClassVar[Literal["pnl_explain"]] = "pnl_explain"


def explain_id(account: str, ts: datetime) -> uuid.UUID:
    """One explain per account and interval end, however often it is delivered."""
    return uuid.uuid5(EXPLAIN_NAMESPACE, f"{account}|{_iso(ts)}")


Record = Snapshot | ApiLog | Beta | ExpiryGreeks | Legs | Scenario | PnlExplain


def new_api_log(
    *,
    ts: datetime,
    mode: Mode,
    level: Level,
    event: str,
    message: str,
    code: int | None = None,
    details: Mapping[str, Any] | None = None,
    derived_id: uuid.UUID | None = None,
) -> ApiLog:
    """An api_log record with a fresh random id (most events, unlike ticks, have no natural
    key), or `derived_id` (see `event_id`) for one that reports a fact."""
    return ApiLog(
        derived_id or uuid.uuid4(), ts, mode, level, event, code, message, dict(details or {})
    )


def _iso(ts: datetime) -> str:
    if ts.tzinfo is None:
        raise RecordError("timestamp without a time zone")
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def encode(record: Record) -> bytes:
    """One JSON line, newline included. Raises RecordError for values JSON cannot carry."""
    version = record.version if isinstance(record, Snapshot) else FORMAT_VERSION
    body: dict[str, Any] = {"v": version, "kind": record.kind, "id": str(record.id)}
    body["ts"] = _iso(record.ts)
    if isinstance(record, Snapshot):
        body.update(_snapshot_body(record))
    elif isinstance(record, ExpiryGreeks):
        body.update(_expiry_body(record))
    elif isinstance(record, Scenario):
        body.update(_scenario_body(record))
    elif isinstance(record, Legs):
        body.update(account=record.account, mode=record.mode, currency=record.currency)
        body["legs"] = [
            [
                value.isoformat() if isinstance(value, date) else value
                for value in (getattr(leg, name) for name in LEG_FIELDS)
            ]
            for leg in record.legs
        ]
    elif isinstance(record, PnlExplain):
        body.update(_explain_body(record))
    elif isinstance(record, Beta):
        body.update(
            underlying=record.underlying,
            benchmark=record.benchmark,
            beta=record.beta,
            as_of=record.as_of.isoformat(),
            sample_size=record.sample_size,
            source=record.source,
        )
    else:
        body.update(
            mode=record.mode,
            level=record.level,
            event=record.event,
            code=record.code,
            message=record.message,
            details=record.details,
        )
    try:
        text = json.dumps(body, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, TypeError) as exc:
        raise RecordError(f"not encodable as JSON: {exc}") from None
    _check_text(text)
    return text.encode("utf-8") + b"\n"


def _scenario_body(record: Scenario) -> dict[str, Any]:
    """The line: grids as arrays, worst P&Ls beside them (the alerter and the dashboard query
    them), the underlyings as parallel arrays (an underlying without a grid: a row of nulls,
    since a PostgreSQL array is rectangular); completeness per underlying only where some
    position is missing."""
    worst, beta_worst = record.worst, record.beta_worst
    symbols = sorted(record.underlyings)
    rows = [record.underlyings[symbol] for symbol in symbols]
    incomplete = {
        symbol: dict(row.completeness)
        for symbol, row in zip(symbols, rows, strict=True)
        if any(counts.get("missing") for counts in row.completeness.values())
    }
    return {
        "account": record.account,
        "mode": record.mode,
        "currency": record.currency,
        "grid": _grid(record.grid),
        "worst_pnl": worst[0] if worst else None,
        "worst_scenario": worst[1] if worst else None,
        "beta_grid": _grid(record.beta_grid),
        "beta_worst_pnl": beta_worst[0] if beta_worst else None,
        "beta_worst_scenario": beta_worst[1] if beta_worst else None,
        "delta_gamma_10": _grid(record.delta_gamma_10),
        "completeness": {name: dict(counts) for name, counts in record.completeness.items()},
        "underlying_symbols": symbols,
        "underlying_grids": [_row(row.grid, SCENARIO_GRID_SIZE) for row in rows],
        "underlying_worst_pnl": [row.worst[0] if row.worst else None for row in rows],
        "underlying_worst_scenario": [row.worst[1] if row.worst else None for row in rows],
        "underlying_delta_gamma_10": [_row(row.delta_gamma_10, DELTA_GAMMA_SIZE) for row in rows],
        "underlying_completeness": incomplete or None,
        **_legs_body("", record.worst_legs),
        **_legs_body("beta_", record.beta_worst_legs),
    }


def _legs_body(prefix: str, legs: tuple[tuple[int, float], ...] | None) -> dict[str, Any]:
    """The worst scenario's legs as two parallel arrays (conids, P&Ls); absent when unknown."""
    if legs is None:
        return {}
    return {
        f"{prefix}worst_leg_conids": [conid for conid, _ in legs],
        f"{prefix}worst_leg_pnl": [pnl for _, pnl in legs],
    }


def _grid(values: tuple[float, ...] | None) -> list[float] | None:
    return None if values is None else list(values)


def _row(values: tuple[float, ...] | None, size: int) -> list[float | None]:
    return [None] * size if values is None else list(values)


def _explain_body(record: PnlExplain) -> dict[str, Any]:
    _check_explain(record)
    return {
        "account": record.account,
        "mode": record.mode,
        "start_ts": _iso(record.start_ts),
        "currency": record.currency,
        "actual_pnl": record.actual_pnl,
        "explained_pnl": record.explained_pnl,
        **{name: record.terms.get(name) for name in EXPLAIN_TERMS},
        "marks": list(record.marks),
        "missing": dict(record.missing),
        "underlying_symbols": list(record.underlying_symbols),
        "underlying_rows": [list(row) for row in record.underlying_rows],
        "position_conids": list(record.position_conids),
        "position_rows": [list(row) for row in record.position_rows],
        "position_missing": list(record.position_missing),
        # Written only when a position has a reason, so other lines are as before.
        **(
            {"position_actual_missing": list(record.position_actual_missing)}
            if any(record.position_actual_missing)
            else {}
        ),
    }


def expanded(record: Snapshot) -> dict[str, Any]:
    """A snapshot as one JSON-ready mapping, its completeness and underlyings written out in
    full whatever its format (as format 2 wrote them): for those who read a record rather than
    store it."""
    body: dict[str, Any] = {"v": record.version, "kind": record.kind, "id": str(record.id)}
    body["ts"] = _iso(record.ts)
    body.update(_full_body(record))
    return body


def _snapshot_body(record: Snapshot) -> dict[str, Any]:
    if record.version not in READABLE_VERSIONS:
        raise RecordError(f"unsupported format version {record.version!r}")
    if record.version == 3:
        return _compact_body(record)
    return _full_body(record)


def _full_body(record: Snapshot) -> dict[str, Any]:
    body: dict[str, Any] = {"account": record.account, "mode": record.mode}
    if record.version == 1:
        body.update(net_delta=record.net_delta, net_gamma=record.net_gamma)
    else:
        body["currency"] = record.currency
    body.update(
        net_theta=record.net_theta,
        net_vega=record.net_vega,
        net_dollar_delta=record.net_dollar_delta,
    )
    if record.version >= 2:
        body.update(
            net_dollar_gamma=record.net_dollar_gamma,
            net_beta_delta=record.net_beta_delta,
            completeness=record.completeness or {},
            net_liquidation=record.net_liquidation,
            unrealized_pnl=record.unrealized_pnl,
            daily_pnl=record.daily_pnl,
        )
    for name in GATEWAY_FIGURES:
        if getattr(record, name) is not None:
            body[name] = getattr(record, name)
    body.update(
        position_count=record.position_count,
        option_count=record.option_count,
        options_with_greeks=record.options_with_greeks,
        stalest_greek_age_s=record.stalest_greek_age_s,
        underlyings=record.underlyings,
    )
    return body


def complete_counts(figure: str, position_count: int | None, option_count: int | None) -> Counts:
    """The completeness of a figure nothing is missing from: every position it counts
    contributes (every position for dollar, beta and share-equivalent delta, every option for
    the others).
    Format 3 writes a figure's completeness only where it differs from this."""
    contributing = position_count if figure in _COUNTED_BY_POSITION else option_count
    return {"contributing": contributing, "missing": 0, "reasons": {}}


def _partial_completeness(
    completeness: Mapping[str, Any] | None,
    position_count: int | None,
    option_count: int | None,
    figures: tuple[str, ...] = FIGURES,
) -> dict[str, Any]:
    """The figures whose completeness is not the complete one; null for a figure the record
    does not state at all (so that reading it back does not invent a 'complete')."""
    stated = completeness or {}
    unknown = set(stated) - set(figures)
    if unknown:
        raise RecordError(f"completeness of unknown figures: {', '.join(sorted(unknown))}")
    partial: dict[str, Any] = {}
    for name in figures:
        counts = stated.get(name)
        if counts is None:
            partial[name] = None
        elif counts != complete_counts(name, position_count, option_count):
            partial[name] = counts
    return partial


def _full_completeness(
    partial: Mapping[str, Any],
    position_count: int | None,
    option_count: int | None,
    figures: tuple[str, ...] = FIGURES,
) -> dict[str, Any]:
    full: dict[str, Any] = {}
    for name in figures:
        if name not in partial:
            full[name] = complete_counts(name, position_count, option_count)
        elif partial[name] is not None:
            full[name] = partial[name]
    return full


def _compact_body(record: Snapshot) -> dict[str, Any]:
    body: dict[str, Any] = {"account": record.account, "mode": record.mode}
    if record.currency is not None:
        body["currency"] = record.currency
    for name in (*FIGURES, *ACCOUNT_VALUES, *GATEWAY_FIGURES):
        value = getattr(record, name)
        if value is not None:  # unknown: left out, read back as None
            body[name] = value
    partial = _partial_completeness(record.completeness, record.position_count, record.option_count)
    if partial:
        body["completeness"] = partial
    body.update(
        position_count=record.position_count,
        option_count=record.option_count,
        options_with_greeks=record.options_with_greeks,
    )
    if record.stalest_greek_age_s is not None:
        body["stalest_greek_age_s"] = record.stalest_greek_age_s
    symbols: list[str] = []
    figures: list[list[float | None]] = []
    counts: list[list[int | None]] = []
    incomplete: dict[str, Any] = {}
    for symbol, values in record.underlyings.items():
        unknown = set(values) - {*UNDERLYING_FIGURES, *UNDERLYING_COUNTS, "completeness"}
        if unknown:
            raise RecordError(
                f"underlying {symbol!r} has unknown keys: {', '.join(sorted(unknown))}"
            )
        symbols.append(symbol)
        figures.append([values.get(name) for name in UNDERLYING_FIGURES])
        counts.append([values.get(name) for name in UNDERLYING_COUNTS])
        partial = _partial_completeness(
            values.get("completeness"),
            values.get("position_count"),
            values.get("option_count"),
            UNDERLYING_COMPLETENESS,
        )
        if partial:
            incomplete[symbol] = partial
    body.update(underlying_symbols=symbols, underlying_figures=figures, underlying_counts=counts)
    if incomplete:
        body["underlying_completeness"] = incomplete
    return body


def _expiry_body(record: ExpiryGreeks) -> dict[str, Any]:
    """An expiry record in the compact form of format 3: unknowns left out, completeness only
    where it is not the complete one, the underlyings as parallel arrays."""
    body: dict[str, Any] = {"account": record.account, "mode": record.mode}
    if record.currency is not None:
        body["currency"] = record.currency
    body.update(_expiry_scope_body(record.total))
    symbols, figures, linear, counts, incomplete = [], [], [], [], {}
    for symbol, scope in record.underlyings.items():
        scoped = _expiry_scope_body(scope)
        symbols.append(symbol)
        figures.append(scoped["bucket_figures"])
        linear.append(scope.linear_dollar_delta)
        counts.append([scope.position_count, scope.option_count])
        if "completeness" in scoped:
            incomplete[symbol] = scoped["completeness"]
    body.update(
        underlying_symbols=symbols,
        underlying_figures=figures,
        underlying_linear=linear,
        underlying_counts=counts,
    )
    if incomplete:
        body["underlying_completeness"] = incomplete
    return body


def _expiry_scope_body(scope: ExpiryScope) -> dict[str, Any]:
    if len(scope.buckets) != len(EXPIRY_BUCKETS) or any(
        len(row) != len(EXPIRY_FIGURES) for row in scope.buckets
    ):
        raise RecordError(
            f"buckets must be {len(EXPIRY_BUCKETS)} rows of {len(EXPIRY_FIGURES)} figures"
        )
    body: dict[str, Any] = {"bucket_figures": [list(row) for row in scope.buckets]}
    if scope.linear_dollar_delta is not None:
        body["linear_dollar_delta"] = scope.linear_dollar_delta
    body.update(position_count=scope.position_count, option_count=scope.option_count)
    partial = _partial_completeness(
        scope.completeness, scope.position_count, scope.option_count, EXPIRY_FIGURES
    )
    if partial:
        body["completeness"] = partial
    return body


def decode(line: bytes) -> Record:
    """Parse and validate one spool line (with or without its newline).

    Any bytes at all either give a record or raise RecordError: the writer relies on it to
    dead-letter one line and go on, whatever a disk or a hand-edit put in the spool.
    """
    return _decoded(line, expand=True)


def checked_account(line: bytes) -> str | None:
    """What the writer needs of a line: RecordError exactly where `decode` raises it, else the
    account of a snapshot, or of an expiry, legs or explain line (which go with their account's
    snapshots: as many, keyed by account too), None for another kind. A format-3 snapshot's
    underlyings are checked but not read back into mappings, which would cost the writer more
    than the check."""
    record = _decoded(line, expand=False)
    by_account = Snapshot | ExpiryGreeks | Legs | PnlExplain
    return record.account if isinstance(record, by_account) else None


def _decoded(line: bytes, *, expand: bool) -> Record:
    try:
        # Strict UTF-8 first, for a reason naming the byte (orjson's only says "not valid").
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"not JSON: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        # orjson, for speed: the writer decodes every line (4 us for a 2-kB snapshot, 11 with
        # the standard library). It refuses what PostgreSQL's jsonb refuses too: NaN,
        # Infinity, lone surrogate escapes; and nesting past 1,024 levels, where the standard
        # library overflows the stack. An integer past 64 bits is read as a float.
        body = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RecordError("not a JSON object")
    version = body.get("v")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        raise RecordError(f"unsupported format version {version!r}")
    _check_text(text)
    kind = body.get("kind")
    if kind == "snapshot":
        return _decode_snapshot(body, version, expand=expand)
    since, decoder = _DECODERS.get(kind, (None, None)) if isinstance(kind, str) else (None, None)
    if since is None or decoder is None or version < since:
        raise RecordError(f"unknown kind {kind!r}")
    return decoder(body)


def _check_text(text: str) -> None:
    # PostgreSQL text and jsonb cannot hold NUL; catching it here quarantines one line
    # instead of failing a whole batch at the server.
    if "\x00" in text or "\\u0000" in text:
        raise RecordError("contains a NUL character")


def _decode_snapshot(body: dict[str, Any], version: int, *, expand: bool = True) -> Snapshot:
    greeks: list[float | None]
    if version == 1:
        greeks = [_optional_float(body, name) for name in GREEK_FIELDS]
        extra: dict[str, Any] = {}
    else:
        greeks = [None, None, *(_optional_float(body, name) for name in GREEK_FIELDS[2:])]
        completeness = _object(body, "completeness")
        currency = body.get("currency")
        if currency is not None and (not isinstance(currency, str) or not currency):
            raise RecordError("currency is not a currency code or null")
        extra = {
            "currency": currency,
            "completeness": completeness,
            **{name: _optional_float(body, name) for name in FIGURES if name not in GREEK_FIELDS},
            **{name: _optional_float(body, name) for name in (*ACCOUNT_VALUES, *GATEWAY_FIGURES)},
        }
    position_count = _count(body, "position_count")
    option_count = _count(body, "option_count")
    options_with_greeks = _count(body, "options_with_greeks")
    if options_with_greeks > option_count:
        raise RecordError("options_with_greeks exceeds option_count")
    if version == 3:
        extra["completeness"] = _full_completeness(
            _partial(extra["completeness"], "completeness"), position_count, option_count
        )
        underlyings = _underlyings_from_arrays(body, expand=expand)
    else:
        underlyings = _object(body, "underlyings")
    return Snapshot(
        id=_uuid(body),
        ts=_timestamp(body),
        account=_text(body, "account"),
        mode=_mode(body),
        net_delta=greeks[0],
        net_gamma=greeks[1],
        net_theta=greeks[2],
        net_vega=greeks[3],
        net_dollar_delta=greeks[4],
        position_count=position_count,
        option_count=option_count,
        options_with_greeks=options_with_greeks,
        stalest_greek_age_s=_optional_float(body, "stalest_greek_age_s"),
        underlyings=underlyings,
        version=version,
        **extra,
    )


def _object(body: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name, {})
    if not isinstance(value, dict):
        raise RecordError(f"{name} is not an object")
    return value


def _partial(
    value: Mapping[str, Any], where: str, figures: tuple[str, ...] = FIGURES
) -> dict[str, Any]:
    """A format-3 completeness: figures of FIGURES only, each counts or null, and what a
    figure says of its precision and market data well-formed (`_check_qualifiers`)."""
    for name, counts in value.items():
        if name not in figures:
            raise RecordError(f"{where} names an unknown figure {name!r}")
        if counts is not None and not isinstance(counts, dict):
            raise RecordError(f"{where} of {name} is not an object or null")
        if counts:
            _check_qualifiers(counts, f"{where} of {name}")
    return dict(value)


def _check_qualifiers(counts: Mapping[str, Any], where: str) -> None:
    """A figure's `rounding_bound` (a finite number >= 0), `imprecise` (true), `market_data`
    ({kind: a count > 0}), `recomputed` and `model_disagrees` (counts > 0), when it states
    them."""
    bound = counts.get("rounding_bound")
    if bound is not None and (
        type(bound) not in (int, float) or not math.isfinite(bound) or bound < 0
    ):
        raise RecordError(f"{where}: rounding_bound is not a number >= 0")
    if "imprecise" in counts and counts["imprecise"] is not True:
        raise RecordError(f"{where}: imprecise is not true")
    kinds = counts.get("market_data")
    if kinds is not None and not (
        isinstance(kinds, dict) and all(type(n) is int and n > 0 for n in kinds.values())
    ):
        raise RecordError(f"{where}: market_data is not {{kind: a count}}")
    for name in ("recomputed", "model_disagrees"):
        if name in counts and not (type(counts[name]) is int and counts[name] > 0):
            raise RecordError(f"{where}: {name} is not a count > 0")


def _underlyings_from_arrays(body: Mapping[str, Any], *, expand: bool) -> dict[str, Any]:
    """Format 3's parallel arrays checked, and (`expand`) read back into {symbol: figures,
    counts and completeness}. The checks run over whole arrays at once: the writer checks every
    line, and a book of 50 underlyings holds 500 values."""
    symbols = body.get("underlying_symbols", [])
    figures = body.get("underlying_figures", [])
    counts = body.get("underlying_counts", [])
    if not (type(symbols) is list and type(figures) is list and type(counts) is list):
        raise RecordError("underlying_symbols, _figures and _counts must be arrays")
    if not len(symbols) == len(figures) == len(counts):
        raise RecordError("underlying_symbols, _figures and _counts differ in length")
    if not all(type(symbol) is str and symbol for symbol in symbols):
        raise RecordError("underlying_symbols holds a value that is not a symbol")
    if len(set(symbols)) != len(symbols):
        raise RecordError("underlying_symbols names a symbol twice")
    for symbol, row, count_row in zip(symbols, figures, counts, strict=True):
        if type(row) is not list or len(row) != len(UNDERLYING_FIGURES):
            raise RecordError(
                f"underlying_figures of {symbol} is not {len(UNDERLYING_FIGURES)} values"
            )
        if type(count_row) is not list or len(count_row) != len(UNDERLYING_COUNTS):
            raise RecordError(
                f"underlying_counts of {symbol} is not {len(UNDERLYING_COUNTS)} values"
            )
    # orjson never gives an infinite or NaN float, and reads an integer past 64 bits as a float:
    # a number's type is all there is to check (the set of types, gathered at C speed).
    if not set(map(type, chain.from_iterable(figures))) <= _FIGURE_TYPES:
        _refuse_figures(symbols, figures)
    count_values = [value for value in chain.from_iterable(counts) if value is not None]
    if not set(map(type, count_values)) <= {int} or (count_values and min(count_values) < 0):
        raise RecordError("underlying_counts holds a value that is not a count or null")
    incomplete = _object(body, "underlying_completeness")
    if not set(incomplete) <= set(symbols):
        raise RecordError("underlying_completeness names a symbol that is not held")
    partials = {
        symbol: _partial(
            _object(incomplete, symbol), f"completeness of {symbol}", UNDERLYING_COMPLETENESS
        )
        for symbol in incomplete
    }
    if not expand:
        return {}
    underlyings: dict[str, Any] = {}
    for symbol, row, count_row in zip(symbols, figures, counts, strict=True):
        values: dict[str, Any] = dict(zip(UNDERLYING_FIGURES, row, strict=True))
        values.update(zip(UNDERLYING_COUNTS, count_row, strict=True))
        values["completeness"] = _full_completeness(
            partials.get(symbol, {}), count_row[0], count_row[1], UNDERLYING_COMPLETENESS
        )
        underlyings[symbol] = values
    return underlyings


def _refuse_figures(symbols: list[str], figures: list[list[Any]]) -> None:
    """Name the first value of underlying_figures that is not a number or null."""
    for symbol, row in zip(symbols, figures, strict=True):
        for name, value in zip(UNDERLYING_FIGURES, row, strict=True):
            if type(value) not in _FIGURE_TYPES:
                raise RecordError(f"{symbol} {name} is not a number or null")
    raise AssertionError("unreachable")  # pragma: no cover


def _decode_expiry(body: dict[str, Any]) -> ExpiryGreeks:
    currency = body.get("currency")
    if currency is not None and (not isinstance(currency, str) or not currency):
        raise RecordError("currency is not a currency code or null")
    total = _expiry_scope(
        body.get("bucket_figures"),
        body.get("linear_dollar_delta"),
        [body.get("position_count"), body.get("option_count")],
        body.get("completeness", {}),
        "",
    )
    symbols = body.get("underlying_symbols", [])
    figures = body.get("underlying_figures", [])
    linear = body.get("underlying_linear", [])
    counts = body.get("underlying_counts", [])
    if not all(type(column) is list for column in (symbols, figures, linear, counts)):
        raise RecordError("underlying_symbols, _figures, _linear and _counts must be arrays")
    if not len(symbols) == len(figures) == len(linear) == len(counts):
        raise RecordError("underlying_symbols, _figures, _linear and _counts differ in length")
    if not all(type(symbol) is str and symbol for symbol in symbols):
        raise RecordError("underlying_symbols holds a value that is not a symbol")
    if len(set(symbols)) != len(symbols):
        raise RecordError("underlying_symbols names a symbol twice")
    incomplete = _object(body, "underlying_completeness")
    if not set(incomplete) <= set(symbols):
        raise RecordError("underlying_completeness names a symbol that is not held")
    underlyings = {
        symbol: _expiry_scope(rows, line, count_row, incomplete.get(symbol, {}), f"{symbol} ")
        for symbol, rows, line, count_row in zip(symbols, figures, linear, counts, strict=True)
    }
    return ExpiryGreeks(
        id=_uuid(body),
        ts=_timestamp(body),
        account=_text(body, "account"),
        mode=_mode(body),
        currency=currency,
        total=total,
        underlyings=underlyings,
    )


def _decode_legs(body: dict[str, Any]) -> Legs:
    currency = body.get("currency")
    if currency is not None and (not isinstance(currency, str) or not currency):
        raise RecordError("currency is not a currency code or null")
    rows = body.get("legs")
    if type(rows) is not list:
        raise RecordError("legs is not an array")
    legs = tuple(_leg(row, index) for index, row in enumerate(rows))
    if len({leg.conid for leg in legs}) != len(legs):
        raise RecordError("legs names a conid twice")
    return Legs(
        id=_uuid(body),
        ts=_timestamp(body),
        account=_text(body, "account"),
        mode=_mode(body),
        currency=currency,
        legs=legs,
    )


def _leg(row: Any, index: int) -> Leg:
    """One leg, checked: LEG_FIELDS' values in order, each of its type or null."""
    if type(row) is not list or len(row) != len(LEG_FIELDS):
        raise RecordError(f"leg {index} is not {len(LEG_FIELDS)} values")
    values = dict(zip(LEG_FIELDS, row, strict=True))
    conid = values["conid"]
    if type(conid) is not int or conid <= 0:
        raise RecordError(f"leg {index}: conid is not a contract id")
    where = f"leg {conid}: "
    for name in ("symbol", "sec_type"):
        if not isinstance(values[name], str) or not values[name]:
            raise RecordError(f"{where}{name} is missing or not a string")
    for name in _LEG_NUMBERS:
        values[name] = _optional_float(values, name, where=where)
    raw_expiry = values["expiry"]
    if raw_expiry is not None:
        try:
            values["expiry"] = date.fromisoformat(raw_expiry)
        except (TypeError, ValueError):
            raise RecordError(f"{where}expiry is not a date or null") from None
    if values["option_right"] not in ("C", "P", None):
        raise RecordError(f"{where}option_right is not C, P or null")
    reason = values["missing_reason"]
    if reason is not None and (not isinstance(reason, str) or not reason):
        raise RecordError(f"{where}missing_reason is not a reason or null")
    return Leg(**values)


def _expiry_scope(rows: Any, linear: Any, counts: Any, partial: Any, where: str) -> ExpiryScope:
    """One scope of an expiry record, checked: 5 rows of 4 numbers or nulls, a number or null,
    two counts (options no more than positions), a partial completeness."""
    if (
        type(rows) is not list
        or len(rows) != len(EXPIRY_BUCKETS)
        or any(type(row) is not list or len(row) != len(EXPIRY_FIGURES) for row in rows)
    ):
        raise RecordError(
            f"{where}bucket_figures is not {len(EXPIRY_BUCKETS)} rows of"
            f" {len(EXPIRY_FIGURES)} values"
        )
    buckets = tuple(
        tuple(
            _optional_float({name: value}, name, where=f"{where}{bucket} ")
            for name, value in zip(EXPIRY_FIGURES, row, strict=True)
        )
        for bucket, row in zip(EXPIRY_BUCKETS, rows, strict=True)
    )
    line = _optional_float({"linear_dollar_delta": linear}, "linear_dollar_delta", where=where)
    if type(counts) is not list or len(counts) != 2:
        raise RecordError(f"{where}counts are not [position_count, option_count]")
    position_count = _count({f"{where}position_count": counts[0]}, f"{where}position_count")
    option_count = _count({f"{where}option_count": counts[1]}, f"{where}option_count")
    if option_count > position_count:
        raise RecordError(f"{where}option_count exceeds position_count")
    if not isinstance(partial, dict):
        raise RecordError(f"{where}completeness is not an object")
    completeness = _full_completeness(
        _partial(partial, f"{where}completeness", EXPIRY_FIGURES),
        position_count,
        option_count,
        EXPIRY_FIGURES,
    )
    return ExpiryScope(buckets, line, position_count, option_count, completeness)


def _decode_beta(body: dict[str, Any]) -> Beta:
    beta = _optional_float(body, "beta")
    if beta is None:
        raise RecordError("beta is missing")
    raw_date = body.get("as_of")
    try:
        as_of = date.fromisoformat(raw_date) if isinstance(raw_date, str) else None
    except ValueError:
        as_of = None
    if as_of is None:
        raise RecordError("as_of is missing or not a date")
    sample_size = body.get("sample_size")
    if sample_size is not None:
        sample_size = _count(body, "sample_size")
    source = body.get("source")
    if source not in BETA_SOURCES:
        raise RecordError(f"source {source!r} is not one of {', '.join(BETA_SOURCES)}")
    return Beta(
        id=_uuid(body),
        ts=_timestamp(body),
        underlying=_text(body, "underlying"),
        benchmark=_text(body, "benchmark"),
        beta=beta,
        as_of=as_of,
        sample_size=sample_size,
        source=source,
    )


def _decode_scenario(body: dict[str, Any]) -> Scenario:
    currency = body.get("currency")
    if currency is not None and not isinstance(currency, str):
        raise RecordError("currency is not a string or null")
    grid = _scenario_grid(body.get("grid"), "grid", SCENARIO_GRID_SIZE)
    beta_grid = _scenario_grid(body.get("beta_grid"), "beta_grid", SCENARIO_GRID_SIZE)
    for name, values in (("", grid), ("beta_", beta_grid)):
        _refuse_worst(body, name, values)
    completeness = _scenario_completeness(body.get("completeness"), "completeness")
    symbols = body.get("underlying_symbols", [])
    if not isinstance(symbols, list) or not all(isinstance(s, str) and s for s in symbols):
        raise RecordError("underlying_symbols is not a list of symbols")
    if len(set(symbols)) != len(symbols):
        raise RecordError("underlying_symbols names a symbol twice")
    columns = {}
    for name in ("underlying_grids", "underlying_delta_gamma_10", "underlying_worst_pnl"):
        column = body.get(name, [])
        if not isinstance(column, list) or len(column) != len(symbols):
            raise RecordError(f"{name} does not have one entry per underlying symbol")
        columns[name] = column
    partial = body.get("underlying_completeness") or {}
    if not isinstance(partial, dict) or not set(partial) <= set(symbols):
        raise RecordError("underlying_completeness names a symbol not held")
    underlyings = {}
    for index, symbol in enumerate(symbols):
        row_grid = _scenario_row(columns["underlying_grids"][index], symbol, SCENARIO_GRID_SIZE)
        worst = worst_of(row_grid)
        stated = columns["underlying_worst_pnl"][index]
        if (worst[0] if worst else None) != stated:
            raise RecordError(f"{symbol}: underlying_worst_pnl is not the lowest of its grid")
        counts = (
            _scenario_completeness(partial[symbol], f"{symbol} completeness")
            if symbol in partial
            else None
        )
        underlyings[symbol] = UnderlyingScenario(
            grid=row_grid,
            delta_gamma_10=_scenario_row(
                columns["underlying_delta_gamma_10"][index], symbol, DELTA_GAMMA_SIZE
            ),
            completeness=counts or {},  # not named: every position contributed
        )
    return Scenario(
        id=_uuid(body),
        ts=_timestamp(body),
        account=_text(body, "account"),
        mode=_mode(body),
        currency=currency,
        grid=grid,
        beta_grid=beta_grid,
        delta_gamma_10=_scenario_grid(
            body.get("delta_gamma_10"), "delta_gamma_10", DELTA_GAMMA_SIZE
        ),
        completeness=completeness,
        underlyings=underlyings,
        worst_legs=_worst_legs(body, "", grid, completeness),
        beta_worst_legs=_worst_legs(body, "beta_", beta_grid, completeness),
    )


def _worst_legs(
    body: Mapping[str, Any],
    prefix: str,
    grid: tuple[float, ...] | None,
    completeness: Mapping[str, Counts],
) -> tuple[tuple[int, float], ...] | None:
    """The legs of a grid's worst scenario, refused unless they are the whole of it: one per
    contributing position (the missing ones are counted in completeness, never in the grid),
    each conid once, adding up to the worst P&L within rounding."""
    conids, values = body.get(f"{prefix}worst_leg_conids"), body.get(f"{prefix}worst_leg_pnl")
    name = f"{prefix}worst_legs"
    if conids is None and values is None:
        return None  # not computed: a line from before the legs, or no grid
    if not isinstance(conids, list) or not isinstance(values, list) or len(conids) != len(values):
        raise RecordError(f"{name}: conids and P&Ls are not two lists of one length")
    if grid is None:
        raise RecordError(f"{name}: legs of a grid nothing contributed to")
    if not all(isinstance(c, int) and not isinstance(c, bool) for c in conids):
        raise RecordError(f"{name}: a conid is not an integer")
    if len(set(conids)) != len(conids):
        raise RecordError(f"{name}: a conid is named twice")
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise RecordError(f"{name}: a P&L is not a finite number")
    counts = completeness.get(f"{prefix}grid")
    contributing = counts.get("contributing") if counts else None
    if contributing != len(conids):
        raise RecordError(
            f"{name}: {len(conids)} legs, but {contributing} positions contributed to the grid"
        )
    worst = min(grid)
    total = math.fsum(values)
    if abs(total - worst) > WORST_LEGS_ROUNDING * max(1.0, math.fsum(abs(v) for v in values)):
        raise RecordError(f"{name}: the legs add up to {total!r}, not the worst P&L {worst!r}")
    return tuple((conid, float(value)) for conid, value in zip(conids, values, strict=True))


def _scenario_grid(value: Any, name: str, size: int) -> tuple[float, ...] | None:
    """A grid: null, or exactly `size` finite numbers (a grid is whole or absent)."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != size:
        raise RecordError(f"{name} is not null or a list of {size} numbers")
    numbers = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
            raise RecordError(f"{name} holds something other than a finite number")
        numbers.append(float(item))
    return tuple(numbers)


def _scenario_row(value: Any, symbol: str, size: int) -> tuple[float, ...] | None:
    """An underlying's row: all nulls (nothing contributed) or `size` numbers."""
    if isinstance(value, list) and len(value) == size and all(item is None for item in value):
        return None
    return _scenario_grid(value, f"{symbol}'s row", size)


def _refuse_worst(body: Mapping[str, Any], prefix: str, grid: tuple[float, ...] | None) -> None:
    worst = worst_of(grid)
    stated = (body.get(f"{prefix}worst_pnl"), body.get(f"{prefix}worst_scenario"))
    if stated != ((worst[0], worst[1]) if worst else (None, None)):
        raise RecordError(f"{prefix}worst_pnl and {prefix}worst_scenario are not its grid's lowest")


def _scenario_completeness(value: Any, name: str) -> dict[str, Counts]:
    if not isinstance(value, dict):
        raise RecordError(f"{name} is not an object")
    for figure, counts in value.items():
        if figure not in SCENARIO_FIGURES or not isinstance(counts, dict):
            raise RecordError(f"{name}: {figure!r} is not a scenario figure's counts")
        _count(counts, "contributing")
        _count(counts, "missing")
        if not isinstance(counts.get("reasons"), dict):
            raise RecordError(f"{name}: {figure} reasons is not an object")
    return value


def _decode_explain(body: dict[str, Any]) -> PnlExplain:
    raw_start = body.get("start_ts")
    start_ts = _timestamp({"ts": raw_start}) if raw_start is not None else None
    if start_ts is None:
        raise RecordError("start_ts is missing")
    currency = body.get("currency")
    if currency is not None and not isinstance(currency, str):
        raise RecordError("currency is not a string or null")
    marks = body.get("marks")
    if not isinstance(marks, list) or not all(isinstance(mark, str) for mark in marks):
        raise RecordError("marks is not a list of strings")
    missing = body.get("missing")
    if not isinstance(missing, dict):
        raise RecordError("missing is not an object")
    symbols = _strings(body, "underlying_symbols")
    conids = body.get("position_conids")
    if not isinstance(conids, list) or not all(
        isinstance(conid, int) and not isinstance(conid, bool) for conid in conids
    ):
        raise RecordError("position_conids is not a list of integers")
    position_missing = body.get("position_missing")
    if not isinstance(position_missing, list) or not all(
        reason is None or isinstance(reason, str) for reason in position_missing
    ):
        raise RecordError("position_missing is not a list of strings or nulls")
    actual_missing = body.get("position_actual_missing", [])
    if not isinstance(actual_missing, list) or not all(
        reason is None or reason in EXPLAIN_ACTUAL_UNKNOWN for reason in actual_missing
    ):
        raise RecordError(
            "position_actual_missing is not a list of nulls and "
            f"{', '.join(EXPLAIN_ACTUAL_UNKNOWN)}"
        )
    record = PnlExplain(
        id=_uuid(body),
        ts=_timestamp(body),
        account=_text(body, "account"),
        mode=_mode(body),
        start_ts=start_ts,
        currency=currency,
        actual_pnl=_optional_float(body, "actual_pnl"),
        explained_pnl=_optional_float(body, "explained_pnl"),
        terms={name: _optional_float(body, name) for name in EXPLAIN_TERMS},
        marks=tuple(marks),
        missing={str(reason): _count(missing, reason) for reason in missing},
        underlying_symbols=tuple(symbols),
        underlying_rows=_rows(body, "underlying_rows"),
        position_conids=tuple(conids),
        position_rows=_rows(body, "position_rows"),
        position_missing=tuple(position_missing),
        position_actual_missing=tuple(actual_missing) if any(actual_missing) else (),
    )
    _check_explain(record)
    return record


def _check_explain(record: PnlExplain) -> None:
    """What a stored explain must hold beyond its types (encode and decode both check it)."""
    if record.start_ts >= record.ts:
        raise RecordError("start_ts is not before ts")
    unknown = [mark for mark in record.marks if mark not in EXPLAIN_MARKS]
    if unknown:
        raise RecordError(f"unknown mark {unknown[0]!r}: not one of {', '.join(EXPLAIN_MARKS)}")
    if len(set(record.marks)) != len(record.marks):
        raise RecordError("a mark is repeated")
    if not record.marks and (record.actual_pnl is None or record.explained_pnl is None):
        raise RecordError("an unmarked (scored) interval needs actual_pnl and explained_pnl")
    if record.missing and "input_missing" not in record.marks:
        raise RecordError("missing inputs without the input_missing mark")
    if len(record.underlying_rows) != len(record.underlying_symbols):
        raise RecordError("underlying_rows and underlying_symbols differ in length")
    if not len(record.position_rows) == len(record.position_conids) == len(record.position_missing):
        raise RecordError("position_rows, position_conids and position_missing differ in length")
    _check_actual_missing(record)
    for rows, names in ((record.underlying_rows, EXPLAIN_ROW),
                        (record.position_rows, EXPLAIN_POSITION_ROW)):  # fmt: skip
        for row in rows:
            if len(row) != len(names):
                raise RecordError(f"a row has {len(row)} values, not {len(names)}")


def _check_actual_missing(record: PnlExplain) -> None:
    """Each position's reason its actual is unknown: one per position when any is given, each
    of EXPLAIN_ACTUAL_UNKNOWN, and only beside an unknown actual."""
    reasons = record.position_actual_missing
    if not reasons:
        return
    if len(reasons) != len(record.position_conids):
        raise RecordError("position_actual_missing and position_conids differ in length")
    if any(reason is not None and reason not in EXPLAIN_ACTUAL_UNKNOWN for reason in reasons):
        raise RecordError("position_actual_missing holds an unknown reason")
    if any(
        reason is not None and row[-1] is not None
        for reason, row in zip(reasons, record.position_rows, strict=True)
    ):
        raise RecordError("a position with an actual_pnl has a reason it is unknown")


def _strings(body: Mapping[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RecordError(f"{name} is not a list of strings")
    return value


def _rows(body: Mapping[str, Any], name: str) -> tuple[tuple[float | None, ...], ...]:
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise RecordError(f"{name} is not a list of rows")
    return tuple(
        tuple(_optional_float({"value": item}, "value", where=f"{name}: a ") for item in row)
        for row in value
    )


def _decode_api_log(body: dict[str, Any]) -> ApiLog:
    level = body.get("level")
    if level not in LEVELS:
        raise RecordError(f"level {level!r} is not one of {', '.join(LEVELS)}")
    code = body.get("code")
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        raise RecordError("code is not an integer or null")
    details = body.get("details", {})
    if not isinstance(details, dict):
        raise RecordError("details is not an object")
    return ApiLog(
        id=_uuid(body),
        ts=_timestamp(body),
        mode=_mode(body),
        level=level,
        event=_text(body, "event"),
        code=code,
        message=_text(body, "message", allow_empty=True),
        details=details,
    )


def _uuid(body: dict[str, Any]) -> uuid.UUID:
    try:
        return uuid.UUID(body["id"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise RecordError("id is missing or not a UUID") from None


def _timestamp(body: dict[str, Any]) -> datetime:
    raw = body.get("ts")
    if not isinstance(raw, str):
        raise RecordError("ts is missing or not a string")
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError:
        raise RecordError(f"ts {raw!r} is not an ISO 8601 timestamp") from None
    if ts.tzinfo is None:
        raise RecordError("ts has no time zone")
    return ts


def _text(body: dict[str, Any], name: str, *, allow_empty: bool = False) -> str:
    value = body.get(name)
    if not isinstance(value, str) or (not value and not allow_empty):
        raise RecordError(f"{name} is missing or not a string")
    return value


def _mode(body: dict[str, Any]) -> Mode:
    mode = body.get("mode")
    if mode not in MODES:
        raise RecordError(f"mode {mode!r} is not SOCKET or PORTAL")
    return mode  # type: ignore[no-any-return]  # narrowed by the membership test above


def _count(body: Mapping[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RecordError(f"{name} is missing or not a count")
    return value


def _optional_float(body: Mapping[str, Any], name: str, *, where: str = "") -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{where}{name} is not a number or null")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a double
        raise RecordError(f"{where}{name} is out of range") from None
    if not math.isfinite(number):
        raise RecordError(f"{where}{name} is not finite")
    return number


# Every kind but the snapshot (whose decoding depends on its version): the first format version
# that wrote it, and its decoder.
_DECODERS: Final[dict[str, tuple[int, Callable[[dict[str, Any]], Record]]]] = {
    "api_log": (1, _decode_api_log),
    "beta": (2, _decode_beta),
    "expiry": (3, _decode_expiry),
    "legs": (3, _decode_legs),
    "pnl_explain": (3, _decode_explain),
    "scenario": (3, _decode_scenario),
}
