"""SOCKET mode: IB Gateway or TWS through ib_async, read-only, on client id 10 by default.

One streaming market data line per option position (and per stock, future or CFD, for its price,
and the beta benchmark's), kept in step with the positions. Account values (base currency,
`ExchangeRate` per currency, NetLiquidation, UnrealizedPnL) come from reqAccountUpdatesMulti,
daily P&L from reqPnL, magnifiers from the contract details, betas' bars from
reqHistoricalData (docs/protocol.md). ib_async forgets every subscription when the socket closes and
does not re-subscribe after 1101, so this source rebuilds them itself on every (re)connect, on
1101 and on 1102. When the portfolio needs more lines than the budget, the lines past it are
shared in rotation: each of those instruments is refreshed at least every
`ceil(overflow / rotating_lines)` ticks, and its last Greeks (with their age) are used meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from ib_async import IB, Contract, ContractDetails, Forex, Position, StartupFetch, Stock, Ticker

from collector.account_values import from_socket_values, socket_bar_day
from collector.betas import Bar
from collector.errors import ClientIdInUse, GatewayStalled, GatewayUnavailable
from collector.events import EventLog
from collector.greeks import (
    LINEAR_TYPES,
    ONE_PER_UNIT,
    OPTION_TYPES,
    ChangeClock,
    Holding,
    OptionGreeks,
    known,
    known_price,
    known_socket_greek,
    note_bars_source,
    parse_multiplier,
)
from collector.option_terms import option_terms
from collector.settings import MARKET_DATA_TYPES, CollectorSettings
from collector.source import AccountView
from shared.records import Mode

log = logging.getLogger("collector.socket")

_SUBSCRIBED_TYPES = OPTION_TYPES | LINEAR_TYPES
# IB codes and how they are reported: (event, level); levels inside reset windows soften.
_NOTICES: dict[int, tuple[str, str]] = {
    1100: ("connectivity_lost", "warning"),
    1101: ("connectivity_restored_data_lost", "info"),
    1102: ("connectivity_restored", "info"),
    2103: ("farm_broken", "warning"),
    2105: ("farm_broken", "warning"),
    2157: ("farm_broken", "warning"),
    2104: ("farm_ok", "debug"),
    2106: ("farm_ok", "debug"),
    2158: ("farm_ok", "debug"),
    2107: ("farm_inactive", "debug"),
    2108: ("farm_inactive", "debug"),
    2110: ("connectivity_lost", "warning"),
    101: ("market_data_lines_exhausted", "warning"),
    354: ("market_data_not_subscribed", "warning"),
    # No bars for a contract (a CFD, say): its beta is missing, reported by the collector.
    162: ("historical_data_unavailable", "warning"),
    10090: ("market_data_partly_subscribed", "warning"),
    10167: ("market_data_delayed", "info"),
    10168: ("market_data_not_subscribed", "warning"),
    10197: ("market_data_competing_session", "warning"),
}
# reqMarketDataType's codes that are not live, by the names a figure's completeness counts.
_NOT_LIVE_BY_TYPE: Final = {
    2: frozenset({"frozen"}),
    3: frozenset({"delayed"}),
    4: frozenset({"delayed_frozen"}),
}
_RESET_EXPECTED = frozenset({1100, 2103, 2105, 2157, 2110})
# A batch is two messages per instrument (qualify, subscribe): 40 a second stays under TWS's 50.
_SUBSCRIBE_BATCH = 20
_SUBSCRIBE_PAUSE_S = 1.0
# Snapshot mode: at most this many instruments a tick, requested 40 a second (2.5 s of a tick).
_SNAPSHOTS_PER_TICK = 100
_SNAPSHOTS_PER_SECOND = 40


class SocketSource:
    mode: Mode = "SOCKET"

    def __init__(
        self, settings: CollectorSettings, events: EventLog, clock: Callable[[], datetime]
    ) -> None:
        self.settings = settings
        self.events = events
        self._clock = clock
        self.ib = IB()
        self.ib.errorEvent += self._on_error
        self.ib.pendingTickersEvent += self._on_tickers
        self.ib.disconnectedEvent += self._on_disconnected
        self._tickers: dict[int, Ticker] = {}
        self._contracts: dict[int, Contract] = {}
        self._greeks: dict[int, OptionGreeks] = {}
        self._implied_vols: dict[int, float] = {}  # the model's implied vol of each option
        self._changes = ChangeClock()
        self._prices: dict[int, float] = {}
        # Not-live market data by conid, from each ticker's marketDataType (2 frozen, 3 delayed,
        # 4 delayed frozen: the type the gateway says it serves, after any fallback).
        self._not_live: dict[int, frozenset[str]] = {}
        self._price_changes = ChangeClock()  # when each instrument's price last changed
        self._price_changed_at: dict[int, datetime] = {}
        self._details: dict[int, ContractDetails] = {}
        self._history_conids: dict[str, int] = {}  # underlying symbol -> the conid of its bars
        self._benchmark: Contract | None = None
        # The benchmark's lookup under way: held so it is not collected mid-flight, cancelled
        # with the connection it asks over.
        self._lookup: asyncio.Task[None] | None = None
        self._rotation = 0
        self._codes_seen: list[int] = []
        self._market_data_type = MARKET_DATA_TYPES[settings.market_data_type]
        self._budget = settings.market_data_lines
        self._pressure_reported = 0
        self._resubscribe = False
        self._plan: set[int] = set()
        self._unqualifiable: set[int] = set()
        self._subscriber: asyncio.Task[None] | None = None
        self._snapshot_plan: tuple[int, int] | None = None

    @property
    def connected(self) -> bool:
        return self.ib.isConnected()

    @property
    def prices(self) -> Mapping[int, float]:
        """The latest known price of each instrument by conid (read-only)."""
        return MappingProxyType(self._prices)

    @property
    def greeks(self) -> Mapping[int, OptionGreeks]:
        """The latest Greeks of each option by conid, each update a new object (read-only)."""
        return MappingProxyType(self._greeks)

    @property
    def subscribed(self) -> frozenset[int]:
        """The conids with a market data line open now."""
        return frozenset(self._tickers)

    @property
    def planned(self) -> frozenset[int]:
        """The conids the current plan streams (all of them, or this rotation's share)."""
        return frozenset(self._plan)

    @property
    def codes_seen(self) -> tuple[int, ...]:
        """The gateway's message codes since the last connect, in order."""
        return tuple(self._codes_seen)

    @property
    def market_data_type(self) -> int:
        """The market data type asked for now: 1 live, 2 frozen, 3 delayed, 4 delayed frozen."""
        return self._market_data_type

    async def requests_sent(self) -> None:
        """Wait until the subscriptions (or snapshot requests) in progress are all sent."""
        if self._subscriber is not None:
            await self._subscriber

    async def connect(self) -> None:
        self._codes_seen.clear()
        settings = self.settings
        try:
            await self.ib.connectAsync(
                settings.host,
                settings.port,
                clientId=settings.client_id,
                timeout=settings.connect_timeout_s,
                readonly=True,
                # Account values of every account (reqAccountUpdatesMulti), not one account's.
                fetchFields=StartupFetch.POSITIONS | StartupFetch.SUB_ACCOUNT_UPDATES,
            )
        except (OSError, TimeoutError, ConnectionError) as exc:
            if 326 in self._codes_seen:
                raise ClientIdInUse(
                    f"client id {settings.client_id} is in use by another application", code=326
                ) from exc
            raise GatewayUnavailable(
                f"cannot connect to {settings.host}:{settings.port}: {exc or type(exc).__name__}"
            ) from exc
        self.ib.reqMarketDataType(self._market_data_type)
        self._tickers.clear()
        self._contracts.clear()
        self._benchmark = None
        subscribed = {pnl.account for pnl in self.ib.pnl()}
        for account in self.ib.managedAccounts():
            wanted = not self.settings.accounts or account in self.settings.accounts
            if wanted and account not in subscribed:
                self.ib.reqPnL(account)

    async def disconnect(self) -> None:
        if self._subscriber is not None:
            self._subscriber.cancel()
        if self._lookup is not None:
            self._lookup.cancel()
            self._lookup = None
        if self.ib.isConnected():
            self.ib.disconnect()

    def _on_disconnected(self) -> None:
        # ib_async has reset its state: every ticker is gone; ours must go too.
        self._tickers.clear()

    def _on_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        self._codes_seen.append(code)
        if code == 326:
            return  # connect() raises ClientIdInUse; the collector reports it once
        event, level = _NOTICES.get(code, ("ib_error", "warning" if code >= 2000 else "error"))
        details: dict[str, Any] = {"req_id": req_id}
        if isinstance(contract, Contract) and contract.conId:
            details["conid"] = contract.conId
            details["symbol"] = contract.localSymbol or contract.symbol
        self.events.emit(
            level,  # type: ignore[arg-type]  # a Level literal from the table above
            event,
            message,
            code=code,
            expected_in_reset=code in _RESET_EXPECTED,
            details=details,
        )
        if code in (1101, 1102):
            self._resubscribe = True
        elif code in (354, 10168) and self.settings.market_data_fallback:
            self._fall_back_to_delayed()
        elif code == 101:
            self._budget = max(1, len(self._tickers) - 1)

    def _fall_back_to_delayed(self) -> None:
        delayed = 4 if self._market_data_type in (2, 4) else 3
        if self._market_data_type == delayed:
            return
        self._market_data_type = delayed
        self.ib.reqMarketDataType(delayed)
        self._resubscribe = True
        self.events.emit(
            "warning",
            "market_data_fallback",
            "live market data is not subscribed: falling back to delayed data",
            details={"market_data_type": delayed},
        )

    def _on_tickers(self, tickers: set[Ticker]) -> None:
        now = self._clock()
        for ticker in tickers:
            conid = ticker.contract.conId if ticker.contract else 0
            greeks = ticker.modelGreeks
            if greeks is not None:
                values = tuple(
                    known_socket_greek(value)
                    for value in (greeks.delta, greeks.gamma, greeks.theta, greeks.vega)
                )
                implied_vol = known_price(greeks.impliedVol)  # -1: not computed
                if implied_vol is not None:
                    self._implied_vols[conid] = implied_vol
                if any(value is not None for value in values):
                    delta, gamma, theta, vega = values
                    self._greeks[conid] = OptionGreeks(
                        delta, gamma, theta, vega,
                        known_price(greeks.undPrice),
                        self._changes.observe(conid, values, now),
                    )  # fmt: skip
            self._not_live[conid] = _NOT_LIVE_BY_TYPE.get(ticker.marketDataType, frozenset())
            price = known_price(ticker.marketPrice())
            if price is not None:
                self._prices[conid] = price
                self._price_changed_at[conid] = self._price_changes.observe(conid, (price,), now)

    async def probe(self) -> None:
        try:
            await asyncio.wait_for(self.ib.reqCurrentTimeAsync(), self.settings.connect_timeout_s)
        except TimeoutError:
            raise GatewayStalled("the gateway did not answer the current-time probe") from None
        except ConnectionError as exc:
            raise GatewayUnavailable(f"connection lost: {exc}") from exc

    async def read(self, now: datetime) -> dict[str, AccountView]:
        if not self.ib.isConnected():
            raise GatewayUnavailable("not connected")
        positions = [
            position
            for position in self.ib.positions()
            if not self.settings.accounts or position.account in self.settings.accounts
        ]
        held = [p.contract for p in positions if p.position != 0]
        benchmark = self._benchmark_contract(held)
        self._sync_subscriptions(held + ([benchmark] if benchmark is not None else []))
        daily_pnl = self._sync_position_pnl(positions)
        holdings: dict[str, list[Holding]] = {}
        for position in positions:
            own_pnl = daily_pnl.get((position.account, position.contract.conId))
            holdings.setdefault(position.account, []).append(
                self._holding(position.contract, position.position, daily_pnl=own_pnl)
            )
        accounts = [
            account
            for account in self.ib.managedAccounts()
            if not self.settings.accounts or account in self.settings.accounts
        ]
        for account in accounts:
            holdings.setdefault(account, [])
        bench_price = self._prices.get(benchmark.conId) if benchmark is not None else None
        if bench_price is None:  # held only through options: their model's underlying price
            bench_price = next(
                (
                    greeks.underlying_price
                    for account_holdings in holdings.values()
                    for item in account_holdings
                    if item.symbol == self.settings.beta_benchmark and item.is_option
                    for greeks in [item.greeks]
                    if greeks is not None and greeks.underlying_price is not None
                ),
                None,
            )
        bench_currency = (
            benchmark.currency if benchmark is not None and benchmark.currency else "USD"
        )
        return {
            account: AccountView(
                items,
                from_socket_values(
                    ((v.tag, v.value, v.currency) for v in self.ib.accountValues(account)),
                    next((pnl.dailyPnL for pnl in self.ib.pnl(account)), None),
                ),
                bench_price,
                bench_currency,
            )
            for account, items in holdings.items()
        }

    def _holding(
        self, contract: Contract, quantity: float, *, daily_pnl: float | None = None
    ) -> Holding:
        conid = contract.conId
        multiplier = parse_multiplier(contract.multiplier)
        if multiplier is None and contract.secType in ONE_PER_UNIT:
            multiplier = 1.0  # a share is one share; IB leaves the field empty
        details = self._details.get(conid)
        magnifier = float(details.priceMagnifier) if details and details.priceMagnifier > 0 else 1.0
        underlying_conid = details.underConId if details is not None else 0
        note_bars_source(
            self._history_conids, contract.symbol, contract.secType, conid, underlying_conid
        )
        return Holding(
            conid=conid,
            symbol=contract.symbol,
            sec_type=contract.secType,
            quantity=float(quantity),
            multiplier=multiplier,
            currency=contract.currency or None,
            magnifier=magnifier,
            price=self._prices.get(conid),
            price_changed_at=self._price_changed_at.get(conid),
            greeks=self._greeks.get(conid),
            terms=option_terms(
                sec_type=contract.secType,
                symbol=contract.symbol,
                right=contract.right,
                strike=contract.strike,
                expiry=contract.lastTradeDateOrContractMonth,
                underlying_sec_type=(details.underSecType or None) if details else None,
                implied_vol=self._implied_vols.get(conid),
                option_price=self._prices.get(conid),
            ),
            market_data=self._not_live.get(conid, frozenset()),
            daily_pnl=daily_pnl,
        )

    def _benchmark_contract(self, held: list[Contract]) -> Contract | None:
        """The benchmark's contract: a holding of it, else looked up once per connection."""
        symbol = self.settings.beta_benchmark
        for contract in held:
            if contract.symbol == symbol and contract.secType in ("STK", "ETF"):
                self._benchmark = contract
                return contract
        if self._benchmark is None:
            self._benchmark = Stock(
                symbol,
                "SMART",
                self.settings.beta_benchmark_currency,
                primaryExchange=self.settings.beta_benchmark_exchange,
            )
            self._lookup = asyncio.create_task(self._look_up_benchmark(self._benchmark))
        return self._benchmark if self._benchmark.conId else None

    async def _look_up_benchmark(self, contract: Contract) -> None:
        try:
            found = await asyncio.wait_for(
                self.ib.reqContractDetailsAsync(contract), self.settings.connect_timeout_s
            )
        except (TimeoutError, ConnectionError):
            self._benchmark = None  # asked again at the next tick
            return
        if len(found) == 1 and found[0].contract is not None:
            self._benchmark = found[0].contract
            self._contracts[self._benchmark.conId] = self._benchmark
            self._history_conids[self.settings.beta_benchmark] = self._benchmark.conId
        else:  # kept as asked (no conid): not asked again on this connection
            self.events.emit(
                "warning", "benchmark_unknown",
                f"the gateway has {len(found)} stocks named {contract.symbol} on SMART in"
                f" {contract.currency} (primary {contract.primaryExchange}):"
                " beta delta is left out (no_price)",
            )  # fmt: skip

    async def history(self, symbols: list[str]) -> dict[str, list[Bar] | None]:
        """A year of daily TRADES bars for each symbol whose contract is known; None for a
        symbol the gateway has no bars for."""
        found: dict[str, list[Bar] | None] = {}
        for symbol in symbols:
            conid = self._history_conids.get(symbol)
            if conid is None:
                continue
            if not self.ib.isConnected():
                raise GatewayUnavailable("not connected")
            contract = self._contracts.get(conid) or await self._details_of(conid)
            if contract is None:
                found[symbol] = None
                continue
            found[symbol] = await self._daily_closes(contract, "TRADES")
        return found

    async def fx_history(self, currency: str, quote_currency: str) -> list[Bar] | None:
        """A year of daily MIDPOINT bars of the pair on IDEALPRO (an FX pair has no TRADES:
        docs/ibkr-conventions.md, "Betas across currencies and calendars"); None when the
        gateway knows no such pair or has no bars for it."""
        if not self.ib.isConnected():
            raise GatewayUnavailable("not connected")
        try:
            found = await asyncio.wait_for(
                self.ib.reqContractDetailsAsync(Forex(currency + quote_currency)),
                self.settings.connect_timeout_s,
            )
        except TimeoutError:
            return None
        if len(found) != 1 or found[0].contract is None:
            return None
        return await self._daily_closes(found[0].contract, "MIDPOINT")

    async def _daily_closes(self, contract: Contract, what: str) -> list[Bar] | None:
        """A year of daily `what` (TRADES, MIDPOINT) closes of `contract`; None without any."""
        bars = await self.ib.reqHistoricalDataAsync(
            contract, "", "1 Y", "1 day", what, useRTH=True,
            timeout=self.settings.connect_timeout_s * 3,
        )  # fmt: skip
        days = [
            Bar(day, close)
            for bar in bars
            for day, close in [(socket_bar_day(bar.date), known(bar.close))]
            if day is not None and close is not None
        ]
        return days or None

    async def _details_of(self, conid: int) -> Contract | None:
        await self._qualify([conid])
        return self._contracts.get(conid)

    def _sync_position_pnl(self, positions: list[Position]) -> dict[tuple[str, int], float]:
        """Keep one reqPnLSingle per position held (dropped when it closes); each position's
        daily P&L as the gateway last sent it (the P&L explain's actual per position)."""
        wanted = {(p.account, p.contract.conId) for p in positions if p.position != 0}
        subscribed = {(item.account, item.conId): item for item in self.ib.pnlSingle()}
        for account, conid in wanted - set(subscribed):
            self.ib.reqPnLSingle(account, "", conid)
        for account, conid in set(subscribed) - wanted:
            self.ib.cancelPnLSingle(account, "", conid)
        return {
            key: value
            for key, item in subscribed.items()
            if key in wanted and (value := known(item.dailyPnL)) is not None
        }

    def _sync_subscriptions(self, contracts: list[Contract]) -> None:
        """Plan what streams now (options first, overflow in rotation), cancel what no longer
        should, and leave the new subscriptions to the paced background subscriber."""
        wanted: dict[int, Contract] = {}
        for contract in contracts:
            if contract.secType in _SUBSCRIBED_TYPES and contract.conId not in wanted:
                wanted[contract.conId] = contract
        if self._resubscribe:
            self._resubscribe = False
            for conid in list(self._tickers):
                self._cancel(conid)
        for conid in [conid for conid in self._tickers if conid not in wanted]:
            self._greeks.pop(conid, None)
            self._implied_vols.pop(conid, None)
            self._prices.pop(conid, None)
            self._not_live.pop(conid, None)
            self._changes.forget(conid)
            self._price_changes.forget(conid)
            self._price_changed_at.pop(conid, None)
        # Options first: their Greeks are the point; stocks and futures only give a price.
        ordered = sorted(
            (conid for conid in wanted if conid not in self._unqualifiable),
            key=lambda conid: (wanted[conid].secType not in ("OPT", "FOP"), conid),
        )
        if self.settings.market_data_mode == "snapshot":
            self._plan_snapshots(ordered)
            return
        streaming, overflow = self._allocate(ordered)
        self._plan = set(streaming)
        for conid in [conid for conid in self._tickers if conid not in self._plan]:
            self._cancel(conid)
        if any(conid not in self._tickers for conid in self._plan) and (
            self._subscriber is None or self._subscriber.done()
        ):
            self._subscriber = asyncio.create_task(self._subscribe_planned())
        self._report_pressure(len(ordered), len(overflow))

    def _plan_snapshots(self, ordered: list[int]) -> None:
        """Snapshot mode: no streaming line is held; each tick asks for one-off snapshots of the
        next instruments in turn, so each is refreshed every ceil(n / per tick) ticks."""
        if not ordered:
            return
        per_tick = min(len(ordered), self._budget, _SNAPSHOTS_PER_TICK)
        start = (self._rotation * per_tick) % len(ordered)
        self._rotation += 1
        batch = [ordered[(start + offset) % len(ordered)] for offset in range(per_tick)]
        refresh_every = math.ceil(len(ordered) / per_tick)
        if (len(ordered), per_tick) != self._snapshot_plan:
            self._snapshot_plan = (len(ordered), per_tick)
            self.events.emit(
                "info",
                "market_data_snapshots",
                f"{len(ordered)} instruments by snapshot, {per_tick} a tick: each refreshed"
                f" every {refresh_every} ticks",
                details={"instruments": len(ordered), "per_tick": per_tick,
                         "refresh_every_ticks": refresh_every},
            )  # fmt: skip
        if self._subscriber is None or self._subscriber.done():
            self._subscriber = asyncio.create_task(self._take_snapshots(batch))

    async def _take_snapshots(self, batch: list[int]) -> None:
        unknown = [conid for conid in batch if conid not in self._contracts]
        for start in range(0, len(unknown), _SUBSCRIBE_BATCH):
            await self._qualify(unknown[start : start + _SUBSCRIBE_BATCH])
        for index, conid in enumerate(batch):
            if not self.ib.isConnected():
                return
            if conid in self._contracts:
                self.ib.reqMktData(self._contracts[conid], snapshot=True)
            if (index + 1) % _SNAPSHOTS_PER_SECOND == 0:
                await asyncio.sleep(1.0)  # TWS drops a client past 50 messages a second

    async def _qualify(self, conids: list[int]) -> None:
        """Contract details of each conid: the contract to subscribe with, its magnifier and
        its underlying's conid (one reqContractDetails each, as qualifyContracts does)."""
        try:
            found = await asyncio.wait_for(
                # return_exceptions: a request ib_async cancels on a disconnect is one
                # missing answer, not a failure left unretrieved in the gathering future.
                asyncio.gather(
                    *(self.ib.reqContractDetailsAsync(Contract(conId=c)) for c in conids),
                    return_exceptions=True,
                ),
                self.settings.connect_timeout_s,
            )
        except (TimeoutError, ConnectionError):
            return  # the next tick tries again
        unknown = []
        for conid, details_list in zip(conids, found, strict=True):
            if isinstance(details_list, BaseException):
                continue  # no answer (a disconnect): asked again later
            if len(details_list) == 1 and details_list[0].contract is not None:
                self._details[conid] = details_list[0]
                self._contracts[conid] = details_list[0].contract
            else:
                unknown.append(conid)
        self._give_up_on(unknown)

    async def _subscribe_planned(self) -> None:
        """Qualify and subscribe the planned instruments, a paced batch at a time: TWS drops a
        client that sends more than 50 messages a second."""
        while self.ib.isConnected():
            missing = sorted(
                conid
                for conid in self._plan
                if conid not in self._tickers and conid not in self._unqualifiable
            )
            batch = missing[:_SUBSCRIBE_BATCH]
            if not batch:
                return
            unknown = [conid for conid in batch if conid not in self._contracts]
            if unknown:
                await self._qualify(unknown)
            for conid in batch:
                if conid in self._contracts and conid in self._plan and conid not in self._tickers:
                    self._tickers[conid] = self.ib.reqMktData(self._contracts[conid])
            if len(missing) > len(batch):
                await asyncio.sleep(_SUBSCRIBE_PAUSE_S)

    def _give_up_on(self, conids: list[int]) -> None:
        for conid in conids:
            if conid in self._unqualifiable:
                continue
            self._unqualifiable.add(conid)
            self.events.emit(
                "warning",
                "contract_unknown",
                f"the gateway knows no contract {conid}: it is counted without Greeks",
                details={"conid": conid},
            )

    def _allocate(self, ordered: list[int]) -> tuple[list[int], list[int]]:
        if len(ordered) <= self._budget:
            return ordered, []
        rotating = max(1, self._budget // 4)
        fixed = ordered[: self._budget - rotating]
        overflow = ordered[self._budget - rotating :]
        start = (self._rotation * rotating) % len(overflow)
        self._rotation += 1
        window = [overflow[(start + offset) % len(overflow)] for offset in range(rotating)]
        return fixed + window, overflow

    def _report_pressure(self, needed: int, overflow: int) -> None:
        if overflow == self._pressure_reported:
            return
        self._pressure_reported = overflow
        if overflow:
            rotating = max(1, self._budget // 4)
            self.events.emit(
                "warning",
                "market_data_budget",
                f"{needed} instruments need market data but the budget is {self._budget} lines: "
                f"{overflow} share {rotating} lines in rotation",
                details={
                    "needed": needed,
                    "budget": self._budget,
                    "refresh_every_ticks": math.ceil(overflow / rotating),
                },
            )
        else:
            self.events.emit("info", "market_data_budget", "every instrument has its own line")

    def _cancel(self, conid: int) -> None:
        ticker = self._tickers.pop(conid, None)
        if ticker is not None and ticker.contract is not None and self.ib.isConnected():
            self.ib.cancelMktData(ticker.contract)
