"""The web program: the dashboard, its JSON, `/healthz` and `/metrics`, over aiohttp.

It reads and never writes: heartbeats, spool, buffer and dead letters through the same code as
`bridge-status` (`shared/status_report.gather_files`, judged by `shared/health.assess`), and
PostgreSQL through `web/reader.py`'s read-only session, which keeps its last answers while the
database is down. Its `step()` reads the files once; `run()` serves until told to stop. The
breakers' openings and closings on the event axis are `api_logs` rows like any other event
(the writer and the replayer record them).

Bound to a non-loopback address every path but `/healthz` (and `/login`, where a browser
exchanges the token for a cookie) requires the token: `Authorization: Bearer <token>`, or the
session cookie `/login` sets. With a token configured `/healthz` tells a caller without it only
the status and the names of the failing checks. The token is registered with the log filter at
start.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared import logs
from shared.health import Facts, Finding, assess
from shared.status_report import FileCounts, count_files, gather_files, summary, unhealthy
from web import payload
from web.chart_windows import WINDOWS, Window, window
from web.errors import NoAnswer
from web.event_lanes import EVENTS_SHOWN
from web.exposure import (
    NO_STORE,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    SESSION_MAX_AGE_S,
    allowed_names,
    host_allowed,
    same_secret,
    session_expiry,
    session_value,
)
from web.figures import charted
from web.metrics import Observation, exposition_registry
from web.reader import Reader
from web.settings import WebSettings

log = logging.getLogger("web")

STATIC = Path(__file__).with_name("static")
_OPEN_PATHS = ("/healthz", "/login", "/logout")
FILE_COUNTS_MAX_AGE_S = 1.0
_ACCOUNT_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def plotly_js() -> Path:
    """plotly.js as the installed `plotly` wheel ships it (no CDN, no copy in the repository)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


