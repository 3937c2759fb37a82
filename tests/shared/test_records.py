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
        (_changed(v=4), "unsupported format version 4"),
        (_changed(v=True), "unsupported format version True"),
        (_changed(kind="beta"), "unknown kind 'beta'"),  # betas exist from format 2 on
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


def test_format_2_snapshot_round_trips_with_its_new_fields() -> None:
    """Base currency, dollar gamma, beta delta, completeness and account values survive."""
    line = builders.snapshot_v2("DU42", tick=1, daily_pnl=None)
    decoded = records.decode(line)
    assert isinstance(decoded, records.Snapshot)
    assert (decoded.version, decoded.currency, decoded.net_beta_delta) == (2, "EUR", 280.5)
    assert decoded.completeness == {
        "net_beta_delta": {"contributing": 2, "missing": 1, "reasons": {"no_beta": 1}}
    }
    assert (decoded.net_liquidation, decoded.daily_pnl) == (1_000_000.0, None)
    assert records.encode(decoded) == line


def test_format_2_has_no_account_level_share_equivalents() -> None:
    """net_delta and net_gamma are not written at account level in format 2, and not read."""
    body = json.loads(builders.snapshot_v2())
    assert "net_delta" not in body
    assert "net_gamma" not in body
    body["net_delta"] = 374.4
    decoded = records.decode(json.dumps(body).encode())
    assert isinstance(decoded, records.Snapshot)
    assert decoded.net_delta is None


def test_format_1_lines_still_decode_as_format_1() -> None:
    """A line from an old spool or buffer keeps its meaning: version 1, its net_delta kept."""
    decoded = records.decode(builders.snapshot(net_delta=7.0))
    assert isinstance(decoded, records.Snapshot)
    assert (decoded.version, decoded.net_delta, decoded.currency) == (1, 7.0, None)


def _changed_v2(**changes: object) -> bytes:
    body = json.loads(builders.snapshot_v2())
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_changed_v2(currency=5), "currency is not a currency code or null"),
        (_changed_v2(currency=""), "currency is not a currency code or null"),
        (_changed_v2(completeness=[]), "completeness is not an object"),
        (_changed_v2(net_beta_delta="1"), "net_beta_delta is not a number or null"),
        (_changed_v2(net_dollar_gamma=True), "net_dollar_gamma is not a number or null"),
        (_changed_v2(daily_pnl="12"), "daily_pnl is not a number or null"),
    ],
)
def test_invalid_format_2_snapshots_are_refused_with_a_reason(line: bytes, reason: str) -> None:
    """A format-2 snapshot with a field of the wrong type is refused; the reason names the field."""
    with pytest.raises(RecordError) as raised:
        records.decode(line)
    assert raised.value.reason.startswith(reason)


def test_beta_round_trips_and_its_id_is_one_per_underlying_benchmark_and_day() -> None:
    """A beta line decodes to what was encoded, and its id is the same for one underlying, benchmark
    and day, different otherwise."""
    line = builders.beta("AAPL", value=1.25)
    decoded = records.decode(line)
    assert isinstance(decoded, records.Beta)
    assert (decoded.underlying, decoded.benchmark, decoded.beta) == ("AAPL", "SPY", 1.25)
    assert (decoded.as_of, decoded.sample_size, decoded.source) == (
        builders.EPOCH.date(),
        250,
        "history",
    )
    assert records.encode(decoded) == line
    day = builders.EPOCH.date()
    assert records.beta_id("AAPL", "SPY", day) == records.beta_id("AAPL", "SPY", day)
    assert records.beta_id("AAPL", "SPY", day) != records.beta_id("AAPL", "QQQ", day)
    assert records.beta_id("AAPL", "SPY", day) != records.beta_id(
        "AAPL", "SPY", day + timedelta(days=1)
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"beta": None}, "beta is missing"),
        ({"beta": "1.1"}, "beta is not a number or null"),
        ({"as_of": "someday"}, "as_of is missing or not a date"),
        ({"as_of": None}, "as_of is missing or not a date"),
        ({"sample_size": -3}, "sample_size is missing or not a count"),
        ({"source": "guess"}, "source 'guess' is not one of history, file"),
        ({"underlying": ""}, "underlying is missing or not a string"),
    ],
)
def test_invalid_beta_lines_are_refused_with_a_reason(
    changes: dict[str, object], reason: str
) -> None:
    """A beta line with a field missing or of the wrong type is refused, the reason naming the
    field."""
    body = json.loads(builders.beta())
    body.update(changes)
    with pytest.raises(RecordError) as raised:
        records.decode(json.dumps(body).encode())
    assert raised.value.reason.startswith(reason)


