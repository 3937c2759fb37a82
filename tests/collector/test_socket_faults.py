"""SOCKET mode through the simulator's faults: what the keeper does and what api_logs shows."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import pytest

from collector.collector import Collector
from collector.greeks import OptionGreeks
from collector.settings import CollectorSettings
from collector.socket_source import SocketSource
from simulator.model import Market
from simulator.tws import SocketGateway
from testkit.waiting import wait_until_async
from tests.collector.spooled import event_names, events, spooled
from tests.collector.stated import stated


def _events(collector: Collector) -> list[dict[str, Any]]:
    return events(collector.settings.paths.var_dir)


async def _until_event(
    collector: Collector, name: str, count: int = 1, timeout_s: float = 15
) -> None:
    await wait_until_async(
        lambda: event_names(collector).count(name) >= count,
        what=f"event {name}",
        timeout_s=timeout_s,
    )


@pytest.fixture
async def running(
    request: pytest.FixtureRequest, collector_environ: dict[str, str]
) -> AsyncIterator[Callable[..., Collector]]:
    """A collector whose keeper runs in the background; settings overrides per test."""
    stop = asyncio.Event()
    started: list[tuple[Collector, asyncio.Task[None]]] = []

    def start(**overrides: str) -> Collector:
        collector = Collector(CollectorSettings.from_environ({**collector_environ, **overrides}))
        collector.open()
        started.append((collector, asyncio.create_task(collector.keep_connected(stop))))
        return collector

    yield start
    stop.set()
    for collector, keeper in started:
        await keeper
        await collector.close()


@pytest.fixture
async def connected(
    collector_environ: dict[str, str],
) -> AsyncIterator[Callable[..., Awaitable[tuple[Collector, SocketSource]]]]:
    """Collectors with settings overrides, connected once (no keeper); closed afterwards."""
    made: list[Collector] = []

    async def connect(**overrides: str) -> tuple[Collector, SocketSource]:
        collector = Collector(CollectorSettings.from_environ({**collector_environ, **overrides}))
        collector.open()
        made.append(collector)
        assert await collector.connect_once()
        source = collector.source
        assert isinstance(source, SocketSource)
        return collector, source

    yield connect
    for collector in made:
        await collector.close()


async def test_dropped_connection_reconnects_on_the_backoff_schedule(
    running: Callable[..., Collector], market: Market
) -> None:
    """After a drop: disconnected (warning), then reconnect attempts, then connected again."""
    collector = running()
    await _until_event(collector, "connected")
    market.faults.emit("drop_connections")
    await _until_event(collector, "connected", 2)
    sequence = [
        e for e in event_names(collector) if e in ("disconnected", "reconnect_attempt", "connected")
    ]
    assert sequence[-3:] == ["disconnected", "reconnect_attempt", "connected"]
    levels = {e["event"]: e["level"] for e in _events(collector)}
    assert levels["disconnected"] == "warning"


async def test_reconnect_waits_follow_5_10_20_then_20(
    running: Callable[..., Collector], market: Market
) -> None:
    """With the gateway refusing connections, attempts are spaced by the schedule (scaled)."""
    market.faults.client_ids_in_use = {10}
    collector = running(IB_RECONNECT_DELAYS_S="0.3,0.6,1.2", IB_CONNECT_TIMEOUT_S="1")
    await _until_event(collector, "client_id_in_use", 4, timeout_s=30)
    stamps = [
        e["ts"]
        for e in _events(collector)
        if e["event"] in ("connect_attempt", "reconnect_attempt")
    ]
    times = [datetime.fromisoformat(stamp).timestamp() for stamp in stamps[:4]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # Each gap is the connect attempt's own duration plus the scheduled wait.
    for gap, wait_s in zip(gaps, (0.3, 0.6, 1.2), strict=True):
        assert wait_s <= gap < wait_s + 2.0
    market.faults.client_ids_in_use = set()
    await _until_event(collector, "connected", timeout_s=30)
    error = next(e for e in _events(collector) if e["event"] == "client_id_in_use")
    assert (error["level"], error["code"]) == ("error", 326)


async def test_daily_reset_is_quiet_inside_a_reset_window(
    running: Callable[..., Collector], market: Market
) -> None:
    """1100 inside a configured reset window is info, and 1102 follows; nothing is an error."""
    collector = running(IB_RESET_WINDOWS="Mon-Sun 00:00-00:00")  # always inside
    await _until_event(collector, "connected")
    market.faults.reset_until = time.time() + 0.5
    market.faults.emit("reset_started")
    await _until_event(collector, "connectivity_restored")
    lost = next(e for e in _events(collector) if e["code"] == 1100)
    assert lost["level"] == "info"
    assert lost["details"]["in_reset_window"] is True
    assert "reset_window_entered" in event_names(collector)
    assert not [e for e in _events(collector) if e["level"] in ("error", "critical")]


async def test_daily_reset_outside_a_window_is_a_warning(
    running: Callable[..., Collector], market: Market
) -> None:
    """The same 1100 at an unexpected hour keeps its warning level."""
    collector = running()
    await _until_event(collector, "connected")
    market.faults.reset_until = time.time() + 0.3
    market.faults.emit("reset_started")
    await _until_event(collector, "connectivity_restored")
    lost = next(e for e in _events(collector) if e["code"] == 1100)
    assert lost["level"] == "warning"


async def test_stalled_gateway_is_detected_and_the_connection_forced_again(
    running: Callable[..., Collector], market: Market
) -> None:
    """Socket open but silent: the current-time probe fails, a reconnect is forced."""
    collector = running(IB_STALL_PROBE_S="0.5", IB_CONNECT_TIMEOUT_S="1")
    await _until_event(collector, "connected")
    market.faults.stalled = True
    market.faults.emit("changed")
    await _until_event(collector, "stalled")
    market.faults.stalled = False
    market.faults.emit("changed")
    await _until_event(collector, "connected", 2, timeout_s=30)
    stalled = next(e for e in _events(collector) if e["event"] == "stalled")
    assert stalled["level"] == "error"


async def test_not_subscribed_market_data_falls_back_to_delayed(
    collector: Collector, market: Market
) -> None:
    """Error 354 on an option is reported and answered by switching to delayed data."""
    market.faults.market_data_error = 354
    assert await collector.connect_once()
    await collector.tick_once(100)
    source = collector.source
    assert isinstance(source, SocketSource)
    await wait_until_async(
        lambda: "market_data_fallback" in event_names(collector), what="the fallback"
    )
    assert source.market_data_type == 3
    assert "market_data_not_subscribed" in event_names(collector)


async def test_line_budget_rotates_and_every_option_gets_greeks(
    connected: Callable[..., Awaitable[tuple[Collector, SocketSource]]], market: Market
) -> None:
    """With 4 lines for 8 instruments, at most 4 are subscribed, the pressure is reported, and
    within the reported number of ticks every option with Greeks has had them."""
    collector, source = await connected(IB_MARKET_DATA_LINES="4")
    await collector.tick_once(200)
    budget = next(e for e in _events(collector) if e["event"] == "market_data_budget")
    assert (budget["details"]["needed"], budget["details"]["budget"]) == (8, 4)
    for index in range(1, budget["details"]["refresh_every_ticks"] + 1):
        assert len(source.subscribed) <= 4
        await asyncio.wait_for(_subscribed_options_have_greeks(source, market), 5)
        await collector.tick_once(200 + index)
    assert set(source.greeks) == {700001, 700002, 700004, 700005, 700006}


async def _subscribed_options_have_greeks(
    source: SocketSource, market: Market, newer_than: Mapping[int, OptionGreeks] | None = None
) -> None:
    """Until every subscribed option with Greeks has them (received after `newer_than`'s)."""
    older = newer_than or {}

    def done() -> bool:
        if any(conid not in source.subscribed for conid in source.planned):
            return False  # the paced subscriber has not subscribed the plan yet
        for conid in source.subscribed:
            instrument = market.instrument(conid)
            assert instrument is not None
            is_option = instrument.sec_type in ("OPT", "FOP")
            if not (instrument.has_greeks and is_option):
                continue
            greeks = source.greeks.get(conid)
            if greeks is None or greeks is older.get(conid):
                return False
        return True

    while not done():
        await source.ib.updateEvent


async def test_data_lost_after_a_reset_rebuilds_every_subscription(
    collector: Collector, market: Market, gateway: SocketGateway
) -> None:
    """1101 means the gateway dropped every subscription (ib_async does not re-subscribe):
    the collector subscribes again, so Greeks keep arriving."""
    assert await collector.connect_once()
    source = collector.source
    assert isinstance(source, SocketSource)
    await collector.tick_once(300)
    await asyncio.wait_for(_subscribed_options_have_greeks(source, market), 5)
    before = source.subscribed
    market.faults.reset_data_lost = True
    market.faults.reset_until = time.time() + 0.2
    market.faults.emit("reset_started")
    await wait_until_async(lambda: 1101 in source.codes_seen, what="1101")
    assert gateway.state.market_data_lines == 0  # the gateway forgot them, as IB's does
    received = dict(source.greeks)
    await collector.tick_once(301)
    await asyncio.wait_for(_subscribed_options_have_greeks(source, market, received), 5)
    assert set(source.subscribed) == set(before)
    # ...and the collector rebuilt them: the options' Greeks can arrive before the gateway has
    # read the last request (an underlying's), so its count is awaited, not read at once.
    await wait_until_async(
        lambda: gateway.state.market_data_lines == len(before), what="every line rebuilt"
    )
    restored = next(e for e in _events(collector) if e["code"] == 1101)
    assert restored["event"] == "connectivity_restored_data_lost"


async def test_snapshot_mode_refreshes_every_option_within_the_documented_ticks(
    connected: Callable[..., Awaitable[tuple[Collector, SocketSource]]],
    market: Market,
    gateway: SocketGateway,
) -> None:
    """With IB_MARKET_DATA_MODE=snapshot and 3 snapshots a tick, no line is held, and within the
    reported number of ticks every option with Greeks has them and the net equals the truth."""
    collector, source = await connected(IB_MARKET_DATA_MODE="snapshot", IB_MARKET_DATA_LINES="3")
    await collector.tick_once(400)
    plan = next(e for e in _events(collector) if e["event"] == "market_data_snapshots")
    rounds = plan["details"]["refresh_every_ticks"]
    assert (plan["details"]["instruments"], plan["details"]["per_tick"], rounds) == (8, 3, 3)
    for index in range(1, rounds + 1):
        await asyncio.wait_for(source.requests_sent(), 5)
        assert gateway.state.market_data_lines == 0
        await collector.tick_once(400 + index)
    assert set(source.greeks) == {700001, 700002, 700004, 700005, 700006}
    # The last round's snapshots were asked for; their answers may still be on the wire.
    linear = {
        p.instrument.conid
        for account in market.accounts()
        for p in market.positions(account)
        if p.instrument.underlying_conid is None
    }
    await wait_until_async(
        lambda: linear <= set(source.prices), what="a price for every stock and future"
    )
    await collector.tick_once(400 + rounds + 1)
    truth = market.truth()["DU7654321"]
    record = next(
        r
        for r in spooled(collector.settings.paths.var_dir)
        if r["kind"] == "snapshot"
        and r["account"] == "DU7654321"
        and r["ts"] == collector.schedule.at(400 + rounds + 1).isoformat(timespec="microseconds")
    )
    assert record["net_dollar_delta"] == stated("net_dollar_delta", truth["net_dollar_delta"])
