"""The scenario grids the collector spools and PostgreSQL stores, and the legs of their worst
losses, in both modes, against the simulator's own computation (`Market.scenario_truth`: its own
trees and closed forms, none of the collector's code or QuantLib), within the tolerance
docs/scenarios.md states."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from collector.collector import Collector
from collector.settings import CollectorSettings
from simulator.app import Simulator
from simulator.model import Market
from testkit.postgres import store_lines
from tests.collector.portal import opened_portal_collector
from tests.collector.spooled import spool_lines
from tests.collector.trader import settle

# docs/scenarios.md, "Tolerance": a scenario's P&L within this share of the gross notional of
# the scope's positions (Σ |qty x multiplier x price / magnifier x fx|) of the truth's, in both
# modes (PORTAL's implied vols to a hundredth of a point and prices to the cent included).
NOTIONAL_SHARE = 1e-5


@pytest.fixture
async def grid_collector(collector_environ: dict[str, str]) -> AsyncIterator[Collector]:
    """A SOCKET collector that revalues at every tick."""
    settings = CollectorSettings.from_environ(
        {**collector_environ, "BRIDGE_SCENARIO_INTERVAL_S": "5"}
    )
    collector = Collector(settings)
    collector.open()
    yield collector
    await collector.close()


def _scenario_lines(collector: Collector, index: int) -> dict[str, bytes]:
    tick = collector.schedule.at(index).isoformat(timespec="microseconds")
    found = {}
    for line in spool_lines(collector.settings.paths.var_dir):
        body = json.loads(line)
        if body["kind"] == "scenario" and body["ts"] == tick:
            found[body["account"]] = line
    return found


async def _stored(lines: list[bytes], database_url: str) -> dict[str, dict[str, Any]]:
    result = await store_lines(database_url, lines)
    assert result.rejected == []
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT account, grid, beta_grid, delta_gamma_10, completeness, underlying_symbols,"
            " underlying_grids, worst_pnl, worst_scenario, worst_leg_conids, worst_leg_pnl,"
            " beta_worst_leg_conids, beta_worst_leg_pnl FROM scenario_pnl"
        )
        rows = await cursor.fetchall()
    names = ("grid", "beta_grid", "delta_gamma_10", "completeness", "underlying_symbols",
             "underlying_grids", "worst_pnl", "worst_scenario", "worst_leg_conids",
             "worst_leg_pnl", "beta_worst_leg_conids", "beta_worst_leg_pnl")  # fmt: skip
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}


def _gross_notional(market: Market, account: str, symbol: str | None = None) -> float:
    """Σ |qty x multiplier x price / magnifier x fx| of the account's positions (of `symbol`),
    an option's at its underlying's price."""
    total = 0.0
    for position in market.positions(account):
        item = position.instrument
        if symbol is not None and item.symbol != symbol:
            continue
        conid = item.underlying_conid or item.conid
        price = market.quote(conid).mark
        rate = market.exchange_rate(account, item.currency)
        if price is None or rate is None:
            continue
        total += abs(position.quantity * item.multiplier * price / item.price_magnifier * rate)
    return total


def _assert_grid_close(
    actual: list[float] | None, expected: list[float] | None, tolerance: float, where: str
) -> None:
    if expected is None:
        assert actual is None, where
        return
    assert actual is not None, where
    assert len(actual) == len(expected) == 60, where
    worst = max(abs(a - b) for a, b in zip(actual, expected, strict=True))
    assert worst <= tolerance, f"{where}: off by {worst:.4f} > {tolerance:.4f}"


def _assert_legs_close(
    row: dict[str, Any], truth: dict[str, Any], prefix: str, tolerance: float, account: str
) -> None:
    """The worst loss's legs: the same positions as the truth's, each P&L within the grid's
    tolerance, when both pick the same scenario as the worst; when not, the two scenarios must
    be a tie within the tolerance (the Portal's rounded inputs can tip one over the other)."""
    expected = truth[f"{prefix}worst_legs"]
    conids, pnls = row[f"{prefix}worst_leg_conids"], row[f"{prefix}worst_leg_pnl"]
    where = f"{account} {prefix}worst legs"
    if expected is None:
        assert conids is None, where
        return
    assert conids is not None, where
    stored = {str(conid): pnl for conid, pnl in zip(conids, pnls, strict=True)}
    assert set(stored) == set(expected), where
    grid, true_grid = row[f"{prefix}grid"], truth[f"{prefix}grid"]
    lowest, true_lowest = grid.index(min(grid)), true_grid.index(min(true_grid))
    if lowest != true_lowest:
        # Two scenarios within the tolerance of each other: the rounded inputs may pick either
        # as the worst, so the legs are of different scenarios. The pick must be such a tie.
        tie = true_grid[lowest] - true_grid[true_lowest]
        assert tie <= 2 * tolerance, f"{where}: scenario {lowest}, not {true_lowest} ({tie:.4f})"
        return
    worst = max(abs(stored[conid] - expected[conid]) for conid in expected)
    assert worst <= tolerance, f"{where}: off by {worst:.4f} > {tolerance:.4f}"


def _assert_row_equals_truth(
    row: dict[str, Any], truth: dict[str, Any], market: Market, account: str, share: float
) -> None:
    tolerance = share * _gross_notional(market, account)
    _assert_grid_close(row["grid"], truth["grid"], tolerance, f"{account} grid")
    _assert_grid_close(row["beta_grid"], truth["beta_grid"], tolerance, f"{account} beta grid")
    assert row["delta_gamma_10"] == pytest.approx(truth["delta_gamma_10"], rel=share)
    for name in ("grid", "beta_grid"):
        counts = row["completeness"][name]
        assert (counts["contributing"], counts["missing"]) == (
            truth["completeness"][name]["contributing"],
            truth["completeness"][name]["missing"],
        ), f"{account} {name} completeness"
    for prefix in ("", "beta_"):
        _assert_legs_close(row, truth, prefix, tolerance, account)
    assert row["underlying_symbols"] == sorted(truth["underlyings"])
    for symbol, grid in zip(row["underlying_symbols"], row["underlying_grids"], strict=True):
        expected = truth["underlyings"][symbol]["grid"]
        own = None if all(value is None for value in grid) else grid
        _assert_grid_close(
            own, expected, share * _gross_notional(market, account, symbol), f"{account} {symbol}"
        )


async def test_socket_stored_grids_equal_the_simulators(
    grid_collector: Collector, market: Market, database_url: str
) -> None:
    """SOCKET, frozen: each account's grid, beta grid, delta-gamma, completeness and each
    underlying's grid, as stored, equal the simulator's own within the stated tolerance."""
    assert await grid_collector.connect_once()
    last = await settle(grid_collector, market.truth, 100)
    await grid_collector.scenarios_settled()
    await grid_collector.tick_once(last + 1)  # a grid started with everything in
    await grid_collector.scenarios_settled()
    lines = _scenario_lines(grid_collector, last + 1)
    truth = market.scenario_truth()
    assert set(lines) == set(truth)
    rows = await _stored(list(lines.values()), database_url)
    for account, expected in truth.items():
        assert expected["grid"] is not None  # the proof compares numbers, not two nulls
        _assert_row_equals_truth(rows[account], expected, market, account, NOTIONAL_SHARE)


async def test_portal_stored_grids_equal_the_simulators(
    portal_simulator: Simulator, tmp_path: Path, database_url: str
) -> None:
    """PORTAL: the same, from the Portal's rounded values, within the same tolerance."""
    market = portal_simulator.market
    async with opened_portal_collector(
        portal_simulator, tmp_path / "var", BRIDGE_SCENARIO_INTERVAL_S="5"
    ) as collector:
        assert await collector.connect_once()
        last = await settle(collector, market.truth, 100)
        await collector.scenarios_settled()
        await collector.tick_once(last + 1)
        await collector.scenarios_settled()
        lines = _scenario_lines(collector, last + 1)
    truth = market.scenario_truth()
    assert set(lines) == set(truth)
    rows = await _stored(list(lines.values()), database_url)
    for account, expected in truth.items():
        assert expected["grid"] is not None
        _assert_row_equals_truth(rows[account], expected, market, account, NOTIONAL_SHARE)


async def test_grids_are_stored_at_their_interval_only(collector: Collector) -> None:
    """At the default 60 s on 5-s ticks, only every 12th tick (the whole minutes) starts a
    grid; the ticks between spool none."""
    assert collector.settings.scenario_interval_s == 60
    assert await collector.connect_once()
    for index in range(107, 110):  # tick 108 falls on a whole minute: 108 x 5 s = 9 min
        await collector.tick_once(index)
        await collector.scenarios_settled()
    assert collector.schedule.at(108).second == 0
    assert _scenario_lines(collector, 107) == {}
    assert _scenario_lines(collector, 109) == {}
    assert set(_scenario_lines(collector, 108)) == {"DU1234567", "DU7654321"}
