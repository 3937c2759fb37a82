"""The reconnect schedule: wait 5, 10, 20 s, then every 20 s, until a connection holds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

RECONNECT_DELAYS_S: Final = (5.0, 10.0, 20.0)


class ReconnectBackoff:
    """Counts failed attempts; the delay before the next one follows the schedule's last step."""

    def __init__(self, delays_s: Sequence[float] = RECONNECT_DELAYS_S) -> None:
        if not delays_s or any(delay <= 0 for delay in delays_s):
            raise ValueError("the reconnect schedule needs at least one positive delay")
        self._delays_s = tuple(delays_s)
        self.attempts = 0

    def next_delay_s(self) -> float:
        """The wait before the next attempt, counting this failure."""
        delay = self._delays_s[min(self.attempts, len(self._delays_s) - 1)]
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """A connection held: the next outage starts the schedule again."""
        self.attempts = 0


class LookupRetries:
    """When to ask again for something the gateway did not tell (a contract's magnifier):
    after the k-th unknown answer, wait 2^(k-1) reads, at most `longest_wait_reads`, so a
    transient failure is retried on the next tick and a lasting one costs a request an
    interval, not one every tick. Counts reads, not seconds: no clock."""

    def __init__(self, longest_wait_reads: int = 64) -> None:
        self._longest_wait_reads = longest_wait_reads
        self._next_read: dict[int, tuple[int, int]] = {}  # key -> (failures, read it is due)

    def due(self, key: int, read: int) -> bool:
        """Whether `key` may be asked on read number `read`."""
        return read >= self._next_read.get(key, (0, read))[1]

    def unknown(self, key: int, read: int) -> None:
        """The answer on read number `read` did not tell: ask again later."""
        failures = self._next_read.get(key, (0, read))[0] + 1
        wait_reads = min(2 ** (failures - 1), self._longest_wait_reads)
        self._next_read[key] = (failures, read + wait_reads)

    def known(self, key: int) -> None:
        self._next_read.pop(key, None)
