"""Client requests of the TWS API, parsed from a frame's text fields into typed values.

Layouts are those both ib_async 2.1.0 and ibapi send at server versions 157-178. A request the
simulator does not serve parses to `Unsupported`; a malformed one raises `MalformedRequest`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulator.tws.ids import BOND_ISSUERID, ClientMessage
from simulator.tws.wire import WireError


class MalformedRequest(WireError):
    """A request whose fields do not fit its layout."""


@dataclass(frozen=True)
class ContractSpec:
    """The 12-field contract block of a request; empty text and zero mean "not given"."""

    conid: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date_or_contract_month: str = ""
    strike: float | None = None
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""


@dataclass(frozen=True)
class StartApi:
    client_id: int
    optional_capabilities: str


@dataclass(frozen=True)
class ReqMktData:
    req_id: int
    contract: ContractSpec
    generic_ticks: tuple[str, ...]
    snapshot: bool
    regulatory_snapshot: bool


@dataclass(frozen=True)
class CancelMktData:
    req_id: int


@dataclass(frozen=True)
class ReqContractDetails:
    req_id: int
    contract: ContractSpec
    include_expired: bool


@dataclass(frozen=True)
class ReqHistoricalData:
    req_id: int
    contract: ContractSpec
    end_date_time: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


@dataclass(frozen=True)
class CancelHistoricalData:
    req_id: int


@dataclass(frozen=True)
class ReqPositions:
    pass


@dataclass(frozen=True)
class CancelPositions:
    pass


@dataclass(frozen=True)
class ReqAccountUpdates:
    subscribe: bool
    account: str


@dataclass(frozen=True)
class ReqAccountUpdatesMulti:
    req_id: int
    account: str
    model_code: str
    ledger_and_nlv: bool


@dataclass(frozen=True)
class CancelAccountUpdatesMulti:
    req_id: int


@dataclass(frozen=True)
class ReqAccountSummary:
    req_id: int
    group: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class CancelAccountSummary:
    req_id: int


@dataclass(frozen=True)
class ReqOpenOrders:
    pass


@dataclass(frozen=True)
class ReqAllOpenOrders:
    pass


@dataclass(frozen=True)
class ReqAutoOpenOrders:
    auto_bind: bool


@dataclass(frozen=True)
class ReqCompletedOrders:
    api_only: bool


@dataclass(frozen=True)
class ReqExecutions:
    req_id: int


@dataclass(frozen=True)
class ReqIds:
    num_ids: int


@dataclass(frozen=True)
class ReqManagedAccts:
    pass


@dataclass(frozen=True)
class ReqCurrentTime:
    pass


@dataclass(frozen=True)
class ReqMarketDataType:
    market_data_type: int


@dataclass(frozen=True)
class ReqPnL:
    req_id: int
    account: str
    model_code: str


@dataclass(frozen=True)
class CancelPnL:
    req_id: int


@dataclass(frozen=True)
class ReqPnLSingle:
    req_id: int
    account: str
    model_code: str
    conid: int


@dataclass(frozen=True)
class CancelPnLSingle:
    req_id: int


@dataclass(frozen=True)
class ReqSecDefOptParams:
    req_id: int
    underlying_symbol: str
    fut_fop_exchange: str
    underlying_sec_type: str
    underlying_conid: int


@dataclass(frozen=True)
class Unsupported:
    """A well-framed request the simulator does not serve (orders, history, news...)."""

    message_id: int


Request = (
    StartApi
    | ReqMktData
    | CancelMktData
    | ReqContractDetails
    | ReqHistoricalData
    | CancelHistoricalData
    | ReqPositions
    | CancelPositions
    | ReqAccountUpdates
    | ReqAccountUpdatesMulti
    | CancelAccountUpdatesMulti
    | ReqAccountSummary
    | CancelAccountSummary
    | ReqOpenOrders
    | ReqAllOpenOrders
    | ReqAutoOpenOrders
    | ReqCompletedOrders
    | ReqExecutions
    | ReqIds
    | ReqManagedAccts
    | ReqCurrentTime
    | ReqMarketDataType
    | ReqPnL
    | CancelPnL
    | ReqPnLSingle
    | CancelPnLSingle
    | ReqSecDefOptParams
    | Unsupported
)


class _Cursor:
    """Reads a request's fields in order; running out or a bad number is a MalformedRequest."""

    def __init__(self, fields: Sequence[str]) -> None:
        self._fields = fields
        self._next = 1  # fields[0] is the message id

    def text(self) -> str:
        if self._next >= len(self._fields):
            raise MalformedRequest(
                f"request {self._fields[0]} ends after {len(self._fields)} fields"
            )
        value = self._fields[self._next]
        self._next += 1
        return value

    def integer(self) -> int:
        value = self.text()
        try:
            return int(value) if value else 0
        except ValueError:
            raise MalformedRequest(f"{value!r} is not an integer") from None

    def number(self) -> float | None:
        value = self.text()
        try:
            return float(value) if value else None
        except ValueError:
            raise MalformedRequest(f"{value!r} is not a number") from None

    def flag(self) -> bool:
        return self.integer() != 0

    def skip(self, count: int) -> None:
        for _ in range(count):
            self.text()

    def optional_text(self) -> str:
        """A trailing field some clients or versions leave out."""
        return self.text() if self._next < len(self._fields) else ""

    def contract(self) -> ContractSpec:
        conid = self.integer()
        symbol = self.text()
        sec_type = self.text()
        expiry = self.text()
        strike = self.number()
        return ContractSpec(
            conid=conid,
            symbol=symbol,
            sec_type=sec_type,
            last_trade_date_or_contract_month=expiry,
            # ib_async writes 0.0 for "no strike", ibapi writes an empty field.
            strike=strike or None,
            right=self.text(),
            multiplier=self.text(),
            exchange=self.text(),
            primary_exchange=self.text(),
            currency=self.text(),
            local_symbol=self.text(),
            trading_class=self.text(),
        )


