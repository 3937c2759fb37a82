"""bridge-status's judgement and the alerter's feed-health rules agree: the same finding, then the
matching rule fires after its duration; no finding, no alert. Hand-worked stories, stepped a
second at a time through `shared.health.assess` and `alerter.checks.health_checks`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerter.checks import WATCHED_PROCESSES, FeedFacts, health_checks
from alerter.episodes import Episode, step
from alerter.rules import HealthRules
from shared.health import Facts, Finding, assess, feed_conditions
from shared.heartbeat_files import Heartbeat

# Tuesday 24 November 2026, 10:00 in New York: no reset window near.
T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SECONDS = 120  # each story is stepped from T0 to T0 + 120 s, a step a second
Bodies = dict[str, dict[str, Any]]


def _beat(at: datetime, interval_s: float = 1.0, **fields: Any) -> dict[str, Any]:
    return {"heartbeat": at.isoformat(), "interval_s": interval_s, "state": "running", **fields}


def _collector(
    at: datetime,
    *,
    connected: bool = True,
    in_reset_window: bool = False,
    snapshot_at: datetime | None = None,
    poll_s: float = 5.0,
) -> dict[str, Any]:
    return _beat(
        at,
        poll_s,
        poll_interval_s=poll_s,
        gateway={"connected": connected, "in_reset_window": in_reset_window},
        accounts={"DU1": {"last_snapshot_ts": (snapshot_at or at).isoformat()}},
    )


def _healthy(now: datetime) -> Bodies:
    return {
        "collector": _collector(now),
        "writer": _beat(now, breaker="closed"),
        "replayer": _beat(now, breaker="closed"),
        "alerter": _beat(now, 5, firing=[]),
    }


Story = Callable[[datetime], Bodies]  # now -> the heartbeats that differ from a healthy bridge
STORIES: dict[str, Story] = {
    "the writer's last heartbeat at T0": lambda now: {"writer": _beat(T0, breaker="closed")},
    "the gateway disconnected since T0": lambda now: {
        "collector": _collector(now, connected=False)
    },
    "DU1's newest snapshot at T0": lambda now: {"collector": _collector(now, snapshot_at=T0)},
    "the writer's breaker open since T0": lambda now: {
        "writer": _beat(now, breaker="open", last_db_error="refused")
    },
    # A collector polling every 60 s beats every 60 s: silent after 185 s, stale after 180 s.
    "a 60-s poll, last beat and snapshot at T0": lambda now: {
        "collector": _collector(T0, poll_s=60)
    },
    "the gateway disconnected inside a reset window": lambda now: {
        "collector": _collector(now, connected=False, in_reset_window=True)
    },
}


def _assessed(story: Story, now: datetime) -> list[Finding]:
    """bridge-status's findings at `now`, the spool, buffer and dead letters empty."""
    bodies = {**_healthy(now), **story(now)}
    facts = Facts(
        heartbeats={name: Heartbeat.from_json(body) for name, body in bodies.items()},
        spool_lag_records=0,
        spool_lag_s=None,
        buffer_bytes=0,
        oldest_buffered_ts=None,
        dead_letters=0,
    )
    return assess(facts, now)


def _findings(story: Story, now: datetime) -> set[tuple[str, str]]:
    """bridge-status's unhealthy findings at `now`, as (level, subject)."""
    return {(f.level, f.subject) for f in _assessed(story, now) if f.level == "unhealthy"}


def _readings(story: Story, now: datetime) -> dict[str, Any]:
    """The alerter's feed-health readings at `now`, by alert key, with the default rules."""
    bodies = {**_healthy(now), **story(now)}
    beats = {name: Heartbeat.from_json(bodies[name]) for name in WATCHED_PROCESSES}
    collector = bodies["collector"]["gateway"]
    facts = FeedFacts(
        feed=feed_conditions(beats, now),
        in_reset_window=collector["in_reset_window"],
        started_at=T0,
    )
    return {c.key: c for c in health_checks(HealthRules(), facts, now=now, dead_letters=None)}


