"""Server messages and the session state machine, without sockets: layouts, sentinels, rules."""

from __future__ import annotations

import pytest

from simulator.model import Instrument, Market, Position
from simulator.tws import messages
from simulator.tws.ids import TickType
from simulator.tws.messages import OptionComputation
from simulator.tws.requests import (
    CancelMktData,
    ContractSpec,
    ReqCurrentTime,
    ReqMktData,
    ReqPositions,
    StartApi,
)
from simulator.tws.session import GatewayState, Session, position_changes
from simulator.tws.wire import UNSET_DOUBLE

_CALL = Instrument(
    conid=1001,
    symbol="SPY",
    sec_type="OPT",
    exchange="SMART",
    primary_exchange="",
    currency="USD",
    multiplier=100,
    local_symbol="SPY   261218C00600000",
    trading_class="SPY",
    right="C",
    strike=600.0,
    expiry="20261218",
    underlying_conid=756733,
)
_STOCK = Instrument(
    conid=756733,
    symbol="SPY",
    sec_type="STK",
    exchange="SMART",
    primary_exchange="ARCA",
    currency="USD",
    multiplier=1,
    local_symbol="SPY",
    trading_class="SPY",
)


@pytest.mark.parametrize(
    ("server_version", "length"),
    [(157, 5), (165, 5), (166, 6), (178, 6)],
)
def test_error_carries_advanced_order_reject_json_from_166(
    server_version: int, length: int
) -> None:
    """ibapi reads advancedOrderRejectJson only at 166+, and requires it there."""
    assert len(messages.error(-1, 2104, "ok", server_version=server_version)) == length


@pytest.mark.parametrize(
    ("server_version", "length"),
    [(157, 39), (163, 40), (164, 40), (178, 40)],
)
def test_contract_data_layout_follows_the_version(server_version: int, length: int) -> None:
    """Below 164 contractData has a version field and mdSizeMultiplier; from 164 the size rules."""
    fields = messages.contract_data(7, _CALL, _STOCK, server_version=server_version)
    assert len(fields) == length
    assert fields[0] == 10
    assert fields[1 if server_version >= 164 else 2] == 7


def test_position_layout_is_the_sixteen_fields_ib_async_unpacks() -> None:
    """position: id, version 3, account, the contract, quantity and average cost."""
    fields = messages.position(Position("DU1", _STOCK, 500.0, 196.77))
    assert fields == [
        61, 3, "DU1", 756733, "SPY", "STK", "", 0.0, "", "", "ARCA", "USD", "SPY", "SPY",
        500.0, 196.77,
    ]  # fmt: skip


def test_portfolio_value_layout_is_the_twenty_fields_ib_async_unpacks() -> None:
    """updatePortfolio: version 8 with multiplier, primaryExchange and tradingClass."""
    fields = messages.portfolio_value(Position("DU1", _CALL, -2.0, 510.0), 5.0, -1000.0, 20.0)
    assert len(fields) == 20
    assert fields[:2] == [7, 8]
    assert fields[8] == "100"
    assert fields[-1] == "DU1"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            OptionComputation(0.2, 0.5, 5.1, 0.0, 0.01, 0.3, -0.05, 600.0),
            [0.2, 0.5, 5.1, 0.0, 0.01, 0.3, -0.05, 600.0],
        ),
        (
            OptionComputation(None, None, None, None, None, None, None, None),
            [-1.0, -2.0, -1.0, -1.0, -2.0, -2.0, -2.0, -1.0],
        ),
    ],
)
def test_option_computation_uses_ib_sentinels_for_missing_values(
    values: OptionComputation, expected: list[float]
) -> None:
    """A value the model lacks goes out as IB's "not computed": -1 for prices and vol, -2 else."""
    fields = messages.tick_option_computation(3, TickType.MODEL_OPTION, values)
    assert fields[:4] == [21, 3, 13, 0]
    assert fields[4:] == expected


