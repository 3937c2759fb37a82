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
