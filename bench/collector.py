"""Collector cost at 5 s with 10, 100 and 1,000 option positions streamed by the simulator,
and on the simulator's trader book (`TRADER`: two accounts of 9 and 4 underlyings, EUR and
cents-quoted options, futures, a CFD, a warrant).

For each size, the simulator's socket side runs in this process (prices moving, every option
streaming Greeks) while the real collector runs as a subprocess: its CPU seconds per hour, peak
RSS, and tick jitter (from the scheduled instant to the spool write, from its own debug log) are
measured; a bare ib_async client holding the same subscriptions gives the floor (the cost of
receiving the data at all).

`tick_jitter`: the whole collector in PORTAL mode on one account of 1,000 SPY options, the
simulator's Portal side rounding as the gateway does (so the recompute prices nearly every
option at every tick of a moving market), at a short interval: how late each tick starts (its
start minus its scheduled instant) and when its snapshot is written, with the scenario grid off,
every 12 ticks (60 s at the 5-s tick) or at every tick, and the recompute in its worker process
or on the event loop (`bench/collector_on_loop.py`, as before).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.harness import percentile
from simulator.app import Simulator
from simulator.model import Market
from simulator.scenario import from_mapping, load
from simulator.settings import SimulatorSettings
from simulator.tws import SocketGateway

# A case named by its option count, or this: the simulator's built-in trader scenario.
TRADER = 0
_LAG = re.compile(r"DEBUG collector tick .* lag_ms=([0-9.]+)")
_TICK = re.compile(r"DEBUG collector tick .* start_late_ms=(-?[0-9.]+) lag_ms=([0-9.]+)")
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
    market = Market(from_mapping(_book(options), source=f"{options} options"))
    market.faults.max_market_data_lines = options + 10
    return market


def _book(options: int) -> dict[str, object]:
    """One account of `options` SPY options (half calls, half puts, 30 to 89 days)."""
    return {
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


@dataclass(frozen=True)
class JitterCase:
    name: str
    mode: str  # IB_API_MODE; SOCKET in snapshot market data mode
    interval_s: float  # BRIDGE_POLL_INTERVAL_S
    ticks: int  # measured, after the warm-up
    grid_every_ticks: int = 0  # 0: no grid
    recompute_on_loop: bool = False  # bench/collector_on_loop.py: as before the worker

    @property
    def warm_up_ticks(self) -> int:
        """Ticks before the measure: the connection, the workers' start and QuantLib's import,
        and every option's Greeks known (SOCKET snapshots: 40 requests a second, so 1,000
        options take 25 s; the Portal's Greeks come a snapshot after the first)."""
        return 30 if self.mode == "SOCKET" else 4


def jitter_cases(quick: bool) -> tuple[JitterCase, ...]:
    """The grid at 1-s ticks over SOCKET (snapshot mode: the mode for a large book); the
    recompute over PORTAL at the 5-s tick, the shortest a 1,000-option Portal read fits (its
    23 requests, paced as the gateway demands, take about 3 s)."""
    grid_ticks, portal_ticks = (20, 6) if quick else (150, 24)
    return (
        JitterCase("no grid", "SOCKET", 1.0, grid_ticks),
        JitterCase("grid every 12 ticks (60 s at 5 s)", "SOCKET", 1.0, grid_ticks, 12),
        JitterCase("grid every tick (the naive way)", "SOCKET", 1.0, grid_ticks, 1),
        JitterCase("recompute in the worker", "PORTAL", 5.0, portal_ticks),
        JitterCase("recompute on the loop (before)", "PORTAL", 5.0, portal_ticks,
                   recompute_on_loop=True),
    )  # fmt: skip


@dataclass
class JitterFigures:
    case: JitterCase
    ticks: int
    start_late_p50_ms: float
    start_late_p99_ms: float
    start_late_max_ms: float
    written_p50_ms: float  # the snapshot's spool write after the scheduled instant
    written_p99_ms: float
    cpu_s_per_tick: float  # the collector and its worker processes
    grids_skipped: int
    recompute_failures: dict[str, int]
    options_priced: int  # by the recompute, the whole run (warm-up included)

    @property
    def core_share_pct(self) -> float:
        """Its CPU as a share of one core at its interval."""
        return self.cpu_s_per_tick / self.case.interval_s * 100

    @property
    def core_share_at_5_s_pct(self) -> float:
        """The same work a tick at the 5-s tick (the grid every as many ticks): snapshots and
        the Portal are asked for a tick at a time, so the collector's work is per tick."""
        return self.cpu_s_per_tick / 5.0 * 100


