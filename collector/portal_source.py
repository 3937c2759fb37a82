"""PORTAL mode: the Client Portal gateway's REST API through aiohttp.

Keeps the session alive (/tickle about every 60 s), watches /iserver/auth/status (authenticated,
connected, not competing), opens the brokerage session when it is missing, calls
/portfolio/accounts and /iserver/accounts before positions and snapshots, pages positions 100 at
a time, and snapshots options and underlyings together. The first snapshot of a conid has no
values (the gateway opens the stream): its Greeks arrive on the next tick. Requests are spaced
to stay under the gateway's 10 requests a second; a 429 backs off for the penalty period. TLS
is verified unless the gateway is on loopback (self-signed) or verification is turned off.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp

from collector.errors import (
    GatewayPacing,
    GatewayReplyError,
    GatewayUnavailable,
    SessionRequired,
)
from collector.events import EventLog
from collector.greeks import Holding, OptionGreeks, parse_multiplier
from collector.portal_values import (
    SNAPSHOT_FIELDS,
    PortalQuote,
    parse_conid,
    parse_number,
    parse_snapshot_item,
)
from collector.settings import CollectorSettings
from shared.records import Mode

log = logging.getLogger("collector.portal")

PAGE_SIZE: Final = 100
SNAPSHOT_BATCH: Final = 100  # conids per snapshot request (documented maximum)
# Stay under the gateway's 10 requests a second with a margin for other clients' tickles.
_REQUEST_SPACING_S: Final = 0.125
_OPTION_TYPES: Final = frozenset({"OPT", "FOP"})
_NO_UNDERLYING: Final = (None, 0, "", "0")  # how a position says it has no underlying
_ACCOUNTS_EVERY_S: Final = 5.5


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
        self._last_tickle_at = float("-inf")
        self._paced_until = float("-inf")
        self._pacing = False  # inside a penalty episode: reported once, at its start
        self._streaming: set[int] = set()  # conids whose snapshot stream is open
        self._multipliers: dict[int, float | None] = {}
        self._auth: dict[str, Any] = {}

    @property
    def connected(self) -> bool:
        return self._ready

    # HTTP ------------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request, paced; the reply's JSON, or a collector error (the one translation)."""
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
            self._accounts = [
                str(item.get("accountId") or item.get("id"))
                for item in accounts or []
                if isinstance(item, dict) and (item.get("accountId") or item.get("id"))
            ]
            if self.settings.accounts:
                self._accounts = [a for a in self._accounts if a in self.settings.accounts]
        await self._request("GET", "/iserver/accounts")  # required before snapshots
        self._streaming.clear()
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

    async def read(self, now: datetime) -> dict[str, list[Holding]]:
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

    async def _read(self, now: datetime) -> dict[str, list[Holding]]:
        positions = {account: await self._positions(account) for account in self._accounts}
        conids = {int(p["conid"]) for items in positions.values() for p in items}
        underlyings = {
            int(p["undConid"])
            for items in positions.values()
            for p in items
            if p.get("assetClass") in _OPTION_TYPES and p.get("undConid")
        }
        quotes = await self._snapshots(sorted(conids | underlyings))
        await self._fill_multipliers(positions)
        return {
            account: [self._holding(item, quotes, now) for item in items]
            for account, items in positions.items()
        }

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
        """Options whose position lacks a multiplier get it from /trsrv/secdef, once."""
        missing = sorted(
            {
                int(item["conid"])
                for items in positions.values()
                for item in items
                if item.get("assetClass") in _OPTION_TYPES
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
            if isinstance(item, dict) and "conid" in item:
                self._multipliers[int(item["conid"])] = parse_multiplier(item.get("multiplier"))
        for conid in missing:
            self._multipliers.setdefault(conid, None)

    def _holding(
        self, item: dict[str, Any], quotes: dict[int, PortalQuote], now: datetime
    ) -> Holding:
        conid = int(item["conid"])
        sec_type = str(item.get("assetClass") or "")
        multiplier = parse_multiplier(item.get("multiplier"))
        if multiplier is None:
            multiplier = 1.0 if sec_type == "STK" else self._multipliers.get(conid)
        quote = quotes.get(conid)
        greeks = None
        if sec_type in _OPTION_TYPES and quote is not None and quote.delta is not None:
            underlying = quotes.get(int(item.get("undConid") or 0))
            received = (
                datetime.fromtimestamp(quote.updated_ms / 1000, UTC) if quote.updated_ms else now
            )
            greeks = OptionGreeks.cleaned(
                delta=quote.delta,
                gamma=quote.gamma,
                theta=quote.theta,
                vega=quote.vega,
                underlying_price=underlying.price if underlying is not None else None,
                received_at=min(received, now),
            )
        price = quote.price if quote is not None else parse_number(item.get("mktPrice"))
        symbol = str(item.get("undSym") or item.get("ticker") or item.get("contractDesc") or conid)
        return Holding(
            conid=conid,
            symbol=symbol,
            sec_type=sec_type,
            quantity=parse_number(item.get("position")) or 0.0,
            multiplier=multiplier,
            price=price,
            greeks=greeks,
        )