def test_format_3_round_trips_every_figure_count_and_reason() -> None:
    """A snapshot as the collector makes it comes back from its format-3 line whole: every
    figure at full precision, every count and reason, at account level and per underlying."""
    snapshot = builders.trader_snapshot()
    decoded = records.decode(records.encode(snapshot))
    assert decoded == snapshot
    assert records.checked_account(records.encode(snapshot)) == "DU0001"


def test_format_3_writes_only_what_is_not_complete_and_leaves_unknowns_out() -> None:
    """Complete figures carry no completeness; an unknown figure is left out, not null; the
    underlyings are three parallel arrays."""
    body = json.loads(records.encode(builders.trader_snapshot()))
    assert body["v"] == 3
    assert "unrealized_pnl" not in body  # unknown
    assert "underlyings" not in body
    assert body["underlying_symbols"] == ["SPY", "ZC"]
    assert body["underlying_counts"] == [[4, 3, 3], [2, 2, 1]]
    assert body["underlying_figures"][1] == [9_000.125, 12.5, -7.25, 30.0, None, 2.0, 0.5]
    assert set(body["underlying_completeness"]) == {"ZC"}  # SPY is complete
    assert set(body["completeness"]) == set(records.FIGURES)  # each misses the warrant


def test_format_3_completeness_left_unstated_is_not_read_as_complete() -> None:
    """A record that states no completeness for a figure reads back without one, never as a
    'complete' nobody said."""
    snapshot = dataclasses.replace(builders.trader_snapshot(), completeness={})
    decoded = records.decode(records.encode(snapshot))
    assert isinstance(decoded, records.Snapshot)
    assert decoded.completeness == {}


def _v3(**changes: object) -> bytes:
    body = json.loads(records.encode(builders.trader_snapshot()))
    body.update(changes)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_v3(underlying_symbols=["SPY"]), "differ in length"),
        (_v3(underlying_symbols="SPY,ZC"), "must be arrays"),
        (_v3(underlying_symbols=["SPY", "SPY"]), "names a symbol twice"),
        (_v3(underlying_symbols=["SPY", ""]), "not a symbol"),
        (_v3(underlying_figures=[[1.0] * 7, [1.0] * 6]), "underlying_figures of ZC is not 7"),
        (_v3(underlying_figures=[[1.0] * 7, [1.0] * 6 + ["1"]]), "ZC net_gamma is not a number"),
        (_v3(underlying_figures=[[1.0] * 7, [True] * 7]), "ZC net_dollar_delta is not a number"),
        (_v3(underlying_counts=[[4, 3, 3], [2, -1, 1]]), "not a count"),
        (_v3(underlying_counts=[[4, 3, 3], [2, 2.0, 1]]), "not a count"),
        (_v3(underlying_completeness={"QQQ": {}}), "names a symbol that is not held"),
        (_v3(underlying_completeness={"ZC": {"delta": {}}}), "unknown figure 'delta'"),
        (_v3(completeness={"net_theta": 3}), "completeness of net_theta is not an object"),
        (_v3(completeness={"net_theta": {"rounding_bound": -1}}), "rounding_bound is not"),
        (_v3(completeness={"net_theta": {"rounding_bound": "1"}}), "rounding_bound is not"),
        (_v3(completeness={"net_theta": {"imprecise": 1}}), "imprecise is not true"),
        (_v3(completeness={"net_theta": {"market_data": {"delayed": 0}}}), "market_data is not"),
        (_v3(completeness={"net_dollar_gamma": {"recomputed": 0}}), "recomputed is not"),
        (_v3(completeness={"net_dollar_gamma": {"recomputed": 1.0}}), "recomputed is not"),
        (_v3(completeness={"net_dollar_gamma": {"model_disagrees": -1}}), "model_disagrees is"),
        (
            _v3(underlying_completeness={"ZC": {"net_gamma": {"market_data": ["delayed"]}}}),
            "completeness of ZC of net_gamma: market_data is not",
        ),
    ],
)
def test_invalid_format_3_snapshots_are_refused_with_a_reason(line: bytes, reason: str) -> None:
    """Each malformed part of a format-3 line is refused, by decode and by the writer's check
    alike, with a reason naming it."""
    with pytest.raises(RecordError, match=reason):
        records.decode(line)
    with pytest.raises(RecordError, match=reason):
        records.checked_account(line)


def test_format_3_refuses_an_underlying_key_it_cannot_carry() -> None:
    """A figure format 3 has no place for is refused at encoding, never silently dropped."""
    snapshot = builders.trader_snapshot()
    odd = {**snapshot.underlyings, "SPY": {**snapshot.underlyings["SPY"], "net_rho": 1.0}}
    with pytest.raises(RecordError, match="unknown keys: net_rho"):
        records.encode(dataclasses.replace(snapshot, underlyings=odd))


