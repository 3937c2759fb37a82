"""SOCKET mode end to end against the simulator's TWS socket side, with the real ib_async."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collector.collector import Collector
from collector.socket_source import SocketSource
from simulator.model import Market
from tests.collector.spooled import events, snapshots_at
from tests.collector.stated import stated

OPTIONS_WITH_GREEKS = {"DU1234567": 3, "DU7654321": 3}


async def _until(
    source: SocketSource, condition: Callable[[], bool], timeout_s: float = 10
) -> None:
    """Wait for ib_async's next updates until `condition` holds (event-driven, bounded)."""

    async def wait() -> None:
        while not condition():
            await source.ib.updateEvent

    await asyncio.wait_for(wait(), timeout_s)


async def _next(event: Any) -> asyncio.Future[Any]:
    """A future for the next emit of an ib_async event, registered before the cause happens."""

    async def wait() -> Any:
        return await event

    future = asyncio.ensure_future(wait())
    await asyncio.sleep(0)  # let it subscribe; a yield to the loop, not a timed wait
    return future


async def _tick_with_all_greeks(collector: Collector, index: int) -> None:
    source = collector.source
    assert isinstance(source, SocketSource)
    await collector.tick_once(index)  # subscribes every option
    await _until(source, lambda: len(source.greeks) >= sum(OPTIONS_WITH_GREEKS.values()) - 1)
    await collector.tick_once(index + 1)


async def test_net_greeks_equal_the_simulators_truth(collector: Collector, market: Market) -> None:
    """One snapshot per account; every figure but beta delta (betas come in the background:
    tests/collector/test_trader_figures.py) equals the simulator's truth to 1e-9."""
    assert await collector.connect_once()
    await _tick_with_all_greeks(collector, 1000)
    snapshots = snapshots_at(collector, 1001)
    truth = market.truth()
    assert set(snapshots) == set(truth)
    for account, record in snapshots.items():
        expected = truth[account]
        assert record["currency"] == expected["currency"]
        for name in ("net_dollar_gamma", "net_theta", "net_vega", "net_dollar_delta"):
            assert record[name] == stated(name, expected[name]), (account, name)
            assert record["completeness"][name] == expected["completeness"][name], name
        counts = ("position_count", "option_count", "options_with_greeks")
        assert [record[name] for name in counts] == [expected[name] for name in counts]
        for symbol, values in truth[account]["underlyings"].items():
            for name in ("net_delta", "net_gamma", "net_dollar_delta"):
                assert record["underlyings"][symbol][name] == stated(name, values[name])


async def test_option_without_greeks_is_counted_and_contributes_nothing(
    collector: Collector, market: Market
) -> None:
    """The Greek-less option is in option_count but not in options_with_greeks."""
    assert await collector.connect_once()
    await _tick_with_all_greeks(collector, 2000)
    record = snapshots_at(collector, 2001)["DU1234567"]
    assert (record["option_count"], record["options_with_greeks"]) == (4, 3)
    assert record["stalest_greek_age_s"] is not None


async def test_positions_opened_and_closed_mid_run(collector: Collector, market: Market) -> None:
    """A position opened mid-run gets a subscription and counts; a closed one is cancelled."""
    assert await collector.connect_once()
    source = collector.source
    assert isinstance(source, SocketSource)
    await _tick_with_all_greeks(collector, 3000)
    market.set_position("DU7654321", 700002, -4)  # open: a put it did not hold
    market.set_position("DU7654321", 700004, 0)  # close: the SPX call
    await _until(
        source,
        lambda: (
            {p.contract.conId for p in source.ib.positions("DU7654321") if p.position}
            == {700005, 756733, 700001, 700002}
        ),
    )
    await collector.tick_once(3002)
    await _until(source, lambda: 700002 in source.greeks)
    await collector.tick_once(3003)
    record = snapshots_at(collector, 3003)["DU7654321"]
    truth = market.truth()["DU7654321"]
    assert record["position_count"] == truth["position_count"]
    assert record["net_dollar_delta"] == stated("net_dollar_delta", truth["net_dollar_delta"])
    assert 700004 not in source.subscribed


async def test_a_tick_while_disconnected_is_not_invented_and_the_gap_is_reported(
    collector: Collector, market: Market
) -> None:
    """Ticks without a connection produce nothing; the next snapshot reports them as a gap."""
    assert await collector.connect_once()
    await collector.tick_once(4000)
    source = collector.source
    assert isinstance(source, SocketSource)
    disconnected = await _next(source.ib.disconnectedEvent)
    market.faults.emit("drop_connections")
    await asyncio.wait_for(disconnected, 5)
    assert (await collector.tick_once(4001)).snapshots == 0
    assert (await collector.tick_once(4002)).snapshots == 0
    assert await collector.connect_once()
    assert (await collector.tick_once(4003)).snapshots == 2
    gap = [e for e in events(collector.settings.paths.var_dir) if e["event"] == "gap"]
    assert len(gap) == 1
    assert gap[0]["details"]["ticks"] == 2
    assert gap[0]["details"]["from"] == collector.schedule.at(4001).isoformat()


async def test_restart_reports_the_ticks_missed_while_down(
    collector_environ: dict[str, str], collector: Collector
) -> None:
    """A new collector process knows the last tick produced before it and reports the gap."""
    assert await collector.connect_once()
    await collector.tick_once(5000)
    await collector.close()
    from collector.settings import CollectorSettings  # noqa: PLC0415

    restarted = Collector(CollectorSettings.from_environ(collector_environ))
    restarted.open()
    try:
        assert await restarted.connect_once()
        await restarted.tick_once(5010)
    finally:
        await restarted.close()
    gap = [e for e in events(Path(collector_environ["BRIDGE_VAR_DIR"])) if e["event"] == "gap"]
    assert [g["details"]["ticks"] for g in gap] == [9]
