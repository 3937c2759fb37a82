"""Builders for the messages the gateway sends, as field lists in the layout of a server version.

Pure: each function returns the fields of one message, to be framed by `wire.encode_frame`.
Layouts and version fields are those ib_async 2.1.0 and ibapi 10.51 parse at versions 157-178.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from simulator.history import Bar
from simulator.model import Instrument, Position
from simulator.tws.ids import (
    ADVANCED_ORDER_REJECT,
    SIZE_RULES,
    ServerMessage,
    TickType,
)
from simulator.tws.wire import UNSET_DOUBLE, Field

# Real TWS writes version 6 on tick messages and 1 on most others (wire traces in
# tws-protocol.md); both clients read and ignore these numbers.
_TICK_VERSION = 6

# Error and notice texts as TWS writes them on the wire (sources in tws-protocol.md, ibkr-ops.md).
MAX_TICKERS = (101, "Max number of tickers has been reached.")
HISTORICAL_DATA_ERROR = (
    162,
    "Historical Market Data Service error message:HMDS query returned no data: "
    "{local_symbol}@{exchange} {what}",
)
INVALID_HISTORICAL_REQUEST = (
    321,
    "Error validating request.-'bX' : cause - {cause}",
)
NO_SECURITY_DEFINITION = (200, "No security definition has been found for the request")
UNKNOWN_TICKER_ID = (300, "Can't find EId with tickerId:{ticker_id}")
CLIENT_ID_IN_USE = (
    326,
    "Unable to connect as the client id is already in use. Retry with a unique client id.",
)
NOT_SUBSCRIBED = (
    354,
    "Requested market data is not subscribed.Delayed market data is available."
    "Error&{venue}/{sec_type}/Top&{venue}/{sec_type}/Top",
)
CONNECTIVITY_LOST = (1100, "Connectivity between IB and Trader Workstation has been lost.")
CONNECTIVITY_RESTORED_DATA_LOST = (
    1101,
    "Connectivity between IB and Trader Workstation has been restored - data lost.",
)
CONNECTIVITY_RESTORED_DATA_MAINTAINED = (
    1102,
    "Connectivity between IB and Trader Workstation has been restored - data maintained. "
    "All data farms are connected: usfarm; ushmds; secdefnj.",
)
PARTLY_NOT_SUBSCRIBED = (
    10090,
    "Part of requested market data is not subscribed. "
    "Subscription-independent ticks are still active.",
)
DISPLAYING_DELAYED = (
    10167,
    "Requested market data is not subscribed. Displaying delayed market data.",
)
FARMS_OK = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
FARMS_BROKEN = (
    (2103, "Market data farm connection is broken:usfarm"),
    (2105, "HMDS data farm connection is broken:ushmds"),
    (2157, "Sec-def data farm connection is broken:secdefnj"),
)

_MIN_TICK = {"FUT": 0.25, "FOP": 0.05}
_TIME_ZONE = {"CME": "US/Central", "CBOT": "US/Central", "EUREX": "MET", "FWB": "MET"}


@dataclass(frozen=True)
class OptionComputation:
    """One tickOptionComputation's values; None goes out as IB's "not computed" sentinel."""

    implied_vol: float | None
    delta: float | None
    option_price: float | None
    pv_dividend: float | None
    gamma: float | None
    vega: float | None
    theta: float | None
    underlying_price: float | None


def _or(value: float | None, sentinel: float) -> float:
    return sentinel if value is None else value


def _or_unset(value: float | None) -> Field:
    return UNSET_DOUBLE if value is None else value


def _multiplier(instrument: Instrument) -> str:
    # TWS leaves the multiplier of a stock empty and writes "100", "50" for derivatives.
    if instrument.sec_type == "STK":
        return ""
    return f"{instrument.multiplier:g}"


def handshake_reply(server_version: int, now: float) -> list[Field]:
    """The only two-field message: the version and the connection time, as TWS words it."""
    connection_time = time.strftime("%Y%m%d %H:%M:%S", time.gmtime(now))
    return [server_version, f"{connection_time} Greenwich Mean Time"]


def error(req_id: int, code: int, text: str, *, server_version: int) -> list[Field]:
    fields: list[Field] = [ServerMessage.ERR_MSG, 2, req_id, code, text]
    if server_version >= ADVANCED_ORDER_REJECT:
        fields.append("")  # advancedOrderRejectJson: only order rejections carry one
    return fields


def managed_accounts(accounts: Iterable[str]) -> list[Field]:
    return [ServerMessage.MANAGED_ACCTS, 1, ",".join(accounts)]


def next_valid_id(order_id: int) -> list[Field]:
    return [ServerMessage.NEXT_VALID_ID, 1, order_id]


def current_time(epoch_s: int) -> list[Field]:
    return [ServerMessage.CURRENT_TIME, 1, epoch_s]


def position(item: Position) -> list[Field]:
    instrument = item.instrument
    return [
        ServerMessage.POSITION_DATA,
        3,
        item.account,
        instrument.conid,
        instrument.symbol,
        instrument.sec_type,
        instrument.expiry or "",
        instrument.strike or 0.0,
        instrument.right or "",
        _multiplier(instrument),
        # Positions name the listing exchange, never SMART (recorded traces in rust-ibapi).
        instrument.primary_exchange or instrument.exchange,
        instrument.currency,
        instrument.local_symbol,
        instrument.trading_class,
        item.quantity,
        item.avg_cost,
    ]


def position_end() -> list[Field]:
    return [ServerMessage.POSITION_END, 1]


def account_value(key: str, value: str, currency: str, account: str) -> list[Field]:
    return [ServerMessage.ACCT_VALUE, 2, key, value, currency, account]


def portfolio_value(
    item: Position, market_price: float, market_value: float, unrealized_pnl: float
) -> list[Field]:
    instrument = item.instrument
    return [
        ServerMessage.PORTFOLIO_VALUE,
        8,
        instrument.conid,
        instrument.symbol,
        instrument.sec_type,
        instrument.expiry or "",
        instrument.strike or 0.0,
        instrument.right or "",
        _multiplier(instrument),
        instrument.primary_exchange,
        instrument.currency,
        instrument.local_symbol,
        instrument.trading_class,
        item.quantity,
        market_price,
        market_value,
        item.avg_cost,
        unrealized_pnl,
        0.0,  # realizedPNL: the simulator never trades
        item.account,
    ]


def account_update_time(hh_mm: str) -> list[Field]:
    return [ServerMessage.ACCT_UPDATE_TIME, 1, hh_mm]


def account_download_end(account: str) -> list[Field]:
    return [ServerMessage.ACCT_DOWNLOAD_END, 1, account]


def account_update_multi(
    req_id: int, account: str, model_code: str, *, key: str, value: str, currency: str
) -> list[Field]:
    return [
        ServerMessage.ACCOUNT_UPDATE_MULTI,
        1,
        req_id,
        account,
        model_code,
        key,
        value,
        currency,
    ]


def account_update_multi_end(req_id: int) -> list[Field]:
    return [ServerMessage.ACCOUNT_UPDATE_MULTI_END, 1, req_id]


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> list[Field]:
    return [ServerMessage.ACCOUNT_SUMMARY, 1, req_id, account, tag, value, currency]


def account_summary_end(req_id: int) -> list[Field]:
    return [ServerMessage.ACCOUNT_SUMMARY_END, 1, req_id]


def open_order_end() -> list[Field]:
    return [ServerMessage.OPEN_ORDER_END, 1]


def completed_orders_end() -> list[Field]:
    return [ServerMessage.COMPLETED_ORDERS_END]  # the one end message without a version


def execution_data_end(req_id: int) -> list[Field]:
    return [ServerMessage.EXECUTION_DATA_END, 1, req_id]


def contract_data(
    req_id: int, instrument: Instrument, underlying: Instrument | None, *, server_version: int
) -> list[Field]:
    """contractData; below version 164 it carries a version field and mdSizeMultiplier."""
    old_layout = server_version < SIZE_RULES
    fields: list[Field] = [ServerMessage.CONTRACT_DATA]
    if old_layout:
        fields.append(8)
    fields += [
        req_id,
        instrument.symbol,
        instrument.sec_type,
        instrument.expiry or "",
        instrument.strike or 0.0,
        instrument.right or "",
        instrument.exchange,
        instrument.currency,
        instrument.local_symbol,
        instrument.trading_class,  # marketName
        instrument.trading_class,
        instrument.conid,
        _MIN_TICK.get(instrument.sec_type, 0.01),
    ]
    if old_layout:
        fields.append(1)  # mdSizeMultiplier
    fields += [
        _multiplier(instrument),
        "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,DAY,GTC,LMT,MKT,STP,STPLMT",  # orderTypes
        instrument.exchange,  # validExchanges
        instrument.price_magnifier,  # 100: quoted in cents (ZC, ZS, ZW and their options)
        instrument.underlying_conid or 0,
        instrument.symbol,  # longName
        instrument.primary_exchange,
        (instrument.expiry or "")[:6],  # contractMonth
        "",  # industry
        "",  # category
        "",  # subcategory
        _TIME_ZONE.get(instrument.exchange, "US/Eastern"),
        "",  # tradingHours
        "",  # liquidHours
        "",  # evRule
        "",  # evMultiplier
        0,  # secIdList count
        1,  # aggGroup
        underlying.symbol if underlying else "",
        underlying.sec_type if underlying else "",
        "",  # marketRuleIds
        instrument.expiry or "",  # realExpirationDate
        "COMMON" if instrument.sec_type == "STK" else "",  # stockType
    ]
    if server_version == SIZE_RULES - 1:
        fields.append("")  # version 163 only: sizeMinTick
    if not old_layout:
        fields += [1, 1, 1]  # minSize, sizeIncrement, suggestedSizeIncrement
    return fields


def historical_data(req_id: int, start: str, end: str, bars: Sequence[Bar]) -> list[Field]:
    """historicalData below version 196: the bars and, in the same message, their end."""
    fields: list[Field] = [ServerMessage.HISTORICAL_DATA, req_id, start, end, len(bars)]
    for bar in bars:
        wap = round((bar.high + bar.low + bar.close) / 3, 4)
        fields += [
            bar.day.strftime("%Y%m%d"), bar.open, bar.high, bar.low, bar.close, bar.volume,
            wap, int(bar.volume // 100),
        ]  # fmt: skip
    return fields


def contract_data_end(req_id: int) -> list[Field]:
    return [ServerMessage.CONTRACT_DATA_END, 1, req_id]


def market_data_type(req_id: int, data_type: int) -> list[Field]:
    return [ServerMessage.MARKET_DATA_TYPE, 1, req_id, data_type]


def tick_req_params(req_id: int, min_tick: float, bbo_exchange: str) -> list[Field]:
    return [ServerMessage.TICK_REQ_PARAMS, req_id, min_tick, bbo_exchange, 3]


def tick_price(req_id: int, tick_type: TickType, price: float, size: float) -> list[Field]:
    return [ServerMessage.TICK_PRICE, _TICK_VERSION, req_id, tick_type, price, size, 0]


def tick_size(req_id: int, tick_type: TickType, size: float) -> list[Field]:
    return [ServerMessage.TICK_SIZE, _TICK_VERSION, req_id, tick_type, size]


def tick_string(req_id: int, tick_type: TickType, value: str) -> list[Field]:
    return [ServerMessage.TICK_STRING, _TICK_VERSION, req_id, tick_type, value]


def tick_option_computation(
    req_id: int, tick_type: TickType, values: OptionComputation
) -> list[Field]:
    """No version field since v156; tickAttrib 0 means return-based volatility."""
    return [
        ServerMessage.TICK_OPTION_COMPUTATION,
        req_id,
        tick_type,
        0,
        _or(values.implied_vol, -1.0),
        _or(values.delta, -2.0),
        _or(values.option_price, -1.0),
        _or(values.pv_dividend, -1.0),
        _or(values.gamma, -2.0),
        _or(values.vega, -2.0),
        _or(values.theta, -2.0),
        _or(values.underlying_price, -1.0),
    ]


def tick_snapshot_end(req_id: int) -> list[Field]:
    return [ServerMessage.TICK_SNAPSHOT_END, 1, req_id]


def pnl(
    req_id: int, daily: float | None, unrealized: float | None, realized: float | None
) -> list[Field]:
    return [ServerMessage.PNL, req_id, _or_unset(daily), _or_unset(unrealized), _or_unset(realized)]


def pnl_single(
    req_id: int,
    quantity: float,
    *,
    daily: float | None,
    unrealized: float | None,
    realized: float | None,
    value: float | None,
) -> list[Field]:
    return [
        ServerMessage.PNL_SINGLE,
        req_id,
        quantity,
        _or_unset(daily),
        _or_unset(unrealized),
        _or_unset(realized),
        _or_unset(value),
    ]


def security_definition_option_parameter(
    req_id: int,
    exchange: str,
    underlying_conid: int,
    *,
    trading_class: str,
    multiplier: str,
    expirations: Sequence[str],
    strikes: Sequence[float],
) -> list[Field]:
    return [
        ServerMessage.SECURITY_DEFINITION_OPTION_PARAMETER,
        req_id,
        exchange,
        underlying_conid,
        trading_class,
        multiplier,
        len(expirations),
        *expirations,
        len(strikes),
        *strikes,
    ]


def security_definition_option_parameter_end(req_id: int) -> list[Field]:
    return [ServerMessage.SECURITY_DEFINITION_OPTION_PARAMETER_END, req_id]
