"""PORTAL mode against the simulator's Client Portal side over HTTPS, with pacing enforced."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from collector.collector import Collector
from simulator.app import Simulator
from testkit.waiting import wait_until_async
from tests.collector.spooled import event_names, events, snapshots_at, spooled
from tests.collector.stated import stated


async def test_net_greeks_equal_the_truth_after_the_empty_first_snapshot(
    make_collector: Callable[..., Collector], portal_simulator: Simulator
) -> None:
    """The first tick opens the streams (Greeks unknown, null, counted); the second equals the
    truth to 1e-9, every request inside the gateway's pacing limits."""
    collector = make_collector()
    assert await collector.connect_once()
    await collector.tick_once(10)
    first = snapshots_at(collector, 10)["DU1234567"]
    assert (first["options_with_greeks"], first["net_dollar_gamma"]) == (0, None)
    await collector.tick_once(11)
    truth = portal_simulator.market.truth()
    for account, record in snapshots_at(collector, 11).items():
        for name in ("net_theta", "net_vega", "net_dollar_delta"):
            assert record[name] == stated(name, truth[account][name]), name
        assert record["options_with_greeks"] == truth[account]["options_with_greeks"]
    assert "pacing_backoff" not in event_names(collector)


async def test_no_session_means_an_operator_must_log_in(
    make_collector: Callable[..., Collector], portal_simulator: Simulator
) -> None:
    """Without a browser login the connect fails with a clear `session_required` error."""
    portal_simulator.market.faults.portal_authenticated = False
    collector = make_collector()
    assert not await collector.connect_once()
    required = next(
        e for e in events(collector.settings.paths.var_dir) if e["event"] == "session_required"
    )
    assert required["level"] == "error"
    assert "log in" in required["message"]


async def test_reset_drops_the_session_and_the_keeper_reopens_it(
    make_collector: Callable[..., Collector], portal_simulator: Simulator
) -> None:
    """IBKR's reset: 503 while it lasts, then a session that must be opened again; the keeper
    sees it (probe), re-opens it (ssodh/init) and snapshots resume."""
    collector = make_collector(IB_STALL_PROBE_S="0.3")
    stop = asyncio.Event()
    keeper = asyncio.create_task(collector.keep_connected(stop))
    try:
        await wait_until_async(lambda: "connected" in event_names(collector), what="connected")
        faults = portal_simulator.market.faults
        faults.reset_until = time.time() + 1.0
        faults.emit("reset_started")
        await wait_until_async(
            lambda: event_names(collector).count("connected") >= 2, what="reconnected", timeout_s=20
        )
        report = await collector.tick_once(50)
        assert report.snapshots == 2
    finally:
        stop.set()
        await keeper
    names = event_names(collector)
    assert names.index("probe_failed") < len(names) - 1 - names[::-1].index("connected")


async def test_a_429_backs_off_and_is_reported(
    make_collector: Callable[..., Collector], portal_simulator: Simulator
) -> None:
    """Told 429, the source reports a pacing back-off and produces nothing that tick."""
    collector = make_collector()
    assert await collector.connect_once()
    portal_simulator.market.faults.portal_rate_limit_storm = True
    assert (await collector.tick_once(60)).snapshots == 0
    assert "pacing_backoff" in event_names(collector)


async def test_a_garbage_reply_is_reported_and_nothing_is_invented(
    tmp_path: Path, make_collector: Callable[..., Collector]
) -> None:
    """A gateway answering HTML where JSON is due: the tick produces nothing, says why."""

    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text="<html>maintenance</html>", content_type="text/html")

    async with _stub_gateway(garbage) as portal_url:
        collector = make_collector(IB_PORTAL_URL=portal_url)
        assert not await collector.connect_once()
        failed = next(
            e for e in events(collector.settings.paths.var_dir) if e["event"] == "connect_failed"
        )
        assert "reply is not JSON" in failed["message"]
        assert not [r for r in spooled(collector.settings.paths.var_dir) if r["kind"] == "snapshot"]


@pytest.mark.slow
async def test_schedule_holds_under_a_slow_gateway(
    portal_environ: dict[str, str], portal_simulator: Simulator, processes: Any
) -> None:
    """Every Portal reply 0.4 s late: ticks still fall on whole seconds, one per interval,
    with every account, and the lateness shows only as tick lag."""
    portal_simulator.market.faults.reply_delay_s = 0.4
    environ = {**portal_environ, "BRIDGE_POLL_INTERVAL_S": "2"}
    var_dir = Path(environ["BRIDGE_VAR_DIR"])
    process = processes.start("collector", environ)

    def ticks() -> list[str]:
        return sorted({r["ts"] for r in spooled(var_dir) if r["kind"] == "snapshot"})

    await wait_until_async(lambda: len(ticks()) >= 4, what="four ticks", timeout_s=60)
    process.terminate()
    await wait_until_async(lambda: process.poll() is not None, what="exit")
    seconds = [datetime.fromisoformat(tick).timestamp() for tick in ticks()]
    assert all(second == int(second) for second in seconds)
    assert [b - a for a, b in itertools.pairwise(seconds)] == [2.0] * (len(seconds) - 1)
    per_tick = [
        sum(1 for r in spooled(var_dir) if r.get("ts") == t and r["kind"] == "snapshot")
        for t in ticks()
    ]
    assert set(per_tick) == {2}


async def test_refused_account_data_is_unknown_and_said_once(
    make_collector: Callable[..., Collector], portal_simulator: Simulator
) -> None:
    """A gateway that refuses the ledger, summary and partitioned P&L (404): the ticks go on,
    the account's values are NULL, and each refusal is reported once per session."""
    refused = ("/ledger", "/summary", "/pnl/partitioned")

    async def forward(request: web.Request) -> web.Response:
        if request.path.endswith(refused):
            return web.Response(status=404, text="Not Found")
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                portal_simulator.portal_url.removesuffix("/v1/api") + request.path_qs,
                data=await request.read(),
                headers={"Content-Type": request.headers.get("Content-Type", "")},
                ssl=False,
            ) as response,
        ):
            body = await response.read()
            return web.Response(status=response.status, body=body,
                                content_type=response.content_type)  # fmt: skip

    async with _stub_gateway(forward) as portal_url:
        collector = make_collector(IB_PORTAL_URL=portal_url)
        assert await collector.connect_once()
        await collector.tick_once(20)
        await collector.tick_once(21)
        record = snapshots_at(collector, 21)["DU1234567"]
        assert (record["net_liquidation"], record["unrealized_pnl"], record["daily_pnl"]) == (
            None, None, None,
        )  # fmt: skip
        assert record["currency"] == "USD"  # from /portfolio/accounts
        assert record["net_dollar_delta"] is not None
        said = [e for e in events(collector.settings.paths.var_dir)
                if e["event"] == "account_data_unavailable"]  # fmt: skip
        assert len(said) == 3


@asynccontextmanager
async def _stub_gateway(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A Portal API URL on loopback whose every path is answered by `handler`."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/v1/api"
    finally:
        await runner.cleanup()