def _req_mkt_data(cursor: _Cursor, _server_version: int) -> ReqMktData:
    cursor.integer()  # version
    req_id = cursor.integer()
    contract = cursor.contract()
    if contract.sec_type == "BAG":
        cursor.skip(4 * cursor.integer())  # combo legs: conid, ratio, action, exchange
    if cursor.flag():
        cursor.skip(3)  # the delta-neutral contract: conid, delta, price
    generic_ticks = tuple(tick for tick in cursor.text().split(",") if tick)
    snapshot = cursor.flag()
    regulatory_snapshot = cursor.flag()
    return ReqMktData(req_id, contract, generic_ticks, snapshot, regulatory_snapshot)


def _req_contract_details(cursor: _Cursor, server_version: int) -> ReqContractDetails:
    cursor.integer()  # version
    req_id = cursor.integer()
    contract = cursor.contract()
    include_expired = cursor.flag()
    cursor.skip(2)  # secIdType, secId
    if server_version >= BOND_ISSUERID:
        cursor.optional_text()  # issuerId
    return ReqContractDetails(req_id, contract, include_expired)


def _req_historical_data(cursor: _Cursor, _server_version: int) -> ReqHistoricalData:
    """No version field from server version 124 on; ib_async and ibapi write the same."""
    req_id = cursor.integer()
    contract = cursor.contract()
    cursor.flag()  # includeExpired
    end_date_time, bar_size, duration = cursor.text(), cursor.text(), cursor.text()
    use_rth = cursor.flag()
    what_to_show = cursor.text()
    format_date = cursor.integer()
    if contract.sec_type == "BAG":
        cursor.skip(4 * cursor.integer())  # combo legs: conid, ratio, action, exchange
    keep_up_to_date = cursor.flag()
    cursor.optional_text()  # chartOptions
    return ReqHistoricalData(
        req_id, contract, end_date_time, bar_size, duration, use_rth, what_to_show,
        format_date, keep_up_to_date,
    )  # fmt: skip


def _versioned(build: Callable[[_Cursor], Request]) -> Callable[[_Cursor, int], Request]:
    """A request whose first field after the id is a version the simulator does not need."""

    def parse(cursor: _Cursor, _server_version: int) -> Request:
        cursor.integer()
        return build(cursor)

    return parse


def _unversioned(build: Callable[[_Cursor], Request]) -> Callable[[_Cursor, int], Request]:
    return lambda cursor, _server_version: build(cursor)


