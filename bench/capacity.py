"""The writer's capacity curve: append-to-visible latency at fixed rates, one real writer process.

A load generator appends real-shaped snapshots (format 3, a book of `underlyings` per account,
10 by default: `bench/shapes.py`) to the spool of a running `python -m writer` at a fixed rate,
in appends every `_APPEND_EVERY_S`. The last line of every append is a probe row (account
`PROBE`, its tick numbering the append). Another session (its own connection, autocommit) polls
the newest visible probe; an append counts as visible when its probe is, so the latency of its
rows is measured from the instant the append began to the instant another session could read
them, commit included. `stored_at` is never used.

One process holds the generator and the observer (one monotonic clock); the writer and
PostgreSQL are separate processes, as in production. Between rates the writer is let catch up.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import psycopg

from bench import shapes
from bench.harness import fresh_database, percentile, scratch_postgres
from bench.speed_probe import Speed, SpeedProbe
from shared import records
from shared.spool import SpoolAppender

_APPEND_EVERY_S = 0.01
_OBSERVER_PAUSE_S = 0.002
_GOAL_P99_MS = 100.0
_PROBE = "PROBE"


@dataclass
class RatePoint:
    rows_s: int
    achieved_rows_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    appends: int
    speed: Speed | None = None  # the machine's own speed while this rate ran (bench/speed_probe)

    @property
    def accounts(self) -> int:
        """Accounts this rate serves at one snapshot per account every 5 s."""
        return self.rows_s * 5

    @property
    def holds(self) -> bool:
        return self.p99_ms <= _GOAL_P99_MS


@dataclass
class CapacityFigures:
    points: list[RatePoint]
    seconds_per_rate: float
    load_average: tuple[float, float, float]
    writer_environ: dict[str, str]
    underlyings: int  # the book: underlyings per account
    version: int  # the format of its lines

    @property
    def best(self) -> RatePoint | None:
        """The highest rate up to which every rate held the goal (a lucky rate past one that
        missed does not count)."""
        best = None
        for point in self.points:  # lowest first
            if not point.holds:
                break
            best = point
        return best


class _Observer(threading.Thread):
    """Another session: polls the newest visible probe tick and when it was first seen."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self._url = url
        self.seen_at: dict[int, float] = {}
        self._newest = -1
        self._halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as conn:
            while not self._halt.is_set():
                row = conn.execute(
                    "SELECT max(ts) FROM portfolio_greeks WHERE account = %s", (_PROBE,)
                ).fetchone()
                now = time.monotonic()
                if row is not None and row[0] is not None:
                    newest = round((row[0] - shapes.BASE).total_seconds())
                    for tick in range(self._newest + 1, newest + 1):
                        self.seen_at[tick] = now
                    self._newest = max(self._newest, newest)
                time.sleep(_OBSERVER_PAUSE_S)

    @property
    def newest(self) -> int:
        return self._newest

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def _probe(tick: int) -> bytes:
    # One-second ticks keep probe ids distinct; the probe's tick numbers the append.
    ts = shapes.BASE + timedelta(seconds=tick)
    return (
        shapes.snapshot(_PROBE, 0)
        .replace(
            str(records.snapshot_id(_PROBE, shapes.BASE)).encode(),
            str(uuid.uuid5(records.SNAPSHOT_NAMESPACE, f"{_PROBE}|{tick}")).encode(),
        )
        .replace(
            shapes.BASE.isoformat(timespec="microseconds").encode(),
            ts.isoformat(timespec="microseconds").encode(),
        )
    )


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def _run_rate(  # noqa: PLR0917  # one call site
    spool: SpoolAppender,
    observer: _Observer,
    rate: int,
    seconds: float,
    first_probe: int,
    tick: int,
    book: tuple[int, int],
) -> tuple[RatePoint, int]:
    underlyings, version = book
    lines = shapes.snapshots(int(rate * seconds), rate * 5, tick, underlyings, version)
    appended_at: dict[int, float] = {}
    sent = 0
    probe = first_probe
    started = time.monotonic()
    step = 0
    while sent < len(lines):
        step += 1
        time.sleep(max(0.0, started + step * _APPEND_EVERY_S - time.monotonic()))
        due = min(len(lines), int((time.monotonic() - started) * rate))
        if due > sent:
            at = time.monotonic()
            spool.append([*lines[sent:due], _probe(probe)], now_us=0)
            appended_at[probe] = at
            probe += 1
            sent = due
    elapsed = time.monotonic() - started
    last = probe - 1
    caught_up = _wait(lambda: observer.newest >= last, timeout_s=max(60.0, seconds * 10))
    delays = [
        (observer.seen_at.get(tick_, float("inf")) - at) * 1000 for tick_, at in appended_at.items()
    ]
    if not caught_up:
        delays = [value for value in delays if value != float("inf")] or [float("inf")]
    point = RatePoint(
        rows_s=rate,
        achieved_rows_s=len(lines) / elapsed,
        p50_ms=percentile(delays, 0.5),
        p99_ms=percentile(delays, 0.99) if caught_up else float("inf"),
        max_ms=max(delays),
        appends=len(appended_at),
    )
    return point, probe


