"""The simulator's Client Portal side: the gateway's REST API over HTTPS under `/v1/api`.

It serves the one portfolio of `simulator.model` in the real gateway's shapes and errors, with
its session tiers (`simulator.portal_session`), pacing (`simulator.portal_pacing`) and way of
writing values (`simulator.portal_format`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import Enum
from http import HTTPStatus
from typing import Any

from aiohttp import web

from simulator import portal_format as fmt
from simulator import rounding
from simulator.faults import FaultEvent, Faults
from simulator.model import CurrencyLedger, Instrument, Market, Position, cents
from simulator.portal_pacing import Pacing
from simulator.portal_session import PortalSession, SessionState

logger = logging.getLogger("simulator.portal")

BASE = "/v1/api"
PAGE_SIZE = 100
MAX_SNAPSHOT_CONIDS = 100
_MAC = "00:11:22:33:44:55"
_SERVER_INFO = {"serverName": "JifN19053", "serverVersion": "Build 10.25.0p, Dec 5, 2023"}
_USER_ID = 12345678
_ACCOUNT_PROPERTIES = {
    "hasChildAccounts": False, "supportsCashQty": True, "supportsFractions": False,
    "allowCustomerTime": False,
}  # fmt: skip
# IBeam reads a 500 on the session endpoints as IBKR restarting its servers, a 503 elsewhere as
# servers not ready: the reset answers each the way it is recorded.
_SESSION_PATHS = frozenset(
    {"/tickle", "/iserver/auth/status", "/iserver/auth/ssodh/init", "/iserver/reauthenticate",
     "/logout", "/sso/validate"}
)  # fmt: skip
# as_gateway: the answer (counting from the first with data) each Greek first appears in.
_GREEKS_ARRIVE_AT = {"7308": 2, "7633": 2, "7309": 3, "7310": 3, "7311": 3}
_HISTORY_MAX_IN_FLIGHT = 5
_HISTORY_MAX_POINTS = 1000
_PERIOD_UNITS_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}
_SHUTDOWN_S = 1.0  # a stopped gateway does not wait for replies held back by a fault
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Needs(Enum):
    NOTHING = "answers in every state"
    LOGIN = "the login: /portfolio, /trsrv, /sso"
    BRIDGE = "the brokerage session: /iserver"


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _search_hit(
    conid: int, symbol: str, name: str, exchange: str, sections: list[dict[str, Any]]
) -> dict[str, Any]:
    """One hit of /iserver/secdef/search, as the gateway writes it (conid a string,
    `description` the primary exchange, `companyHeader` "name - exchange")."""
    return {
        "conid": str(conid), "companyHeader": f"{name} - {exchange}", "companyName": name,
        "symbol": symbol, "description": exchange, "restricted": None, "fop": None,
        "opt": None, "war": None, "sections": sections,
    }  # fmt: skip


def _bad_request(reason: str) -> web.Response:
    return _json({"error": f"Bad Request: {reason}", "statusCode": 400}, 400)


def _unauthorized() -> web.Response:
    return web.Response(status=401, text="Unauthorized", content_type="text/plain")


def _server_error(status: int) -> web.Response:
    """500 carries only the error; 503 (and anything else) adds the status code, as recorded."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Server Error"
    if status == 500:
        return _json({"error": reason}, 500)
    return _json({"error": reason, "statusCode": status}, status)


