"""The TWS wire format and request parsing, as tables: no sockets, no model."""

from __future__ import annotations

import pytest

from simulator.tws.requests import (
    CancelMktData,
    ContractSpec,
    MalformedRequest,
    ReqAccountSummary,
    ReqAccountUpdates,
    ReqAccountUpdatesMulti,
    ReqAutoOpenOrders,
    ReqCompletedOrders,
    ReqContractDetails,
    ReqCurrentTime,
    ReqExecutions,
    ReqHistoricalData,
    ReqMarketDataType,
    ReqMktData,
    ReqPnL,
    ReqPnLSingle,
    ReqPositions,
    Request,
    StartApi,
    Unsupported,
    parse_request,
)
from simulator.tws.wire import (
    FrameDecoder,
    Handshake,
    WireError,
    encode_field,
    encode_frame,
    encode_handshake,
    parse_handshake,
    split_fields,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "1"),
        (False, "0"),
        (0, "0"),
        (-1, "-1"),
        (100.0, "100"),
        (-5.0, "-5"),
        (0.25, "0.25"),
        (1.5e-05, "1.5e-05"),
        (-0.0, "0"),
        ("DU111,DU222", "DU111,DU222"),
        ("", ""),
    ],
)
def test_encode_field(value: str | int | float | bool | None, text: str) -> None:
    """Each field type has the spelling both clients parse back to the same value."""
    assert encode_field(value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "a\0b"])
def test_encode_field_refuses_values_without_a_wire_spelling(value: str | float) -> None:
    """NaN, infinity and embedded NUL are refused instead of corrupting the stream."""
    with pytest.raises(ValueError, match=r"NUL|spelling"):
        encode_field(value)


@pytest.mark.parametrize(
    ("fields", "frame"),
    [
        ([15, 1, "DU111"], b"\x00\x00\x00\x0b15\x001\x00DU111\x00"),
        ([102], b"\x00\x00\x00\x04102\x00"),
        ([4, 2, -1, 2104, "Market data farm connection is OK:usfarm", ""], None),
    ],
)
def test_encode_frame_round_trips(
    fields: list[str | int | float | bool | None], frame: bytes | None
) -> None:
    """A frame is a big-endian length then NUL-terminated fields, and decodes to the same text."""
    encoded = encode_frame(fields)
    if frame is not None:
        assert encoded == frame
    assert int.from_bytes(encoded[:4], "big") == len(encoded) - 4
    assert split_fields(encoded[4:]) == [encode_field(field) for field in fields]


def test_split_fields_keeps_empty_fields() -> None:
    """Empty fields in the middle and at the end survive; only the final terminator is dropped."""
    assert split_fields(b"71\x002\x007\x00\x00") == ["71", "2", "7", ""]


@pytest.mark.parametrize(
    "chunk_size",
    [1, 2, 3, 5, 7, 1000],
)
def test_frame_decoder_reassembles_any_segmentation(chunk_size: int) -> None:
    """The handshake and frames come out whole however TCP splits or packs the bytes."""
    stream = encode_handshake(157, 178) + encode_frame([71, 2, 7, ""]) + encode_frame([61, 1])
    decoder = FrameDecoder(expect_handshake_prefix=True)
    payloads: list[bytes] = []
    for start in range(0, len(stream), chunk_size):
        payloads += decoder.feed(stream[start : start + chunk_size])
    assert payloads == [b"v157..178", b"71\x002\x007\x00\x00", b"61\x001\x00"]


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\n", b"AP\x01", b"\x00\x00\x00\x05"])
def test_frame_decoder_rejects_a_stream_without_the_api_prefix(garbage: bytes) -> None:
    """A peer that does not open with API\\0 is not a TWS client."""
    with pytest.raises(WireError, match="API"):
        FrameDecoder(expect_handshake_prefix=True).feed(garbage)


def test_frame_decoder_rejects_an_absurd_length() -> None:
    """A length prefix beyond 16 MiB is refused rather than buffered."""
    with pytest.raises(WireError, match="exceeds"):
        FrameDecoder().feed(b"\x7f\xff\xff\xff")


@pytest.mark.parametrize(
    ("payload", "handshake"),
    [
        (b"v157..178", Handshake(157, 178, "")),
        (b"v100..226", Handshake(100, 226, "")),
        (b"v100..226 +PACEAPI", Handshake(100, 226, "+PACEAPI")),
        (b"v176", Handshake(176, 176, "")),
    ],
)
def test_parse_handshake(payload: bytes, handshake: Handshake) -> None:
    """ib_async, ibapi and connect options all yield the client's version range."""
    assert parse_handshake(payload) == handshake


