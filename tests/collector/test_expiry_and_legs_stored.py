"""Greeks by expiry and the legs, in both modes: what the collector spools, stored by the real
sink in a real PostgreSQL, equals the simulator's own computation (`truth()`: its own bucket
and leg code, not the collector's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

from collector.collector import Collector
from collector.settings import CollectorSettings
from collector.socket_source import SocketSource
from shared import records
from simulator.app import Simulator
from simulator.model import Market
from testkit.postgres import store_lines
from tests.collector.spooled import spool_lines

FIGURES = records.EXPIRY_FIGURES
LEG_COLUMNS = (
    "conid", "sec_type", "quantity", "multiplier", "strike", "expiry", "option_right",
    "dollar_delta", "dollar_gamma", "net_theta", "net_vega", "missing_reason",
)  # fmt: skip


@pytest.fixture
async def every_tick_collector(collector_environ: dict[str, str]) -> AsyncIterator[Collector]:
    """A SOCKET collector that stores the legs and the Greeks by expiry at every tick."""
    collector = Collector(
        CollectorSettings.from_environ(
            {**collector_environ, "BRIDGE_LEGS_INTERVAL_S": "5", "BRIDGE_EXPIRY_INTERVAL_S": "5"}
        )
    )
    collector.open()
    yield collector
    await collector.close()


async def _store(collector: Collector, database_url: str) -> None:
    """Every line the collector spooled, through the real sink."""

    result = await store_lines(database_url, spool_lines(collector.settings.paths.var_dir))
    assert result.rejected == []


def _legs_query(columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("SELECT account, {} FROM position_legs WHERE ts = %s").format(
        sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def _now_tick(collector: Collector, market: Market) -> int:
    """The tick of the simulator's (frozen) now: the buckets count from its date."""
    return collector.schedule.index_at_or_before(datetime.fromtimestamp(market.now(), UTC))


def _full(partial: dict[str, Any] | None, positions: int, options: int) -> dict[str, Any]:
    stated = partial or {}
    return {
        name: stated.get(name, records.complete_counts(name, positions, options))
        for name in FIGURES
    }


def _maybe(value: float | None) -> Any:
    """Equal to 1e-9 when known; None when unknown."""
    return None if value is None else pytest.approx(value, rel=1e-9)


def _approx(rows: Any) -> Any:
    return [[_maybe(value) for value in row] for row in rows]


async def _check_stored(database_url: str, tick: datetime, truth: dict[str, Any]) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT account, bucket_figures, linear_dollar_delta, completeness, position_count,"
            " option_count, underlying_symbols, underlying_figures, underlying_linear,"
            " underlying_counts, underlying_completeness FROM expiry_greeks WHERE ts = %s",
            (tick,),
        )
        expiry_rows = await cursor.fetchall()
        cursor = await conn.execute(_legs_query(LEG_COLUMNS), (tick,))
        leg_rows = await cursor.fetchall()
    assert {row[0] for row in expiry_rows} == set(truth)
    for (account, buckets, linear, partial, positions, options, symbols, figures, linears,
         counts, incomplete) in expiry_rows:  # fmt: skip
        expected = truth[account]["expiry"]
        assert buckets == _approx(expected["buckets"]), account
        assert linear == _maybe(expected["linear_dollar_delta"])
        assert _full(partial, positions, options) == expected["completeness"]
        assert symbols == sorted(expected["underlyings"])
        for symbol, rows, line, (held, held_options) in zip(
            symbols, figures, linears, counts, strict=True
        ):
            wanted = expected["underlyings"][symbol]
            assert rows == _approx(wanted["buckets"]), (account, symbol)
            assert line == _maybe(wanted["linear_dollar_delta"])
            assert (
                _full((incomplete or {}).get(symbol), held, held_options)
                == (wanted["completeness"])
            )
    assert {row[0] for row in leg_rows} == set(truth)
    for row in leg_rows:
        account, leg = row[0], dict(zip(LEG_COLUMNS, row[1:], strict=True))
        wanted = truth[account]["legs"][str(leg["conid"])]
        for column, figure in zip(LEG_COLUMNS[7:11], FIGURES, strict=True):
            assert leg[column] == _maybe(wanted[figure]), (account, leg["conid"], column)
        assert leg["missing_reason"] == wanted["missing_reason"]
    for account, figures in truth.items():
        stored = {row[1] for row in leg_rows if row[0] == account}
        assert stored == {int(conid) for conid in figures["legs"]}


def _check_inputs(market: Market, database_url: str, tick: datetime) -> None:
    """Each leg's stated inputs equal the simulator's position and instrument."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(_legs_query(LEG_COLUMNS[:7]), (tick,)).fetchall()
    held = {
        (p.account, p.instrument.conid): p for a in market.accounts() for p in market.positions(a)
    }
    assert len(rows) == len(held)
    for account, conid, sec_type, quantity, multiplier, strike, expiry, right in rows:
        position = held[(account, conid)]
        item = position.instrument
        assert (sec_type, quantity, multiplier) == (
            item.sec_type,
            position.quantity,
            item.multiplier,
        )
        assert (strike, right) == (item.strike, item.right)
        stated = expiry.strftime("%Y%m%d") if expiry is not None else None
        assert stated == (item.expiry if item.underlying_conid else None)


async def test_socket_expiry_and_legs_are_stored_equal_to_the_truth(
    every_tick_collector: Collector, market: Market, database_url: str
) -> None:
    """SOCKET: the tick's expiry row per account and one leg row per position, stored, equal
    the simulator's truth to 1e-9; the legs' inputs equal its instruments."""
    collector = every_tick_collector
    assert await collector.connect_once()
    source = collector.source
    assert isinstance(source, SocketSource)
    tick = _now_tick(collector, market)
    await collector.tick_once(tick - 1)  # subscribes every option

    async def greeks_arrived() -> None:
        while len(source.greeks) < 5:  # six options, one of which never has Greeks
            await source.ib.updateEvent

    await asyncio.wait_for(greeks_arrived(), 10)
    await collector.tick_once(tick)
    await _store(collector, database_url)
    await _check_stored(database_url, collector.schedule.at(tick), market.truth())
    _check_inputs(market, database_url, collector.schedule.at(tick))


async def test_portal_expiry_and_legs_are_stored_equal_to_the_truth(
    make_collector: Callable[..., Collector], portal_simulator: Simulator, database_url: str
) -> None:
    """PORTAL: the same, from the second tick (the first opens the streams), against the truth
    of the values as the Portal writes them."""
    collector = make_collector(BRIDGE_LEGS_INTERVAL_S="5", BRIDGE_EXPIRY_INTERVAL_S="5")
    assert await collector.connect_once()
    market = portal_simulator.market
    tick = _now_tick(collector, market)
    await collector.tick_once(tick - 1)
    await collector.tick_once(tick)
    await _store(collector, database_url)
    await _check_stored(database_url, collector.schedule.at(tick), market.portal_truth())
    _check_inputs(market, database_url, collector.schedule.at(tick))
