"""The json staging stores a snapshot or explain line as the jsonb staging would, value for
value.

The sink sends a format-3 snapshot or P&L explain line as `json` text when `json_kind` takes
it, and every other line as `jsonb` (database/sink.py). The reference here is the jsonb path as
it always was (its COPY and `INSERT_SNAPSHOTS` or `INSERT_EXPLAINS`, run by hand), not a
computation of this test's own: the same line through each, on the real server, must give the
same row in PostgreSQL's own text of it (so -0 and 0, or a JSON null and SQL NULL, differ), or
be refused by both.
"""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from database.sink import (
    COPY_JSONB,
    INSERT_EXPLAINS,
    INSERT_SNAPSHOTS,
    STAGING,
    RecordSink,
    copy_payload,
    json_kind,
)
from shared import records
from tests import builders

_COLUMNS = """id, ts, account, mode, format_version, currency, net_delta, net_gamma, net_theta,
    net_vega, net_dollar_delta, net_dollar_gamma, net_beta_delta, completeness, net_liquidation,
    unrealized_pnl, daily_pnl, position_count, option_count, options_with_greeks,
    stalest_greek_age_s, underlyings, underlying_symbols, underlying_figures, underlying_counts,
    underlying_completeness, gateway_beta_delta, gateway_beta_delta_benchmark_shares"""
_EXPLAIN_COLUMNS = """account, ts, id, mode, start_ts, currency, actual_pnl, explained_pnl,
    delta_pnl, gamma_pnl, theta_pnl, vega_pnl, linear_pnl, marks, missing, underlying_symbols,
    underlying_rows, position_conids, position_rows, position_missing, position_actual_missing"""
# Per kind: the jsonb path's statement, and the stored rows as PostgreSQL's text of them.
_KINDS = {
    "snapshot": (
        INSERT_SNAPSHOTS,
        f"SELECT r::text FROM (SELECT {_COLUMNS} FROM portfolio_greeks) r",  # noqa: S608
        "DELETE FROM portfolio_greeks",
    ),
    "pnl_explain": (
        INSERT_EXPLAINS,
        f"SELECT r::text FROM (SELECT {_EXPLAIN_COLUMNS} FROM pnl_explain) r",  # noqa: S608
        "DELETE FROM pnl_explain",
    ),
}
_REFUSED = "refused"

# A format-3 line as the collector writes it: partial completeness (ZC's option without Greeks,
# an unsupported warrant), figures of 17 digits and of 9.
_TRADER = records.encode(builders.trader_snapshot())
_EXPLAIN = records.encode(builders.pnl_explain(marks=("input_missing",)))


