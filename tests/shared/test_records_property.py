"""Any bytes at all into the record parser: a valid record or RecordError, never anything else.

The writer dead-letters a line on RecordError and goes on; any other exception would crash it
on that line for ever. Hypothesis feeds arbitrary bytes, valid lines with bytes changed, and
JSON objects with the right keys and wrong values.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import records
from shared.errors import RecordError
from tests import builders

_VALID = [
    records.encode(builders.pnl_explain(marks=("input_missing",))),
    builders.snapshot(),
    records.encode(builders.trader_snapshot()),
    builders.api_log(code=1100),
]
_KEYS = sorted({key for line in _VALID for key in json.loads(line)})

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from(["SOCKET", "snapshot", "api_log", "info", "2026-03-02T14:30:00+00:00"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=10,
)


@st.composite
def _mutated_lines(draw: st.DrawFn) -> bytes:
    line = bytearray(draw(st.sampled_from(_VALID)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(line)))
        if draw(st.booleans()) and at < len(line):
            line[at] = draw(st.integers(0, 255))
        else:
            line[at:at] = draw(st.binary(min_size=1, max_size=4))
    return bytes(line)


@st.composite
def _wrong_values(draw: st.DrawFn) -> bytes:
    body: dict[str, Any] = json.loads(draw(st.sampled_from(_VALID)))
    for key in draw(st.lists(st.sampled_from(_KEYS), min_size=1, max_size=3)):
        body[key] = draw(_json_values)
    return json.dumps(body, allow_nan=True).encode()


_NASTY = [
    b'{"v":1,"kind":"snapshot","account":"\xed\xa0\x80"}\n',  # UTF-8-encoded surrogate
    b"[" * 1000 + b"]" * 1000 + b"\n",  # deeper than the parser's recursion limit
    b'{"v":1,"kind":"api_log","message":"\\ud800"}\n',  # an escaped lone surrogate
    b"\xff\xfe{\x00}\x00",  # what json.loads(bytes) would guess is UTF-16
    b'{"v":1,"net_delta":' + b"9" * 5000 + b"}",  # past int's digit limit
]


def _check(line: bytes) -> None:
    outcome: records.Record | RecordError
    try:
        outcome = records.decode(line)
    except RecordError as exc:
        outcome = exc
    if isinstance(outcome, RecordError):
        assert outcome.reason
        # The writer's check refuses what decode refuses, for the same reason.
        with pytest.raises(RecordError) as refused:
            records.checked_account(line)
        assert refused.value.reason == outcome.reason
    else:
        by_account = records.Snapshot | records.ExpiryGreeks | records.Legs | records.PnlExplain
        expected = outcome.account if isinstance(outcome, by_account) else None
        assert records.checked_account(line) == expected
        assert isinstance(outcome, records.Snapshot | records.ApiLog | records.PnlExplain)
        assert records.decode(records.encode(outcome)) == outcome


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | _mutated_lines() | _wrong_values() | st.sampled_from(_NASTY))
def test_any_bytes_give_a_record_or_a_record_error(line: bytes) -> None:
    """Any bytes (random, mutated lines, wrong values, nasty cases) decode to a record or raise
    RecordError, never anything else."""
    _check(line)


def test_the_nasty_lines_are_record_errors() -> None:
    """The lines that crashed the writer before are each refused with a reason."""
    for line in _NASTY:
        with pytest.raises(RecordError):
            records.decode(line)