@pytest.mark.parametrize(
    ("figure", "expected"),
    [
        ("net_dollar_delta", 7),  # every position counts in dollar delta
        ("net_beta_delta", 7),
        ("net_dollar_gamma", 5),  # the options count in gamma, theta and vega
        ("net_theta", 5),
        ("net_vega", 5),
    ],
)
def test_a_complete_figure_counts_every_position_it_counts(figure: str, expected: int) -> None:
    """Complete means each counted position contributed: 7 positions of which 5 options."""
    assert records.complete_counts(figure, 7, 5) == {
        "contributing": expected,
        "missing": 0,
        "reasons": {},
    }


def test_format_3_carries_the_gateways_beta_delta_and_precision_only_when_known() -> None:
    """A PORTAL snapshot with the gateway's beta delta and a figure's rounding bound and
    market data comes back whole; a snapshot without them writes neither key, so a SOCKET line
    is as long as before."""
    plain = builders.trader_snapshot()
    completeness = {
        **plain.completeness,  # type: ignore[dict-item]
        "net_dollar_gamma": {
            "contributing": 2, "missing": 1, "reasons": {"unsupported_type": 1},
            "rounding_bound": 12.5, "imprecise": True, "market_data": {"delayed": 2},
        },
    }  # fmt: skip
    portal = dataclasses.replace(
        plain,
        gateway_beta_delta=-1.25,
        gateway_beta_delta_benchmark_shares=-12.4,
        completeness=completeness,
    )
    assert records.decode(records.encode(portal)) == portal
    body = json.loads(records.encode(portal))
    assert (body["gateway_beta_delta"], body["gateway_beta_delta_benchmark_shares"]) == (
        -1.25,
        -12.4,
    )
    assert body["completeness"]["net_dollar_gamma"]["rounding_bound"] == 12.5
    assert not {"gateway_beta_delta", "gateway_beta_delta_benchmark_shares"} & set(
        json.loads(records.encode(plain))
    )


@pytest.mark.parametrize(
    ("name", "value", "stated"),
    [
        ("net_dollar_delta", -469_068.8646120631, -469_068.86),  # money: to the cent
        ("net_theta", 0.0123456, 0.01),
        ("net_liquidation", 12_345_678.987, 12_345_679.0),  # from $10M: 9 digits
        ("net_delta", 724.8964978493899, 724.896498),  # share-equivalents: 9 digits
        ("net_gamma", 0.012345678901234567, 0.0123456789),
        ("net_beta_delta", -2522.449687, -2522.44969),
        ("net_vega", 0.0, 0.0),
        ("net_vega", None, None),  # unknown stays unknown
    ],
)
def test_a_snapshot_states_money_to_the_cent_and_shares_to_9_digits(
    name: str, value: float | None, stated: float | None
) -> None:
    """`kept`: what the collector states of each figure (docs/scaling.md, "Lean snapshots"),
    never None for a known figure nor a figure for an unknown one."""
    assert records.kept(name, value) == stated


@pytest.mark.parametrize(
    ("name", "value", "decimals"),
    [
        ("net_dollar_delta", -469_068.86, 2),  # money: the cent
        ("net_theta", 0.0123456, 2),  # the cent, though 9 digits would give 10
        ("net_liquidation", 12_345_678.987, 1),  # 8 digits before the point: 9 - 8
        ("net_liquidation", 1.5e10, -2),  # 11 digits: to the hundred
        ("net_delta", 724.89649, 6),  # share-equivalents: 9 digits, 3 before the point
        ("net_gamma", 0.0123456789, 10),  # the first digit is the 2nd decimal
        ("net_beta_delta", -2522.44969, 5),
    ],
)
def test_the_decimals_a_figure_is_stated_to(name: str, value: float, decimals: int) -> None:
    """`stated_decimals`: the rounding `kept` applies, worked by hand."""
    assert records.stated_decimals(name, value) == decimals


@pytest.mark.parametrize("value", [-0.001, -0.0049, -0.0])
def test_a_figure_that_rounds_to_zero_is_stated_as_zero_not_negative_zero(value: float) -> None:
    """A theta of -$0.001 is stated as 0.0, never "-0.0": PostgreSQL's jsonb stores +0 either
    way, but the writer sends a line with a negative zero the slower way (database/sink.py)."""
    stated = records.kept("net_theta", value)
    assert stated == 0.0
    assert stated is not None
    assert math.copysign(1.0, stated) == 1.0
    assert b"-0" not in json.dumps(stated).encode()
