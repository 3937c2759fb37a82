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
from enum import Enum
from http import HTTPStatus
from typing import Any

from aiohttp import web

from simulator import portal_format as fmt
from simulator.faults import FaultEvent, Faults
from simulator.model import Instrument, Market, Position
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
_SHUTDOWN_S = 1.0  # a stopped gateway does not wait for replies held back by a fault
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Needs(Enum):
    NOTHING = "answers in every state"
    LOGIN = "the login: /portfolio, /trsrv, /sso"
    BRIDGE = "the brokerage session: /iserver"


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


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
    the pacing limits every request is a 429 for `penalty_s`. `clock` (epoch seconds) times
    idling, pacing and `faults.reset_until`.
    """

    def __init__(
        self,
        market: Market,
        *,
        pacing: bool = True,
        penalty_s: float = 600.0,
        idle_expiry_s: float = 360.0,
        open_brokerage_on_login: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.market = market
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
            ("GET", "/trsrv/secdef", self.secdef, Needs.LOGIN),
        ]
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
                 "accountStatus": 1_644_814_800_000, "currency": "USD", "type": "DEMO",
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
        quote = self.market.quote(item.conid)
        price = quote.mark if quote.mark is not None else 0.0  # per unit, not per contract
        market_value = position.quantity * price * item.multiplier
        return {
            "acctId": position.account,
            "conid": item.conid,
            "contractDesc": fmt.contract_description(item),
            "position": position.quantity,
            "mktPrice": price,
            "mktValue": market_value,
            "currency": item.currency,
            "avgCost": position.avg_cost,
            "avgPrice": position.avg_cost / item.multiplier,
            "realizedPnl": 0.0,
            "unrealizedPnl": market_value - position.quantity * position.avg_cost,
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
            "countryCode": "US",
            "isUS": True,
            "hasOptions": item.underlying_conid is None,
            "pageSize": PAGE_SIZE,
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
        values: dict[str, Any] = {
            "31": fmt.price(quote.last),
            "84": fmt.price(quote.bid),
            "86": fmt.price(quote.ask),
            "7635": fmt.price(quote.mark),
            "88": fmt.size(quote.bid_size),
            "85": fmt.size(quote.ask_size),
            "7059": fmt.size(quote.last_size),
            "87": fmt.volume(quote.volume),
            "87_raw": quote.volume,
            "7308": fmt.price(quote.delta),
            "7309": fmt.price(quote.gamma),
            "7310": fmt.price(quote.theta),
            "7311": fmt.price(quote.vega),
            "7633": None if iv is None else f"{iv * 100:.2f}%",
            "55": item.symbol,
            "6070": item.sec_type,
            "201": item.right,
            "6008": item.conid,
            "6457": item.underlying_conid,
        }
        served = fields | {"87_raw"} if "87" in fields else fields  # the raw twin of volume
        return {
            "conid": item.conid,
            "conidEx": str(item.conid),
            "_updated": int(self.market.now() * 1000),
            "server_id": "q0",
            "6119": "q0",
            "6509": "RpB",  # real-time, snapshot permission, book
            **{key: value for key, value in values.items() if key in served and value is not None},
        }

    async def unsubscribe_all(self, request: web.Request) -> web.Response:
        self.session.streams.clear()
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
        multiplier = fmt.position_multiplier(item)
        return _json(
            {
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
        )

    async def secdef(self, request: web.Request) -> web.Response:
        conids = _conids(request.query.get("conids", ""))
        if conids is None:
            return _bad_request("conids")
        found = [item for conid in conids if (item := self.market.instrument(conid)) is not None]
        return _json(
            {
                "secdef": [
                    {"conid": item.conid, "currency": item.currency, "assetClass": item.sec_type,
                     "ticker": item.symbol, "name": item.symbol, "expiry": item.expiry,
                     "lastTradingDay": item.expiry, "putOrCall": item.right,
                     "strike": fmt.strike(item.strike), "undConid": item.underlying_conid or 0,
                     "multiplier": fmt.position_multiplier(item) or 0,
                     "type": item.sec_type, "hasOptions": item.underlying_conid is None,
                     "isUS": True, "listingExchange": item.primary_exchange}
                    for item in found
                ]
            }
        )  # fmt: skip


def _served_ids(position: dict[str, Any], faults: Faults) -> dict[str, Any]:
    """A position's ids as the staged faults write them: decimal strings, or an unreadable id
    for one conid (`portal_string_conids`, `portal_garbled_conid`)."""
    if faults.portal_string_conids:
        position = {**position, "conid": str(position["conid"])}
        position["undConid"] = str(position["undConid"])
    if faults.portal_garbled_conid is not None and int(position["conid"]) == (
        faults.portal_garbled_conid
    ):
        position = {**position, "conid": "n/a"}
    return position
