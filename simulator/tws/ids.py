"""Numbers of the TWS API: message ids both ways, tick types, market data types, server versions.

Names follow IB's own (``ibapi/message.py`` IN/OUT, ``ibapi/ticktype.py``) so a reader can grep
either client for them.
"""

from __future__ import annotations

from enum import IntEnum

# ib_async 2.1.0 offers v157..178; it parses no layout above 178, and ibapi switches to binary
# message ids and protobuf at 201. Every layout here is the one of the negotiated version.
MIN_SERVER_VERSION = 157
MAX_SERVER_VERSION = 178
# Version gates that change a layout the simulator sends or parses (ibapi/server_versions.py).
SIZE_RULES = 164  # contractData loses its version field and mdSizeMultiplier
ADVANCED_ORDER_REJECT = 166  # error gains advancedOrderRejectJson
BOND_ISSUERID = 176  # reqContractDetails gains issuerId


class ClientMessage(IntEnum):
    """Ids of the requests a client sends (IB's OUT)."""

    REQ_MKT_DATA = 1
    CANCEL_MKT_DATA = 2
    PLACE_ORDER = 3
    CANCEL_ORDER = 4
    REQ_OPEN_ORDERS = 5
    REQ_ACCT_DATA = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DATA = 9
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_CURRENT_TIME = 49
    REQ_GLOBAL_CANCEL = 58
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_SEC_DEF_OPT_PARAMS = 78
    REQ_PNL = 92
    CANCEL_PNL = 93
    REQ_PNL_SINGLE = 94
    CANCEL_PNL_SINGLE = 95
    REQ_COMPLETED_ORDERS = 99


class ServerMessage(IntEnum):
    """Ids of the messages the gateway sends (IB's IN)."""

    TICK_PRICE = 1
    TICK_SIZE = 2
    ERR_MSG = 4
    ACCT_VALUE = 6
    PORTFOLIO_VALUE = 7
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    HISTORICAL_DATA = 17
    MANAGED_ACCTS = 15
    TICK_OPTION_COMPUTATION = 21
    TICK_GENERIC = 45
    TICK_STRING = 46
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    TICK_SNAPSHOT_END = 57
    MARKET_DATA_TYPE = 58
    POSITION_DATA = 61
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    SECURITY_DEFINITION_OPTION_PARAMETER = 75
    SECURITY_DEFINITION_OPTION_PARAMETER_END = 76
    TICK_REQ_PARAMS = 81
    PNL = 94
    PNL_SINGLE = 95
    COMPLETED_ORDERS_END = 102


class TickType(IntEnum):
    """The tick types the simulator streams; live and delayed (IB's TickTypeEnum)."""

    BID_SIZE = 0
    BID = 1
    ASK = 2
    ASK_SIZE = 3
    LAST = 4
    LAST_SIZE = 5
    VOLUME = 8
    BID_OPTION_COMPUTATION = 10
    ASK_OPTION_COMPUTATION = 11
    LAST_OPTION_COMPUTATION = 12
    MODEL_OPTION = 13
    MARK_PRICE = 37
    LAST_TIMESTAMP = 45
    DELAYED_BID = 66
    DELAYED_ASK = 67
    DELAYED_LAST = 68
    DELAYED_BID_SIZE = 69
    DELAYED_ASK_SIZE = 70
    DELAYED_LAST_SIZE = 71
    DELAYED_VOLUME = 74
    DELAYED_BID_OPTION = 80
    DELAYED_ASK_OPTION = 81
    DELAYED_LAST_OPTION = 82
    DELAYED_MODEL_OPTION = 83
    DELAYED_LAST_TIMESTAMP = 88


class MarketDataType(IntEnum):
    REALTIME = 1
    FROZEN = 2
    DELAYED = 3
    DELAYED_FROZEN = 4
