"""Record encoding and validation: pure, tested with plain values."""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared import records
from shared.errors import RecordError
from tests import builders


def test_snapshot_round_trips_through_its_line() -> None:
    """Encoding then decoding gives the same snapshot, nulls kept as nulls."""
    line = builders.snapshot("DU42", tick=3, net_delta=None)
    decoded = records.decode(line)
    assert isinstance(decoded, records.Snapshot)
    assert decoded.net_delta is None
    assert decoded.net_vega is None
    assert decoded.ts == builders.EPOCH + timedelta(seconds=15)
    assert records.encode(decoded) == line


def test_snapshot_id_is_derived_from_account_and_tick() -> None:
    """The same account and tick always give the same id; another account or tick does not."""
    tick = datetime(2026, 5, 1, 13, 0, 5, tzinfo=UTC)
    same_instant_elsewhere = tick.astimezone(timezone(timedelta(hours=-4)))
    assert records.snapshot_id("U1", tick) == records.snapshot_id("U1", same_instant_elsewhere)
    assert records.snapshot_id("U1", tick) != records.snapshot_id("U2", tick)
    assert records.snapshot_id("U1", tick) != records.snapshot_id("U1", tick + timedelta(seconds=5))


def test_encoding_refuses_values_json_cannot_carry() -> None:
    """NaN is not silently written as a number: unknown Greeks must be None."""
    snapshot = records.decode(builders.snapshot())
    assert isinstance(snapshot, records.Snapshot)
    broken = dataclasses.replace(snapshot, net_gamma=math.nan)
    with pytest.raises(RecordError, match="not encodable"):
        records.encode(broken)


def _changed(**changes: object) -> bytes:
    body = json.loads(builders.snapshot())
    body.update(changes)
    return json.dumps(body).encode()


def _without(name: str) -> bytes:
    body = json.loads(builders.snapshot())
    del body[name]
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"\xff\xfe", "not JSON"),
        (_changed(v=2), "unsupported format version 2"),
        (_changed(kind="order"), "unknown kind 'order'"),
        (_changed(id="42"), "id is missing or not a UUID"),
        (_without("ts"), "ts is missing or not a string"),
        (_changed(ts="yesterday"), "ts 'yesterday' is not an ISO 8601 timestamp"),
        (_changed(ts="2026-03-02T14:30:00"), "ts has no time zone"),
        (_changed(account=""), "account is missing or not a string"),
        (_changed(mode="FIX"), "mode 'FIX' is not SOCKET or PORTAL"),
        (_changed(net_delta="12"), "net_delta is not a number or null"),
        (_changed(net_delta=True), "net_delta is not a number or null"),
        (_changed(position_count=-1), "position_count is missing or not a count"),
        (_changed(options_with_greeks=3), "options_with_greeks exceeds option_count"),
        (_changed(underlyings=[]), "underlyings is not an object"),
        (_changed(account="DU\x00"), "contains a NUL character"),
    ],
)
def test_invalid_snapshot_lines_are_refused_with_a_reason(line: bytes, reason: str) -> None:
    """Each kind of bad line gets a precise reason for the dead-letter file."""
    with pytest.raises(RecordError) as raised:
        records.decode(line)
    assert raised.value.reason.startswith(reason)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"level": "fatal"}, "level 'fatal' is not one of"),
        ({"code": "2104"}, "code is not an integer or null"),
        ({"details": "x"}, "details is not an object"),
        ({"event": None}, "event is missing or not a string"),
    ],
)
def test_invalid_api_log_lines_are_refused_with_a_reason(
    changes: dict[str, object], reason: str
) -> None:
    """api_log lines are validated as strictly as snapshots."""
    body = json.loads(builders.api_log())
    body.update(changes)
    with pytest.raises(RecordError) as raised:
        records.decode(json.dumps(body).encode())
    assert raised.value.reason.startswith(reason)


def test_api_log_ids_are_unique() -> None:
    """Two events at the same instant are two rows."""
    first = records.new_api_log(
        ts=builders.EPOCH, mode="PORTAL", level="warning", event="x", message=""
    )
    second = records.new_api_log(
        ts=builders.EPOCH, mode="PORTAL", level="warning", event="x", message=""
    )
    assert first.id != second.id
    assert isinstance(first.id, uuid.UUID)
