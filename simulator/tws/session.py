"""One client connection after the handshake, as a state machine: requests in, messages out.

Sans-IO: the gateway hands it parsed requests, the time and the model's events, and writes the
field lists it returns. What all connections share (client ids, market data lines, farm and
connectivity status) is a `GatewayState`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from simulator.model import Instrument, Market, Position, cents
from simulator.tws import messages
from simulator.tws.accounts import account_values, summary_tags
from simulator.tws.contracts import match_instruments
from simulator.tws.ids import MarketDataType, TickType
from simulator.tws.messages import OptionComputation
from simulator.tws.requests import (
    CancelAccountSummary,
    CancelAccountUpdatesMulti,
    CancelHistoricalData,
    CancelMktData,
    CancelPnL,
    CancelPnLSingle,
    CancelPositions,
    ReqAccountSummary,
    ReqAccountUpdates,
    ReqAccountUpdatesMulti,
    ReqAllOpenOrders,
    ReqAutoOpenOrders,
    ReqCompletedOrders,
    ReqContractDetails,
    ReqCurrentTime,
    ReqExecutions,
    ReqHistoricalData,
    ReqIds,
    ReqManagedAccts,
    ReqMarketDataType,
    ReqMktData,
    ReqOpenOrders,
    ReqPnL,
    ReqPnLSingle,
    ReqPositions,
    ReqSecDefOptParams,
    Request,
    StartApi,
    Unsupported,
)
from simulator.tws.wire import Field

Outgoing = list[list[Field]]

_OPTIONS = ("OPT", "FOP")
_MARK_PRICE_GENERIC_TICK = "221"
_LIVE_TICKS = {
    "bid": (TickType.BID, TickType.BID_OPTION_COMPUTATION),
    "ask": (TickType.ASK, TickType.ASK_OPTION_COMPUTATION),
    "last": (TickType.LAST, TickType.LAST_OPTION_COMPUTATION),
}
_DELAYED_TICKS = {
    "bid": (TickType.DELAYED_BID, TickType.DELAYED_BID_OPTION),
    "ask": (TickType.DELAYED_ASK, TickType.DELAYED_ASK_OPTION),
    "last": (TickType.DELAYED_LAST, TickType.DELAYED_LAST_OPTION),
}


@dataclass
class GatewayState:
    """What every connection of one gateway shares."""

    client_ids: set[int] = field(default_factory=set)
    market_data_lines: int = 0
    farms_ok: bool = True
    connectivity_lost: bool = False
    # Order ids never go backwards across sessions; the simulator takes no orders.
    next_order_id: int = 1

    @property
    def data_flows(self) -> bool:
        return self.farms_ok and not self.connectivity_lost


@dataclass
class _MarketData:
    req_id: int
    instrument: Instrument
    delayed: bool
    with_greeks: bool
    with_mark: bool
    # The last message sent per tick type: ticks go out only when their values change.
    sent: dict[int, list[Field]] = field(default_factory=dict)


@dataclass
class _PnL:
    req_id: int
    account: str
    conid: int | None
    sent: list[Field] | None = None


_BARS_PER_UNIT = {"D": 1, "W": 5, "M": 21, "Y": 252}


def _duration_bars(duration: str) -> int | None:
    """How many daily bars a duration string ("1 Y", "6 M", "30 D") spans; None if malformed."""
    parts = duration.split()
    if len(parts) != 2 or not parts[0].isdigit() or parts[1] not in _BARS_PER_UNIT:
        return None
    return max(1, int(parts[0]) * _BARS_PER_UNIT[parts[1]])


def farm_notices(*, ok: bool, server_version: int) -> Outgoing:
    notices = messages.FARMS_OK if ok else messages.FARMS_BROKEN
    return [messages.error(-1, code, text, server_version=server_version) for code, text in notices]


def connectivity_lost_notices(server_version: int) -> Outgoing:
    code, text = messages.CONNECTIVITY_LOST
    return [
        messages.error(-1, code, text, server_version=server_version),
        *farm_notices(ok=False, server_version=server_version),
    ]


def position_changes(
    before: dict[tuple[str, int], Position], after: list[Position]
) -> list[Position]:
    """Positions that differ between two snapshots; a closed one comes back with quantity 0."""
    current = {(item.account, item.instrument.conid): item for item in after}
    changed = [item for key, item in current.items() if before.get(key) != item]
    closed = [
        Position(item.account, item.instrument, 0.0, 0.0)
        for key, item in before.items()
        if key not in current
    ]
    return changed + closed


class Session:
    """A started (or starting) API client: its subscriptions and what it is owed."""

    def __init__(self, market: Market, state: GatewayState, server_version: int) -> None:
        self.market = market
        self.state = state
        self.server_version = server_version
        self.client_id: int | None = None
        self.closing = False  # the gateway closes the socket once the last messages are out
        self._positions = False
        self._account_updates: str | None = None
        self._account_multi: dict[int, str] = {}
        self._market_data: dict[int, _MarketData] = {}
        self._pnl: dict[int, _PnL] = {}
        # reqMarketDataType: with live data available TWS serves live whatever was asked; with
        # live data not subscribed (fault 354) and delayed asked for, it serves delayed.
        self._data_type_asked = MarketDataType.REALTIME
        self._handlers: dict[type, Callable[[Any, float], Outgoing]] = {
            ReqPositions: self._req_positions,
            CancelPositions: self._cancel_positions,
            ReqAccountUpdates: self._req_account_updates,
            ReqAccountUpdatesMulti: self._req_account_updates_multi,
            CancelAccountUpdatesMulti: self._cancel_account_updates_multi,
            ReqAccountSummary: self._req_account_summary,
            CancelAccountSummary: lambda request, now: [],
            ReqOpenOrders: lambda request, now: [messages.open_order_end()],
            ReqAllOpenOrders: lambda request, now: [messages.open_order_end()],
            ReqAutoOpenOrders: lambda request, now: [],
            ReqCompletedOrders: lambda request, now: [messages.completed_orders_end()],
            ReqExecutions: lambda request, now: [messages.execution_data_end(request.req_id)],
            ReqIds: lambda request, now: [messages.next_valid_id(self.state.next_order_id)],
            ReqManagedAccts: lambda request, now: [messages.managed_accounts(market.accounts())],
            ReqCurrentTime: lambda request, now: [messages.current_time(int(now))],
            ReqMarketDataType: self._req_market_data_type,
            ReqMktData: self._req_mkt_data,
            CancelMktData: self._cancel_mkt_data,
            ReqContractDetails: self._req_contract_details,
            ReqHistoricalData: self._req_historical_data,
            CancelHistoricalData: lambda request, now: [],  # answered at once: nothing to stop
            ReqPnL: self._req_pnl,
            ReqPnLSingle: self._req_pnl,
            CancelPnL: self._cancel_pnl,
            CancelPnLSingle: self._cancel_pnl,
            ReqSecDefOptParams: self._req_sec_def_opt_params,
            Unsupported: lambda request, now: [],
        }

    @property
    def started(self) -> bool:
        return self.client_id is not None

    @property
    def market_data_req_ids(self) -> list[int]:
        return list(self._market_data)

    def handle(self, request: Request, now: float) -> Outgoing:
        if isinstance(request, StartApi):
            return self._start_api(request)
        if not self.started:
            return []  # TWS ignores requests that come before startApi
        return self._handlers[type(request)](request, now)

    def close(self) -> None:
        """The socket is gone: free the client id and the market data lines (idempotent)."""
        self.state.market_data_lines -= len(self._market_data)
        self._market_data.clear()
        if self.client_id is not None:
            self.state.client_ids.discard(self.client_id)
            self.client_id = None

    def stream(self, now: float) -> Outgoing:
        """Market data and PnL that changed since they were last sent."""
        if not self.state.data_flows:
            return []
        out: Outgoing = []
        for subscription in self._market_data.values():
            out += self._ticks(subscription, now)
        for pnl in self._pnl.values():
            out += self._pnl_update(pnl)
        return out

    def positions_changed(self, changes: list[Position], now: float) -> Outgoing:
        if not self.started:
            return []
        out: Outgoing = []
        if self._positions:
            out += [messages.position(item) for item in changes]
        account = self._account_updates
        if account is not None and any(item.account == account for item in changes):
            out += self._account_value_messages(account)
            for item in changes:
                if item.account == account:
                    value = self.market.valuation(item)
                    out.append(
                        messages.portfolio_value(
                            item, value.market_price, value.market_value, value.unrealized_pnl
                        )
                    )
            out.append(messages.account_update_time(time.strftime("%H:%M", time.gmtime(now))))
        for req_id, multi_account in self._account_multi.items():
            if any(item.account == multi_account for item in changes):
                out += self._account_multi_messages(req_id, multi_account)
        return out

    def connectivity_restored(self, *, data_lost: bool) -> Outgoing:
        """1101 drops every market data subscription, 1102 keeps them; ticks are sent afresh."""
        if data_lost:
            self.state.market_data_lines -= len(self._market_data)
            self._market_data.clear()
        for subscription in self._market_data.values():
            subscription.sent.clear()
        code, text = (
            messages.CONNECTIVITY_RESTORED_DATA_LOST
            if data_lost
            else messages.CONNECTIVITY_RESTORED_DATA_MAINTAINED
        )
        return [
            messages.error(-1, code, text, server_version=self.server_version),
            *farm_notices(ok=True, server_version=self.server_version),
        ]

    def _error(self, req_id: int, code_and_text: tuple[int, str], **details: object) -> list[Field]:
        code, text = code_and_text
        return messages.error(
            req_id, code, text.format(**details), server_version=self.server_version
        )

    def _start_api(self, request: StartApi) -> Outgoing:
        if self.started:
            return []
        in_use = self.state.client_ids | self.market.faults.client_ids_in_use
        if request.client_id in in_use:
            self.closing = True
            return [self._error(-1, messages.CLIENT_ID_IN_USE)]
        self.client_id = request.client_id
        self.state.client_ids.add(request.client_id)
        return [
            messages.managed_accounts(self.market.accounts()),
            messages.next_valid_id(self.state.next_order_id),
            *farm_notices(ok=self.state.farms_ok, server_version=self.server_version),
        ]

    def _all_positions(self) -> list[Position]:
        return [
            item for account in self.market.accounts() for item in self.market.positions(account)
        ]

    def _req_positions(self, _request: ReqPositions, _now: float) -> Outgoing:
        self._positions = True
        return [*map(messages.position, self._all_positions()), messages.position_end()]

    def _cancel_positions(self, _request: CancelPositions, _now: float) -> Outgoing:
        self._positions = False
        return []

    def _account_value_messages(self, account: str) -> Outgoing:
        values = account_values(
            account,
            self.market.ledger(account),
            ledger_prefix=self.market.scenario.ledger_prefix,
        )
        return [
            messages.account_value(key, value, currency, account) for key, value, currency in values
        ]

    def _req_account_updates(self, request: ReqAccountUpdates, now: float) -> Outgoing:
        if not request.subscribe:
            self._account_updates = None
            return []
        account = request.account
        if account not in self.market.accounts():
            return [messages.account_download_end(account)]
        # One account at a time, as in TWS: subscribing to another replaces the first.
        self._account_updates = account
        out = self._account_value_messages(account)
        for item in self.market.positions(account):
            value = self.market.valuation(item)
            out.append(
                messages.portfolio_value(
                    item, value.market_price, value.market_value, value.unrealized_pnl
                )
            )
        out.append(messages.account_update_time(time.strftime("%H:%M", time.gmtime(now))))
        out.append(messages.account_download_end(account))
        return out

    def _account_multi_messages(self, req_id: int, account: str) -> Outgoing:
        values = account_values(
            account,
            self.market.ledger(account),
            ledger_prefix=self.market.scenario.ledger_prefix,
        )
        return [
            messages.account_update_multi(
                req_id, account, "", key=key, value=value, currency=currency
            )
            for key, value, currency in values
        ]

    def _req_account_updates_multi(self, request: ReqAccountUpdatesMulti, _now: float) -> Outgoing:
        out: Outgoing = []
        if request.account in self.market.accounts():
            self._account_multi[request.req_id] = request.account
            out += self._account_multi_messages(request.req_id, request.account)
        return [*out, messages.account_update_multi_end(request.req_id)]

    def _cancel_account_updates_multi(
        self, request: CancelAccountUpdatesMulti, _now: float
    ) -> Outgoing:
        self._account_multi.pop(request.req_id, None)
        return []

    def _req_account_summary(self, request: ReqAccountSummary, _now: float) -> Outgoing:
        wanted = summary_tags(request.tags)
        out: Outgoing = []
        for account in self.market.accounts():
            values = account_values(
                account,
                self.market.ledger(account),
                ledger_prefix=self.market.scenario.ledger_prefix,
            )
            out += [
                messages.account_summary(request.req_id, account, key, value, currency)
                for key, value, currency in values
                if wanted is None or key in wanted
            ]
        return [*out, messages.account_summary_end(request.req_id)]

    def _req_contract_details(self, request: ReqContractDetails, _now: float) -> Outgoing:
        matches = match_instruments(self.market, request.contract)
        if not matches:
            return [self._error(request.req_id, messages.NO_SECURITY_DEFINITION)]
        out: Outgoing = []
        for instrument in matches:
            underlying = (
                self.market.instrument(instrument.underlying_conid)
                if instrument.underlying_conid
                else None
            )
            out.append(
                messages.contract_data(
                    request.req_id, instrument, underlying, server_version=self.server_version
                )
            )
        return [*out, messages.contract_data_end(request.req_id)]

    def _req_historical_data(self, request: ReqHistoricalData, now: float) -> Outgoing:
        """Daily bars of the model's year, the last `duration` of them up to `end_date_time`
        (empty: now); completed days only, so a beta from them holds all day."""
        matches = match_instruments(self.market, request.contract)
        if len(matches) != 1:
            return [self._error(request.req_id, messages.NO_SECURITY_DEFINITION)]
        instrument = matches[0]
        count = _duration_bars(request.duration)
        if request.bar_size.strip() != "1 day" or count is None:
            cause = f"the simulator serves '1 day' bars over 'N D|W|M|Y', not {request!r}"
            return [self._error(request.req_id, messages.INVALID_HISTORICAL_REQUEST, cause=cause)]
        bars = self.market.bars(instrument.conid)
        end_day = request.end_date_time.strip()[:8]
        if bars is not None and end_day.isdigit():
            bars = [bar for bar in bars if bar.day.strftime("%Y%m%d") <= end_day]
        if not bars:
            return [
                self._error(
                    request.req_id, messages.HISTORICAL_DATA_ERROR,
                    local_symbol=instrument.local_symbol, exchange=instrument.exchange,
                    what=request.what_to_show.title(),
                )
            ]  # fmt: skip
        served = bars[-count:]
        start = served[0].day.strftime("%Y%m%d 00:00:00")
        end = time.strftime("%Y%m%d %H:%M:%S", time.gmtime(now))
        return [messages.historical_data(request.req_id, start, end, served)]

    def _req_market_data_type(self, request: ReqMarketDataType, _now: float) -> Outgoing:
        if request.market_data_type in {int(kind) for kind in MarketDataType}:
            self._data_type_asked = MarketDataType(request.market_data_type)
        return []

    def _req_mkt_data(self, request: ReqMktData, now: float) -> Outgoing:
        matches = match_instruments(self.market, request.contract)
        if len(matches) != 1:
            return [self._error(request.req_id, messages.NO_SECURITY_DEFINITION)]
        instrument = matches[0]
        faults = self.market.faults
        # Live not subscribed, delayed asked for (reqMarketDataType 3 or 4): delayed data, with
        # 10167 "Displaying delayed market data" (TWS API "Delayed Streaming Data",
        # https://interactivebrokers.github.io/tws-api/delayed_data.html).
        delayed_instead = faults.market_data_error == messages.NOT_SUBSCRIBED[0] and (
            self._data_type_asked in (MarketDataType.DELAYED, MarketDataType.DELAYED_FROZEN)
        )
        if faults.market_data_error == messages.NOT_SUBSCRIBED[0] and not delayed_instead:
            venue = "BEST" if instrument.exchange == "SMART" else instrument.exchange
            return [
                self._error(
                    request.req_id,
                    messages.NOT_SUBSCRIBED,
                    venue=venue,
                    sec_type=instrument.sec_type,
                )
            ]
        streaming = not request.snapshot
        if request.req_id in self._market_data:
            self._drop_market_data(request.req_id)
        if streaming and self.state.market_data_lines >= faults.max_market_data_lines:
            return [self._error(request.req_id, messages.MAX_TICKERS)]
        delayed = faults.market_data_error == messages.DISPLAYING_DELAYED[0] or delayed_instead
        partial = faults.market_data_error == messages.PARTLY_NOT_SUBSCRIBED[0]
        out: Outgoing = []
        if delayed:
            out.append(self._error(request.req_id, messages.DISPLAYING_DELAYED))
        if partial:
            out.append(self._error(request.req_id, messages.PARTLY_NOT_SUBSCRIBED))
        data_type = MarketDataType.DELAYED if delayed else MarketDataType.REALTIME
        out.append(messages.market_data_type(request.req_id, data_type))
        out.append(messages.tick_req_params(request.req_id, 0.01, instrument.exchange))
        subscription = _MarketData(
            request.req_id,
            instrument,
            delayed=delayed,
            # 10090: the underlying is not subscribed, so TWS cannot compute Greeks.
            with_greeks=not partial,
            with_mark=_MARK_PRICE_GENERIC_TICK in request.generic_ticks and not delayed,
        )
        if self.state.data_flows:
            out += self._ticks(subscription, now)
        if streaming:
            self._market_data[request.req_id] = subscription
            self.state.market_data_lines += 1
        else:
            out.append(messages.tick_snapshot_end(request.req_id))
        return out

    def _drop_market_data(self, req_id: int) -> bool:
        if self._market_data.pop(req_id, None) is None:
            return False
        self.state.market_data_lines -= 1
        return True

    def _cancel_mkt_data(self, request: CancelMktData, _now: float) -> Outgoing:
        if self._drop_market_data(request.req_id):
            return []
        return [self._error(request.req_id, messages.UNKNOWN_TICKER_ID, ticker_id=request.req_id)]

    def _ticks(self, subscription: _MarketData, now: float) -> Outgoing:
        instrument = subscription.instrument
        req_id = subscription.req_id
        quote = self.market.quote(instrument.conid)
        prices = {
            "bid": (quote.bid, quote.bid_size),
            "ask": (quote.ask, quote.ask_size),
            "last": (quote.last, quote.last_size),
        }
        tick_types = _DELAYED_TICKS if subscription.delayed else _LIVE_TICKS
        ticks: list[tuple[TickType, list[Field]]] = []
        for side, (price, size) in prices.items():
            if price is not None:
                tick = tick_types[side][0]
                ticks.append((tick, messages.tick_price(req_id, tick, price, size or 0)))
        if quote.volume is not None:
            tick = TickType.DELAYED_VOLUME if subscription.delayed else TickType.VOLUME
            ticks.append((tick, messages.tick_size(req_id, tick, quote.volume)))
        if subscription.with_mark and quote.mark is not None:
            tick = TickType.MARK_PRICE
            ticks.append((tick, messages.tick_price(req_id, tick, quote.mark, 0)))
        if instrument.sec_type in _OPTIONS and instrument.has_greeks and subscription.with_greeks:
            model = OptionComputation(
                quote.implied_vol,
                quote.delta,
                quote.option_price,
                quote.pv_dividend,
                quote.gamma,
                quote.vega,
                quote.theta,
                quote.underlying_price,
            )
            # TWS computes bid, ask and last Greeks from those prices; the model's Greeks at
            # the market's price stand in for them.
            for side, (price, _size) in prices.items():
                if price is not None:
                    tick = tick_types[side][1]
                    at_price = replace(model, option_price=price)
                    ticks.append((tick, messages.tick_option_computation(req_id, tick, at_price)))
            tick = TickType.DELAYED_MODEL_OPTION if subscription.delayed else TickType.MODEL_OPTION
            ticks.append((tick, messages.tick_option_computation(req_id, tick, model)))
        out: Outgoing = []
        for tick, message in ticks:
            if subscription.sent.get(tick) != message:
                subscription.sent[tick] = message
                out.append(message)
                if tick in (TickType.LAST, TickType.DELAYED_LAST):
                    out.append(self._last_timestamp(subscription, now))
        return out

    @staticmethod
    def _last_timestamp(subscription: _MarketData, now: float) -> list[Field]:
        tick = TickType.DELAYED_LAST_TIMESTAMP if subscription.delayed else TickType.LAST_TIMESTAMP
        return messages.tick_string(subscription.req_id, tick, str(int(now)))

    def _req_pnl(self, request: ReqPnL | ReqPnLSingle, _now: float) -> Outgoing:
        conid = request.conid if isinstance(request, ReqPnLSingle) else None
        subscription = _PnL(request.req_id, request.account, conid)
        self._pnl[request.req_id] = subscription
        return self._pnl_update(subscription) if self.state.data_flows else []

    def _cancel_pnl(self, request: CancelPnL | CancelPnLSingle, _now: float) -> Outgoing:
        self._pnl.pop(request.req_id, None)
        return []

    def _pnl_update(self, subscription: _PnL) -> Outgoing:
        """reqPnL: the account's daily and unrealized P&L in its base currency, to the cent, as
        its account values state them; reqPnLSingle: one position's, in its own currency (in
        the base currency with the `pnl_single_in_base` fault)."""
        if subscription.conid is None:
            money = self.market.ledger(subscription.account).base
            message = messages.pnl(
                subscription.req_id, cents(money.daily_pnl), cents(money.unrealized_pnl), 0.0
            )
        else:
            position = next(
                (
                    item
                    for item in self.market.positions(subscription.account)
                    if item.instrument.conid == subscription.conid
                ),
                None,
            )
            if position is None:
                return []
            value = self.market.valuation(position)
            # The position's own currency, or with `pnl_single_in_base` the base currency:
            # IBKR does not say which a real gateway uses (docs/pnl-explain.md, "Actual").
            rate = (
                self.market.exchange_rate(subscription.account, position.instrument.currency)
                if self.market.faults.pnl_single_in_base
                else 1.0
            )
            if rate is None:
                return []
            message = messages.pnl_single(
                subscription.req_id,
                position.quantity,
                daily=cents(value.daily_pnl * rate),
                unrealized=cents(value.unrealized_pnl * rate),
                realized=0.0,
                value=cents(value.market_value * rate),
            )
        if message == subscription.sent:
            return []
        subscription.sent = message
        return [message]

    def _req_sec_def_opt_params(self, request: ReqSecDefOptParams, _now: float) -> Outgoing:
        chains: dict[tuple[str, str, str], tuple[set[str], set[float]]] = {}
        for instrument in self.market.find_instruments(symbol=request.underlying_symbol):
            if instrument.sec_type not in _OPTIONS or (
                request.underlying_conid and instrument.underlying_conid != request.underlying_conid
            ):
                continue
            key = (instrument.exchange, instrument.trading_class, f"{instrument.multiplier:g}")
            expirations, strikes = chains.setdefault(key, (set(), set()))
            if instrument.expiry:
                expirations.add(instrument.expiry)
            if instrument.strike is not None:
                strikes.add(instrument.strike)
        out: Outgoing = [
            messages.security_definition_option_parameter(
                request.req_id,
                exchange,
                request.underlying_conid,
                trading_class=trading_class,
                multiplier=multiplier,
                expirations=sorted(expirations),
                strikes=sorted(strikes),
            )
            for (exchange, trading_class, multiplier), (expirations, strikes) in chains.items()
        ]
        return [*out, messages.security_definition_option_parameter_end(request.req_id)]