def _body(line: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(line)
    return body


def _line(body: dict[str, Any]) -> bytes:
    """A line as records.encode writes one: compact, keys in the body's order."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


async def _through_jsonb(
    conn: psycopg.AsyncConnection[Any], line: bytes, kind: str = "snapshot"
) -> list[str] | str:
    """The row the jsonb path stores for `line` (its text), or _REFUSED."""
    insert, rows_as_text, delete = _KINDS[kind]
    try:
        async with conn.transaction():
            await conn.execute(STAGING)
            async with conn.cursor().copy(COPY_JSONB) as copy:
                await copy.write(copy_payload([line]))
            await conn.execute(insert)
            rows = [text for (text,) in await (await conn.execute(rows_as_text)).fetchall()]
            await conn.execute(delete)
    except (psycopg.DataError, psycopg.IntegrityError):
        return _REFUSED
    return rows


async def _through_sink(
    sink: RecordSink, conn: psycopg.AsyncConnection[Any], line: bytes, kind: str = "snapshot"
) -> list[str] | str:
    _, rows_as_text, delete = _KINDS[kind]
    result = await sink.store([line])
    if result.rejected:
        return _REFUSED
    rows = [text for (text,) in await (await conn.execute(rows_as_text)).fetchall()]
    await conn.execute(delete)
    return rows


def _complete(line: bytes) -> bytes:
    """The same line of a book with every figure complete: no completeness written."""
    body = _body(line)
    body.pop("completeness", None)
    body.pop("underlying_completeness", None)
    return _line(body)


def _changed(line: bytes, **changes: Any) -> bytes:
    body = _body(line)
    body.update(changes)
    return _line(body)


def test_the_trader_line_is_a_format_3_snapshot() -> None:
    """The line the properties change is format 3 with partial completeness: the json way, and
    its nested objects."""
    assert _body(_TRADER)["v"] == 3
    assert _body(_TRADER)["completeness"]


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        pytest.param(_TRADER, "snapshot", id="format-3-partial"),
        pytest.param(_complete(_TRADER), "snapshot", id="format-3-complete"),
        pytest.param(builders.snapshot(), None, id="format-1"),
        pytest.param(builders.snapshot_v2(), None, id="format-2"),
        pytest.param(_changed(_TRADER, net_theta=-0.0), None, id="negative-zero"),
        pytest.param(_changed(_TRADER, net_theta=-0.0e5), None, id="negative-zero-exponent"),
        pytest.param(_changed(_TRADER, net_theta=-0.05), "snapshot", id="small-negative"),
        pytest.param(_changed(_TRADER, completeness=None), None, id="null-completeness"),
        pytest.param(
            _changed(_TRADER, underlying_completeness=None), None, id="null-underlying-completeness"
        ),
        pytest.param(_changed(_TRADER, account="DU\x01"), None, id="unicode-escape"),
        pytest.param(
            _TRADER.replace(b'"mode"', b'"kind":"api_log","mode"'), None, id="kind-written-twice"
        ),
        pytest.param(_EXPLAIN, "pnl_explain", id="explain"),
        pytest.param(_changed(_EXPLAIN, missing=None), None, id="explain-null-missing"),
        pytest.param(_changed(_EXPLAIN, theta_pnl=-0.0), None, id="explain-negative-zero"),
        pytest.param(builders.beta(), None, id="beta"),
        pytest.param(builders.api_log("connected"), None, id="api-log"),
        pytest.param(b"not json\n", None, id="not-json"),
    ],
)
def test_which_lines_the_json_staging_takes(line: bytes, kind: str | None) -> None:
    """Only a format-3 snapshot whose kind is read for certain, and nothing in it that json and
    jsonb read differently."""
    assert json_kind(line) == kind


# Each example stores a line twice on the real server (a few ms); the sink fixture is shared by
# the examples, which leave no row behind.
_ON_THE_SERVER = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
_FIGURE_KEYS = [*records.FIGURES, *records.ACCOUNT_VALUES, *records.GATEWAY_FIGURES]
_COUNT_KEYS = ["position_count", "option_count", "options_with_greeks"]
_figures = st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.integers()
_counts = (
    st.none() | st.integers(-(2**33), 2**33) | st.floats(allow_nan=False, allow_infinity=False)
)
_texts = st.none() | st.text(max_size=8) | st.sampled_from(["DU0001", "SOCKET", "PORTAL", "USD"])
_reasons = st.dictionaries(st.text(max_size=6), st.integers(0, 5), max_size=2)
_completeness = st.none() | st.dictionaries(
    st.sampled_from(records.FIGURES),
    st.fixed_dictionaries(
        {"contributing": st.integers(0, 9), "missing": st.integers(0, 9), "reasons": _reasons}
    ),
    max_size=2,
)


@st.composite
def _snapshot_lines(draw: st.DrawFn) -> bytes:
    """A format-3 snapshot line with some of its values changed, keys kept in their order:
    figures of any size or sign (negative zero too), counts past `integer`, strings of any
    character, arrays ragged or not, completeness null or partial."""
    body = _body(draw(st.sampled_from([_TRADER, _complete(_TRADER)])))
    width = draw(st.integers(0, 3))
    rows = st.lists(st.lists(_figures, min_size=width, max_size=width), max_size=3)
    changes = {
        **{key: _figures for key in _FIGURE_KEYS},
        **{key: _counts for key in _COUNT_KEYS},
        "account": _texts,
        "mode": _texts,
        "currency": _texts,
        "stalest_greek_age_s": _figures,
        "completeness": _completeness,
        "underlying_completeness": st.none() | st.dictionaries(st.text(max_size=4), _completeness),
        "underlying_symbols": st.none() | st.lists(st.none() | st.text(max_size=5), max_size=3),
        "underlying_figures": st.none() | rows,
        "underlying_counts": st.none() | st.lists(st.lists(_counts, min_size=3, max_size=3)),
    }
    for key in draw(st.lists(st.sampled_from(sorted(changes)), max_size=4, unique=True)):
        body[key] = draw(changes[key])
    return _line(body)


@settings(_ON_THE_SERVER, max_examples=150)
@given(line=_snapshot_lines())
@example(line=_changed(_TRADER, net_theta=-0.0))
@example(line=_changed(_TRADER, underlying_figures=[[-0.0, 1.5], [None, -0.0e-3]]))
@example(line=_changed(_TRADER, completeness=None))
async def test_either_staging_stores_a_snapshot_line_the_same(
    sink: RecordSink, database_url: str, line: bytes
) -> None:
    """The same row through the sink (json when json_kind takes the line) as through the jsonb
    path alone, or refused by both."""
    await sink.connect()  # the schema
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        reference = await _through_jsonb(conn, line)
        stored = await _through_sink(sink, conn, line)
    assert stored == reference, (json_kind(line), line)


async def test_a_count_written_with_an_exponent_is_refused_by_json_only(
    sink: RecordSink, database_url: str
) -> None:
    """The one difference left (sink.py): jsonb reads 4e1 as 40, json refuses it as an
    integer. `records.encode` writes counts as integers, so only another writer's line meets
    it, and it is refused (dead-lettered by the writer), not stored wrong."""
    line = re.sub(rb'"position_count":[0-9]+', b'"position_count":4e1', _complete(_TRADER))
    assert json_kind(line) == "snapshot"
    await sink.connect()  # the schema
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        assert await _through_jsonb(conn, line) != _REFUSED
        assert await _through_sink(sink, conn, line) == _REFUSED


@st.composite
def _explain_lines(draw: st.DrawFn) -> bytes:
    """A P&L explain line with some of its values changed, keys kept in their order."""
    body = _body(_EXPLAIN)
    width = draw(st.integers(0, 7))
    rows = st.lists(st.lists(_figures, min_size=width, max_size=width), max_size=3)
    names = st.none() | st.lists(st.none() | st.text(max_size=5), max_size=3)
    figures = ["actual_pnl", "explained_pnl", "delta_pnl", "gamma_pnl", "theta_pnl", "vega_pnl"]
    changes = {
        **{key: _figures for key in [*figures, "linear_pnl"]},
        "account": _texts,
        "currency": _texts,
        "marks": names,
        "missing": st.none() | st.dictionaries(st.text(max_size=6), st.integers(0, 5)),
        "underlying_symbols": names,
        "underlying_rows": st.none() | rows,
        "position_conids": st.none() | st.lists(st.none() | st.integers(-(2**64), 2**64)),
        "position_rows": st.none() | rows,
        "position_missing": names,
        "position_actual_missing": names,
    }
    for key in draw(st.lists(st.sampled_from(sorted(changes)), max_size=4, unique=True)):
        body[key] = draw(changes[key])
    return _line(body)


@settings(_ON_THE_SERVER, max_examples=100)
@given(line=_explain_lines())
@example(line=_changed(_EXPLAIN, missing=None))
@example(line=_changed(_EXPLAIN, underlying_rows=[[-0.0, 1, 2, 3, 4, 5]]))
async def test_either_staging_stores_an_explain_line_the_same(
    sink: RecordSink, database_url: str, line: bytes
) -> None:
    """The same explain row through the sink as through the jsonb path alone, or refused by
    both."""
    await sink.connect()  # the schema
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        reference = await _through_jsonb(conn, line, "pnl_explain")
        stored = await _through_sink(sink, conn, line, "pnl_explain")
    assert stored == reference, (json_kind(line), line)


@pytest.mark.parametrize(
    ("poison", "sqlstate"),
    [
        pytest.param({"ts": "2026-02-30T00:00:00+00:00"}, "22008", id="impossible-date-in-copy"),
        pytest.param({"mode": "FIX"}, "23514", id="check-violation-in-insert"),
        pytest.param({"position_count": 2**40}, "22003", id="count-past-integer"),
    ],
)
async def test_a_poison_line_among_json_lines_is_rejected_alone(
    sink: RecordSink, database_url: str, poison: dict[str, object], sqlstate: str
) -> None:
    """A bad format-3 line in a batch of them (the json staging's COPY or INSERT fails) is
    isolated by the halving like any other, with the server's reason; the rest are stored."""
    lines = [records.encode(builders.trader_snapshot(f"DU{n:04d}")) for n in range(9)]
    bad = _changed(lines[4], **poison)
    assert {json_kind(line) for line in [*lines, bad]} == {"snapshot"}
    result = await sink.store([*lines[:4], bad, *lines[5:]])
    assert result.stored == 8
    assert [line for line, _ in result.rejected] == [bad]
    assert result.rejected[0][1].startswith(sqlstate)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM portfolio_greeks")).fetchone()
    assert row == (8,)