class WebServer:
    def __init__(
        self,
        settings: WebSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._monotonic = monotonic
        self.started_at = clock()  # ibkr_bridge_events_total counts from here
        # Per event and day the most rows seen; the days whose partition was dropped, summed.
        self._event_days: dict[tuple[str, date], int] = {}
        self._event_dropped: dict[str, int] = {}
        self._counts: FileCounts | None = None
        self._counts_at_s = -math.inf
        self._counting = asyncio.Lock()
        # /healthz questions still running after their answer went out (see _observe_within).
        self._unfinished: set[asyncio.Task[Observation]] = set()
        self.reader = Reader(settings.database, clock=clock)
        # Sessions ended by /logout before their expiry, each kept until it would have expired.
        self._logged_out: dict[str, int] = {}
        if settings.token is not None:
            logs.hide(settings.token.reveal())
        self._host_names = allowed_names(settings.host, settings.allowed_hosts)
        self.app = self._application()
        self.port: int | None = None

    # ---- what it knows -------------------------------------------------------------------

    async def step(self) -> Facts:
        """Read the files once, as bridge-status does."""
        counts = await self._file_counts()
        now = self._clock()
        return await asyncio.to_thread(
            gather_files, self.settings.paths, self.settings.buffer_limits, now, counts
        )

    async def _file_counts(self) -> FileCounts:
        """The spool's backlog and the dead letters, read at most once a second: reading them
        costs up to 64 MiB and the whole dead-letter file, and probes may come many a second.
        One reader at a time; those waiting take what it read."""
        async with self._counting:
            read_at_s = self._monotonic()
            if self._counts is None or read_at_s - self._counts_at_s >= FILE_COUNTS_MAX_AGE_S:
                self._counts = await asyncio.to_thread(count_files, self.settings.paths)
                self._counts_at_s = read_at_s
            return self._counts

    async def observe(
        self,
        *,
        latest: bool = True,
        counts: bool = False,
        wait_s: float | None = None,
        files: Facts | None = None,
    ) -> Observation:
        """Files, database and alerter as of now; what the database cannot say is kept as known.

        `latest` (each account's newest row) and `counts` (events per kind, for /metrics) are
        asked only by those who show them; `wait_s` bounds the wait for the reader's connection;
        `files`: the files as the caller has just read them.
        """
        facts = files if files is not None else await self.step()
        now = self._clock()
        error: str | None = None
        rows: list[dict[str, Any]] = []
        events: dict[str, int] | None = None
        try:
            stored = await self.reader.rows_last_hour(wait_s=wait_s)
            facts = replace(facts, rows_last_hour=stored.value)
            error = stored.error
            # Whether the database answers now: the newest rows tell, or else a ping.
            if latest:
                newest = await self.reader.latest()
                rows, error = newest.value, newest.error or error
            else:
                error = (await self.reader.ping(wait_s=wait_s)).error or error
            if counts:
                counted = await self.reader.event_counts(self.started_at)
                # A remembered answer (the database down) lacks the newer days: not a drop.
                events = self._monotonic_totals(counted.value if counted.error is None else None)
        except NoAnswer as exc:
            error = str(exc)
            if counts:  # what was counted before still stands
                events = self._monotonic_totals(None)
        if error is not None:
            facts = replace(facts, database_error=error)
        return Observation(
            now=now,
            facts=facts,
            findings=assess(facts, now),
            columns=self.reader.columns,
            latest=rows,
            event_counts=events,
            events_since=self.started_at,
        )

    def _monotonic_totals(self, counted: Mapping[tuple[str, date], int] | None) -> dict[str, int]:
        """Each event's rows since the start, never fewer than exported before: a day whose
        partition was dropped past retention (a program running longer than that) keeps the
        count it had, and the other days still add what comes in. None: nothing new read."""
        if counted is not None:
            for key in [key for key in self._event_days if key not in counted]:
                dropped = self._event_days.pop(key)
                self._event_dropped[key[0]] = self._event_dropped.get(key[0], 0) + dropped
            for key, count in counted.items():
                self._event_days[key] = max(count, self._event_days.get(key, 0))
        totals = dict(self._event_dropped)
        for (event, _day), count in self._event_days.items():
            totals[event] = totals.get(event, 0) + count
        return totals

    # ---- serving -------------------------------------------------------------------------

    def _application(self) -> web.Application:
        app = web.Application(middlewares=[self._check_host, self._authorize])
        app.router.add_get("/", self._index)
        app.router.add_get("/static/plotly.min.js", self._plotly)
        app.router.add_static("/static/", STATIC, follow_symlinks=False)
        app.router.add_get("/api/overview", self._overview)
        app.router.add_get("/api/series", self._series)
        app.router.add_get("/api/positions", self._positions)
        app.router.add_get("/api/explain", self._explain)
        app.router.add_get("/api/explain/positions", self._explain_positions)
        app.router.add_get("/api/scenarios", self._scenarios)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/login", self._login_form)
        app.router.add_post("/login", self._login)
        app.router.add_post("/logout", self._logout)
        app.on_response_prepare.append(self._security_headers)
        return app

    @web.middleware
    async def _check_host(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # Before the token: on loopback without one, the Host check is all that stands between
        # a rebound hostile page and every account's figures.
        if host_allowed(request.headers.get("Host"), self._host_names):
            return await handler(request)
        return web.Response(
            status=421,
            text="421: the Host header does not name this server (a loopback name, an IP"
            " address, the bind host, or BRIDGE_WEB_ALLOWED_HOSTS)\n",
        )

    def _authorized(self, request: web.Request) -> bool:
        """Does the request carry the token (bearer header) or the session cookie?"""
        if self.settings.token is None:
            return False
        token = self.settings.token.reveal()
        header = request.headers.get("Authorization", "")
        scheme, _, offered = header.partition(" ")
        if scheme.lower() == "bearer" and same_secret(offered.strip(), token):
            return True
        return self._session_expiry(request) is not None

    def _session_expiry(self, request: web.Request) -> int | None:
        """The end of the request's session cookie, when it is genuine, current and not ended."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if self.settings.token is None or not cookie or cookie in self._logged_out:
            return None
        return session_expiry(self.settings.token.reveal(), cookie, self._clock().timestamp())

    @web.middleware
    async def _authorize(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # /healthz answers anyone, but tells only the token holder more than the status.
        if self.settings.token is None or request.path in _OPEN_PATHS:
            return await handler(request)
        if self._authorized(request):
            return await handler(request)
        return web.Response(
            status=401,
            text="401: a bearer token is required (Authorization: Bearer ..., or /login)\n",
            headers={"WWW-Authenticate": 'Bearer realm="ibkr-bridge"'},
        )

    async def _login_form(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "login.html")

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        offered = str(form.get("token", ""))
        token = self.settings.token.reveal() if self.settings.token else ""
        if not token or not same_secret(offered, token):
            raise web.HTTPUnauthorized(text="401: wrong token\n")
        expires_s = int(self._clock().timestamp()) + SESSION_MAX_AGE_S
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            SESSION_COOKIE,
            session_value(token, expires_s),
            httponly=True,
            samesite="Strict",
            secure=_over_tls(request),
            path="/",
            max_age=SESSION_MAX_AGE_S,
        )
        raise response

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        """End this browser's session: the cookie is cleared, and refused if it comes back."""
        now_s = self._clock().timestamp()
        self._logged_out = {value: end for value, end in self._logged_out.items() if end > now_s}
        expires_s = self._session_expiry(request)
        if expires_s is not None:
            self._logged_out[request.cookies[SESSION_COOKIE]] = expires_s
        response = web.HTTPSeeOther("/login")
        response.del_cookie(
            SESSION_COOKIE, path="/", secure=_over_tls(request), httponly=True, samesite="Strict"
        )
        raise response

    async def _security_headers(self, _request: web.Request, response: web.StreamResponse) -> None:
        """Every answer, refusals and errors included, carries the browser's restrictions."""
        response.headers.update(SECURITY_HEADERS)
        if response.content_type != "application/json" and response.status < 400:
            return
        response.headers["Cache-Control"] = NO_STORE

    async def _index(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def _plotly(self, _request: web.Request) -> web.StreamResponse:
        return web.FileResponse(plotly_js(), headers={"Cache-Control": "max-age=86400"})

    async def _overview(self, _request: web.Request) -> web.StreamResponse:
        seen = await self.observe()
        body = {
            "now": seen.now,
            "refresh_s": self.settings.refresh_s,
            "token_required": self.settings.token is not None,  # the page offers to log out
            "windows": WINDOWS,
            "layout": payload.layout(seen.columns) if seen.columns is not None else None,
            "accounts": [payload.account(row, seen.now) for row in seen.latest],
            "health": summary(seen.facts, seen.findings),
            "alerts": payload.firing(seen.facts.heartbeats.get("alerter")),
            "database": {"error": seen.facts.database_error},
        }
        return _json(body)

    async def _series(self, request: web.Request) -> web.StreamResponse:
        account = _account(request)
        name = request.query.get("window", "1h")
        try:
            span = window(name, self._clock())
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        body: dict[str, Any] = {"account": account, "database": {"error": None, "as_of": None}}
        try:
            rows = await self.reader.series(account, span)
            columns = self.reader.columns
            names = charted(columns) if columns is not None else []
            body |= payload.series(rows.value, names, span)
            body["database"] = {"error": rows.error, "as_of": rows.as_of}
            events = await self.reader.events(span, list(EVENTS_SHOWN))
            body["events"] = payload.events(events.value)
        except NoAnswer as exc:
            body["database"]["error"] = str(exc)
            body["events"] = []
        return _json(body)

    async def _positions(self, request: web.Request) -> web.StreamResponse:
        """The selected account's Greeks by expiry and its legs (docs/expiry-and-legs.md)."""
        account = _account(request)
        body: dict[str, Any] = {"account": account, "expiry": None, "legs": []}
        try:
            answer = await self.reader.positions(account)
        except NoAnswer as exc:
            body["database"] = {"error": str(exc), "as_of": None}
            return _json(body)
        expiry, legs = answer.value
        body |= {"expiry": payload.expiry(expiry), "legs": payload.legs(legs)}
        body["database"] = {"error": answer.error, "as_of": answer.as_of}
        return _json(body)

    def _window(self, request: web.Request) -> Window:
        """The chart window asked for (`1h` when none), refused (400) when unknown."""
        try:
            return window(request.query.get("window", "1h"), self._clock())
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None

    async def _explain(self, request: web.Request) -> web.StreamResponse:
        account = _account(request)
        span = self._window(request)
        body: dict[str, Any] = {"account": account, "window": span.name}
        try:
            answer = await self.reader.explain(account, span)
        except NoAnswer as exc:
            return _json({**body, "error": str(exc), "rows": [], "score": None, "width": None})
        return _json({**body, **answer.value, "error": answer.error})

    async def _explain_positions(self, request: web.Request) -> web.StreamResponse:
        """The positions behind one explained interval (`ts`: its end, ISO 8601 with offset)."""
        account = _account(request)
        try:
            ts = datetime.fromisoformat(request.query.get("ts", ""))
        except ValueError:
            raise web.HTTPBadRequest(text="ts must be an ISO 8601 time\n") from None
        if ts.tzinfo is None:
            raise web.HTTPBadRequest(text="ts must carry its UTC offset\n")
        body: dict[str, Any] = {"account": account, "ts": ts}
        try:
            answer = await self.reader.explain_positions(account, ts)
        except NoAnswer as exc:
            return _json({**body, "error": str(exc), "positions": []})
        return _json({**body, "positions": payload.legs(answer.value), "error": answer.error})

    async def _scenarios(self, request: web.Request) -> web.StreamResponse:
        """The risk profile now and an hour ago, the worst loss and where it comes from, and
        the worst loss over the chart's window (docs/scenarios.md)."""
        account = _account(request)
        span = self._window(request)
        body: dict[str, Any] = {"account": account, "window": span.name}
        try:
            answer = await self.reader.scenarios(account, span)
        except NoAnswer as exc:
            return _json({**body, **payload.scenarios(None, None, []), "error": str(exc)})
        return _json({**body, **payload.scenarios(*answer.value), "error": answer.error})

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        seen = await self._observe_within(self.settings.health_timeout_s)
        code = 503 if unhealthy(seen.findings) else 200
        # A load balancer needs the code; the detail (accounts, alerts, errors, paths) is the
        # token holder's.
        if self.settings.token is not None and not self._authorized(request):
            return _json(payload.public_health(seen.findings), status=code)
        return _json(summary(seen.facts, seen.findings), status=code)

    async def _observe_within(self, deadline_s: float) -> Observation:
        """An observation for /healthz within `deadline_s`: a load balancer must hear 503 soon
        when the database hangs, not after the reply timeout (a minute by default)."""
        # The wait for the connection outlasts the deadline, so a question stuck behind a hung
        # one is answered here as a hang (503), not as a busy connection (a warning).
        wait_s = 2 * deadline_s
        # The files first (their costly part is read at most once a second), so the deadline
        # is the database's alone and a hang is blamed on the right party.
        files = await self.step()
        observing = asyncio.ensure_future(self.observe(latest=False, wait_s=wait_s, files=files))
        done, _ = await asyncio.wait({observing}, timeout=deadline_s)
        if done:
            return observing.result()
        # Not cancelled: a statement cut short would leave the session mid-query. It ends
        # within the reply timeout; the probe gets its answer now.
        self._unfinished.add(observing)
        observing.add_done_callback(_settled(self._unfinished))
        why = f"no answer within {deadline_s:g} s"
        facts = replace(files, database_error=why)
        now = self._clock()
        return Observation(
            now=now,
            facts=facts,
            findings=[*assess(facts, now), Finding("unhealthy", "database", f"hangs: {why}")],
            columns=self.reader.columns,
            latest=[],
            event_counts=None,
        )

    async def _metrics(self, _request: web.Request) -> web.StreamResponse:
        seen = await self.observe(counts=True)
        text = generate_latest(exposition_registry(seen))
        return web.Response(
            body=text, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": NO_STORE}
        )

    async def run(self, stop: asyncio.Event) -> None:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port)
        await site.start()
        self.port = int(runner.addresses[0][1])  # the port the OS chose when set to 0
        log.info(
            "serving",
            extra=logs.fields(
                url=self.settings.url(self.port),
                token="required" if self.settings.token else "none (loopback)",
            ),
        )
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            for task in self._unfinished:
                task.cancel()
            await asyncio.gather(*self._unfinished, return_exceptions=True)
            await self.reader.close()
            log.info("web stopped")


def _settled(
    unfinished: set[asyncio.Task[Observation]],
) -> Callable[[asyncio.Task[Observation]], None]:
    def forget(task: asyncio.Task[Observation]) -> None:
        unfinished.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: its answer went out as a 503 already

    return forget


def _over_tls(request: web.Request) -> bool:
    """Did the browser reach us over TLS, directly or through a TLS-terminating proxy? Trusting
    the proxy's header costs nothing: a forged one only makes the cookie stricter."""
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def _account(request: web.Request) -> str:
    """The `account` asked for, refused (400) when absent or not shaped like an account id:
    IBKR's are letters and digits (DU1234567, U1234567, F1234567); the simulator's and the
    tests' add `_` and `-`. A well-shaped unknown account is no error: it has no rows."""
    account = request.query.get("account", "")
    if not account:
        raise web.HTTPBadRequest(text="account is required\n")
    if not _ACCOUNT_ID.fullmatch(account):
        raise web.HTTPBadRequest(text="account is not an account id\n")
    return account


def _json(body: Any, *, status: int = 200) -> web.Response:
    return web.Response(text=payload.dumps(body), status=status, content_type="application/json")
