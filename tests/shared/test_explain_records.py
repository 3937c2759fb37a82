"""The pnl_explain record kind: its line round-trips, and a line that breaks its rules is
refused with a reason (the writer quarantines it and goes on)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import records
from shared.errors import RecordError
from tests import builders

_money = st.none() | st.floats(allow_nan=False, allow_infinity=False, width=64)


def test_an_explain_round_trips_through_its_line() -> None:
    """Every field comes back as it was written, its id derived from account and end."""
    record = builders.pnl_explain()
    assert records.decode(records.encode(record)) == record
    assert record.id == records.explain_id("DU0001", record.ts)
    # It goes with its account's snapshots, on the writer's connection for that account.
    assert records.checked_account(records.encode(record)) == "DU0001"


def _unstated_future() -> records.PnlExplain:
    """The builder's explain whose future (conid 495512563) is in another currency than the
    base: its own P&L change is unknown, and says why."""
    record = builders.pnl_explain()
    option, future = record.position_rows
    return replace(
        record,
        position_rows=(option, (*future[:-1], None)),
        position_actual_missing=(None, "pnl_currency_unstated"),
    )


def test_a_positions_reason_for_an_unknown_actual_round_trips() -> None:
    """`position_actual_missing` comes back as written; a line without any reason leaves the
    key out, so it is the line it was before migration 014."""
    record = _unstated_future()
    assert records.decode(records.encode(record)) == record
    assert json.loads(records.encode(record))["position_actual_missing"] == [
        None,
        "pnl_currency_unstated",
    ]
    assert "position_actual_missing" not in json.loads(records.encode(builders.pnl_explain()))


@given(
    actual=_money,
    explained=_money,
    marks=st.lists(st.sampled_from(records.EXPLAIN_MARKS), min_size=1, unique=True),
    rows=st.lists(st.tuples(*[_money] * len(records.EXPLAIN_POSITION_ROW)), max_size=4),
)
def test_any_marked_explain_round_trips(
    actual: float | None,
    explained: float | None,
    marks: list[str],
    rows: list[tuple[float | None, ...]],
) -> None:
    """Property: a marked interval with any sums (known or not) and any position rows reads
    back equal to what was written."""
    record = replace(
        builders.pnl_explain(actual=actual, explained=explained, marks=tuple(marks)),
        position_conids=tuple(range(len(rows))),
        position_rows=tuple(rows),
        position_missing=(None,) * len(rows),
    )
    assert records.decode(records.encode(record)) == record


def _line(**changes: object) -> bytes:
    body = json.loads(records.encode(builders.pnl_explain()))
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_line(marks=["late"]), "unknown mark 'late'"),
        (_line(marks=["input_missing", "input_missing"]), "a mark is repeated"),
        (_line(actual_pnl=None), "an unmarked (scored) interval needs actual_pnl"),
        (_line(missing={"no_greek": 1}), "missing inputs without the input_missing mark"),
        (_line(start_ts="2026-03-02T14:31:00+00:00"), "start_ts is not before ts"),
        (_line(start_ts=None), "start_ts is missing"),
        (_line(underlying_symbols=[]), "underlying_rows and underlying_symbols differ"),
        (_line(position_missing=[None]), "position_rows, position_conids and position_missing"),
        (_line(underlying_rows=[[1.0, 2.0]]), "a row has 2 values, not 6"),
        (_line(position_rows=[["x"] * 7, [None] * 7]), "position_rows: a value is not a number"),
        (_line(position_rows=[[None] * 6, [None] * 7]), "a row has 6 values, not 7"),
        (_line(position_conids=[1, "2"]), "position_conids is not a list of integers"),
        (_line(marks="input_missing"), "marks is not a list of strings"),
        (_line(missing={"no_greek": -1}), "no_greek is missing or not a count"),
        (_line(delta_pnl="12"), "delta_pnl is not a number or null"),
        (_line(v=2), "unknown kind 'pnl_explain'"),
        (_line(position_actual_missing=["guessed", None]), "position_actual_missing is not a list"),
        (_line(position_actual_missing=["no_fx_rate"]), "position_actual_missing and position_c"),
        (_line(position_actual_missing=["no_fx_rate", None]), "a position with an actual_pnl has"),
    ],
)
def test_invalid_explain_lines_are_refused_with_a_reason(line: bytes, reason: str) -> None:
    """Each broken rule is named; encode refuses the same record before it reaches a line."""
    with pytest.raises(RecordError, match=None) as refused:
        records.decode(line)
    assert reason in refused.value.reason


def test_encoding_refuses_an_explain_that_breaks_its_rules() -> None:
    """The collector cannot write what the writer would refuse."""
    record = builders.pnl_explain()
    with pytest.raises(RecordError, match="start_ts is not before ts"):
        records.encode(replace(record, start_ts=record.ts + timedelta(seconds=1)))
