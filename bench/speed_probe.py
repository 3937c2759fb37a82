"""The machine's own speed while a benchmark runs, from a process of its own.

On a shared machine the same work does not take the same time: a fixed loop took 126 to 249 ms
within 15 s with nothing else running here (docs/scaling.md, "The writer at 8,000 rows/s").
`python -m bench.speed_probe` times a fixed piece of work (a few ms) every 0.25 s, about 1 % of
a core, and prints each as `<monotonic s> <ms>`; `SpeedProbe` reads them back and says how fast
the machine ran during a window, against the fastest the probe saw in the whole run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

_EVERY_S = 0.25
_WORK = 50_000


def _work() -> float:
    began = time.thread_time()
    total = 0
    for number in range(_WORK):
        total += number
    return (time.thread_time() - began) * 1000


@dataclass(frozen=True)
class Speed:
    median: float  # the window's median sample against the run's fastest: 1.0 at its best
    slowest: float  # the window's slowest sample, the same way


class SpeedProbe:
    """Start with `start()`, read a window with `speed()` once `stop()` has been called."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._samples: list[tuple[float, float]] = []

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.speed_probe"], stdout=subprocess.PIPE, text=True
        )

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        out, _ = self._process.communicate(timeout=30)
        self._samples = [
            (float(at), float(ms)) for at, ms in (line.split() for line in out.splitlines())
        ]

    def speed(self, start: float, end: float) -> Speed | None:
        """The machine's speed between two `time.monotonic()` instants; None without samples."""
        window = [ms for at, ms in self._samples if start <= at <= end]
        if not window:
            return None
        fastest = min(ms for _, ms in self._samples)
        return Speed(fastest / statistics.median(window), fastest / max(window))


def main() -> None:
    while True:
        print(f"{time.monotonic():.3f} {_work():.3f}", flush=True)
        time.sleep(_EVERY_S)


if __name__ == "__main__":
    main()
