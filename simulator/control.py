"""The simulator's control endpoint (plain HTTP on loopback): read the truth, stage faults.

GET /truth (?scenarios=1: with the scenario grids), GET /betas, GET /health, POST /freeze,
POST /thaw, POST /advance (a frozen market's time, by {"seconds": n}), GET|POST|DELETE /faults,
POST /positions (stage a fill: a position's new quantity).
Bad input is a 400 with a JSON reason, never a 500.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import fields
from typing import Any

from aiohttp import web

from simulator.faults import Faults
from simulator.model import Market

logger = logging.getLogger("simulator.control")

_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "reset_until": (int, float, type(None)),
    "reset_data_lost": (bool,),
    "client_ids_in_use": (list,),
    "market_data_error": (int, type(None)),
    "max_market_data_lines": (int,),
    "stalled": (bool,),
    "reply_delay_s": (int, float),
    "portal_authenticated": (bool,),
    "portal_competing": (bool,),
    "portal_rate_limit_storm": (bool,),
    "portal_server_error": (int, type(None)),
    "portal_string_conids": (bool,),
    "portal_garbled_conid": (int, type(None)),
    "portal_garbled_quantity": (int, type(None)),
    "portal_no_display_rule": (bool,),
    "portal_rules_error": (int, type(None)),
    "portal_delayed_conid": (int, type(None)),
}
_ACTIONS = ("drop_connections", "reset_s", "farm")


def _bad(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)


class ControlEndpoint:
    def __init__(self, market: Market) -> None:
        self.market = market
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> int:
        app = web.Application()
        app.router.add_get("/truth", self.truth)
        app.router.add_get("/betas", self.betas)
        app.router.add_get("/health", self.health)
        app.router.add_post("/freeze", self.freeze)
        app.router.add_post("/thaw", self.thaw)
        app.router.add_post("/advance", self.advance)
        app.router.add_get("/faults", self.show_faults)
        app.router.add_post("/faults", self.set_faults)
        app.router.add_delete("/faults", self.clear_faults)
        app.router.add_post("/positions", self.set_position)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def truth(self, request: web.Request) -> web.Response:
        body = {
            "at": self.market.now(),
            "frozen": self.market.frozen,
            "accounts": self.market.truth(),
            "portal": self.market.portal_truth(),
        }
        if request.query.get("scenarios") == "1":  # seconds of trees: only when asked
            body["scenarios"] = self.market.scenario_truth()
        return web.json_response(body)

    async def betas(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"benchmark": self.market.scenario.benchmark, "betas": self.market.betas()}
        )

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "faults": self.market.faults.describe()})

    async def freeze(self, request: web.Request) -> web.Response:
        self.market.freeze()
        return web.json_response({"frozen": True})

    async def thaw(self, request: web.Request) -> web.Response:
        self.market.thaw()
        return web.json_response({"frozen": False})

    async def advance(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            return _bad('expected {"seconds": a number}')
        try:
            at = self.market.advance(float(seconds))
        except ValueError as exc:
            return _bad(str(exc))
        return web.json_response({"at": at})

    async def show_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.market.faults.describe())

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.market.faults.clear()
        return web.json_response(self.market.faults.describe())

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        known = {item.name for item in fields(Faults) if not item.name.startswith("_")}
        for key, value in body.items():
            if key not in known and key not in _ACTIONS:
                return _bad(f"unknown fault {key!r}")
            if key in _FIELD_TYPES and (
                isinstance(value, bool) != (bool in _FIELD_TYPES[key])
                or not isinstance(value, _FIELD_TYPES[key])
            ):
                return _bad(f"{key} has the wrong type")
        faults = self.market.faults
        for key, value in body.items():
            if key in known:
                setattr(faults, key, set(value) if key == "client_ids_in_use" else value)
        logger.info("faults set: %s", body)
        faults.emit("changed")
        if body.get("farm") in ("broken", "ok"):
            faults.emit("farm_broken" if body["farm"] == "broken" else "farm_ok")
        if "reset_s" in body:
            faults.reset_until = time.time() + float(body["reset_s"])
            faults.emit("reset_started")
        if body.get("drop_connections"):
            faults.emit("drop_connections")
        return web.json_response(faults.describe())

    async def set_position(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        if isinstance(body, web.Response):
            return body
        try:
            self.market.set_position(
                str(body["account"]), int(body["conid"]), float(body["quantity"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            return _bad(f"expected account, conid and quantity: {exc}")
        return web.json_response({"ok": True})


async def _json_object(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return _bad("the body is not JSON")
    if not isinstance(body, dict):
        return _bad("the body is not a JSON object")
    return body