def test_pnl_sends_unknown_values_as_unset() -> None:
    """An unknown PnL value is Java's Double.MAX_VALUE, which ibapi also reads as unset."""
    assert messages.pnl(4, None, 12.5, 0.0) == [94, 4, UNSET_DOUBLE, 12.5, 0.0]


def test_position_changes_report_changed_and_closed_positions() -> None:
    """A changed quantity comes back as is, a vanished position with quantity 0."""
    held = Position("DU1", _STOCK, 100.0, 600.0)
    option = Position("DU1", _CALL, 2.0, 500.0)
    before = {("DU1", _STOCK.conid): held, ("DU1", _CALL.conid): option}
    after = [Position("DU1", _STOCK, 150.0, 600.0)]
    assert position_changes(before, after) == [
        Position("DU1", _STOCK, 150.0, 600.0),
        Position("DU1", _CALL, 0.0, 0.0),
    ]
    assert position_changes(before, list(before.values())) == []


@pytest.fixture
def session(market: Market) -> Session:
    session = Session(market, GatewayState(), 178)
    session.handle(StartApi(1, ""), 0.0)
    return session


def test_start_api_answers_accounts_order_id_then_farms(market: Market) -> None:
    """startApi is answered with managedAccounts, nextValidId and the three farm notices."""
    answer = Session(market, GatewayState(), 178).handle(StartApi(3, ""), 0.0)
    assert [fields[0] for fields in answer] == [15, 9, 4, 4, 4]
    assert answer[0][2] == ",".join(market.accounts())


def test_start_api_with_a_used_client_id_answers_326_and_closes(market: Market) -> None:
    """The same client id twice: the second session gets 326 and is marked for closing."""
    state = GatewayState()
    Session(market, state, 178).handle(StartApi(5, ""), 0.0)
    second = Session(market, state, 178)
    assert [fields[3] for fields in second.handle(StartApi(5, ""), 0.0)] == [326]
    assert second.closing


def test_requests_before_start_api_are_ignored(market: Market) -> None:
    """TWS answers nothing until startApi."""
    assert Session(market, GatewayState(), 178).handle(ReqPositions(), 0.0) == []


def test_frozen_market_data_is_sent_once(session: Session, market: Market) -> None:
    """Ticks go out when they change: a frozen market sends its values once, then nothing."""
    market.freeze()
    conid = next(
        item.instrument.conid
        for account in market.accounts()
        for item in market.positions(account)
        if item.instrument.has_greeks and item.instrument.sec_type == "OPT"
    )
    first = session.handle(ReqMktData(9, ContractSpec(conid=conid), (), False, False), 1.0)
    assert 21 in [fields[0] for fields in first]
    assert session.stream(2.0) == []


def test_cancel_of_an_unknown_ticker_answers_300(session: Session) -> None:
    """Cancelling a request id that has no subscription is error 300, as in TWS."""
    [answer] = session.handle(CancelMktData(42), 0.0)
    assert answer[3] == 300
    assert answer[4] == "Can't find EId with tickerId:42"


def test_current_time_is_the_clock_in_whole_seconds(session: Session) -> None:
    """reqCurrentTime answers the time it is given, truncated to seconds."""
    assert session.handle(ReqCurrentTime(), 1_700_000_000.9) == [[49, 1, 1_700_000_000]]


def test_data_lost_after_a_reset_drops_every_subscription(session: Session, market: Market) -> None:
    """1101 means the market data subscriptions are gone and their lines are free again."""
    conid = market.positions(market.accounts()[0])[0].instrument.conid
    session.handle(ReqMktData(9, ContractSpec(conid=conid), (), False, False), 1.0)
    assert session.state.market_data_lines == 1
    notices = session.connectivity_restored(data_lost=True)
    assert [fields[3] for fields in notices] == [1101, 2104, 2106, 2158]
    assert session.market_data_req_ids == []
    assert session.state.market_data_lines == 0
