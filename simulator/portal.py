"""The simulator's Client Portal side: the gateway's REST API over HTTPS under `/v1/api`.

Serves the one portfolio of `simulator.model` with the real gateway's shapes: values as strings
keyed by field id, the empty first snapshot of a conid, positions 100 a page, `strike` as a
string and `multiplier` null for stock, and the real errors: 401 text when not authenticated,
400 "no bridge" before the brokerage session, 429 with a penalty box past the pacing limits,
500/503 around a reset (after which the session must be re-established), 411 for a POST without
Content-Length. A session expires after `idle_expiry_s` without requests, as the real one does
after about six minutes. The brokerage session opens with the login, as the real gateway's does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from simulator.faults import FaultEvent
from simulator.model import Instrument, Market, Position
from simulator.portal_pacing import Pacing

logger = logging.getLogger("simulator.portal")

BASE = "/v1/api"
PAGE_SIZE = 100
_SERVER_INFO = {"serverName": "JifN19053", "serverVersion": "Build 10.25.0p, Dec 5, 2023"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _number(value: float | None) -> str | None:
    """The gateway sends numbers as strings; repr keeps every digit of the model's value."""
    return None if value is None else repr(float(value))


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


class PortalGateway:
    def __init__(
        self,
        market: Market,
        *,
        pacing: bool = True,
        penalty_s: float = 600.0,
        idle_expiry_s: float = 360.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.market = market
        self.pacing = Pacing(penalty_s) if pacing else None
        self.idle_expiry_s = idle_expiry_s
        self._clock = clock
        self.logged_in = True  # the browser login; cleared by expiry, logout or a reset
        self.accounts_queried = False
        self.streaming: set[int] = set()
        self._last_request_at = clock()
        self._unstalled = asyncio.Event()
        self._unstalled.set()
        self._runner: web.AppRunner | None = None
        market.faults.subscribe(self._on_fault)

    # Session state -------------------------------------------------------------------------

    @property
    def authenticated(self) -> bool:
        faults = self.market.faults
        return self.logged_in and faults.portal_authenticated and not faults.portal_competing

    def _on_fault(self, event: FaultEvent) -> None:
        if event in ("reset_started", "drop_connections"):
            # IBKR's reset ends the brokerage session: it must be opened again.
            self.logged_in = False
            self.streaming.clear()
        if self.market.faults.stalled:
            self._unstalled.clear()
        else:
            self._unstalled.set()

    def _status(self) -> dict[str, Any]:
        faults = self.market.faults
        return {
            "authenticated": self.authenticated,
            "competing": faults.portal_competing,
            "connected": True,
            "message": "" if self.authenticated else "session not authenticated",
            "MAC": "00:11:22:33:44:55",
            "serverInfo": _SERVER_INFO,
            "fail": "",
        }

    # Plumbing ------------------------------------------------------------------------------

    @web.middleware
    async def _gatekeeper(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        logger.debug("%s %s", request.method, request.path_qs)
        faults = self.market.faults
        await self._unstalled.wait()
        if faults.reply_delay_s:
            await asyncio.sleep(faults.reply_delay_s)
        now = self._clock()
        if now - self._last_request_at > self.idle_expiry_s:
            self.logged_in = False  # nobody tickled: the session timed out
        self._last_request_at = now
        path = request.path.removeprefix(BASE)
        if request.method == "POST" and request.content_length is None:
            return web.Response(status=411, text="Length Required")
        if faults.portal_rate_limit_storm or (
            self.pacing is not None and not self.pacing.admit(path, now)
        ):
            return _json({"error": "Too Many Requests"}, 429)
        reset_until = faults.reset_until
        if reset_until is not None and reset_until > time.time():
            return _json({"error": "Service Unavailable", "statusCode": 503}, 503)
        if faults.portal_server_error == 500:
            return _json({"error": "Internal Server Error"}, 500)
        if faults.portal_server_error == 503:
            return _json({"error": "Service Unavailable", "statusCode": 503}, 503)
        return await handler(request)

    def _require_session(self) -> web.Response | None:
        if not self.authenticated:
            return web.Response(status=401, text="Unauthorized", content_type="text/plain")
        return None

    def _require_bridge(self) -> web.Response | None:
        refused = self._require_session()
        if refused is not None:
            return refused
        if not self.logged_in:
            return _json({"error": "Bad Request: no bridge", "statusCode": 400}, 400)
        return None

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
        app = web.Application(middlewares=[self._gatekeeper])
        routes = [
            ("*", "/iserver/auth/status", self.auth_status),
            ("*", "/tickle", self.tickle),
            ("POST", "/iserver/auth/ssodh/init", self.ssodh_init),
            ("*", "/iserver/reauthenticate", self.reauthenticate),
            ("POST", "/logout", self.logout),
            ("GET", "/sso/validate", self.sso_validate),
            ("GET", "/iserver/accounts", self.iserver_accounts),
            ("GET", "/portfolio/accounts", self.portfolio_accounts),
            ("GET", "/portfolio/{account}/positions/{page}", self.positions),
            ("GET", "/iserver/marketdata/snapshot", self.snapshot),
            ("GET", "/iserver/marketdata/unsubscribeall", self.unsubscribe_all),
            ("POST", "/iserver/marketdata/unsubscribe", self.unsubscribe),
            ("GET", "/iserver/contract/{conid}/info", self.contract_info),
            ("GET", "/trsrv/secdef", self.secdef),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, BASE + path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self._unstalled.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # Session endpoints -----------------------------------------------------------------------

    async def auth_status(self, request: web.Request) -> web.Response:
        return _json(self._status())

    async def tickle(self, request: web.Request) -> web.Response:
        if not self.authenticated:
            return _json({"error": "no session"})
        return _json(
            {
                "session": "5b2d8bc8a2d7b6f7e3d9",
                "ssoExpires": int(self.idle_expiry_s * 1000),
                "collission": False,
                "userId": 12345678,
                "hmds": {"error": "no bridge"},
                "iserver": {"authStatus": self._status()},
            }
        )

    async def ssodh_init(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = {}
        if not isinstance(body, dict) or body.get("publish") is not True:
            return _json({"error": "publish must be true"}, 500)
        faults = self.market.faults
        if body.get("compete") is True:
            faults.portal_competing = False
        if faults.portal_authenticated:
            self.logged_in = True
        return _json(self._status())

    async def reauthenticate(self, request: web.Request) -> web.Response:
        if self.market.faults.portal_authenticated:
            self.logged_in = True
        return _json({"message": "triggered"})

    async def logout(self, request: web.Request) -> web.Response:
        self.logged_in = False
        self.accounts_queried = False
        return _json({"status": True})

    async def sso_validate(self, request: web.Request) -> web.Response:
        refused = self._require_session()
        if refused is not None:
            return refused
        return _json(
            {"USER_ID": 12345678, "USER_NAME": "simuser", "RESULT": True, "AUTH_TIME": 0,
             "EXPIRES": int(self.idle_expiry_s * 1000), "LOGIN_TYPE": 2, "IS_MASTER": False}
        )  # fmt: skip

    # Accounts and positions ------------------------------------------------------------------

    async def iserver_accounts(self, request: web.Request) -> web.Response:
        refused = self._require_bridge()
        if refused is not None:
            return refused
        self.accounts_queried = True
        accounts = self.market.accounts()
        return _json(
            {
                "accounts": accounts,
                "aliases": {account: account for account in accounts},
                "selectedAccount": accounts[0] if accounts else "",
                "allowFeatures": {"snapshotRefreshTimeout": 30},
                "isPaper": True,
            }
        )

    async def portfolio_accounts(self, request: web.Request) -> web.Response:
        refused = self._require_session()
        if refused is not None:
            return refused
        return _json(
            [
                {"id": account, "accountId": account, "accountVan": account,
                 "accountTitle": "Simulated", "displayName": account, "accountAlias": None,
                 "currency": "USD", "type": "DEMO", "tradingType": "STKNOPT",
                 "clearingStatus": "O", "brokerageAccess": True}
                for account in self.market.accounts()
            ]
        )  # fmt: skip

    async def positions(self, request: web.Request) -> web.Response:
        refused = self._require_session()
        if refused is not None:
            return refused
        account = request.match_info["account"]
        if account not in self.market.accounts():
            return _json({"error": f"accountId is not valid: {account}", "statusCode": 400}, 400)
        try:
            page = int(request.match_info["page"])
        except ValueError:
            return _json({"error": "Bad Request: page", "statusCode": 400}, 400)
        items = self.market.positions(account)[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
        return _json([self._position(position) for position in items])

    def _position(self, position: Position) -> dict[str, Any]:
        item = position.instrument
        quote = self.market.quote(item.conid)
        price = quote.mark if quote.mark is not None else 0.0
        is_option = item.underlying_conid is not None
        underlying = self.market.instrument(item.underlying_conid or 0)
        return {
            "acctId": position.account,
            "conid": item.conid,
            "contractDesc": item.local_symbol,
            "position": position.quantity,
            "mktPrice": price,
            "mktValue": position.quantity * price * item.multiplier,
            "currency": item.currency,
            "avgCost": position.avg_cost,
            "avgPrice": position.avg_cost / item.multiplier,
            "assetClass": item.sec_type,
            "putOrCall": item.right,
            "strike": str(item.strike if item.strike is not None else 0),
            "expiry": item.expiry,
            "multiplier": None if item.sec_type == "STK" else item.multiplier,
            "undConid": item.underlying_conid or 0,
            "undSym": underlying.symbol if underlying and is_option else item.symbol,
            "ticker": item.symbol,
            "listingExchange": item.primary_exchange,
            "pageSize": PAGE_SIZE,
        }

    # Market data -----------------------------------------------------------------------------

    async def snapshot(self, request: web.Request) -> web.Response:
        refused = self._require_bridge()
        if refused is not None:
            return refused
        if not self.accounts_queried:
            return _json(
                {"error": "Bad Request: Please query /accounts first", "statusCode": 400}, 400
            )
        try:
            conids = [int(part) for part in request.query.get("conids", "").split(",") if part]
        except ValueError:
            return _json({"error": "Bad Request: conids", "statusCode": 400}, 400)
        if not conids or len(conids) > 100:
            return _json({"error": "Bad Request: 1 to 100 conids", "statusCode": 400}, 400)
        answer = []
        for conid in conids:
            item = self.market.instrument(conid)
            if item is None or conid not in self.streaming:
                self.streaming.add(conid)  # the first request opens the stream, returns nothing
                answer.append({"conid": conid, "conidEx": str(conid)})
            else:
                answer.append(self._quote(item))
        return _json(answer)

    def _quote(self, item: Instrument) -> dict[str, Any]:
        quote = self.market.quote(item.conid)
        values = {
            "31": _number(quote.last),
            "84": _number(quote.bid),
            "86": _number(quote.ask),
            "7635": _number(quote.mark),
            "7308": _number(quote.delta),
            "7309": _number(quote.gamma),
            "7310": _number(quote.theta),
            "7311": _number(quote.vega),
            "7633": None if quote.implied_vol is None else f"{quote.implied_vol * 100:.2f}%",
        }
        return {
            "conid": item.conid,
            "conidEx": str(item.conid),
            "_updated": int(self.market.now() * 1000),
            "server_id": "q0",
            "6119": "q0",
            "6509": "RpB",
            **{key: value for key, value in values.items() if value is not None},
        }

    async def unsubscribe_all(self, request: web.Request) -> web.Response:
        self.streaming.clear()
        return _json({"unsubscribed": True})

    async def unsubscribe(self, request: web.Request) -> web.Response:
        try:
            conid = int((await request.json())["conid"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            return _json({"error": "Bad Request: conid", "statusCode": 400}, 400)
        if conid not in self.streaming:
            return _json({"error": "unknown"}, 500)
        self.streaming.discard(conid)
        return _json({"success": True})

    # Contracts -------------------------------------------------------------------------------

    async def contract_info(self, request: web.Request) -> web.Response:
        refused = self._require_bridge()
        if refused is not None:
            return refused
        try:
            item = self.market.instrument(int(request.match_info["conid"]))
        except ValueError:
            item = None
        if item is None:
            return _json({"error": "Bad Request: conid", "statusCode": 400}, 400)
        return _json(
            {
                "con_id": item.conid,
                "symbol": item.symbol,
                "instrument_type": item.sec_type,
                "multiplier": None if item.sec_type == "STK" else str(item.multiplier),
                "strike": None if item.strike is None else str(item.strike),
                "right": {"C": "CALL", "P": "PUT"}.get(item.right or ""),
                "maturity_date": item.expiry,
                "underlying_con_id": item.underlying_conid or 0,
                "local_symbol": item.local_symbol,
                "trading_class": item.trading_class,
                "currency": item.currency,
                "exchange": item.exchange,
            }
        )

    async def secdef(self, request: web.Request) -> web.Response:
        refused = self._require_session()
        if refused is not None:
            return refused
        try:
            conids = [int(part) for part in request.query.get("conids", "").split(",") if part]
        except ValueError:
            return _json({"error": "Bad Request: conids", "statusCode": 400}, 400)
        found = [item for conid in conids if (item := self.market.instrument(conid)) is not None]
        return _json(
            {
                "secdef": [
                    {"conid": item.conid, "currency": item.currency, "assetClass": item.sec_type,
                     "ticker": item.symbol, "expiry": item.expiry, "putOrCall": item.right,
                     "strike": str(item.strike or 0), "undConid": item.underlying_conid or 0,
                     "multiplier": 0 if item.sec_type == "STK" else item.multiplier}
                    for item in found
                ]
            }
        )  # fmt: skip
