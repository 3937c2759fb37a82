"""PORTAL faults against the simulator over HTTPS: conids that are strings or garbage, and a
429 penalty that must cost one event, no reconnect, and resume on its own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from collector.collector import Collector
from collector.portal_values import parse_conid
from simulator.app import Simulator
from testkit.waiting import wait_until_async
from tests.collector.spooled import event_names, events, snapshots_at
from tests.collector.stated import stated


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (265598, 265598),
        ("265598", 265598),  # the same id as a decimal string
        (" 265598 ", 265598),
        (265598.0, 265598),  # a JSON number written with a decimal point
        ("265598.0", None),  # a string is digits or nothing
        ("n/a", None),
        ("", None),
        ("12a", None),
        ("-5", None),
        (0, None),  # "no contract" (undConid of a stock)
        (-5, None),
        (265598.5, None),
        (True, None),  # JSON true is not 1
        (None, None),
        ("²", None),  # a digit to str.isdigit, not to IBKR
    ],
)
def test_parse_conid(raw: object, expected: int | None) -> None:
    """Contract ids are read, never guessed: an unreadable one is None."""
    assert parse_conid(raw) == expected


async def test_conids_sent_as_strings_are_read_as_numbers(
    make_collector: Callable[..., Collector], portal_simulator: Simulator
) -> None:
    """Every conid and undConid of the positions as a string: the net Greeks are the truth."""
    portal_simulator.market.faults.portal_string_conids = True
    collector = make_collector()
    assert await collector.connect_once()
    await collector.tick_once(10)
    await collector.tick_once(11)
    truth = portal_simulator.market.truth()
    snapshots = snapshots_at(collector, 11)
    assert set(snapshots) == set(truth)
    for account, record in snapshots.items():
        assert record["net_vega"] == stated("net_vega", truth[account]["net"]["net_vega"])
        assert record["options_with_greeks"] == truth[account]["net"]["options_with_greeks"]
    assert "bad_position" not in event_names(collector)


async def test_a_garbage_conid_is_reported_and_loses_nothing_else(
    make_collector: Callable[..., Collector], portal_simulator: Simulator
) -> None:
    """One position's conid is "n/a": it is reported (bad_position, with the item) and left
    out; the collector goes on, and every other position and account is snapshotted."""
    market = portal_simulator.market
    account = "DU1234567"
    held = market.positions(account)
    elsewhere = {
        p.instrument.conid for other in market.accounts() if other != account
        for p in market.positions(other)
    }  # fmt: skip
    garbled = next(p.instrument.conid for p in held if p.instrument.conid not in elsewhere)
    market.faults.portal_garbled_conid = garbled
    collector = make_collector()
    assert await collector.connect_once()
    assert (await collector.tick_once(10)).snapshots == len(market.accounts())
    snapshots = snapshots_at(collector, 10)
    assert snapshots[account]["position_count"] == len(held) - 1
    for other in set(market.accounts()) - {account}:
        assert snapshots[other]["position_count"] == len(market.positions(other))
    (bad,) = [e for e in events(collector.settings.paths.var_dir) if e["event"] == "bad_position"]
    assert bad["level"] == "warning"
    assert bad["details"]["account"] == account
    assert "'conid': 'n/a'" in bad["details"]["item"]


@pytest.mark.timeout(60)
async def test_a_429_penalty_is_one_event_no_reconnect_and_resumes_after_it(
    make_collector: Callable[..., Collector], portal_simulator: Simulator
) -> None:
    """The gateway answers 429 for a while. One `pacing_backoff` for the whole penalty, however
    many ticks and probes fall in it; the session is kept (no probe failure, no reconnect);
    past the pause the collector asks again, and once answered, snapshots resume with one
    `pacing_resumed` and the missed ticks are reported as one gap."""
    faults = portal_simulator.market.faults
    collector = make_collector(IB_STALL_PROBE_S="0.2", IB_PORTAL_PACING_PAUSE_S="1")
    stop = asyncio.Event()
    keeper = asyncio.create_task(collector.keep_connected(stop))
    try:
        await wait_until_async(lambda: "connected" in event_names(collector), what="connected")
        assert (await collector.tick_once(99)).snapshots == 2
        faults.portal_rate_limit_storm = True
        index = 100
        assert (await collector.tick_once(index)).snapshots == 0  # the 429: the penalty starts
        deadline = asyncio.get_running_loop().time() + 2.5  # two pauses: 429 again after one
        while asyncio.get_running_loop().time() < deadline:
            index += 1
            assert (await collector.tick_once(index)).snapshots == 0
            await asyncio.sleep(0.1)
        faults.portal_rate_limit_storm = False
        for _ in range(40):  # the first tick after the pause is answered
            index += 1
            if (await collector.tick_once(index)).snapshots:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await keeper
    names = event_names(collector)
    assert names.count("pacing_backoff") == 1
    assert names.count("pacing_resumed") == 1
    assert names.count("connected") == 1
    assert "probe_failed" not in names
    assert "read_failed" not in names
    assert names.count("gap") == 1
    assert len(snapshots_at(collector, index)) == 2
