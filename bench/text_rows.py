"""The text-row path, measured and not applied (bench/typed_staging.py): a format-3 snapshot line
cut into its columns by one regular expression, without a JSON parser, and sent as a row of
COPY's text format; PostgreSQL then parses each value with its column's input function.

The idea: a line as `records.encode` writes it is regular (its keys in one order, its figures
JSON numbers), and a JSON array of numbers is PostgreSQL's array literal once its brackets are
braces, so neither side builds a JSON tree. A line qualifies only when the row is the one the
jsonb path would store:
- format 3's keys in `records.encode`'s order, each once, and no completeness (nested objects);
- strings without escapes or control characters (their bytes are their text, and nothing in
  them is special to COPY's text format or inside an array literal's quotes);
- figures JSON numbers or null, counts JSON integers or null (jsonb reads `1e2` as a count,
  `int4in` does not), and no negative zero (jsonb's numeric zero has no sign: it stores +0).
Any other line would go as jsonb. The checks are part of the client's cost measured.
"""

from __future__ import annotations

import re
from typing import Final

from shared.records import ACCOUNT_VALUES, FIGURES, GATEWAY_FIGURES

COLUMNS: Final = (
    ("id", "uuid"),
    ("ts", "timestamptz"),
    ("account", "text"),
    ("mode", "text"),
    ("currency", "text"),
    *((name, "float8") for name in (*FIGURES, *ACCOUNT_VALUES, *GATEWAY_FIGURES)),
    ("position_count", "integer"),
    ("option_count", "integer"),
    ("options_with_greeks", "integer"),
    ("stalest_greek_age_s", "float8"),
    ("underlying_symbols", "text[]"),
    ("underlying_figures", "float8[]"),
    ("underlying_counts", "integer[]"),
)
_NAMES: Final = ", ".join(name for name, _ in COLUMNS)
STAGING: Final = (
    "CREATE TEMP TABLE IF NOT EXISTS bridge_text_staging ("
    + ", ".join(f"{name} {kind}" for name, kind in COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)
COPY: Final = f"COPY bridge_text_staging ({_NAMES}) FROM STDIN"
# What the jsonb path stores for a format-3 line beside its fields: its version, and no
# `underlyings` jsonb (NULL, not the column's default: the arrays hold the underlyings).
INSERT: Final = (
    f"INSERT INTO portfolio_greeks ({_NAMES}, format_version, underlyings)"  # noqa: S608
    f" SELECT {_NAMES}, 3, NULL FROM bridge_text_staging ON CONFLICT (account, ts) DO NOTHING"
)

_NUMBER: Final = rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_INTEGER: Final = rb"-?(?:0|[1-9][0-9]*)"
_STRING: Final = rb'"([^"\\\x00-\x1f]*)"'
_ELEMENT_STRING: Final = rb'"[^"\\\x00-\x1f\[\]]*"'
_ROWS: Final = rb"\[(?:\[[0-9.eE+\-nul,]+\](?:,\[[0-9.eE+\-nul,]+\])*)?\]"


def _optional(name: str, value: bytes) -> bytes:
    return b'(?:,"' + name.encode() + b'":(?:(' + value + b")|null))?"


_LINE: Final = re.compile(
    b"".join(
        [
            rb'\{"v":3,"kind":"snapshot"',
            rb',"id":"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"',
            rb',"ts":' + _STRING + rb',"account":' + _STRING + rb',"mode":' + _STRING,
            rb'(?:,"currency":(?:' + _STRING + rb"|null))?",
            *(_optional(name, _NUMBER) for name in (*FIGURES, *ACCOUNT_VALUES, *GATEWAY_FIGURES)),
            *(
                b',"' + name.encode() + b'":(?:(' + _INTEGER + b")|null)"
                for name in ("position_count", "option_count", "options_with_greeks")
            ),
            _optional("stalest_greek_age_s", _NUMBER),
            rb',"underlying_symbols":(\[(?:' + _ELEMENT_STRING + rb"(?:," + _ELEMENT_STRING
            + rb")*)?\])",
            rb',"underlying_figures":(' + _ROWS + rb")",
            rb',"underlying_counts":(' + _ROWS + rb")",
            rb"\}\n?",
        ]
    )
)  # fmt: skip
# An element of the rows that is not a JSON number (integer) or null; the line's pattern made
# them two levels of arrays, each row of at least one element (an empty book's `[]` apart).
_BAD_FIGURE: Final = re.compile(rb"[\[,](?!\[|(?:" + _NUMBER + rb"|null)[,\]])")
_BAD_COUNT: Final = re.compile(rb"[\[,](?!\[|(?:" + _INTEGER + rb"|null)[,\]])")
_NEGATIVE_ZERO: Final = re.compile(rb"[:\[,]-0(?:\.0+)?(?:[eE][+-]?[0-9]+)?[,\]}]")
_BRACES: Final = bytes.maketrans(b"[]", b"{}")
_NULL: Final = b"\\N"


def text_row(line: bytes) -> bytes | None:
    """The row of `line` in COPY's text format (no newline), or None: it would go as jsonb."""
    found = _LINE.fullmatch(line)
    if found is None:
        return None
    fields = list(found.groups())
    symbols, figures, counts = (field or b"" for field in fields[-3:])
    if (
        (figures != b"[]" and _BAD_FIGURE.search(figures))
        or (counts != b"[]" and _BAD_COUNT.search(counts))
        or (b"-0" in line and _NEGATIVE_ZERO.search(line))
    ):
        return None
    fields[-3:] = (array.translate(_BRACES) for array in (symbols, figures, counts))
    return b"\t".join(_NULL if field is None else field for field in fields)
