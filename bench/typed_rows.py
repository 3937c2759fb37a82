"""The typed path, measured and not applied (bench/typed_staging.py): a format-3 snapshot line
decoded in Python into the columns of `portfolio_greeks`, for a binary COPY into a staging table
of those columns, which PostgreSQL stores without parsing JSON.

A line qualifies only when every value it carries is exactly what the sink's jsonb path would
store, so the row would be the same whichever path took it:
- the id and tick in the form the collector writes them (`records.snapshot_id`'s UUID text,
  `records._iso`'s UTC microseconds), so the natural key (account, ts) is the same value;
- every figure a JSON number or null (the double both parsers round it to), every count an
  integer within `integer`, the arrays rectangular as PostgreSQL's arrays must be;
- each jsonb value (completeness) written in the line exactly as orjson writes it back.
Any other line (formats 1 and 2, another kind, a value of another type, a bad line) would go as
the line, for PostgreSQL to store or refuse with the reason it always gave. These checks are
part of the client's cost the benchmark measures.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Final

import orjson
from psycopg.types.json import Jsonb

# The columns of a typed staging row, with their PostgreSQL types, in order.
COLUMNS: Final = (
    ("id", "uuid"), ("ts", "timestamptz"), ("account", "text"), ("mode", "text"),
    ("format_version", "int2"), ("currency", "text"), ("net_theta", "float8"),
    ("net_vega", "float8"), ("net_dollar_delta", "float8"), ("net_dollar_gamma", "float8"),
    ("net_beta_delta", "float8"), ("completeness", "jsonb"), ("net_liquidation", "float8"),
    ("unrealized_pnl", "float8"), ("daily_pnl", "float8"), ("position_count", "int4"),
    ("option_count", "int4"), ("options_with_greeks", "int4"),
    ("stalest_greek_age_s", "float8"), ("underlying_symbols", "text[]"),
    ("underlying_figures", "float8[]"), ("underlying_counts", "int4[]"),
    ("underlying_completeness", "jsonb"), ("gateway_beta_delta", "float8"),
)  # fmt: skip
TYPES: Final = [kind for _, kind in COLUMNS]
_FLOATS: Final = tuple(name for name, kind in COLUMNS if kind == "float8")
_COUNTS: Final = ("position_count", "option_count", "options_with_greeks")
_TEXTS: Final = ("account", "mode")
_JSONB: Final = ("completeness", "underlying_completeness")
# Every key a format-3 snapshot line may carry; a line with another goes as the line (the
# jsonb path ignores keys it does not read, and so would this, but a key unknown here may be a
# column a later format fills).
_KEYS: Final = frozenset({"v", "kind", *(name for name, _ in COLUMNS if name != "format_version")})
_FIGURE: Final = frozenset({float, int, type(None)})
_INT4_MIN: Final = -(2**31)
_INT4_MAX: Final = 2**31 - 1
# A format-3 snapshot line as `records.encode` starts it: only these are decoded here.
_PREFIX: Final = b'{"v":3,"kind":"snapshot",'

_NAMES: Final = ", ".join(name for name, _ in COLUMNS)
STAGING: Final = (
    "CREATE TEMP TABLE IF NOT EXISTS bridge_typed_staging ("
    + ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)
COPY: Final = f"COPY bridge_typed_staging ({_NAMES}) FROM STDIN (FORMAT BINARY)"
# A format-3 row has no `underlyings` jsonb (its arrays say it): NULL, not the column's default.
INSERT: Final = (
    f"INSERT INTO portfolio_greeks ({_NAMES}, underlyings)"  # noqa: S608  # constants
    f" SELECT {_NAMES}, NULL FROM bridge_typed_staging ON CONFLICT (account, ts) DO NOTHING"
)


def typed_row(line: bytes) -> tuple[Any, ...] | None:
    """The row of a format-3 snapshot line whose values are all as the jsonb path would store
    them, or None: the line is sent as it is."""
    if not line.startswith(_PREFIX) or b"\\u0000" in line:  # NUL: PostgreSQL refuses it
        return None
    try:
        body = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(body) is not dict or not body.keys() <= _KEYS or body.get("kind") != "snapshot":
        return None  # a later duplicate key decides a JSON object's value, in both parsers
    if body.get("v") != 3 or type(body.get("v")) is not int:
        return None
    try:
        return _row(body, line)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _row(body: dict[str, Any], line: bytes) -> tuple[Any, ...] | None:
    raw_id, raw_ts = body["id"], body["ts"]
    snapshot_id = uuid.UUID(raw_id)
    ts = datetime.fromisoformat(raw_ts)
    arrays = _arrays(body)
    written = _jsonb(body, line)
    if (
        arrays is None
        or written is None
        or str(snapshot_id) != raw_id
        or ts.tzinfo is None
        or ts.astimezone(UTC).isoformat(timespec="microseconds") != raw_ts
        or not _scalars(body)
    ):
        return None
    get = body.get
    return (
        snapshot_id, ts, body["account"], body["mode"], 3, get("currency"), get("net_theta"),
        get("net_vega"), get("net_dollar_delta"), get("net_dollar_gamma"),
        get("net_beta_delta"), written.get("completeness"), get("net_liquidation"),
        get("unrealized_pnl"), get("daily_pnl"), body["position_count"], body["option_count"],
        body["options_with_greeks"], get("stalest_greek_age_s"), *arrays,
        written.get("underlying_completeness"), get("gateway_beta_delta"),
    )  # fmt: skip


def _scalars(body: dict[str, Any]) -> bool:
    """The texts, figures and counts of the line's top level of the columns' types."""
    currency = body.get("currency")
    return (
        all(type(body[name]) is str for name in _TEXTS)
        and (currency is None or type(currency) is str)
        and all(type(body.get(name)) in _FIGURE for name in _FLOATS)
        and all(_is_int4(body[name]) for name in _COUNTS)
    )


def _jsonb(body: dict[str, Any], line: bytes) -> dict[str, Jsonb] | None:
    """The jsonb values the line holds, each as its JSON text when that text is in the line as
    it is (so PostgreSQL reads the same text either way), or None."""
    written = {}
    for name in _JSONB:
        value = body.get(name)
        if value is not None:
            text = orjson.dumps(value)
            if text not in line:
                return None
            written[name] = Jsonb(text, _as_written)
    return written


def _arrays(body: dict[str, Any]) -> tuple[Any, Any, Any] | None:
    """The three underlying arrays, when each is absent or null (NULL), or an array
    PostgreSQL reads as the column's: symbols as text, figures and counts rectangular."""
    symbols = body.get("underlying_symbols")
    figures = body.get("underlying_figures")
    counts = body.get("underlying_counts")
    if symbols is not None and not (
        type(symbols) is list and all(type(symbol) is str for symbol in symbols)
    ):
        return None
    if not (_rectangular(figures) and _rectangular(counts)):
        return None
    if figures and not set(map(type, chain.from_iterable(figures))) <= _FIGURE:
        return None
    if counts and not all(
        value is None or _is_int4(value) for value in chain.from_iterable(counts)
    ):
        return None
    return symbols, figures, counts


def _rectangular(value: Any) -> bool:
    """An array of arrays of one length (PostgreSQL's two-dimensional array), empty, or null."""
    if value is None:
        return True
    if type(value) is not list:
        return False
    if not value:
        return True
    if not all(type(row) is list for row in value):
        return False
    width = len(value[0])
    return width > 0 and all(len(row) == width for row in value)


def _is_int4(value: Any) -> bool:
    return type(value) is int and _INT4_MIN <= value <= _INT4_MAX


def _as_written(text: bytes) -> bytes:
    """A jsonb value's JSON text, already written (and found in the line) by `_row`."""
    return text
