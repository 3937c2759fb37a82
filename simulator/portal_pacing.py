"""The Client Portal gateway's pacing rules, as arithmetic on request times (no clock inside).

Documented limits: 10 requests a second overall; per endpoint, the market data snapshot 10 a
second, /portfolio/accounts and /iserver/account/pnl/partitioned one per 5 s, /tickle one a
second, /sso/validate one a minute (history's limit, 5 at once, is the gateway's own). A
client past a limit gets 429 and sits in a penalty box (10-15 minutes on the real gateway).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

GLOBAL_LIMIT = (10, 1.0)  # requests, per seconds
ENDPOINT_LIMITS: dict[str, tuple[int, float]] = {
    "/iserver/marketdata/snapshot": (10, 1.0),
    "/portfolio/accounts": (1, 5.0),
    "/iserver/account/pnl/partitioned": (1, 5.0),
    "/tickle": (1, 1.0),
    "/sso/validate": (1, 60.0),
}


@dataclass
class Pacing:
    penalty_s: float
    _recent: dict[str, deque[float]] = field(default_factory=dict)
    penalised_until: float = float("-inf")

    def admit(self, path: str, now: float) -> bool:
        """Record a request at `now`; False (and a penalty from now) if it breaks a limit."""
        if now < self.penalised_until:
            return False
        checks = [("*", GLOBAL_LIMIT)]
        if path in ENDPOINT_LIMITS:
            checks.append((path, ENDPOINT_LIMITS[path]))
        for key, (count, window_s) in checks:
            recent = self._recent.setdefault(key, deque())
            while recent and recent[0] <= now - window_s:
                recent.popleft()
            if len(recent) >= count:
                self.penalised_until = now + self.penalty_s
                return False
        for key, _ in checks:
            self._recent[key].append(now)
        return True

    def clear(self) -> None:
        self._recent.clear()
        self.penalised_until = float("-inf")