def capacity(
    rates: list[int],
    seconds_per_rate: float,
    writer_environ: Mapping[str, str] | None = None,
    *,
    underlyings: int = shapes.BOOK,
    version: int = 3,
    profile_to: Path | None = None,
) -> CapacityFigures:
    """Run one writer process and measure each rate in turn, lowest first.

    With `profile_to`, py-spy (installed by hand, not a dependency) samples the writer during
    the measured rates and writes a collapsed-stack profile there.
    """
    extra = dict(writer_environ or {})
    points = []
    windows: list[tuple[float, float]] = []
    speed_probe = SpeedProbe()
    with scratch_postgres() as server:
        url = fresh_database(server, "bench_capacity")
        asyncio.run(shapes.prepare(url))
        var_dir = Path(server.var_dir) / "capacity"
        environ = {
            "DATABASE_URL": url,
            "BRIDGE_VAR_DIR": str(var_dir),
            "PATH": "/usr/bin:/bin",
            **extra,
        }
        writer = subprocess.Popen(
            [sys.executable, "-m", "writer"], env=environ, stderr=subprocess.DEVNULL
        )
        spool = SpoolAppender(var_dir / "spool", segment_max_bytes=64 << 20)
        spool.open(now_us=time.time_ns() // 1000)
        observer: _Observer | None = None
        try:
            spool.append([_probe(0)], now_us=0)  # the writer's start is not measured
            if not _wait(lambda: _probe_visible(url), timeout_s=60):
                raise TimeoutError("the writer stored nothing within 60 s")
            observer = _Observer(url)
            observer.start()
            if not _wait(lambda: observer is not None and observer.newest >= 0, timeout_s=30):
                raise TimeoutError("the observer saw nothing")
            profiler = None
            if profile_to is not None:
                profiler = subprocess.Popen(
                    [str(Path(sys.executable).parent / "py-spy"), "record", "--pid",
                     str(writer.pid), "--format", "raw", "--output", str(profile_to),
                     "--rate", "250", "--nonblocking", "--idle"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            probe, tick = 1, 0
            speed_probe.start()
            for rate in rates:
                began = time.monotonic()
                point, probe = _run_rate(
                    spool, observer, rate, seconds_per_rate, probe, tick, (underlyings, version)
                )
                windows.append((began, time.monotonic()))
                tick += int(seconds_per_rate / 5) + 2
                points.append(point)
                failing = [p for p in points[-2:] if not p.holds]
                stop_early = len(failing) == 2  # two misses in a row: past it
                print(
                    f"capacity: {rate:,} rows/s: p50 {point.p50_ms:.1f} ms,"
                    f" p99 {point.p99_ms:.1f} ms, achieved {point.achieved_rows_s:,.0f}",
                    file=sys.stderr,
                )
                if stop_early:
                    break
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(timeout=60)
        finally:
            speed_probe.stop()
            if observer is not None:
                observer.stop()
            spool.close()
            writer.terminate()
            writer.wait(timeout=60)
    points = [
        replace(point, speed=speed_probe.speed(*window))
        for point, window in zip(points, windows, strict=True)
    ]
    return CapacityFigures(points, seconds_per_rate, os.getloadavg(), extra, underlyings, version)


def _probe_visible(url: str) -> bool:
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM portfolio_greeks WHERE account = %s", (_PROBE,)
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        return False
    return row is not None and row[0] > 0


if __name__ == "__main__":
    # `python -m bench.capacity [--profile FILE] RATE...`: a curve without touching the docs;
    # BRIDGE_WRITER_* variables in the environment are passed to the writer.
    arguments = sys.argv[1:]
    profile = None
    if arguments[:1] == ["--profile"]:
        profile, arguments = Path(arguments[1]), arguments[2:]
    tuning = {key: value for key, value in os.environ.items() if key.startswith("BRIDGE_WRITER_")}
    figures = capacity(
        [int(arg) for arg in arguments] or [2000, 8000, 16000], 5.0, tuning, profile_to=profile
    )
    for result in figures.points:
        print(result)