async def _jitter_case(case: JitterCase, simulator: Simulator) -> JitterFigures:
    with tempfile.TemporaryDirectory(prefix="bridge-bench-jitter-") as root:
        var = Path(root) / "var"
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "BRIDGE_VAR_DIR": str(var),
            "IB_API_MODE": case.mode,
            "IB_PORT": str(simulator.socket_port),
            "IB_MARKET_DATA_MODE": "snapshot",
            "IB_PORTAL_URL": simulator.portal_url,
            "IB_RESET_WINDOWS": "none",
            "BRIDGE_LOG_LEVEL": "DEBUG",
            "BRIDGE_POLL_INTERVAL_S": f"{case.interval_s:g}",
            "BRIDGE_SCENARIO_INTERVAL_S": f"{case.grid_every_ticks * case.interval_s:g}",
        }
        program = "bench.collector_on_loop" if case.recompute_on_loop else "collector"
        log_path = Path(root) / "collector.log"
        with log_path.open("wb") as log:
            collector = subprocess.Popen(  # noqa: ASYNC220  # starting it is instant
                [sys.executable, "-m", program], env=environ, stderr=log, stdout=log
            )
            await asyncio.sleep(case.warm_up_ticks * case.interval_s)
            start = _cpu_s(collector.pid)
            await asyncio.sleep(case.ticks * case.interval_s)
            cpu_s = _cpu_s(collector.pid) - start
            heartbeat = json.loads((var / "run" / "collector.json").read_text())
            collector.terminate()
            await asyncio.to_thread(collector.wait, 30)
        found = [(float(m.group(1)), float(m.group(2)))
                 for m in _TICK.finditer(log_path.read_text())]  # fmt: skip
    measured = found[case.warm_up_ticks :][: case.ticks]
    late = [late_ms for late_ms, _ in measured]
    written = [written_ms for _, written_ms in measured]

    def at(values: list[float], fraction: float) -> float:
        return percentile(values, fraction) if values else float("nan")

    return JitterFigures(
        case=case,
        ticks=len(measured),
        start_late_p50_ms=at(late, 0.5),
        start_late_p99_ms=at(late, 0.99),
        start_late_max_ms=max(late, default=float("nan")),
        written_p50_ms=at(written, 0.5),
        written_p99_ms=at(written, 0.99),
        cpu_s_per_tick=cpu_s / case.ticks,
        grids_skipped=heartbeat["scenarios"]["skipped"],
        recompute_failures=heartbeat["recompute"]["failures"],
        options_priced=heartbeat["recompute"]["pricings"],
    )


def tick_jitter(cases: tuple[JitterCase, ...], options: int) -> list[JitterFigures]:
    """Each case's collector in turn against one simulator serving one account of `options`
    SPY options, prices moving (its Portal side rounding as the gateway does, pacing off: the
    collector paces itself)."""

    async def all_cases() -> list[JitterFigures]:
        with tempfile.TemporaryDirectory(prefix="bridge-bench-book-") as root:
            book = Path(root) / "book.json"
            book.write_text(json.dumps({**_book(options), "portal_values": "as_gateway"}))
            simulator = Simulator(
                SimulatorSettings.from_environ(
                    {
                        "IBKR_SIM_SOCKET_PORT": "0",
                        "IBKR_SIM_PORTAL_PORT": "0",
                        "IBKR_SIM_CONTROL_PORT": "0",
                        "IBKR_SIM_SCENARIO": str(book),
                        "IBKR_SIM_PACING": "false",
                    }
                )
            )
            simulator.market.faults.max_market_data_lines = options + 10
            await simulator.start()
            try:
                return [await _jitter_case(case, simulator) for case in cases]
            finally:
                await simulator.stop()

    return asyncio.run(all_cases())


def jitter_table(figures: list[JitterFigures], options: int) -> str:
    lines = [
        f"### The collector's tick jitter with the grid and the recompute ({options:,} options)",
        "",
        "| case | mode | tick | ticks | start late p50 | p99 | max | snapshot written p50 |"
        " p99 | CPU a tick | % of a core | % of a core at 5 s | grids skipped |"
        " recompute failures | options priced |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        failed = sum(f.recompute_failures.values())
        lines.append(
            f"| {f.case.name} | {f.case.mode} | {f.case.interval_s:g} s | {f.ticks} |"
            f" {f.start_late_p50_ms:.1f} ms | {f.start_late_p99_ms:.1f} ms |"
            f" {f.start_late_max_ms:.1f} ms | {f.written_p50_ms:.0f} ms |"
            f" {f.written_p99_ms:.0f} ms | {f.cpu_s_per_tick * 1000:.0f} ms |"
            f" {f.core_share_pct:.1f} % | {f.core_share_at_5_s_pct:.1f} % |"
            f" {f.grids_skipped} | {failed} | {f.options_priced:,} |"
        )
    lines += [
        "",
        f"The book: one account, one underlying (SPY), {options:,} options on it (half calls,"
        " half puts, 30 to 89 days), prices moving; the simulator in the benchmark's process,"
        " the real collector (`python -m collector`) a subprocess. *Start late*: the tick's"
        " start (`tick_once`) minus its scheduled instant, from the collector's debug log,"
        " after the warm-up (every option's Greeks known); *snapshot written*: the spool"
        " write of the tick's snapshot, from the same instant. CPU: the collector and its"
        " worker processes over the measured ticks; *at 5 s*: the same work a tick at the 5-s"
        " tick (snapshots and the Portal are asked for a tick at a time). The grid rows run"
        " at 1-s ticks over SOCKET in snapshot mode (the mode for a large book), the grid every"
        " 12 ticks being 60 s at the 5-s tick; the recompute rows over PORTAL at the 5-s tick,"
        " the shortest a 1,000-option Portal read fits (about 3 s of paced requests), the"
        " Portal rounding as the gateway does, so the market's moves reprice nearly every"
        " option at every tick (the recompute's worst case). *On the loop*:"
        " `bench/collector_on_loop.py`, the same collector with the pricing run on its event"
        " loop, as before. Load average at the end (this machine's 2 cores are shared): "
        + ", ".join(f"{value:.2f}" for value in os.getloadavg())
        + ".",
    ]
    return "\n".join(lines)
