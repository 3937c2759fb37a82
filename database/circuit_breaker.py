"""DBCircuitBreaker: stop calling PostgreSQL for a while after consecutive outages.

Closed: calls go through; `fail_max` consecutive outage failures open it. Open: calls are refused
(the caller buffers instead) until `reset_timeout_s` has passed, then one trial call is let
through (half-open); its success closes the breaker, its failure opens it again. Each failure
carries its reason: `last_failure` (None once a call succeeded) is what the breaker's listeners and
the heartbeats say it opened for.

One breaker may stand behind several sessions (the store's connections to one server): an outage
seen on any of them counts, and an open breaker holds them all back.

Only outages count (`DatabaseUnavailable`): a rejected record proves the server is answering,
and is quarantined by the caller, never routed through here. The clock is an argument, so the
state machine is tested with plain numbers; it is not thread-safe and needs not be (one asyncio
task per process calls it).
"""

from __future__ import annotations

import enum
from collections.abc import Callable


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class DBCircuitBreaker:
    def __init__(
        self,
        *,
        name: str,
        fail_max: int = 3,
        reset_timeout_s: float = 2.0,
        on_change: Callable[[BreakerState, BreakerState], None] | None = None,
    ) -> None:
        if fail_max < 1 or reset_timeout_s <= 0:
            raise ValueError("fail_max must be >= 1 and reset_timeout_s > 0")
        self.name = name
        self.fail_max = fail_max
        self.reset_timeout_s = reset_timeout_s
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._last_failure: str | None = None

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def last_failure(self) -> str | None:
        """Why the last call failed, while no call has succeeded since; None otherwise."""
        return self._last_failure

    def allows(self, now: float) -> bool:
        """May a call be made now? Moves open -> half-open once the reset timeout has passed."""
        if self._state is BreakerState.OPEN and now - self._opened_at >= self.reset_timeout_s:
            self._move(BreakerState.HALF_OPEN)
        return self._state is not BreakerState.OPEN

    def succeeded(self) -> None:
        self._failures = 0
        self._last_failure = None
        if self._state is not BreakerState.CLOSED:
            self._move(BreakerState.CLOSED)

    def failed(self, now: float, reason: str) -> None:
        """An outage, and why: counted, and told to the listener if it opens the breaker."""
        self._failures += 1
        self._last_failure = reason
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.fail_max:
            self._opened_at = now
            if self._state is not BreakerState.OPEN:
                self._move(BreakerState.OPEN)

    def _move(self, new: BreakerState) -> None:
        old, self._state = self._state, new
        if self._on_change is not None:
            self._on_change(old, new)

    def __repr__(self) -> str:
        return f"<DBCircuitBreaker {self.name} {self._state} failures={self._failures}>"
