"""Helpers of the trader-scenario proofs: tick a collector until the gateway has sent
everything, store its spool with the writer's sink, and compare records with the truth."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psycopg

from collector.collector import Collector
from collector.settings import CollectorSettings
from collector.socket_source import SocketSource
from testkit.postgres import store_lines
from tests.collector.spooled import snapshots_at, spool_lines
from tests.collector.stated import stated

FIGURES = ("net_dollar_delta", "net_dollar_gamma", "net_theta", "net_vega", "net_beta_delta")
MONEY = ("net_liquidation", "unrealized_pnl", "daily_pnl")
COUNTS = ("position_count", "option_count", "options_with_greeks")
COLUMNS = (
    "currency", *FIGURES, *MONEY, *COUNTS, "completeness", "underlyings", "net_delta",
    "gateway_beta_delta", "gateway_beta_delta_benchmark_shares",
)  # fmt: skip


# What a figure's completeness says of its precision, not of its positions: compared on its
# own (test_trader_figures.py), since /truth states exact figures.
PRECISION_KEYS = ("rounding_bound", "imprecise", "recomputed", "model_disagrees")


def completeness_of(value: Mapping[str, Any]) -> dict[str, Any]:
    """Counts with the reasons that occurred (a reason counted 0 times says nothing), without
    the precision keys."""
    return {
        name: {
            **{key: n for key, n in counts.items() if key not in PRECISION_KEYS},
            "reasons": {r: n for r, n in counts["reasons"].items() if n},
        }
        for name, counts in value.items()
    }


def _close(actual: Any, expected: Any, *, rel: float, abs_: float, where: str) -> None:
    """Equal within `rel` and `abs_`, or the precision a snapshot states the figure to (the
    last word of `where` names it; tests/collector/stated.py)."""
    if expected is None or isinstance(expected, str):
        assert actual == expected, where
    else:
        assert actual == stated(where.rsplit(maxsplit=1)[-1], expected, rel=rel, abs_=abs_), where


def assert_figures_equal(
    record: Mapping[str, Any], truth: Mapping[str, Any], *, rel: float, abs_: float = 1e-9
) -> None:
    """Every figure of an account's record equals its truth, overall and per underlying."""
    for name in ("currency", *FIGURES, *MONEY):
        _close(record[name], truth[name], rel=rel, abs_=abs_, where=name)
    assert [record[name] for name in COUNTS] == [truth[name] for name in COUNTS]
    assert completeness_of(record["completeness"]) == completeness_of(truth["completeness"])
    assert set(record["underlyings"]) == set(truth["underlyings"])
    for symbol, expected in truth["underlyings"].items():
        actual = record["underlyings"][symbol]
        for name in (*FIGURES, "net_delta", "net_gamma"):
            _close(actual[name], expected[name], rel=rel, abs_=abs_, where=f"{symbol} {name}")
        assert [actual[name] for name in COUNTS] == [expected[name] for name in COUNTS], symbol
        assert completeness_of(actual["completeness"]) == completeness_of(expected["completeness"])


async def _gateway_news(collector: Collector) -> None:
    """Between ticks: SOCKET waits for ib_async's next update (bounded), PORTAL needs nothing
    (its reads are the requests)."""
    source = collector.source
    if isinstance(source, SocketSource):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_next_update(source), 1.0)


async def _next_update(source: SocketSource) -> None:
    await source.ib.updateEvent


async def settle(
    collector: Collector,
    truth: Callable[[], dict[str, Any]],
    first_tick: int,
    *,
    betas: bool = True,
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
    # Without betas, beta delta is left out of the figures whose contributors must match.
    checked = FIGURES if betas else tuple(name for name in FIGURES if name != "net_beta_delta")

    async def ready() -> bool:
        nonlocal index
        index += 1
        await collector.tick_once(index)
        state["records"] = snapshots_at(collector, index)
        counts_match = all(
            [state["records"].get(account, {}).get(name) for name in COUNTS]
            == [figures[name] for name in COUNTS]
            and _contributing(state["records"].get(account, {}), checked)
            == _contributing(figures, checked)
            for account, figures in expected.items()
        )
        return counts_match and (not betas or with_beta <= set(collector.betas.betas()))

    async def until_ready() -> None:
        while not await ready():
            await _gateway_news(collector)

    await asyncio.wait_for(until_ready(), 30)
    index += 1
    await collector.tick_once(index)  # one tick with everything in
    return index


def _contributing(figures: Mapping[str, Any], names: tuple[str, ...]) -> list[int | None]:
    """How many positions contributed to each figure: equal to the truth's once every price
    the figures need has arrived (a stock's Portal snapshot can come a tick after the counts
    are complete on a busy machine)."""
    counts = figures.get("completeness") or {}
    return [(counts.get(name) or {}).get("contributing") for name in names]


async def store(lines: list[bytes], database_url: str) -> dict[str, dict[str, Any]]:
    """Store spool lines with the writer's sink; the stored rows by account (latest tick)."""

    result = await store_lines(database_url, lines)
    assert result.rejected == []
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            f"SELECT DISTINCT ON (account) account, {', '.join(COLUMNS)}"  # noqa: S608  # fixed names
            " FROM snapshots ORDER BY account, ts DESC"
        )
        rows = await cursor.fetchall()
    return {row[0]: dict(zip(COLUMNS, row[1:], strict=True)) for row in rows}


def spooled_lines(collector: Collector) -> list[bytes]:
    """The snapshot and beta lines `collector` spooled, as written."""
    return [
        line
        for line in spool_lines(collector.settings.paths.var_dir)
        if json.loads(line)["kind"] in ("snapshot", "beta")
    ]


async def stored_rows_of_a_collector(
    socket_port: int, var_dir: Path, database_url: str, truth: Callable[[], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Run a SOCKET collector against a simulator until settled, store what it spooled; the
    latest stored row of each account."""
    collector = Collector(
        CollectorSettings.from_environ(
            {"IB_API_MODE": "SOCKET", "IB_HOST": "127.0.0.1", "IB_PORT": str(socket_port),
             "IB_CONNECT_TIMEOUT_S": "3", "IB_RESET_WINDOWS": "none",
             "BRIDGE_VAR_DIR": str(var_dir)}
        )
    )  # fmt: skip
    collector.open()
    try:
        assert await collector.connect_once()
        await settle(collector, truth, 100)
        return await store(spooled_lines(collector), database_url)
    finally:
        await collector.close()
