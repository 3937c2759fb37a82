"""The trader's scenario end to end: the collector against the simulator in both modes, frozen,
and the rows PostgreSQL stores, against the simulator's own truth.

SOCKET: every stored figure equals /truth to 1e-9. PORTAL: every figure equals the truth of the
values as the Portal writes them (`portal_truth`: prices to the cent, Greeks to 3 decimals) to
1e-9, and the exact truth within the rounding docs/ibkr-conventions.md documents.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest

from collector.collector import Collector
from collector.settings import CollectorSettings
from database.sink import RecordSink
from simulator.app import Simulator
from simulator.model import Market
from simulator.scenario import load
from simulator.tws import SocketGateway
from tests.collector.conftest import spooled
from tests.fixtures.simulator import StartSimulator
from tests.waiting import wait_until_async

FIGURES = ("net_dollar_delta", "net_dollar_gamma", "net_theta", "net_vega", "net_beta_delta")
MONEY = ("net_liquidation", "unrealized_pnl", "daily_pnl")
COUNTS = ("position_count", "option_count", "options_with_greeks")
COLUMNS = ("currency", *FIGURES, *MONEY, *COUNTS, "completeness", "underlyings", "net_delta")


@pytest.fixture
def market() -> Market:
    """The trader's scenario, frozen (overrides the default scenario of conftest.py)."""
    market = Market(load(Path("trader")))
    market.freeze()
    return market


def _completeness(value: Mapping[str, Any]) -> dict[str, Any]:
    """Counts with the reasons that occurred (a reason counted 0 times says nothing)."""
    return {
        name: {**counts, "reasons": {r: n for r, n in counts["reasons"].items() if n}}
        for name, counts in value.items()
    }


def _close(actual: Any, expected: Any, *, rel: float, abs_: float, where: str) -> None:
    if expected is None or isinstance(expected, str):
        assert actual == expected, where
    else:
        assert actual == pytest.approx(expected, rel=rel, abs=abs_), where


def assert_figures_equal(
    record: Mapping[str, Any], truth: Mapping[str, Any], *, rel: float, abs_: float = 1e-9
) -> None:
    """Every figure of an account's record equals its truth, overall and per underlying."""
    for name in ("currency", *FIGURES, *MONEY):
        _close(record[name], truth[name], rel=rel, abs_=abs_, where=name)
    assert [record[name] for name in COUNTS] == [truth[name] for name in COUNTS]
    assert _completeness(record["completeness"]) == _completeness(truth["completeness"])
    assert set(record["underlyings"]) == set(truth["underlyings"])
    for symbol, expected in truth["underlyings"].items():
        actual = record["underlyings"][symbol]
        for name in (*FIGURES, "net_delta", "net_gamma"):
            _close(actual[name], expected[name], rel=rel, abs_=abs_, where=f"{symbol} {name}")
        assert [actual[name] for name in COUNTS] == [expected[name] for name in COUNTS], symbol
        assert _completeness(actual["completeness"]) == _completeness(expected["completeness"])


def _snapshots(collector: Collector, index: int) -> dict[str, dict[str, Any]]:
    tick = collector.schedule.at(index).isoformat(timespec="microseconds")
    return {
        record["account"]: record
        for record in spooled(collector.settings.paths.var_dir)
        if record["kind"] == "snapshot" and record["ts"] == tick
    }


async def _settle(
    collector: Collector, truth: Callable[[], dict[str, Any]], first_tick: int
) -> int:
    """Tick until every account's counts match the truth's and every beta the gateway can
    serve is in (each tick awaited, no sleeps); the index of the last tick."""
    expected = truth()
    with_beta = {
        symbol
        for figures in expected.values()
        for symbol, under in figures["underlyings"].items()
        if under["completeness"]["net_beta_delta"]["contributing"]
    }
    index = first_tick
    state: dict[str, Any] = {}

    async def ready() -> bool:
        nonlocal index
        index += 1
        await collector.tick_once(index)
        state["records"] = _snapshots(collector, index)
        counts_match = all(
            [state["records"].get(account, {}).get(name) for name in COUNTS]
            == [figures[name] for name in COUNTS]
            for account, figures in expected.items()
        )
        return counts_match and with_beta <= set(collector.betas.betas())

    async def until_ready() -> None:
        while not await ready():
            await asyncio.sleep(0.05)  # paced ticks: the gateway streams between them

    await asyncio.wait_for(until_ready(), 30)
    index += 1
    await collector.tick_once(index)  # one tick with everything in
    return index


async def _store(lines: list[bytes], database_url: str) -> dict[str, dict[str, Any]]:
    """Store spool lines with the writer's sink; the stored rows by account (latest tick)."""

    async def connect() -> psycopg.AsyncConnection[tuple[object, ...]]:
        return await psycopg.AsyncConnection.connect(database_url, autocommit=True)

    sink = RecordSink(connect)
    try:
        result = await sink.store(lines)
    finally:
        await sink.close()
    assert result.rejected == []
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            f"SELECT DISTINCT ON (account) account, {', '.join(COLUMNS)}"  # noqa: S608  # fixed names
            " FROM portfolio_greeks ORDER BY account, ts DESC"
        )
        rows = await cursor.fetchall()
    return {row[0]: dict(zip(COLUMNS, row[1:], strict=True)) for row in rows}