_PARSERS: dict[int, Callable[[_Cursor, int], Request]] = {
    ClientMessage.REQ_MKT_DATA: _req_mkt_data,
    ClientMessage.CANCEL_MKT_DATA: _versioned(lambda c: CancelMktData(c.integer())),
    ClientMessage.REQ_OPEN_ORDERS: _versioned(lambda c: ReqOpenOrders()),
    ClientMessage.REQ_ACCT_DATA: _versioned(lambda c: ReqAccountUpdates(c.flag(), c.text())),
    ClientMessage.REQ_EXECUTIONS: _versioned(lambda c: ReqExecutions(c.integer())),
    ClientMessage.REQ_IDS: _versioned(lambda c: ReqIds(c.integer())),
    ClientMessage.REQ_CONTRACT_DATA: _req_contract_details,
    ClientMessage.REQ_HISTORICAL_DATA: _req_historical_data,
    ClientMessage.CANCEL_HISTORICAL_DATA: _versioned(lambda c: CancelHistoricalData(c.integer())),
    ClientMessage.REQ_AUTO_OPEN_ORDERS: _versioned(lambda c: ReqAutoOpenOrders(c.flag())),
    ClientMessage.REQ_ALL_OPEN_ORDERS: _versioned(lambda c: ReqAllOpenOrders()),
    ClientMessage.REQ_MANAGED_ACCTS: _versioned(lambda c: ReqManagedAccts()),
    ClientMessage.REQ_CURRENT_TIME: _versioned(lambda c: ReqCurrentTime()),
    ClientMessage.REQ_MARKET_DATA_TYPE: _versioned(lambda c: ReqMarketDataType(c.integer())),
    ClientMessage.REQ_POSITIONS: _versioned(lambda c: ReqPositions()),
    ClientMessage.REQ_ACCOUNT_SUMMARY: _versioned(
        lambda c: ReqAccountSummary(
            c.integer(), c.text(), tuple(tag for tag in c.text().split(",") if tag)
        )
    ),
    ClientMessage.CANCEL_ACCOUNT_SUMMARY: _versioned(lambda c: CancelAccountSummary(c.integer())),
    ClientMessage.CANCEL_POSITIONS: _versioned(lambda c: CancelPositions()),
    ClientMessage.START_API: _versioned(lambda c: StartApi(c.integer(), c.optional_text())),
    ClientMessage.REQ_ACCOUNT_UPDATES_MULTI: _versioned(
        lambda c: ReqAccountUpdatesMulti(c.integer(), c.text(), c.text(), c.flag())
    ),
    ClientMessage.CANCEL_ACCOUNT_UPDATES_MULTI: _versioned(
        lambda c: CancelAccountUpdatesMulti(c.integer())
    ),
    ClientMessage.REQ_SEC_DEF_OPT_PARAMS: _unversioned(
        lambda c: ReqSecDefOptParams(c.integer(), c.text(), c.text(), c.text(), c.integer())
    ),
    ClientMessage.REQ_PNL: _unversioned(lambda c: ReqPnL(c.integer(), c.text(), c.text())),
    ClientMessage.CANCEL_PNL: _unversioned(lambda c: CancelPnL(c.integer())),
    ClientMessage.REQ_PNL_SINGLE: _unversioned(
        lambda c: ReqPnLSingle(c.integer(), c.text(), c.text(), c.integer())
    ),
    ClientMessage.CANCEL_PNL_SINGLE: _unversioned(lambda c: CancelPnLSingle(c.integer())),
    ClientMessage.REQ_COMPLETED_ORDERS: _unversioned(lambda c: ReqCompletedOrders(c.flag())),
}


def parse_request(fields: Sequence[str], server_version: int) -> Request:
    """The typed request in one frame's fields (``fields[0]`` is the message id)."""
    if not fields:
        raise MalformedRequest("empty request")
    try:
        message_id = int(fields[0])
    except ValueError:
        raise MalformedRequest(f"message id {fields[0]!r} is not a number") from None
    parser = _PARSERS.get(message_id)
    if parser is None:
        return Unsupported(message_id)
    return parser(_Cursor(fields), server_version)
