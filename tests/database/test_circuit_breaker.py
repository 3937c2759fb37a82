"""The breaker's state machine, driven with plain numbers for the clock."""

from __future__ import annotations

import pytest

from database.circuit_breaker import BreakerState, DBCircuitBreaker


def _replay(events: list[tuple[str, float]], *, fail_max: int = 3) -> list[BreakerState]:
    breaker = DBCircuitBreaker(name="test", fail_max=fail_max, reset_timeout_s=5.0)
    states = []
    for event, now in events:
        if event == "fail":
            breaker.failed(now, "refused")
        elif event == "ok":
            breaker.succeeded()
        else:
            breaker.allows(now)
        states.append(breaker.state)
    return states


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [("fail", 0), ("fail", 1), ("fail", 2)],
            ["closed", "closed", "open"],
            id="opens-after-fail-max-consecutive-outages",
        ),
        pytest.param(
            [("fail", 0), ("fail", 1), ("ok", 2), ("fail", 3), ("fail", 4)],
            ["closed", "closed", "closed", "closed", "closed"],
            id="a-success-resets-the-count",
        ),
        pytest.param(
            [("fail", 0), ("fail", 0), ("fail", 0), ("ask", 4.9), ("ask", 5.0)],
            ["closed", "closed", "open", "open", "half_open"],
            id="half-open-exactly-at-the-reset-timeout",
        ),
        pytest.param(
            [("fail", 0), ("fail", 0), ("fail", 0), ("ask", 6), ("ok", 6)],
            ["closed", "closed", "open", "half_open", "closed"],
            id="trial-success-closes",
        ),
        pytest.param(
            [("fail", 0), ("fail", 0), ("fail", 0), ("ask", 6), ("fail", 6), ("ask", 10)],
            ["closed", "closed", "open", "half_open", "open", "open"],
            id="trial-failure-reopens-for-a-full-timeout",
        ),
    ],
)
def test_state_sequence(events: list[tuple[str, float]], expected: list[str]) -> None:
    """Each event moves the breaker to the state an operator expects."""
    assert [str(state) for state in _replay(events)] == expected


def test_open_breaker_refuses_calls_until_timeout() -> None:
    """While open, `allows` says no; after the timeout it lets one trial through."""
    breaker = DBCircuitBreaker(name="test", fail_max=1, reset_timeout_s=2.0)
    breaker.failed(100.0, "refused")
    assert not breaker.allows(101.0)
    assert breaker.allows(102.0)
    assert breaker.state is BreakerState.HALF_OPEN


def test_state_changes_are_reported() -> None:
    """Every transition reaches the listener, in order."""
    seen: list[tuple[str, str]] = []
    breaker = DBCircuitBreaker(
        name="test",
        fail_max=1,
        reset_timeout_s=1.0,
        on_change=lambda old, new: seen.append((str(old), str(new))),
    )
    breaker.failed(0, "refused")
    breaker.allows(1)
    breaker.succeeded()
    assert seen == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


@pytest.mark.parametrize(("fail_max", "reset_s"), [(0, 1.0), (1, 0.0)])
def test_rejects_nonsense_configuration(fail_max: int, reset_s: float) -> None:
    """A breaker that could never open or never close is refused at construction."""
    with pytest.raises(ValueError, match="fail_max"):
        DBCircuitBreaker(name="test", fail_max=fail_max, reset_timeout_s=reset_s)


def test_the_last_failure_is_kept_until_a_call_succeeds() -> None:
    """Each outage's reason replaces the one before; a success forgets it."""
    breaker = DBCircuitBreaker(name="test", fail_max=3)
    assert breaker.last_failure is None
    breaker.failed(0, "refused")
    breaker.failed(1, "no answer from the server within 5 s")
    assert breaker.last_failure == "no answer from the server within 5 s"
    breaker.succeeded()
    assert breaker.last_failure is None