def _lines(collector: Collector) -> list[bytes]:
    return [
        json.dumps(record).encode()
        for record in spooled(collector.settings.paths.var_dir)
        if record["kind"] in ("snapshot", "beta")
    ]


async def test_socket_every_stored_figure_equals_the_truth(
    collector: Collector, market: Market, gateway: SocketGateway, database_url: str
) -> None:
    """SOCKET, frozen: the spooled record and the stored row equal /truth to 1e-9."""
    assert await collector.connect_once()
    last = await _settle(collector, market.truth, 100)
    truth = market.truth()
    records = _snapshots(collector, last)
    assert set(records) == set(truth)
    for account, record in records.items():
        assert record["v"] == 2
        assert "net_delta" not in record
        assert_figures_equal(record, truth[account], rel=1e-9)
    rows = await _store(_lines(collector), database_url)
    for account, row in rows.items():
        assert row["net_delta"] is None  # no account-level share-equivalents in format 2
        assert_figures_equal(row, truth[account], rel=1e-9)


async def test_socket_betas_travel_the_spool_into_the_betas_table(
    collector: Collector, market: Market, database_url: str
) -> None:
    """Each beta the gateway's bars give is spooled once for the day and stored with its
    sample; an underlying without bars has none (never 1.0)."""
    assert await collector.connect_once()
    await _settle(collector, market.truth, 200)
    await _store(_lines(collector), database_url)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT underlying, benchmark, beta, sample_size, source FROM betas ORDER BY 1"
        )
        rows = await cursor.fetchall()
    stored = {row[0]: row for row in rows}
    assert "SAP" not in stored  # the gateway serves no bars for the CFD
    assert "SPY" not in stored  # the benchmark's beta is 1 by the formula, not stored
    for symbol, (_, benchmark, beta, sample, source) in stored.items():
        assert (benchmark, source) == ("SPY", "history")
        assert beta == pytest.approx(market.beta(symbol), rel=1e-12), symbol
        assert sample == 251  # 252 bars a year: 251 returns
    assert {"ES", "ESTX50", "NQ", "SPX", "ZC"} <= set(stored)


async def test_socket_a_betas_file_overrides_the_regression(
    tmp_path: Path, collector_environ: dict[str, str], market: Market
) -> None:
    """BRIDGE_BETAS_FILE: its betas are used and spooled as source "file"."""
    path = tmp_path / "betas.toml"
    path.write_text("[betas]\nES = 2.0\n")
    collector = Collector(
        CollectorSettings.from_environ({**collector_environ, "BRIDGE_BETAS_FILE": str(path)})
    )
    collector.open()
    try:
        assert await collector.connect_once()
        last = await _settle(collector, market.truth, 300)
        record = _snapshots(collector, last)["U1111111"]
        es = record["underlyings"]["ES"]
        benchmark_price = market.quote(756733).mark
        assert benchmark_price is not None
        # ES beta delta = ES dollar delta x 2.0 / SPY's price
        assert es["net_beta_delta"] == pytest.approx(
            es["net_dollar_delta"] * 2.0 / benchmark_price, rel=1e-12
        )
        betas = [r for r in spooled(collector.settings.paths.var_dir) if r["kind"] == "beta"]
        assert [(b["underlying"], b["beta"], b["source"]) for b in betas if b["underlying"] == "ES"] == [
            ("ES", 2.0, "file")
        ]
    finally:
        await collector.close()


@pytest.fixture
async def trader_portal(start_simulator: StartSimulator) -> Simulator:
    return await start_simulator(IBKR_SIM_SCENARIO="trader", IBKR_SIM_PENALTY_S="2")


@pytest.fixture
async def portal_collector(
    tmp_path: Path, trader_portal: Simulator
) -> AsyncIterator[Collector]:
    collector = Collector(
        CollectorSettings.from_environ(
            {
                "IB_API_MODE": "PORTAL",
                "IB_PORTAL_URL": trader_portal.portal_url,
                "IB_CONNECT_TIMEOUT_S": "3",
                "IB_RESET_WINDOWS": "",
                "BRIDGE_VAR_DIR": str(tmp_path / "var"),
            }
        )
    )
    collector.open()
    yield collector
    await collector.close()


@pytest.mark.timeout(90)
async def test_portal_figures_equal_the_truth_within_the_portals_rounding(
    portal_collector: Collector, trader_portal: Simulator, database_url: str
) -> None:
    """PORTAL, frozen: equal to the truth of the values as written (1e-9), and to the exact
    truth within the documented rounding; stored as spooled."""
    market = trader_portal.market
    assert await portal_collector.connect_once()
    last = await _settle(portal_collector, market.portal_truth, 100)
    records = _snapshots(portal_collector, last)
    as_written, exact = market.portal_truth(), market.truth()
    for account, record in records.items():
        assert_figures_equal(record, as_written[account], rel=1e-9)
        for name in FIGURES:
            # Prices to the cent (≤ 0.5 cent in ~600: 1e-5 relative), Greeks to 3 decimals:
            # an option's figure moves by at most 0.0005 x its size; see docs.
            if exact[account][name] is not None:
                assert record[name] == pytest.approx(exact[account][name], rel=0.02), name
        for name in MONEY:
            assert record[name] == pytest.approx(exact[account][name], abs=0.005), name
    rows = await _store(_lines(portal_collector), database_url)
    for account, row in rows.items():
        assert_figures_equal(row, as_written[account], rel=1e-9)