def _conids(raw: str) -> list[int] | None:
    try:
        return [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        return None


class PortalGateway:
    """The Client Portal gateway, after someone has logged in through its web page.

    The brokerage session opens with the login, as the real gateway's does
    (`open_brokerage_on_login=False` starts without it: /iserver answers 400 "no bridge" until
    ssodh/init). A session idle for `idle_expiry_s` expires (401) until ssodh/init; a daily
    reset answers 500/503 while it lasts and leaves the brokerage session closed; /logout needs
    a new login, which here is the control endpoint setting `portal_authenticated: true`. Past
    the pacing limits every request is a 429 for `penalty_s`; a sixth history request while
    five are under way (each takes `history_latency_s`) is a 429 on its own. `clock` (epoch
    seconds) times idling, pacing and `faults.reset_until`.
    """

    def __init__(
        self,
        market: Market,
        *,
        pacing: bool = True,
        penalty_s: float = 600.0,
        idle_expiry_s: float = 360.0,
        open_brokerage_on_login: bool = True,
        history_latency_s: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.market = market
        self.history_latency_s = history_latency_s  # how long a history request takes
        self.history_in_flight = 0
        self.pacing = Pacing(penalty_s) if pacing else None
        self.idle_expiry_s = idle_expiry_s
        self._clock = clock
        self.session = PortalSession(
            idle_expiry_s, clock(), open_brokerage_on_login=open_brokerage_on_login
        )
        self.held_requests = 0  # requests waiting for a stall to end
        self._unstalled = asyncio.Event()
        self._unstalled.set()
        self._runner: web.AppRunner | None = None
        market.faults.subscribe(self._on_fault)

    # Lifecycle -------------------------------------------------------------------------------

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
        """Serve on `host`:`port` (0: any free port); returns the bound port."""
        app = web.Application(middlewares=[self._gatekeeper])
        routes: list[tuple[str, str, Handler, Needs]] = [  # methods, path, endpoint, needs
            ("GET POST", "/iserver/auth/status", self.auth_status, Needs.NOTHING),
            ("GET POST", "/tickle", self.tickle, Needs.NOTHING),
            ("POST", "/iserver/auth/ssodh/init", self.ssodh_init, Needs.NOTHING),
            ("GET POST", "/iserver/reauthenticate", self.reauthenticate, Needs.NOTHING),
            ("POST", "/logout", self.logout, Needs.NOTHING),
            ("GET", "/sso/validate", self.sso_validate, Needs.LOGIN),
            ("GET", "/iserver/accounts", self.iserver_accounts, Needs.BRIDGE),
            ("GET", "/portfolio/accounts", self.portfolio_accounts, Needs.LOGIN),
            ("GET", "/portfolio/{account}/positions/{page}", self.positions, Needs.LOGIN),
            ("GET", "/iserver/marketdata/snapshot", self.snapshot, Needs.BRIDGE),
            ("GET", "/iserver/marketdata/unsubscribeall", self.unsubscribe_all, Needs.BRIDGE),
            ("POST", "/iserver/marketdata/unsubscribe", self.unsubscribe, Needs.BRIDGE),
            ("GET", "/iserver/contract/{conid}/info", self.contract_info, Needs.BRIDGE),
            ("GET", "/iserver/contract/{conid}/info-and-rules", self.info_and_rules,
             Needs.BRIDGE),
            ("GET", "/trsrv/secdef", self.secdef, Needs.LOGIN),
            ("GET POST", "/iserver/secdef/search", self.search, Needs.BRIDGE),
            ("GET", "/iserver/currency/pairs", self.currency_pairs, Needs.BRIDGE),
            ("GET", "/portfolio/{account}/summary", self.summary, Needs.LOGIN),
            ("GET", "/portfolio/{account}/ledger", self.ledger, Needs.LOGIN),
            ("GET", "/iserver/account/pnl/partitioned", self.pnl_partitioned, Needs.BRIDGE),
            ("GET", "/iserver/marketdata/history", self.history, Needs.BRIDGE),
        ]  # fmt: skip
        for methods, path, handler, needs in routes:
            for method in methods.split():
                app.router.add_route(method, BASE + path, self._guarded(handler, needs))
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_S)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self._unstalled.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # Faults and the session ------------------------------------------------------------------

    def _on_fault(self, event: FaultEvent) -> None:
        faults = self.market.faults
        if event in ("reset_started", "drop_connections"):
            self.session.lose_bridge()
        if event == "drop_connections":
            self._drop_connections()
        logged_out = self.session.state is SessionState.LOGGED_OUT
        if event == "changed" and faults.portal_authenticated and logged_out:
            self.session.log_in(self._clock())  # the operator logged in again
        if not faults.stalled:
            self._unstalled.set()

    def _drop_connections(self) -> None:
        server = self._runner.server if self._runner is not None else None
        for connection in server.connections if server is not None else []:
            connection.force_close()

    def _reset_under_way(self, now: float) -> bool:
        reset_until = self.market.faults.reset_until
        return reset_until is not None and reset_until > now

    @property
    def authenticated(self) -> bool:
        """What auth/status reports: a brokerage session nobody else competes for."""
        return (
            self.session.state is SessionState.BROKERAGE and not self.market.faults.portal_competing
        )

    def _status(self) -> dict[str, Any]:
        competing = self.market.faults.portal_competing
        if self.session.state is SessionState.LOGGED_OUT:
            # The documented answer without a session has no serverInfo.
            return {"authenticated": False, "competing": False, "connected": False, "MAC": _MAC}
        return {
            "authenticated": self.authenticated,
            "competing": competing,
            "connected": True,
            "message": "",
            "MAC": _MAC,
            "serverInfo": _SERVER_INFO,
            "hardware_info": "a1b2c3d4|00:11:22:33:44:55",
            "fail": "",
        }

    # Plumbing --------------------------------------------------------------------------------

    @web.middleware
    async def _gatekeeper(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """What the gateway checks before any endpoint: stalls, delays, the session's clock,
        Content-Length, pacing, a reset and staged server errors; every request is logged."""
        faults = self.market.faults
        if faults.stalled:
            self._unstalled.clear()
            self.held_requests += 1
            logger.debug("%s %s held: the gateway is stalled", request.method, request.path_qs)
            try:
                await self._unstalled.wait()
            finally:
                self.held_requests -= 1
        if faults.reply_delay_s:
            await asyncio.sleep(faults.reply_delay_s)
        try:
            response = await self._answer(request, handler)
        except web.HTTPException as refused:  # no such endpoint or method
            logger.debug("%s %s %d", request.method, request.path_qs, refused.status)
            raise
        logger.debug("%s %s %d", request.method, request.path_qs, response.status)
        return response

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        faults = self.market.faults
        now = self._clock()
        path = request.path.removeprefix(BASE)
        reset = self._reset_under_way(now)
        self.session.on_request(now, login_valid=faults.portal_authenticated, reset_under_way=reset)
        if request.method == "POST" and request.content_length is None:
            return web.Response(status=411, text="Length Required", content_type="text/plain")
        if faults.portal_rate_limit_storm or (
            self.pacing is not None and not self.pacing.admit(path, now)
        ):
            return _json({"error": "Too Many Requests"}, 429)
        if reset:
            return _server_error(500 if path in _SESSION_PATHS else 503)
        if faults.portal_server_error is not None:
            return _server_error(faults.portal_server_error)
        return await handler(request)

    def _guarded(self, handler: Handler, needs: Needs) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            refused = self._refusal(needs)
            return refused if refused is not None else await handler(request)

        return guarded

    def _refusal(self, needs: Needs) -> web.Response | None:
        if needs is Needs.NOTHING:
            return None
        if not self.session.alive:
            return _unauthorized()
        if needs is Needs.BRIDGE:
            if self.market.faults.portal_competing:
                return _unauthorized()  # another session holds the brokerage session
            if self.session.state is SessionState.NO_BRIDGE:
                return _bad_request("no bridge")
        return None

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError:
            return {}
        return body if isinstance(body, dict) else {}

    # Session endpoints -----------------------------------------------------------------------

    async def auth_status(self, request: web.Request) -> web.Response:
        return _json(self._status())

    async def tickle(self, request: web.Request) -> web.Response:
        state = self.session.state
        if state is SessionState.LOGGED_OUT:
            return _unauthorized()
        if state is SessionState.EXPIRED:
            return _json({"error": "no session"})  # 200, as recorded
        return _json(
            {
                "session": "5b2d8bc8a2d7b6f7e3d9c6a1f0e4b2d8",
                "ssoExpires": int(self.idle_expiry_s * 1000),
                "collission": False,  # sic
                "userId": _USER_ID,
                "hmds": {"error": "no bridge"},
                "iserver": {"authStatus": self._status()},
            }
        )

    async def ssodh_init(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if body.get("publish") is not True:
            return _json({"error": "publish must be true"}, 500)
        if not self.session.open_brokerage(self._clock()):
            return _unauthorized()
        if body.get("compete") is True:
            self.market.faults.portal_competing = False  # the other session is disconnected
        return _json(self._status())

    async def reauthenticate(self, request: web.Request) -> web.Response:
        if not self.session.open_brokerage(self._clock()):
            return _unauthorized()
        return _json({"message": "triggered"})

    async def logout(self, request: web.Request) -> web.Response:
        self.session.log_out()
        return _json({"status": True})

    async def sso_validate(self, request: web.Request) -> web.Response:
        now_ms = int(self._clock() * 1000)
        return _json(
            {"USER_ID": _USER_ID, "USER_NAME": "simuser", "RESULT": True,
             "AUTH_TIME": now_ms, "SF_ENABLED": False, "IS_FREE_TRIAL": False,
             "CREDENTIAL": "simuser", "IP": "127.0.0.1",
             "EXPIRES": int(self.idle_expiry_s * 1000), "QUALIFIED_FOR_MOBILE_AUTH": None,
             "LANDING_APP": "UNIVERSAL", "IS_MASTER": False, "lastAccessed": now_ms,
             "LOGIN_TYPE": 2, "PAPER_USER_NAME": "simuser", "features": {"bond": True,
             "optionChains": True, "calendar": True, "newMf": True}, "region": "NJ"}
        )  # fmt: skip

    # Accounts and positions ------------------------------------------------------------------

    async def iserver_accounts(self, request: web.Request) -> web.Response:
        self.session.accounts_queried = True
        accounts = self.market.accounts()
        return _json(
            {
                "accounts": accounts,
                "acctProps": dict.fromkeys(accounts, _ACCOUNT_PROPERTIES),
                "aliases": {account: account for account in accounts},
                "allowFeatures": {"showGFIS": True, "allowFXConv": True, "allowTypeAhead": True,
                                  "snapshotRefreshTimeout": 30, "allowCrypto": False},
                "chartPeriods": {"STK": ["*"], "OPT": ["2h", "1d", "2d", "1w", "1m"]},
                "groups": [],
                "profiles": [],
                "selectedAccount": accounts[0] if accounts else "",
                "serverInfo": _SERVER_INFO,
                "sessionId": "65f1b2c3.00000001",
                "isFT": False,
                "isPaper": True,
            }
        )  # fmt: skip

    async def portfolio_accounts(self, request: web.Request) -> web.Response:
        return _json(
            [
                {"id": account, "PrepaidCrypto-Z": False, "PrepaidCrypto-P": False,
                 "brokerageAccess": True, "accountId": account, "accountVan": account,
                 "accountTitle": "Simulated", "displayName": account, "accountAlias": None,
                 "accountStatus": 1_644_814_800_000,
                 "currency": self.market.base_currency(account), "type": "DEMO",
                 "tradingType": "STKNOPT", "businessType": "IB_PROSERVE",
                 "ibEntity": "IBLLC-US", "faclient": False, "clearingStatus": "O",
                 "covestor": False, "noClientTrading": False,
                 "trackVirtualFXPortfolio": True,
                 "parent": {"mmc": [], "accountId": "", "isMParent": False,
                            "isMChild": False, "isMultiplex": False},
                 "desc": account}
                for account in self.market.accounts()
            ]
        )  # fmt: skip

    async def positions(self, request: web.Request) -> web.Response:
        account = request.match_info["account"]
        if account not in self.market.accounts():
            return _json({"error": f"accountId is not valid: {account}"}, 500)
        try:
            page = int(request.match_info["page"])
        except ValueError:
            return _bad_request(f"pageId is not valid: {request.match_info['page']}")
        if page < 0:
            return _bad_request(f"pageId is not valid: {page}")
        items = self.market.positions(account)[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
        faults = self.market.faults
        return _json([_served_ids(self._position(position), faults) for position in items])

    def _position(self, position: Position) -> dict[str, Any]:
        item = position.instrument
        value = self.market.valuation(position)  # per unit in quoted units, not per contract
        return {
            "acctId": position.account,
            "conid": item.conid,
            "contractDesc": fmt.contract_description(item),
            "position": position.quantity,
            "mktPrice": value.market_price,
            "mktValue": value.market_value,
            "currency": item.currency,
            "avgCost": position.avg_cost,
            "avgPrice": position.avg_cost / item.multiplier * item.price_magnifier,
            "realizedPnl": 0.0,
            "unrealizedPnl": value.unrealized_pnl,
            "exchs": None,
            "expiry": item.expiry,
            "putOrCall": item.right,
            "multiplier": fmt.position_multiplier(item),
            "strike": fmt.strike(item.strike),
            "exerciseStyle": None,
            "conExchMap": [],
            "assetClass": item.sec_type,
            "undConid": item.underlying_conid or 0,
            "model": "",
            "lastTradingDay": item.expiry,
            "fullName": fmt.full_name(item),
            "name": item.symbol,
            "ticker": item.symbol,
            "undSym": item.symbol,
            "listingExchange": item.primary_exchange,
            "countryCode": "US" if item.currency == "USD" else "",
            "isUS": item.currency == "USD",
            "hasOptions": item.underlying_conid is None,
            "pageSize": PAGE_SIZE,
            # How the gateway displays the price: magnification 0 when none (Client Portal
            # position schema, "magnifier applied to pricing"); the first place a client
            # looks for a contract's magnifier.
            "displayRule": {
                "magnification": item.price_magnifier if item.price_magnifier != 1 else 0,
                "displayRuleStep": [{"decimalDigits": 2, "lowerEdge": 0.0, "wholeDigits": 4}],
            },
        }

    # Market data -----------------------------------------------------------------------------

    async def snapshot(self, request: web.Request) -> web.Response:
        session = self.session
        if not session.accounts_queried:
            return _bad_request("Please query /accounts first")
        conids = _conids(request.query.get("conids", ""))
        if not conids or len(conids) > MAX_SNAPSHOT_CONIDS:
            return _bad_request(f"conids: 1 to {MAX_SNAPSHOT_CONIDS} numbers, comma-separated")
        wanted = {part.strip() for part in request.query.get("fields", "").split(",")} - {""}
        answer = []
        for conid in conids:
            item = self.market.instrument(conid)
            served = session.snapshot_fields(conid, wanted) if item is not None else None
            if item is None or served is None:
                answer.append({"conid": conid, "conidEx": str(conid)})
            else:
                answer.append(self._quote(item, served))
        return _json(answer)

    def _quote(self, item: Instrument, fields: frozenset[str]) -> dict[str, Any]:
        quote = self.market.quote(item.conid)
        iv = quote.implied_vol
        as_gateway = self.market.scenario.portal_values == "as_gateway"
        price = fmt.rounded_price if as_gateway else fmt.price
        greek = fmt.rounded_greek if as_gateway else fmt.price
        last = price(quote.last)
        if as_gateway and last is not None and item.portal_last_prefix == "C":
            last = "C" + rounding.price(self.market.prior_close(item.conid))  # yesterday's close
        elif as_gateway and last is not None:
            last = item.portal_last_prefix + last  # "H": halted at its last price
        values: dict[str, Any] = {
            "31": last,
            "84": price(quote.bid),
            "86": price(quote.ask),
            "7635": price(quote.mark),
            "88": fmt.size(quote.bid_size),
            "85": fmt.size(quote.ask_size),
            "7059": fmt.size(quote.last_size),
            "87": fmt.volume(quote.volume),
            "87_raw": quote.volume,
            "7308": greek(quote.delta),
            "7309": greek(quote.gamma),
            "7310": greek(quote.theta),
            "7311": greek(quote.vega),
            "7633": None if iv is None else f"{iv * 100:.2f}%",
            "7696": greek(self.market.spx_delta(item.conid)),
            "55": item.symbol,
            "6070": item.sec_type,
            "201": item.right,
            "6008": item.conid,
            "6457": item.underlying_conid,
        }
        served = fields | {"87_raw"} if "87" in fields else fields  # the raw twin of volume
        if item.portal_last_only:
            # No live quote (no trade today, or halted): the gateway has only its last price.
            served = served - {"84", "86", "7635"}
        if as_gateway:
            # Model Greeks are computed on an interval: they arrive answers after the prices.
            answers = self.session.answers.get(item.conid, 0)
            served = served - {
                key for key, arrives in _GREEKS_ARRIVE_AT.items() if answers < arrives
            }
        return {
            "conid": item.conid,
            "conidEx": str(item.conid),
            "_updated": int(self.market.now() * 1000),
            "server_id": "q0",
            "6119": "q0",
            # real-time (R) or delayed (D), snapshot permission, book
            "6509": "DpB" if item.conid == self.market.faults.portal_delayed_conid else "RpB",
            **{key: value for key, value in values.items() if key in served and value is not None},
        }

    async def unsubscribe_all(self, request: web.Request) -> web.Response:
        self.session.streams.clear()
        self.session.answers.clear()
        return _json({"unsubscribed": True})

    async def unsubscribe(self, request: web.Request) -> web.Response:
        try:
            conid = int((await self._body(request))["conid"])
        except (KeyError, TypeError, ValueError):
            return _bad_request("conid")
        if not self.session.unsubscribe(conid):
            return _json({"error": "unknown"}, 500)
        return _json({"success": True})

    # Contracts -------------------------------------------------------------------------------

    async def contract_info(self, request: web.Request) -> web.Response:
        conids = _conids(request.match_info["conid"])
        item = self.market.instrument(conids[0]) if conids and len(conids) == 1 else None
        if item is None:
            return _bad_request(f"conid is not valid: {request.match_info['conid']}")
        return _json(self._contract_info(item))

    def _contract_info(self, item: Instrument) -> dict[str, Any]:
        multiplier = fmt.contract_multiplier(item)
        return {
            "con_id": item.conid,
            "symbol": item.symbol,
            "company_name": item.symbol,
            "instrument_type": item.sec_type,
            "multiplier": None if multiplier is None else str(multiplier),
            "strike": None if item.strike is None else fmt.strike(item.strike),
            "right": {"C": "CALL", "P": "PUT"}.get(item.right or ""),
            "maturity_date": item.expiry,
            "expiry_full": item.expiry,
            "contract_month": item.expiry[:6] if item.expiry else None,
            "underlying_con_id": item.underlying_conid or 0,
            "local_symbol": item.local_symbol,
            "trading_class": item.trading_class,
            "currency": item.currency,
            "exchange": item.exchange,
            "valid_exchanges": item.exchange,
            "text": fmt.contract_text(item),
        }

    async def info_and_rules(self, request: web.Request) -> web.Response:
        """Contract info with its trading rules; `priceMagnifier` is null unless the contract
        is quoted in fractions of its currency (100: cents)."""
        conids = _conids(request.match_info["conid"])
        item = self.market.instrument(conids[0]) if conids and len(conids) == 1 else None
        if item is None:
            return _bad_request(f"conid is not valid: {request.match_info['conid']}")
        if self.market.faults.portal_rules_error is not None:
            return _server_error(self.market.faults.portal_rules_error)
        magnifier = item.price_magnifier if item.price_magnifier != 1 else None
        rules = {
            "priceMagnifier": magnifier, "negativeCapable": False, "incrementType": 1,
            "increment": 0.01, "incrementDigits": 2, "cashCcy": item.currency,
        }  # fmt: skip
        return _json({**self._contract_info(item), "rules": rules})

    async def search(self, request: web.Request) -> web.Response:
        """Every listing under `symbol`: the scenario's other listings first, then its own
        instruments with a price path (options are named by their underlying's `sections`)."""
        symbol = request.query.get("symbol", "")
        if not symbol and request.can_read_body:
            body = await request.json()
            symbol = str(body.get("symbol", "")) if isinstance(body, dict) else ""
        if not symbol.strip():
            return _bad_request("symbol required")
        wanted = symbol.strip().upper()
        hits: list[dict[str, Any]] = [
            _search_hit(item.conid, item.symbol, item.name or item.symbol, item.exchange,
                        [{"secType": item.sec_type}])
            for item in self.market.scenario.listings
            if item.symbol.upper() == wanted
        ]  # fmt: skip
        for item in self.market.scenario.underlyings:
            if item.symbol.upper() != wanted:
                continue
            sections: list[dict[str, Any]] = [{"secType": item.sec_type}]
            if any(o.underlying == item.conid for o in self.market.scenario.options):
                sections.append({"secType": "OPT", "exchange": "SMART;"})
            hits.append(
                _search_hit(item.conid, item.symbol, item.symbol, item.primary_exchange, sections)
            )
        return _json(hits)

    async def currency_pairs(self, request: web.Request) -> web.Response:
        """`{CUR: [{symbol: "EUR.USD", conid, ccyPair: "EUR"}]}`: the scenario's CASH
        underlyings (symbol the base currency, currency the quote) with CUR on either side."""
        currency = request.query.get("currency", "").strip().upper()
        if not currency:
            return _bad_request("currency required")
        pairs = [
            {"symbol": f"{item.symbol}.{item.currency}", "conid": item.conid,
             "ccyPair": item.currency if item.symbol == currency else item.symbol}
            for item in self.market.scenario.underlyings
            if item.sec_type == "CASH" and currency in (item.symbol, item.currency)
        ]  # fmt: skip
        return _json({currency: pairs})

    async def secdef(self, request: web.Request) -> web.Response:
        conids = _conids(request.query.get("conids", ""))
        if conids is None:
            return _bad_request("conids")
        found = [item for conid in conids if (item := self.market.instrument(conid)) is not None]
        listed = [item for item in self.market.scenario.listings if item.conid in conids]
        return _json(
            {
                "secdef": [
                    {"conid": item.conid, "currency": item.currency, "assetClass": item.sec_type,
                     "ticker": item.symbol, "name": item.name or item.symbol,
                     "undConid": 0, "multiplier": 0, "type": item.sec_type,
                     "isUS": item.currency == "USD", "listingExchange": item.exchange}
                    for item in listed
                ] + [
                    {"conid": item.conid, "currency": item.currency, "assetClass": item.sec_type,
                     "ticker": item.symbol, "name": item.symbol, "expiry": item.expiry,
                     "lastTradingDay": item.expiry, "putOrCall": item.right,
                     "strike": fmt.strike(item.strike), "undConid": item.underlying_conid or 0,
                     "multiplier": fmt.contract_multiplier(item) or 0,
                     "type": item.sec_type, "hasOptions": item.underlying_conid is None,
                     "isUS": item.currency == "USD", "listingExchange": item.primary_exchange}
                    for item in found
                ]
            }
        )  # fmt: skip

    # Account money and history ---------------------------------------------------------------

    def _account(self, request: web.Request) -> str | None:
        account = request.match_info["account"]
        return account if account in self.market.accounts() else None

    async def summary(self, request: web.Request) -> web.Response:
        """Lower-case keys, each {amount, currency, isNull, timestamp, value, severity}."""
        account = self._account(request)
        if account is None:
            return _json({"error": f"accountId is not valid: {request.match_info['account']}"}, 500)
        ledger = self.market.ledger(account)
        base, code, now_ms = ledger.base, ledger.base_currency, int(self._clock() * 1000)

        def amount(value: float) -> dict[str, Any]:
            return {"amount": cents(value), "currency": code, "isNull": False,
                    "timestamp": now_ms, "value": None, "severity": 0}  # fmt: skip

        def text(value: str) -> dict[str, Any]:
            return {"amount": 0.0, "currency": None, "isNull": False, "timestamp": now_ms,
                    "value": value, "severity": 0}  # fmt: skip

        gross = abs(base.stock_value) + abs(base.option_value) + abs(base.future_option_value)
        return _json(
            {
                "accountcode": text(account),
                "accountready": text("true"),
                "accounttype": text("INDIVIDUAL"),
                "netliquidation": amount(base.net_liquidation),
                "equitywithloanvalue": amount(base.net_liquidation),
                "totalcashvalue": amount(base.cash),
                "grosspositionvalue": amount(gross),
                "unrealizedpnl": amount(base.unrealized_pnl),
                "realizedpnl": amount(0.0),
            }
        )

    async def ledger(self, request: web.Request) -> web.Response:
        """Per currency and BASE; `exchangerate` is one unit of the currency in the base."""
        account = self._account(request)
        if account is None:
            return _json({"error": f"accountId is not valid: {request.match_info['account']}"}, 500)
        ledger = self.market.ledger(account)
        now_s = int(self._clock())
        codes = list(ledger.currencies)
        return _json(
            {
                code: self._ledger_line(account, code, line, now_s, last=code == codes[-1])
                for code, line in ledger.currencies.items()
            }
        )

    @staticmethod
    def _ledger_line(
        account: str, code: str, line: CurrencyLedger, now_s: int, *, last: bool
    ) -> dict[str, Any]:
        return {
            "commoditymarketvalue": 0.0, "futuremarketvalue": 0.0,
            "settledcash": cents(line.cash), "exchangerate": line.exchange_rate,
            "sessionid": 1, "cashbalance": cents(line.cash),
            "corporatebondsmarketvalue": 0.0, "warrantsmarketvalue": 0.0,
            "netliquidationvalue": cents(line.net_liquidation), "interest": 0.0,
            "unrealizedpnl": cents(line.unrealized_pnl),
            "stockmarketvalue": cents(line.stock_value),
            "moneyfunds": 0.0, "currency": code, "realizedpnl": 0.0, "funds": 0.0,
            "acctcode": account, "issueroptionsmarketvalue": 0.0, "key": "LedgerList",
            "timestamp": now_s, "severity": 0,
            "stockoptionmarketvalue": cents(line.option_value),
            "futureoptionmarketvalue": cents(line.future_option_value),
            "dividends": 0.0, "secondkey": code, "endofbundle": 1 if last else 0,
        }  # fmt: skip

    async def pnl_partitioned(self, request: web.Request) -> web.Response:
        """{"upnl": {"<account>.Core": {rowType, dpl, nl, upl, el, mv}}}: daily P&L, net
        liquidation, unrealized P&L, excess liquidity and margin value, in the base currency."""
        if not self.session.accounts_queried:
            return _bad_request("Please query /accounts first")
        rows: dict[str, Any] = {}
        for account in self.market.accounts():
            base = self.market.ledger(account).base
            rows[f"{account}.Core"] = {
                "rowType": 1, "dpl": cents(base.daily_pnl), "nl": cents(base.net_liquidation),
                "upl": cents(base.unrealized_pnl), "el": cents(base.cash),
                "mv": cents(base.stock_value + base.option_value + base.future_option_value),
            }  # fmt: skip
        return _json({"upnl": rows})

    async def history(self, request: web.Request) -> web.Response:
        """Daily bars (`bar=1d`) over `period` (`1y`, `6m`, `30d`...), at most 1,000 points;
        five requests at a time, the sixth is a 429."""
        query = request.query
        conids = _conids(query.get("conid", ""))
        item = self.market.instrument(conids[0]) if conids and len(conids) == 1 else None
        period = query.get("period", "1w").strip().lower()
        digits = period.rstrip("dwmy")
        if item is None:
            return _bad_request(f"conid is not valid: {query.get('conid', '')}")
        if query.get("bar", "1d") != "1d" or not digits.isdigit() or digits == period:
            return _bad_request("the simulator serves bar=1d over period=<n>d|w|m|y")
        if self.history_in_flight >= _HISTORY_MAX_IN_FLIGHT:
            return _json({"error": "Too many requests"}, 429)
        self.history_in_flight += 1
        try:
            if self.history_latency_s:
                await asyncio.sleep(self.history_latency_s)
            return self._history(item, int(digits) * _PERIOD_UNITS_DAYS[period[-1]])
        finally:
            self.history_in_flight -= 1

    def _history(self, item: Instrument, days: int) -> web.Response:
        bars = self.market.bars(item.conid)
        if not bars:
            return _json({"error": "Chart data unavailable"}, 500)
        since = self.market.today().toordinal() - days
        served = [bar for bar in bars if bar.day.toordinal() > since][-_HISTORY_MAX_POINTS:]
        data = [
            {"o": bar.open, "c": bar.close, "h": bar.high, "l": bar.low,
             "v": bar.volume / 100,  # the gateway's volume is in hundreds of shares
             "t": int(datetime.combine(bar.day, datetime.min.time(), UTC).timestamp() * 1000)}
            for bar in served
        ]  # fmt: skip
        high = max(served, key=lambda bar: bar.high)
        low = min(served, key=lambda bar: bar.low)
        return _json(
            {
                "serverId": "20477", "symbol": item.symbol, "text": item.symbol,
                "priceFactor": 100, "startTime": f"{served[0].day:%Y%m%d}-00:00:00",
                "high": f"{round(high.high * 100)}/{high.volume / 100}/0",
                "low": f"{round(low.low * 100)}/{low.volume / 100}/0",
                "timePeriod": f"{days}d", "barLength": 86400, "mdAvailability": "S",
                "mktDataDelay": 0, "outsideRth": False, "volumeFactor": 1,
                "priceDisplayRule": 1, "priceDisplayValue": "2", "negativeCapable": False,
                "messageVersion": 2, "data": data, "points": len(data), "travelTime": 48,
            }
        )  # fmt: skip


def _served_ids(position: dict[str, Any], faults: Faults) -> dict[str, Any]:
    """A position as the staged faults write it: ids as decimal strings, an unreadable id or
    quantity for one conid, no displayRule (`portal_string_conids`, `portal_garbled_conid`,
    `portal_garbled_quantity`, `portal_no_display_rule`)."""
    if faults.portal_no_display_rule:
        position = {key: value for key, value in position.items() if key != "displayRule"}
    if faults.portal_garbled_quantity is not None and int(position["conid"]) == (
        faults.portal_garbled_quantity
    ):
        position = {**position, "position": "n/a"}
    if faults.portal_string_conids:
        position = {**position, "conid": str(position["conid"])}
        position["undConid"] = str(position["undConid"])
    if faults.portal_garbled_conid is not None and int(position["conid"]) == (
        faults.portal_garbled_conid
    ):
        position = {**position, "conid": "n/a"}
    return position