@pytest.mark.parametrize("payload", [b"", b"157..178", b"v178..157", b"hello"])
def test_parse_handshake_rejects_garbage(payload: bytes) -> None:
    """Anything but v<min>..<max> is a wire error."""
    with pytest.raises(WireError):
        parse_handshake(payload)


_SPY_CALL = ContractSpec(
    conid=12345,
    symbol="SPY",
    sec_type="OPT",
    last_trade_date_or_contract_month="20261218",
    strike=600.0,
    right="C",
    multiplier="100",
    exchange="SMART",
    currency="USD",
    local_symbol="SPY   261218C00600000",
    trading_class="SPY",
)


@pytest.mark.parametrize(
    ("wire", "request_"),
    [
        # Observed from ib_async 2.1.0 and ibapi 10.51.1 (their client.py, in site-packages).
        ("71|2|7||", StartApi(7, "")),
        ("71|2|9|", StartApi(9, "")),
        ("61|1|", ReqPositions()),
        ("15|1|1|", ReqAutoOpenOrders(auto_bind=True)),
        ("99|0|", ReqCompletedOrders(api_only=False)),
        ("6|2|1|DU1234567|", ReqAccountUpdates(subscribe=True, account="DU1234567")),
        ("6|2|0|DU1234567|", ReqAccountUpdates(subscribe=False, account="DU1234567")),
        ("76|1|1|DU1234567||0|", ReqAccountUpdatesMulti(1, "DU1234567", "", False)),
        ("7|3|2|0|||||||", ReqExecutions(2)),
        (
            "62|1|5|All|AccountType,NetLiquidation,$LEDGER:ALL|",
            ReqAccountSummary(5, "All", ("AccountType", "NetLiquidation", "$LEDGER:ALL")),
        ),
        ("49|1|", ReqCurrentTime()),
        ("59|1|3|", ReqMarketDataType(3)),
        ("2|2|4|", CancelMktData(4)),
        ("92|7|DU111||", ReqPnL(7, "DU111", "")),
        ("94|8|DU111||12345|", ReqPnLSingle(8, "DU111", "", 12345)),
        (
            "1|11|4|12345|SPY|OPT|20261218|600.0|C|100|SMART||USD|SPY   261218C00600000|SPY"
            "|0||0|0||",
            ReqMktData(4, _SPY_CALL, (), snapshot=False, regulatory_snapshot=False),
        ),
        (
            "1|11|5|0|SPY|STK||0.0|||SMART||USD|||0|100,221|1|0||",
            ReqMktData(
                5,
                ContractSpec(symbol="SPY", sec_type="STK", exchange="SMART", currency="USD"),
                ("100", "221"),
                snapshot=True,
                regulatory_snapshot=False,
            ),
        ),
        (
            "9|8|3|0|SPY|OPT|20261218|600|C||SMART|||||0|||",
            ReqContractDetails(
                3,
                ContractSpec(
                    symbol="SPY",
                    sec_type="OPT",
                    last_trade_date_or_contract_month="20261218",
                    strike=600.0,
                    right="C",
                    exchange="SMART",
                ),
                include_expired=False,
            ),
        ),
        ("3|45|1|", Unsupported(3)),
        (
            "20|7|756733|SPY|STK||0.0|||SMART||USD|SPY|SPY|0||1 day|1 Y|1|TRADES|1|0||",
            ReqHistoricalData(
                7,
                ContractSpec(
                    conid=756733,
                    symbol="SPY",
                    sec_type="STK",
                    exchange="SMART",
                    currency="USD",
                    local_symbol="SPY",
                    trading_class="SPY",
                ),
                "",
                "1 day",
                "1 Y",
                True,
                "TRADES",
                1,
                False,
            ),
        ),
        ("19|1|", Unsupported(19)),
    ],
)
def test_parse_request(wire: str, request_: Request) -> None:
    """Each request both clients send at server version 178 parses to its typed value."""
    assert parse_request(wire.split("|")[:-1], 178) == request_


@pytest.mark.parametrize("wire", ["", "x|1|", "1|11|4|", "49|one|", "9|8|3|0|SPY|"])
def test_parse_request_rejects_malformed_requests(wire: str) -> None:
    """A truncated request or a non-numeric number is a MalformedRequest, not a crash."""
    with pytest.raises(MalformedRequest):
        parse_request(wire.split("|")[:-1] if wire else [], 178)