@pytest.mark.parametrize(
    ("story", "alert", "finding", "found_at_s", "fired_at_s"),
    [
        # silent after 3 x 1 s + 5 s = 8 s, so at 9 s; the alert's 30 s of age at 31 s.
        ("the writer's last heartbeat at T0", "heartbeat_silent|writer",
         ("unhealthy", "writer"), 9, 31),
        # not connected at once; the alert after its 60 s of it.
        ("the gateway disconnected since T0", "gateway_disconnected|gateway",
         ("unhealthy", "gateway"), 0, 60),
        # stale after 3 polls of 5 s = 15 s, so at 16 s; the alert's 60 s of age at 61 s.
        ("DU1's newest snapshot at T0", "stale_snapshot|DU1",
         ("unhealthy", "account DU1"), 16, 61),
        # open at once; the alert after its 60 s of it.
        ("the writer's breaker open since T0", "breaker_open|writer",
         ("unhealthy", "writer"), 0, 60),
        # 120 s old is neither silent (185 s) nor stale (180 s): no finding, and neither alert,
        # though both ages pass the rules' 30 s and 60 s.
        ("a 60-s poll, last beat and snapshot at T0", "heartbeat_silent|collector",
         ("unhealthy", "collector"), None, None),
        ("a 60-s poll, last beat and snapshot at T0", "stale_snapshot|DU1",
         ("unhealthy", "account DU1"), None, None),
        # expected there: a warning, never unhealthy, and no alert.
        ("the gateway disconnected inside a reset window", "gateway_disconnected|gateway",
         ("unhealthy", "gateway"), None, None),
    ],
)  # fmt: skip
def test_the_same_finding_fires_the_matching_rule_after_its_duration(
    story: str,
    alert: str,
    finding: tuple[str, str],
    found_at_s: int | None,
    fired_at_s: int | None,
) -> None:
    """Stepped a second at a time: bridge-status says the finding from `found_at_s`, the alert
    fires once, at `fired_at_s` (None: neither ever), and the alert is never past while
    bridge-status does not say the finding."""
    episode, found, fired = Episode(), list[int](), list[int]()
    for second in range(SECONDS + 1):
        now = T0 + timedelta(seconds=second)
        findings = _findings(STORIES[story], now)
        check = _readings(STORIES[story], now)[alert]
        if finding in findings:
            found.append(second)
        if check.reading.past:
            assert finding in findings, f"{alert} past at {second} s, bridge-status: {findings}"
        episode, change = step(episode, check.reading, now=now, for_s=check.for_s)
        if change == "fired":
            fired.append(second)
    first_found = found[0] if found else None
    assert (first_found, fired) == (found_at_s, [] if fired_at_s is None else [fired_at_s])


@pytest.mark.parametrize(
    ("process", "last_word", "alert", "said"),
    [
        # silent after 3 x 5 s + 5 s = 20 s
        ("collector", _collector(T0, connected=False), "gateway_disconnected|gateway",
         ("gateway", "not connected")),
        # silent after 3 x 1 s + 5 s = 8 s
        ("writer", _beat(T0, breaker="open", last_db_error="refused"), "breaker_open|writer",
         ("writer", "database breaker open: refused")),
    ],
    ids=["the gateway", "a breaker"],
)  # fmt: skip
def test_a_silent_process_s_last_word_is_not_news(
    process: str, last_word: dict[str, Any], alert: str, said: tuple[str, str]
) -> None:
    """A process's last heartbeat, 25 s old, said disconnected (or its breaker open): bridge-status
    names the process's silence and not what it last said, and the alert's reading is unknown
    (the heartbeat rule speaks instead), both from the one judgement."""
    now = T0 + timedelta(seconds=25)

    def story(_now: datetime) -> Bodies:
        return {process: last_word}

    findings = [(f.subject, f.message) for f in _assessed(story, now)]
    assert (process, "silent: last heartbeat 25 s ago") in findings
    assert said not in findings
    assert _readings(story, now)[alert].reading.past is None
