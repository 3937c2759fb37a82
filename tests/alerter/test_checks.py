"""The feed-health rules: reset-window suppression, dead letters, heartbeats, stale snapshots."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from alerter.checks import (
    Check,
    DeadLetterWatch,
    FeedFacts,
    health_checks,
    limit_checks,
    watch_dead_letters,
)
from alerter.episodes import Change, Episode, step
from alerter.rules import HealthRules, LimitRule
from shared.health import feed_conditions
from shared.heartbeat_files import Heartbeat
from shared.reset_window import active_window, parse_reset_windows

# Tuesday 3 March 2026: New York is on EST (UTC-5), so 23:45 ET is 04:45 UTC on Wednesday and
# 01:45 ET is 06:45 UTC.
WINDOWS = parse_reset_windows("Mon-Fri 23:45-01:45")
ONLY_GATEWAY = HealthRules(
    stale_snapshot_s=None, login_required_s=None, breaker_open_s=None, buffer_above_mb=None,
    dead_letter_quiet_s=None, heartbeat_silent_s=30, gateway_disconnected_s=60,
)  # fmt: skip


def _utc(hhmmss: str) -> datetime:
    return datetime.fromisoformat(f"2026-03-04T{hhmmss}+00:00")


def _gateway_check(now: datetime, connected: bool) -> Check:
    collector = {
        "heartbeat": now.isoformat(),
        "state": "running",
        "gateway": {"connected": connected},
    }
    facts = FeedFacts(
        feed=feed_conditions(
            {name: Heartbeat.from_json(collector) for name in ("collector", "writer", "replayer")},
            now,
        ),
        in_reset_window=active_window(WINDOWS, now) is not None,
    )
    (check,) = [
        c for c in health_checks(ONLY_GATEWAY, facts, now=now, dead_letters=None)
        if c.rule == "gateway_disconnected"
    ]  # fmt: skip
    return check


def _story(steps: list[tuple[str, bool]]) -> list[Change | None]:
    episode, changes = Episode(), list[Change | None]()
    for stamp, connected in steps:
        check = _gateway_check(_utc(stamp), connected)
        episode, change = step(episode, check.reading, now=_utc(stamp), for_s=check.for_s)
        changes.append(change)
    return changes


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param(
            # 04:30 UTC is 23:30 ET: outside. 60 s later it fires.
            [("04:30:00", False), ("04:30:59", False), ("04:31:00", False)],
            [None, None, "fired"],
            id="outside a window: fires after 60 s",
        ),
        pytest.param(
            # 04:50 UTC is 23:50 ET: inside, for hours, nothing.
            [("04:50:00", False), ("05:30:00", False), ("06:44:59", False)],
            [None, None, None],
            id="inside a window: never",
        ),
        pytest.param(
            # The window ends at 06:45 UTC (01:45 ET): the 60 s start there.
            [("06:40:00", False), ("06:45:00", False), ("06:45:59", False), ("06:46:00", False)],
            [None, None, None, "fired"],
            id="still down after the window: 60 s from its end",
        ),
        pytest.param(
            # Fired at 04:40 (outside); the window begins at 04:45: still firing, then back.
            [("04:39:00", False), ("04:40:00", False), ("04:50:00", False), ("04:55:00", True)],
            [None, "fired", None, "resolved"],
            id="a firing alert is not resolved by the window, only by the connection",
        ),
    ],
)
def test_gateway_disconnected_outside_reset_windows_only(
    steps: list[tuple[str, bool]], expected: list[str | None]
) -> None:
    """A disconnect fires after its 60 s outside IBKR's reset window only: inside one its time does
    not run, after it the 60 s count from the window's end, and a firing alert resolves only when
    the connection is back."""
    assert _story(steps) == expected


def test_gateway_unknown_when_the_collector_is_silent() -> None:
    """A heartbeat 31 s old (limit 30 s) says nothing about the gateway: the heartbeat rule
    speaks instead."""
    now = _utc("12:00:00")
    stale = {"heartbeat": (now - timedelta(seconds=31)).isoformat(), "gateway": {}}
    facts = FeedFacts(
        feed=feed_conditions(
            {"collector": Heartbeat.from_json(stale), "writer": None, "replayer": None}, now
        )
    )
    checks = {c.key: c for c in health_checks(ONLY_GATEWAY, facts, now=now, dead_letters=None)}
    assert checks["gateway_disconnected|gateway"].reading.past is None
    assert checks["heartbeat_silent|collector"].reading.past is True
    assert checks["heartbeat_silent|collector"].reading.value == 31.0


def test_a_missing_heartbeat_file_counts_from_the_alerters_start() -> None:
    """Never written: silent for as long as the alerter has been watching (40 s > 30 s)."""
    now = _utc("12:00:00")
    facts = FeedFacts(
        feed=feed_conditions({"collector": None, "writer": None, "replayer": None}, now),
        started_at=now - timedelta(seconds=40),
    )
    checks = {c.key: c for c in health_checks(ONLY_GATEWAY, facts, now=now, dead_letters=None)}
    assert checks["heartbeat_silent|writer"].reading.value == 40.0
    assert checks["heartbeat_silent|writer"].reading.past is True


@pytest.mark.parametrize(
    ("age_s", "in_window", "past", "clear"),
    [
        (61.0, False, True, False),  # 61 > 60
        (60.0, False, False, True),  # 60 <= 60
        (3600.0, True, False, False),  # expected inside a window: neither
    ],
)
def test_stale_snapshot(age_s: float, in_window: bool, past: bool, clear: bool) -> None:
    """A snapshot older than the 60 s limit is past it, one exactly 60 s old is clear; inside a
    reset window an old snapshot is expected: neither."""
    now = _utc("12:00:00")
    rules = HealthRules(heartbeat_silent_s=None, gateway_disconnected_s=None)
    facts = FeedFacts(
        feed=feed_conditions({}, now, stored_snapshots={"DU1": now - timedelta(seconds=age_s)}),
        in_reset_window=in_window,
    )
    (check,) = [
        c for c in health_checks(rules, facts, now=now, dead_letters=None)
        if c.rule == "stale_snapshot"
    ]  # fmt: skip
    assert (check.account, check.reading.past, check.reading.clear) == ("DU1", past, clear)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        pytest.param(
            # quiet 600 s: a letter at 0 fires; more at 100 s keep it; 700 s is quiet (600 after
            # 100): resolves; one at 800 fires again.
            [(0, 0), (10, 1), (100, 3), (699, 3), (700, 3), (800, 4)],
            [None, "fired", None, None, "resolved", "fired"],
            id="fires on a new letter, resolves after a quiet period",
        ),
        pytest.param(
            # A first start finds 5 letters never reported: fires; an operator empties the file
            # after the quiet period: nothing new, nothing fires; a new one fires.
            [(0, 5), (700, 5), (710, 0), (720, 0), (730, 1)],
            ["fired", "resolved", None, None, "fired"],
            id="first start, then an emptied file",
        ),
    ],
)
def test_dead_letters(steps: list[tuple[float, int]], expected: list[str | None]) -> None:
    """New dead letters fire the alert and keep it firing; a quiet period with none resolves it; an
    emptied file fires nothing until a new letter comes."""
    watch = DeadLetterWatch()  # a first start: no memory
    episode, changes = Episode(), list[Change | None]()
    start = _utc("12:00:00")
    for offset, count in steps:
        now = start + timedelta(seconds=offset)
        watch, reading = watch_dead_letters(watch, count, now=now, quiet_s=600)
        episode, change = step(episode, reading, now=now, for_s=0)
        changes.append(change)
    assert changes == expected


def test_dead_letter_values_say_how_many_are_new() -> None:
    """3 known, 2 more arrive: value 5, limit 3 (what was there before)."""
    now = _utc("12:00:00")
    watch, _ = watch_dead_letters(DeadLetterWatch(seen=3), 5, now=now, quiet_s=600)
    _, reading = watch_dead_letters(watch, 5, now=now + timedelta(seconds=1), quiet_s=600)
    assert (reading.past, reading.value, reading.limit) == (True, 5.0, 3.0)


def test_limits_apply_per_account_or_to_one_account() -> None:
    """A limit for `*` applies to every account, one naming an account to that one only; an unknown
    figure reads neither past nor clear."""
    rules = [
        LimitRule("theta", "net_theta", "*", -2000.0, None, 0.0, 100.0, 0.0),
        LimitRule("delta DU2", "net_delta", "DU2", None, 500.0, 0.0, 0.0, 25.0),
    ]
    latest: dict[str, dict[str, float | None]] = {
        "DU1": {"net_theta": -2500.0, "net_delta": 900.0},
        "DU2": {"net_theta": None, "net_delta": 600.0},
    }
    checks = {c.key: c.reading.past for c in limit_checks(rules, latest)}
    assert checks == {"theta|DU1": True, "theta|DU2": None, "delta DU2|DU2": True}


@pytest.mark.parametrize(
    ("breaker", "past"),
    [("open", True), ("half_open", True), ("closed", False), (None, None)],  # None: no file
)
def test_breaker_open(breaker: str | None, past: bool | None) -> None:
    """A writer breaker open or half-open is past, closed is clear, no heartbeat file is unknown;
    the rule waits its 60 s."""
    now = _utc("12:00:00")
    beat = {"heartbeat": now.isoformat(), "state": "running", "breaker": breaker}
    rules = HealthRules(
        stale_snapshot_s=None, gateway_disconnected_s=None, login_required_s=None,
        buffer_above_mb=None, heartbeat_silent_s=None, breaker_open_s=60,
    )  # fmt: skip
    facts = FeedFacts(
        feed=feed_conditions(
            {"writer": Heartbeat.from_json(beat) if breaker else None, "replayer": None}, now
        )
    )
    checks = {c.key: c for c in health_checks(rules, facts, now=now, dead_letters=None)}
    assert checks["breaker_open|writer"].reading.past is past
    assert checks["breaker_open|writer"].for_s == 60
