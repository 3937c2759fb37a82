"""Collector cost at 5 s with 10, 100 and 1,000 option positions streamed by the simulator,
and on the simulator's trader book (`TRADER`: two accounts of 9 and 4 underlyings, EUR and
cents-quoted options, futures, a CFD, a warrant).

For each size, the simulator's socket side runs in this process (prices moving, every option
streaming Greeks) while the real collector runs as a subprocess: its CPU seconds per hour, peak
RSS, and tick jitter (from the scheduled instant to the spool write, from its own debug log) are
measured; a bare ib_async client holding the same subscriptions gives the floor (the cost of
receiving the data at all).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.harness import percentile
from simulator.model import Market
from simulator.scenario import from_mapping, load
from simulator.tws import SocketGateway

# A case named by its option count, or this: the simulator's built-in trader scenario.
TRADER = 0
_LAG = re.compile(r"DEBUG collector tick .* lag_ms=([0-9.]+)")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass
class CollectorFigures:
    book: str
    options: int
    mode: str
    seconds: float
    cpu_s_per_hour: float
    floor_cpu_s_per_hour: float
    peak_rss_mb: float
    jitter_p50_ms: float
    jitter_p99_ms: float
    ticks: int


def scenario(options: int) -> Market:
    if options == TRADER:
        return Market(load(Path("trader")))
    raw = {
        "seed": 11,
        "accounts": ["DU0000001"],
        "underlyings": [
            {"conid": 1, "symbol": "SPY", "sec_type": "STK", "exchange": "SMART",
             "primary_exchange": "ARCA", "spot": 600.0, "vol": 0.2}
        ],
        "options": [
            {"conid": 1000 + index, "underlying": 1, "right": "CP"[index % 2],
             "strike": 400.0 + index * 0.5, "expiry_days": 30 + index % 60, "multiplier": 100}
            for index in range(options)
        ],
        "positions": [
            {"account": "DU0000001",
             "holdings": [{"conid": 1000 + i, "quantity": 1 + i % 5} for i in range(options)]}
        ],
    }  # fmt: skip
    market = Market(from_mapping(raw, source=f"{options} options"))
    market.faults.max_market_data_lines = options + 10
    return market


def _cpu_s(pid: int) -> float:
    """utime + stime of `pid` and of its living descendants (the collector's scenario worker
    process is one, docs/scenarios.md)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone between the listing and the reading
        return 0.0
    total = (int(fields[11]) + int(fields[12])) / _TICKS_PER_S
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        total += sum(_cpu_s(int(child)) for child in children)
    return total


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _measure(process: subprocess.Popen[bytes], seconds: float) -> tuple[float, float]:
    """CPU seconds used over `seconds` after a warm-up, and peak RSS, while the loop serves."""
    await asyncio.sleep(5)  # connect, qualify and subscribe: not steady state
    start = _cpu_s(process.pid)
    await asyncio.sleep(seconds)
    return _cpu_s(process.pid) - start, _peak_rss_mb(process.pid)


async def _run(
    options: int, seconds: float, mode: str, settings: dict[str, str] | None = None
) -> CollectorFigures:
    market = scenario(options)
    option_conids = {option.conid for option in market.scenario.options}
    held = [
        conid
        for holdings in market.scenario.positions.values()
        for conid in holdings
        if conid in option_conids
    ]
    book = (
        f"trader: {len(market.scenario.positions)} accounts, {len(market.scenario.underlyings)}"
        " underlyings"
        if options == TRADER
        else f"{options:,} options on SPY"
    )
    options = len(held)
    gateway = SocketGateway(market)
    port = await gateway.start("127.0.0.1", 0)
    try:
        with tempfile.TemporaryDirectory(prefix="bridge-bench-collector-") as root:
            environ = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "BRIDGE_VAR_DIR": str(Path(root) / "var"),
                "IB_PORT": str(port),
                # Streaming: a line for every option (the worst case). Snapshots: the default
                # 100-line budget, which is also how many are asked for a tick.
                "IB_MARKET_DATA_LINES": str(options + 10) if mode == "stream" else "100",
                "IB_MARKET_DATA_MODE": mode,
                "IB_RESET_WINDOWS": "none",
                "BRIDGE_LOG_LEVEL": "DEBUG",
                **(settings or {}),
            }
            log_path = Path(root) / "collector.log"
            with log_path.open("wb") as log:
                collector = subprocess.Popen(  # noqa: ASYNC220  # starting it is instant
                    [sys.executable, "-m", "collector"], env=environ, stderr=log, stdout=log
                )
                cpu_s, rss_mb = await _measure(collector, seconds)
                collector.terminate()
                await asyncio.to_thread(collector.wait, 30)
            lags = [float(m.group(1)) for m in _LAG.finditer(log_path.read_text())]
            floor_cpu_s = float("nan")
            if mode == "stream":  # the floor of holding every line; snapshots hold none
                floor = subprocess.Popen(  # noqa: ASYNC220  # starting it is instant
                    [sys.executable, "-m", "bench.bare_client", str(port), str(seconds + 10)]
                )
                floor_cpu_s, _ = await _measure(floor, seconds)
                floor.terminate()
                await asyncio.to_thread(floor.wait, 30)
    finally:
        await gateway.stop()
    return CollectorFigures(
        book=book,
        options=options,
        mode=mode,
        seconds=seconds,
        cpu_s_per_hour=cpu_s / seconds * 3600,
        floor_cpu_s_per_hour=floor_cpu_s / seconds * 3600,
        peak_rss_mb=rss_mb,
        jitter_p50_ms=percentile(lags, 0.5) if lags else float("nan"),
        jitter_p99_ms=percentile(lags, 0.99) if lags else float("nan"),
        ticks=len(lags),
    )


def collector_cost(
    cases: list[tuple[int, str]], seconds: float, settings: dict[str, str] | None = None
) -> list[CollectorFigures]:
    """`cases`: (option positions, "stream" or "snapshot"); `settings`: environment variables
    every case's collector gets besides the benchmark's own."""

    async def all_cases() -> list[CollectorFigures]:
        return [await _run(options, seconds, mode, settings) for options, mode in cases]

    return asyncio.run(all_cases())
