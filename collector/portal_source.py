"""PORTAL mode: the Client Portal gateway's REST API through aiohttp.

Keeps the session alive (/tickle about every 60 s), watches /iserver/auth/status (authenticated,
connected, not competing), opens the brokerage session when it is missing, calls
/portfolio/accounts and /iserver/accounts before positions and snapshots, pages positions 100 at
a time, and snapshots options and underlyings together. The first snapshot of a conid has no
values (the gateway opens the stream): its Greeks arrive on the next tick. Requests are spaced
to stay under the gateway's 10 requests a second; a 429 backs off for the penalty period. TLS
is verified unless the gateway is on loopback (self-signed) or verification is turned off.
Each tick also reads every account's ledger (exchange rates, once a minute) and summary (net
liquidation, unrealized P&L); the partitioned P&L (daily P&L, allowed once per 5 s) every other
tick. Null multipliers are looked up in /trsrv/secdef, then /iserver/contract/{conid}/info;
magnifiers of every held contract from the position's displayRule, else info-and-rules (an
unknown one is missing with no_magnifier and asked again later, never taken as 1).
Betas' bars come from /iserver/marketdata/history (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp

from collector.account_values import from_portal, portal_bars, portal_daily_pnl
from collector.backoff import LookupRetries
from collector.benchmark_search import EQUITY, benchmark_candidates, benchmark_in_currency
from collector.betas import Bar
from collector.errors import (
    GatewayPacing,
    GatewayReplyError,
    GatewayUnavailable,
    SessionRequired,
)
from collector.events import EventLog
from collector.fx_pairs import fx_pair, rates
from collector.greeks import (
    LINEAR_TYPES,
    ONE_PER_UNIT,
    OPTION_TYPES,
    ChangeClock,
    Holding,
    OptionGreeks,
    note_bars_source,
    parse_multiplier,
)
from collector.option_terms import option_terms
from collector.portal_values import (
    SNAPSHOT_FIELDS,
    PortalQuote,
    parse_conid,
    parse_number,
    parse_snapshot_item,
)
from collector.settings import CollectorSettings
from collector.source import AccountView
from shared.records import Mode

log = logging.getLogger("collector.portal")

PAGE_SIZE: Final = 100
SNAPSHOT_BATCH: Final = 100  # conids per snapshot request (documented maximum)
# Stay under the gateway's 10 requests a second with a margin for other clients' tickles.
_REQUEST_SPACING_S: Final = 0.125
_NO_UNDERLYING: Final = (None, 0, "", "0")  # how a position says it has no underlying
_ACCOUNTS_EVERY_S: Final = 5.5
# /iserver/account/pnl/partitioned is allowed once per 5 s, like /portfolio/accounts.
_PNL_EVERY_S: Final = 5.5
# Exchange rates move slowly; the ledger is read once a minute per account.
_LEDGER_EVERY_S: Final = 60.0
# Types whose figures need a magnifier (any of them may be quoted in fractions of their
# currency: cents for ZC, ZS, ZW and their options; see docs/ibkr-conventions.md).
_FIGURED_TYPES: Final = OPTION_TYPES | LINEAR_TYPES
# The index field 7696 is stated in ("SPX Delta"): its listing, for its price.
_SPX: Final = "SPX"
_SPX_EXCHANGE: Final = "CBOE"
_SPX_CURRENCY: Final = "USD"


class PortalSource:
    mode: Mode = "PORTAL"

    def __init__(
        self,
        settings: CollectorSettings,
        events: EventLog,
        clock: Callable[[], datetime],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.events = events
        self._clock = clock
        self._monotonic = monotonic
        self._session: aiohttp.ClientSession | None = None
        self._ready = False
        self._accounts: list[str] = []
        self._accounts_at = float("-inf")
        self._last_request_at = float("-inf")
        self._spacing = asyncio.Lock()
        self._last_tickle_at = float("-inf")
        self._paced_until = float("-inf")
        self._pacing = False  # inside a penalty episode: reported once, at its start
        self._streaming: set[int] = set()  # conids whose snapshot stream is open
        self._multipliers: dict[int, float | None] = {}
        self._magnifiers: dict[int, float] = {}  # known ones only: unknown is asked again
        # Each option underlying's assetClass (STK, IND, ...): from a position of it, else
        # /trsrv/secdef, asked once per conid (positions do not say an underlying's type).
        self._asset_classes: dict[int, str] = {}
        self._asset_classes_asked: set[int] = set()
        self._magnifier_retries = LookupRetries()
        self._magnifier_unknown_said: set[int] = set()  # said once per contract and session
        self._bad_quantities_said: set[tuple[str, int, str]] = set()
        self._reads = 0  # reads of positions so far: the retries' count of time
        self._auth: dict[str, Any] = {}
        self._account_currency: dict[str, str] = {}
        self._daily_pnl: dict[str, float] = {}
        self._ledgers: dict[str, tuple[float, Any]] = {}
        self._pnl_at = float("-inf")
        self._changes = ChangeClock()
        self._price_changes = ChangeClock()  # when each instrument's own price last changed
        self._history_conids: dict[str, int] = {}  # underlying symbol -> conid of its bars
        self._benchmark_conid: int | None = None
        self._benchmark_searched = False
        self._benchmark_currency = settings.beta_benchmark_currency
        self._spx_conid: int | None = None
        self._spx_searched = False
        self._refused: set[str] = set()  # optional replies refused this session, said once

    @property
    def connected(self) -> bool:
        return self._ready

    # HTTP ------------------------------------------------------------------------------------

    async def _request(
        self, method: str, path: str, *, server_error_is_none: bool = False, **kwargs: Any
    ) -> Any:
        """One request, paced; the reply's JSON, or a collector error (the one translation).
        `server_error_is_none`: a 500 with a JSON error means "nothing to serve" (history)."""
        if self._monotonic() < self._paced_until:
            raise GatewayPacing(
                "inside the gateway's penalty period",
                retry_after_s=self._paced_until - self._monotonic(),
            )
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.connect_timeout_s),
                connector=aiohttp.TCPConnector(ssl=self.settings.portal_verify_tls),
                headers={"User-Agent": "ibkr-greeks-bridge", "Accept": "*/*"},
            )
        # The tick and the betas' refresh share the session: one spacing for both.
        async with self._spacing:
            wait_s = self._last_request_at + _REQUEST_SPACING_S - self._monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            self._last_request_at = self._monotonic()
        url = f"{self.settings.portal_url}{path}"
        try:
            async with self._session.request(method, url, **kwargs) as response:
                body = await response.text()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise GatewayUnavailable(f"{method} {path}: {exc or type(exc).__name__}") from exc
        if server_error_is_none and status == 500 and body.strip().startswith("{"):
            return None
        return self._interpret(method, path, status, body, retry_after)

    def _interpret(
        self, method: str, path: str, status: int, body: str, retry_after: str | None
    ) -> Any:
        if status == 401:
            self._ready = False
            raise SessionRequired(
                f"{method} {path}: 401 {body.strip()[:200] or 'not authenticated'}"
            )
        if status == 429:
            # The penalty box lasts 10-15 minutes and the gateway does not say how long is left.
            penalty_s = parse_number(retry_after) or self.settings.portal_pacing_pause_s
            self._paced_until = self._monotonic() + penalty_s
            raise GatewayPacing(f"{method} {path}: 429 too many requests", retry_after_s=penalty_s)
        try:
            parsed = json.loads(body) if body.strip() else None
        except json.JSONDecodeError:
            raise GatewayReplyError(f"{method} {path}: {status} reply is not JSON") from None
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if status == 400 and error and "no bridge" in str(error):
            self._ready = False
            raise SessionRequired(f"{method} {path}: the brokerage session is not open")
        if status >= 500:
            raise GatewayUnavailable(f"{method} {path}: {status} {error or 'server error'}")
        if status >= 400:
            raise GatewayReplyError(f"{method} {path}: {status} {error or body[:200]}")
        if error:  # /tickle answers 200 {"error": "no session"}
            self._ready = False
            raise SessionRequired(f"{method} {path}: {error}")
        return parsed

    # Session ---------------------------------------------------------------------------------

    async def _auth_status(self) -> dict[str, Any]:
        status = await self._request("POST", "/iserver/auth/status", json={})
        if not isinstance(status, dict):
            raise GatewayReplyError("auth status is not an object")
        view = {key: bool(status.get(key)) for key in ("authenticated", "connected", "competing")}
        if view != self._auth:
            self.events.emit("info", "portal_auth_state", f"session {view}", details=view)
            self._auth = view
        return status

    async def connect(self) -> None:
        self._ready = False
        status = await self._auth_status()
        if not status.get("authenticated") and status.get("connected"):
            await self._request(
                "POST", "/iserver/auth/ssodh/init", json={"publish": True, "compete": True}
            )
            status = await self._auth_status()
        if not status.get("authenticated"):
            raise SessionRequired(
                "the Client Portal gateway has no authenticated session: "
                "log in through the gateway's web page"
            )
        if status.get("competing"):
            raise SessionRequired("another session of this username competes with the gateway")
        # /portfolio/accounts is allowed once per 5 s: a quick reconnect reuses the last answer.
        if not self._accounts or self._monotonic() - self._accounts_at > _ACCOUNTS_EVERY_S:
            accounts = await self._request("GET", "/portfolio/accounts")
            self._accounts_at = self._monotonic()
            listed = [
                item
                for item in accounts or []
                if isinstance(item, dict) and (item.get("accountId") or item.get("id"))
            ]
            self._accounts = [str(item.get("accountId") or item.get("id")) for item in listed]
            self._account_currency = {
                str(item.get("accountId") or item.get("id")): item["currency"]
                for item in listed
                if isinstance(item.get("currency"), str) and item["currency"]
            }
            if self.settings.accounts:
                self._accounts = [a for a in self._accounts if a in self.settings.accounts]
        await self._request("GET", "/iserver/accounts")  # required before snapshots
        self._streaming.clear()
        self._benchmark_searched = False
        self._spx_searched = False
        self._refused.clear()
        self._last_tickle_at = self._monotonic()
        self._ready = True

    async def disconnect(self) -> None:
        self._ready = False
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def probe(self) -> None:
        """Tickle when due (about every minute), then check the session's state. Not during a
        penalty: a 429 says nothing about the session, which is kept, not reconnected."""
        if self._monotonic() < self._paced_until:
            return
        try:
            if self._monotonic() - self._last_tickle_at >= self.settings.tickle_interval_s:
                await self._request("POST", "/tickle", json={})
                self._last_tickle_at = self._monotonic()
            status = await self._auth_status()
        except GatewayPacing:
            return  # the penalty starts with this probe; the next read reports it
        if not status.get("authenticated") or status.get("competing"):
            self._ready = False
            raise SessionRequired(f"session lost: {self._auth}")

    # Data ------------------------------------------------------------------------------------

    async def read(self, now: datetime) -> dict[str, AccountView]:
        if not self._ready:
            raise GatewayUnavailable("no Client Portal session")
        try:
            holdings = await self._read(now)
        except GatewayPacing as exc:
            if not self._pacing:  # one event per penalty, however many ticks it lasts
                self._pacing = True
                self.events.emit(
                    "warning", "pacing_backoff", f"{exc}: pausing {exc.retry_after_s:.0f} s",
                    details={"retry_after_s": exc.retry_after_s},
                )  # fmt: skip
            raise
        except (SessionRequired, GatewayReplyError) as exc:
            raise GatewayUnavailable(str(exc)) from exc
        if self._pacing:
            self._pacing = False
            self.events.emit("info", "pacing_resumed", "the gateway answers again after a 429")
        return holdings

    async def _read(self, now: datetime) -> dict[str, AccountView]:
        # The account's money does not depend on the quotes: the chains run at once (one
        # request spacing for all), so a slow gateway costs one chain's latency, not the sum.
        market, money, daily_pnl = await _all(
            self._positions_and_quotes(),
            _all(*(self._money(account) for account in self._accounts)),
            self._daily_pnl_by_account(),
        )
        positions, quotes, benchmark, spx = market
        bench_quote = quotes.get(benchmark) if benchmark else None
        spx_quote = quotes.get(spx) if spx else None
        return {
            account: AccountView(
                [self._holding(account, item, quotes, now) for item in items],
                from_portal(
                    account_currency=self._account_currency.get(account),
                    ledger=ledger,
                    summary=summary,
                    daily_pnl=daily_pnl.get(account),
                ),
                bench_quote.price if bench_quote is not None else None,
                self._benchmark_currency,
                bench_quote.price_error if bench_quote is not None else 0.0,
                spx_quote.price if spx_quote is not None else None,
            )
            for (account, items), (ledger, summary) in zip(positions.items(), money, strict=True)
        }

    async def _positions_and_quotes(
        self,
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[int, PortalQuote], int | None, int | None]:
        pages = await _all(*(self._positions(account) for account in self._accounts))
        positions = dict(zip(self._accounts, pages, strict=True))
        conids = {int(p["conid"]) for items in positions.values() for p in items}
        underlyings = {
            int(p["undConid"])
            for items in positions.values()
            for p in items
            if p.get("assetClass") in OPTION_TYPES and p.get("undConid")
        }
        benchmark = await self._benchmark(positions)
        spx = await self._spx(positions)
        wanted = conids | underlyings | {conid for conid in (benchmark, spx) if conid}
        quotes, _, _, _ = await _all(
            self._snapshots(sorted(wanted)),
            self._fill_multipliers(positions),
            self._fill_magnifiers(positions),
            self._fill_asset_classes(positions, underlyings),
        )
        return positions, quotes, benchmark, spx

    async def _fill_asset_classes(
        self, positions: dict[str, list[dict[str, Any]]], underlyings: set[int]
    ) -> None:
        """The assetClass of every option's underlying, which picks its exercise style and
        pricing model: from the positions when it is held, else one /trsrv/secdef request for
        the rest, once per conid (unanswered ones stay unknown)."""
        for item in (item for items in positions.values() for item in items):
            asset_class = item.get("assetClass")
            if isinstance(asset_class, str) and asset_class:
                self._asset_classes[int(item["conid"])] = asset_class
        missing = sorted(underlyings - set(self._asset_classes) - self._asset_classes_asked)
        if not missing:
            return
        try:
            reply = await self._request(
                "GET", "/trsrv/secdef", params={"conids": ",".join(map(str, missing))}
            )
        except GatewayReplyError:
            reply = None  # their options' terms say underlying_sec_type None
        # Asked once an answer came; a lost connection (raised) asks again next tick.
        self._asset_classes_asked.update(missing)
        for item in (reply or {}).get("secdef", []) if isinstance(reply, dict) else []:
            conid = parse_conid(item.get("conid")) if isinstance(item, dict) else None
            asset_class = item.get("assetClass") if conid is not None else None
            if conid is not None and isinstance(asset_class, str) and asset_class:
                self._asset_classes[conid] = asset_class

    async def _fill_magnifiers(self, positions: dict[str, list[dict[str, Any]]]) -> None:
        """The magnifier of every held contract the figures use (SOCKET applies the contract
        details' to every type, so PORTAL asks for every type too), once it is known: the
        position's displayRule, else /iserver/contract/{conid}/info-and-rules. An unknown one
        stays unknown (the position is missing with no_magnifier) and is asked again later."""
        self._reads += 1
        wanted = set()
        for item in (item for items in positions.values() for item in items):
            conid = int(item["conid"])
            if conid in self._magnifiers or item.get("assetClass") not in _FIGURED_TYPES:
                continue
            found = _magnification(item)
            if found is not None:
                self._magnifiers[conid] = found
                self._magnifier_retries.known(conid)
            elif self._magnifier_retries.due(conid, self._reads):
                wanted.add(conid)
        await _all(*(self._look_up_magnifier(conid) for conid in sorted(wanted)))

    async def _look_up_magnifier(self, conid: int) -> None:
        path = f"/iserver/contract/{conid}/info-and-rules"
        try:
            # A 500 with a JSON error is this contract's failure, not the gateway's: the tick
            # goes on with the magnifier unknown.
            reply = await self._request("GET", path, server_error_is_none=True)
        except GatewayReplyError as exc:
            reply, failure = None, str(exc)
        else:
            failure = "refused (500)" if reply is None else "rules.priceMagnifier is null"
        rules = reply.get("rules") if isinstance(reply, dict) else None
        raw = rules.get("priceMagnifier") if isinstance(rules, dict) else None
        magnifier = parse_number(raw) if raw is not None else None
        if magnifier is not None and magnifier >= 1:
            self._magnifiers[conid] = magnifier
            self._magnifier_retries.known(conid)
            return
        # Never 1 by default: a cents-quoted contract valued at 1 is 100 times too large.
        self._magnifier_retries.unknown(conid, self._reads)
        if conid not in self._magnifier_unknown_said:
            self._magnifier_unknown_said.add(conid)
            self.events.emit(
                "warning", "magnifier_unknown",
                f"no price magnifier for contract {conid} ({failure}): counted as no_magnifier "
                "and asked again later",
                details={"conid": conid, "priceMagnifier": None if raw is None else str(raw)},
            )  # fmt: skip

    async def _money(self, account: str) -> tuple[Any, Any]:
        """The ledger (exchange rates, refreshed every minute) and the summary (net
        liquidation, unrealized P&L) of one account."""
        ledger_at, ledger = self._ledgers.get(account, (float("-inf"), None))
        refresh = self._monotonic() - ledger_at >= _LEDGER_EVERY_S or ledger is None
        ledger, summary = await _all(
            self._optional(f"/portfolio/{account}/ledger", "ledger") if refresh else _value(ledger),
            self._optional(f"/portfolio/{account}/summary", "summary"),
        )
        if refresh:
            self._ledgers[account] = (self._monotonic(), ledger)
        return ledger, summary

    async def _daily_pnl_by_account(self) -> dict[str, float]:
        """Every account's daily P&L, asked every other tick (one call per 5 s is allowed)."""
        if self._monotonic() - self._pnl_at >= _PNL_EVERY_S:
            self._pnl_at = self._monotonic()
            self._daily_pnl = portal_daily_pnl(
                await self._optional("/iserver/account/pnl/partitioned", "partitioned P&L")
            )
        return self._daily_pnl

    async def _optional(self, path: str, what: str) -> Any:
        """A reply the figures can do without: refused (4xx, not JSON), it is unknown, said
        once per session; the tick goes on (rates unknown: positions in other currencies are
        missing with no_fx_rate)."""
        try:
            return await self._request("GET", path)
        except GatewayReplyError as exc:
            if what not in self._refused:
                self._refused.add(what)
                self.events.emit(
                    "warning", "account_data_unavailable",
                    f"{exc}: the account's {what} is unknown",
                )  # fmt: skip
            return None

    async def _benchmark(self, positions: dict[str, list[dict[str, Any]]]) -> int | None:
        """The benchmark's conid: held as a stock, the underlying of a held option, or found
        once per session with /iserver/secdef/search: the hit on the configured exchange whose
        /trsrv/secdef currency is the configured one (collector/benchmark_search.py)."""
        symbol = self.settings.beta_benchmark
        for item in (item for items in positions.values() for item in items):
            if item.get("assetClass") in ("STK", "ETF") and item.get("ticker") == symbol:
                self._benchmark_conid = int(item["conid"])
                self._benchmark_currency = str(item.get("currency") or self._benchmark_currency)
            elif (
                item.get("undSym") == symbol
                and item.get("undConid")
                and self._benchmark_conid is None
            ):
                self._benchmark_conid = int(item["undConid"])
                self._benchmark_currency = str(item.get("currency") or self._benchmark_currency)
        if self._benchmark_conid is None and not self._benchmark_searched:
            self._benchmark_searched = True
            self._benchmark_conid = await self._search_benchmark(symbol)
            if self._benchmark_conid is not None:
                self._benchmark_currency = self.settings.beta_benchmark_currency
        if self._benchmark_conid is not None:
            self._history_conids[symbol] = self._benchmark_conid
        return self._benchmark_conid

    async def _search_benchmark(self, symbol: str) -> int | None:
        exchange = self.settings.beta_benchmark_exchange
        currency = self.settings.beta_benchmark_currency
        conid, failure = await self._search_listing(symbol, exchange, currency, EQUITY)
        if conid is None:
            why = failure or f"no {symbol} listed on {exchange} in {currency} among the search hits"
            self.events.emit("warning", "benchmark_unknown", f"{why}; beta delta is left out")
        return conid

    async def _spx(self, positions: dict[str, list[dict[str, Any]]]) -> int | None:
        """SPX's conid, whose price turns field 7696 (SPX units) into our benchmark's shares:
        the underlying of a held SPX option, else found once per session with
        /iserver/secdef/search (an index on CBOE whose /trsrv/secdef currency is USD). None:
        the gateway's beta delta stays in SPX units alone, said once per session."""
        for item in (item for items in positions.values() for item in items):
            underlying = parse_conid(item.get("undConid"))
            if item.get("undSym") == _SPX and underlying is not None:
                self._spx_conid = underlying
                return underlying
        if self._spx_conid is None and not self._spx_searched:
            self._spx_searched = True
            self._spx_conid, failure = await self._search_listing(
                _SPX, _SPX_EXCHANGE, _SPX_CURRENCY, ("IND",)
            )
            if self._spx_conid is None:
                self.events.emit(
                    "info", "spx_unknown",
                    f"{failure or 'no SPX index on CBOE in USD among the search hits'}: the "
                    "gateway's beta-weighted delta (7696) is not converted to benchmark shares",
                )  # fmt: skip
        return self._spx_conid

    async def _search_listing(
        self, symbol: str, exchange: str, currency: str, sec_types: tuple[str, ...]
    ) -> tuple[int | None, str | None]:
        """The first search hit for `symbol` on `exchange` of one of `sec_types` whose
        /trsrv/secdef currency is `currency` (collector/benchmark_search.py); with why not,
        when the gateway refused."""
        try:
            hits = await self._request("GET", "/iserver/secdef/search", params={"symbol": symbol})
            candidates = benchmark_candidates(hits, symbol, exchange, sec_types)
            secdefs = (
                await self._request(
                    "GET", "/trsrv/secdef", params={"conids": ",".join(map(str, candidates))}
                )
                if candidates
                else None
            )
        except GatewayReplyError as exc:
            return None, f"cannot find {symbol}: {exc}"
        return benchmark_in_currency(candidates, secdefs, currency), None

    async def history(self, symbols: list[str]) -> dict[str, list[Bar] | None]:
        """A year of daily bars of each symbol whose conid is known, one request at a time
        (the endpoint allows 5 concurrent)."""
        if not self._ready:
            raise GatewayUnavailable("no Client Portal session")
        found: dict[str, list[Bar] | None] = {}
        for symbol in symbols:
            conid = self._history_conids.get(symbol)
            if conid is None:
                continue
            try:
                reply = await self._request(
                    "GET",
                    "/iserver/marketdata/history",
                    server_error_is_none=True,  # 500 "Chart data unavailable": no bars
                    params={"conid": str(conid), "period": "1y", "bar": "1d"},
                )
            except GatewayReplyError:
                reply = None  # a 4xx for this contract: the gateway has no bars for it
            except (GatewayPacing, SessionRequired) as exc:
                raise GatewayUnavailable(str(exc)) from exc
            found[symbol] = portal_bars(reply)
        return found

    async def fx_history(self, currency: str, quote_currency: str) -> list[Bar] | None:
        """A year of daily bars of one `currency` in `quote_currency`: the pair's conid from
        /iserver/currency/pairs, its bars from /iserver/marketdata/history (inverted when IBKR
        quotes the pair the other way); None when the gateway has no such pair or no bars."""
        if not self._ready:
            raise GatewayUnavailable("no Client Portal session")
        try:
            pairs = await self._request(
                "GET", "/iserver/currency/pairs", params={"currency": quote_currency}
            )
            pair = fx_pair(pairs, currency, quote_currency)
            if pair is None:
                return None
            reply = await self._request(
                "GET",
                "/iserver/marketdata/history",
                server_error_is_none=True,
                params={"conid": str(pair.conid), "period": "1y", "bar": "1d"},
            )
        except GatewayReplyError:
            return None
        except (GatewayPacing, SessionRequired) as exc:
            raise GatewayUnavailable(str(exc)) from exc
        bars = portal_bars(reply)
        return rates(bars, pair) if bars else None

    async def _positions(self, account: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1000):
            batch = await self._request("GET", f"/portfolio/{account}/positions/{page}")
            if not isinstance(batch, list):
                raise GatewayReplyError(f"positions of {account} page {page} is not a list")
            for item in batch:
                conid = parse_conid(item.get("conid")) if isinstance(item, dict) else None
                underlying = item.get("undConid") if isinstance(item, dict) else None
                und_conid = parse_conid(underlying)
                if conid is not None and (und_conid is not None or underlying in _NO_UNDERLYING):
                    # Ids as numbers from here on, whatever the gateway sent ("265598" too).
                    items.append({**item, "conid": conid, "undConid": und_conid})
                else:
                    self.events.emit(
                        "warning", "bad_position",
                        "a position whose conid or undConid is not a contract id was ignored",
                        details={"account": account, "item": str(item)[:200]},
                    )  # fmt: skip
            if len(batch) < PAGE_SIZE:
                break
        return items

    async def _snapshots(self, conids: list[int]) -> dict[int, PortalQuote]:
        quotes: dict[int, PortalQuote] = {}
        fields = ",".join(SNAPSHOT_FIELDS)
        for start in range(0, len(conids), SNAPSHOT_BATCH):
            batch = conids[start : start + SNAPSHOT_BATCH]
            reply = await self._request(
                "GET",
                "/iserver/marketdata/snapshot",
                params={"conids": ",".join(map(str, batch)), "fields": fields},
            )
            for item in reply if isinstance(reply, list) else []:
                quote = parse_snapshot_item(item) if isinstance(item, dict) else None
                if quote is not None:
                    quotes[quote.conid] = quote
            self._streaming.update(batch)
        return quotes

    async def _fill_multipliers(self, positions: dict[str, list[dict[str, Any]]]) -> None:
        """Options and futures whose position lacks a multiplier get it from /trsrv/secdef,
        else from /iserver/contract/{conid}/info, once."""
        missing = sorted(
            {
                int(item["conid"])
                for items in positions.values()
                for item in items
                if item.get("assetClass") not in ONE_PER_UNIT
                and parse_multiplier(item.get("multiplier")) is None
                and int(item["conid"]) not in self._multipliers
            }
        )
        if not missing:
            return
        reply = await self._request(
            "GET", "/trsrv/secdef", params={"conids": ",".join(map(str, missing))}
        )
        for item in (reply or {}).get("secdef", []) if isinstance(reply, dict) else []:
            if isinstance(item, dict) and str(item.get("conid", "")).isdigit():
                conid = int(item["conid"])
                self._multipliers[conid] = parse_multiplier(item.get("multiplier"))
        for conid in missing:
            if self._multipliers.get(conid) is None:
                try:
                    info = await self._request("GET", f"/iserver/contract/{conid}/info")
                except GatewayReplyError:
                    info = None
                raw = info.get("multiplier") if isinstance(info, dict) else None
                self._multipliers[conid] = parse_multiplier(raw)

    def _holding(
        self, account: str, item: dict[str, Any], quotes: dict[int, PortalQuote], now: datetime
    ) -> Holding:
        conid = int(item["conid"])
        sec_type = str(item.get("assetClass") or "")
        multiplier = parse_multiplier(item.get("multiplier"))
        if multiplier is None:
            multiplier = 1.0 if sec_type in ONE_PER_UNIT else self._multipliers.get(conid)
        magnifier = self._magnifiers.get(conid)  # None: unknown, counted as no_magnifier
        quote = quotes.get(conid)
        greeks = None
        symbol = str(item.get("undSym") or item.get("ticker") or item.get("contractDesc") or conid)
        underlying_conid = int(item.get("undConid") or 0)
        note_bars_source(self._history_conids, symbol, sec_type, conid, underlying_conid)
        received = (
            datetime.fromtimestamp(quote.updated_ms / 1000, UTC)
            if quote is not None and quote.updated_ms
            else now
        )
        if sec_type in OPTION_TYPES and quote is not None:
            values = (quote.delta, quote.gamma, quote.theta, quote.vega)
            if any(value is not None for value in values):
                underlying = quotes.get(underlying_conid)
                greeks = OptionGreeks(
                    *values,
                    underlying.price if underlying is not None else None,
                    self._changes.observe(conid, values, min(received, now)),
                    (*quote.greek_errors, underlying.price_error if underlying else 0.0),
                )
        # Not the position's mktPrice: without a quote the gateway values it at cost.
        price = quote.price if quote is not None else None
        price_changed_at = (
            self._price_changes.observe(conid, (price,), min(received, now))
            if price is not None
            else None
        )
        # The price the figures need: an option's underlying's, else the instrument's own.
        priced_by = quotes.get(underlying_conid) if sec_type in OPTION_TYPES else quote
        currency = item.get("currency")
        quantity = parse_number(item.get("position"))
        if quantity is None:
            self._say_bad_quantity(account, conid, item.get("position"))
        return Holding(
            conid=conid,
            symbol=symbol,
            sec_type=sec_type,
            quantity=quantity,
            multiplier=multiplier,
            currency=currency if isinstance(currency, str) and currency else None,
            magnifier=magnifier,
            price=price,
            price_reason=priced_by.price_reason if priced_by is not None else None,
            price_changed_at=price_changed_at,
            price_error=quote.price_error if quote is not None else 0.0,
            greeks=greeks,
            gateway_spx_delta=quote.spx_delta if quote is not None else None,
            market_data=frozenset().union(
                *(q.market_data for q in (quote, priced_by) if q is not None)
            ),
            terms=option_terms(
                sec_type=sec_type,
                symbol=symbol,
                right=item.get("putOrCall"),
                strike=parse_number(item.get("strike")),
                expiry=item.get("lastTradingDay") or item.get("expiry"),
                underlying_sec_type=self._asset_classes.get(underlying_conid),
                # Field 7633 is in percent ("25.00%"): 0.25 for 25 %.
                implied_vol=(
                    quote.implied_vol / 100
                    if quote is not None and quote.implied_vol is not None
                    else None
                ),
                option_price=price,
                implied_vol_error=quote.implied_vol_error / 100 if quote is not None else 0.0,
            ),
        )

    def _say_bad_quantity(self, account: str, conid: int, raw: Any) -> None:
        """An unreadable quantity is counted as no_quantity (never 0); said once per account,
        contract and raw value, with the raw value."""
        said = (account, conid, repr(raw)[:100])
        if said in self._bad_quantities_said:
            return
        self._bad_quantities_said.add(said)
        self.events.emit(
            "warning", "bad_quantity",
            f"the quantity of contract {conid} in {account} is not a number ({said[2]}): "
            "counted as no_quantity",
            details={"account": account, "conid": conid, "raw": said[2]},
        )  # fmt: skip


async def _all(*steps: Awaitable[Any]) -> list[Any]:
    """Run steps at once; the first failure is raised as itself, the others are cancelled."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(step)) for step in steps]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


async def _awaited(step: Awaitable[Any]) -> Any:
    return await step


async def _value(value: Any) -> Any:
    return value


def _magnification(item: dict[str, Any]) -> float | None:
    """displayRule.magnification ("magnifier applied to pricing"): the number when it is 1 or
    more; 0 means none, as ContractDetails.priceMagnifier's 0 does (docs/ibkr-conventions.md);
    None when the position has no displayRule or no magnification that is one of those."""
    rule = item.get("displayRule")
    value = parse_number(rule.get("magnification")) if isinstance(rule, dict) else None
    if value == 0:
        return 1.0
    return value if value is not None and value >= 1 else None
