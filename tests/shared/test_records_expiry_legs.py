"""The `expiry` and `legs` record kinds: their lines round-trip, and bad input is refused with
a reason (tables, and Hypothesis for values of any JSON type in any of their places)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import records
from shared.errors import RecordError
from tests import builders

TS = builders.EXPIRY.ts
EXPIRY, LEGS, PUT = builders.EXPIRY, builders.LEGS, builders.PUT


def test_expiry_round_trips_and_writes_only_what_is_incomplete() -> None:
    """Decoding the line gives the record back; a complete scope (AAPL) writes no
    completeness, an incomplete one (SPY, the total) does, and an unknown line is left out."""
    line = records.encode(EXPIRY)
    assert records.decode(line) == EXPIRY
    body = json.loads(line)
    assert body["kind"] == "expiry"
    assert set(body["underlying_completeness"]) == {"SPY"}
    assert body["underlying_linear"] == [20_000.0, None]
    assert body["underlying_counts"] == [[3, 2], [1, 1]]
    assert "linear_dollar_delta" in body
    assert records.checked_account(line) == "DU1"  # spread by the writer with its snapshots


def test_legs_round_trip_as_arrays_in_leg_fields_order() -> None:
    """One array per leg, in LEG_FIELDS order, the expiry as an ISO date."""
    line = records.encode(LEGS)
    assert records.decode(line) == LEGS
    body = json.loads(line)
    assert body["legs"][0][records.LEG_FIELDS.index("expiry")] == "2026-04-11"
    assert body["legs"][1][records.LEG_FIELDS.index("missing_reason")] == "no_price"
    assert len(body["legs"][0]) == len(records.LEG_FIELDS)
    assert records.checked_account(line) == "DU1"  # spread by the writer with its snapshots


def _expiry(**changes: Any) -> bytes:
    body = json.loads(records.encode(EXPIRY))
    body.update(changes)
    return json.dumps(body).encode()


def _legs(leg: list[Any] | None = None, **changes: Any) -> bytes:
    body = json.loads(records.encode(LEGS))
    if leg is not None:
        body["legs"] = [leg]
    body.update(changes)
    return json.dumps(body).encode()


_PUT_ROW = json.loads(records.encode(LEGS))["legs"][0]


def _put(**changes: Any) -> list[Any]:
    return [
        changes.get(name, value) for name, value in zip(records.LEG_FIELDS, _PUT_ROW, strict=True)
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_expiry(bucket_figures=[[1, 2, 3, 4]] * 4), "bucket_figures is not 5 rows of 4"),
        (_expiry(bucket_figures=[[1, 2, 3]] * 5), "bucket_figures is not 5 rows of 4"),
        (_expiry(bucket_figures=[[1, 2, 3, "x"]] * 5), "net_vega is not a number"),
        (_expiry(linear_dollar_delta="1"), "linear_dollar_delta is not a number"),
        (_expiry(option_count=9), "option_count exceeds position_count"),
        (_expiry(position_count=-1), "position_count is missing or not a count"),
        (_expiry(completeness={"net_rho": None}), "unknown figure 'net_rho'"),
        (_expiry(completeness=[]), "completeness is not an object"),
        (_expiry(currency=""), "currency is not a currency code"),
        (_expiry(underlying_symbols=["AAPL"]), "differ in length"),
        (_expiry(underlying_symbols=["AAPL", "AAPL"]), "names a symbol twice"),
        (_expiry(underlying_symbols=["AAPL", 3]), "not a symbol"),
        (_expiry(underlying_linear=None), "must be arrays"),
        (_expiry(underlying_counts=[[3, 2], [1]]), "SPY counts are not"),
        (_expiry(underlying_counts=[[3, 2], [1, -1]]), "SPY option_count is missing or not"),
        (_expiry(underlying_completeness={"QQQ": {}}), "names a symbol that is not held"),
        (_expiry(v=2), "unknown kind 'expiry'"),
        (_expiry(mode="FIX"), "mode 'FIX'"),
        (_legs(legs={}), "legs is not an array"),
        (_legs(_put()[:-1]), "leg 0 is not 21 values"),
        (_legs(_put(conid=0)), "conid is not a contract id"),
        (_legs(_put(conid=True)), "conid is not a contract id"),
        (_legs(_put(symbol="")), "symbol is missing"),
        (_legs(_put(strike="200")), "strike is not a number"),
        (_legs(_put(expiry="2026-02-30")), "expiry is not a date"),
        (_legs(_put(expiry=20260411)), "expiry is not a date"),
        (_legs(_put(option_right="CALL")), "option_right is not C, P or null"),
        (_legs(_put(missing_reason=3)), "missing_reason is not a reason"),
        (_legs(legs=[_put(), _put()]), "names a conid twice"),
    ],
)
def test_bad_lines_are_refused_with_a_reason(line: bytes, reason: str) -> None:
    """Each bad value is refused, and the reason names it."""
    with pytest.raises(RecordError, match=reason):
        records.decode(line)
    with pytest.raises(RecordError, match=reason):
        records.checked_account(line)


_VALID = [records.encode(EXPIRY), records.encode(LEGS)]
_KEYS = sorted({key for line in _VALID for key in json.loads(line)})
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    | st.sampled_from(["AAPL", "C", "2026-04-11", "no_expiry", "net_theta"]),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(), children),
    max_leaves=30,
)  # fmt: skip


@st.composite
def _wrong_values(draw: st.DrawFn) -> bytes:
    body: dict[str, Any] = json.loads(draw(st.sampled_from(_VALID)))
    for key in draw(st.lists(st.sampled_from(_KEYS), min_size=1, max_size=3)):
        body[key] = draw(_values)
    rows = body.get("legs")
    first = rows[0] if isinstance(rows, list) and rows else None
    if isinstance(first, list) and first and draw(st.booleans()):  # a wrong value in a leg
        leg = list(first)
        leg[draw(st.integers(0, len(leg) - 1))] = draw(_values)
        body["legs"] = [leg]
    return json.dumps(body, allow_nan=True).encode()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_wrong_values())
def test_any_wrong_value_gives_a_record_or_a_reason(line: bytes) -> None:
    """Whatever value stands anywhere in an expiry or legs line: a record that encodes back to
    itself, or RecordError with a reason (never another exception, which would stop the
    writer on that line)."""
    outcome: records.Record | RecordError
    try:
        outcome = records.decode(line)
    except RecordError as exc:
        outcome = exc
    if isinstance(outcome, RecordError):
        assert outcome.reason
        return
    record = outcome
    assert isinstance(record, records.ExpiryGreeks | records.Legs | records.Snapshot)
    assert records.decode(records.encode(record)) == record
