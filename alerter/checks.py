"""What each rule reads now: the limits from the stored snapshots, the feed's health from the
heartbeats, the buffer, the dead letters and the connection's events.

The heartbeats are read once, by `shared.health.feed_conditions`, the same reading bridge-status
judges: the rules here are durations over it, with the alerter's own limits (a stale snapshot is
60 s here by default, where bridge-status says unhealthy after 3 poll intervals).

Pure: the observed facts and `now` come in, one `Check` per rule and subject comes out (a subject
is an account or a process). Inside one of IBKR's reset windows a disconnect, a login prompt and
stale snapshots are expected, so those rules read as suppressed there: their time does not run,
and an alert already firing stays firing until the feed is really back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from alerter.episodes import Reading, condition, threshold
from alerter.rules import HealthRules, LimitRule
from shared.health import BREAKER_PROCESSES, FeedConditions

WATCHED_PROCESSES: Final = ("collector", "writer", "replayer")
_MB: Final = 1_000_000


@dataclass(frozen=True)
class Check:
    """One rule for one subject: its reading now, and how long it must be past to fire."""

    rule: str
    subject: str
    figure: str
    reading: Reading
    for_s: float
    account: str | None = None

    @property
    def key(self) -> str:
        return f"{self.rule}|{self.subject}"


@dataclass(frozen=True)
class FeedFacts:
    """What the alerter observed; None where it could not observe (the database is down)."""

    feed: FeedConditions  # the heartbeats and each account's newest snapshot, stored or spooled
    login_required: bool | None = False  # a login prompt newer than the last connection
    buffer_bytes: int = 0
    in_reset_window: bool = False
    started_at: datetime | None = None  # the alerter's start: a heartbeat file not there yet


def limit_checks(
    limits: Sequence[LimitRule], latest: Mapping[str, Mapping[str, float | None]]
) -> list[Check]:
    """Every limit for every account it applies to, on that account's newest snapshot."""
    checks = []
    for rule in limits:
        for account in sorted(a for a in latest if rule.applies_to(a)):
            value = latest[account].get(rule.figure)
            reading = threshold(
                value,
                below=rule.below,
                above=rule.above,
                margin_below=rule.margin_below,
                margin_above=rule.margin_above,
            )
            checks.append(Check(rule.name, account, rule.figure, reading, rule.for_s, account))
    return checks


@dataclass(frozen=True)
class DeadLetterWatch:
    """What the alerter remembers of the dead-letter file: lines seen, and when it last grew."""

    seen: int = 0
    grew_at: datetime | None = None
    before: int = 0  # lines there before the current run of new ones


def watch_dead_letters(
    watch: DeadLetterWatch, count: int, *, now: datetime, quiet_s: float
) -> tuple[DeadLetterWatch, Reading]:
    """Past while new lines keep coming; clear once none came for `quiet_s`."""
    if count < watch.seen:  # emptied or rotated by an operator
        watch = DeadLetterWatch(seen=count, grew_at=watch.grew_at, before=min(watch.before, count))
    if count > watch.seen:
        quiet = watch.grew_at is None or (now - watch.grew_at).total_seconds() >= quiet_s
        watch = DeadLetterWatch(count, now, watch.seen if quiet else watch.before)
    recent = watch.grew_at is not None and (now - watch.grew_at).total_seconds() < quiet_s
    return watch, Reading(past=recent, clear=not recent, value=float(count), limit=watch.before)


def health_checks(
    rules: HealthRules, facts: FeedFacts, *, now: datetime, dead_letters: Reading | None
) -> list[Check]:
    """The feed-health rules that are on, each for its subjects."""
    checks: list[Check] = []
    feed = facts.feed
    suppressed = facts.in_reset_window
    silent_s = rules.heartbeat_silent_s if rules.heartbeat_silent_s is not None else 30.0
    if rules.heartbeat_silent_s is not None:
        for process in WATCHED_PROCESSES:
            age = feed.heartbeat_age_s.get(process)
            if age is None and facts.started_at is not None:
                age = (now - facts.started_at).total_seconds()
            reading = threshold(age, below=None, above=rules.heartbeat_silent_s)
            checks.append(Check("heartbeat_silent", process, "heartbeat_age_s", reading, 0.0))
    if rules.gateway_disconnected_s is not None:
        connected = (
            None
            if feed.quiet_for("collector", silent_s)
            else feed.gateway is not None and feed.gateway.connected
        )
        reading = condition(None if connected is None else not connected, suppressed=suppressed)
        checks.append(
            Check("gateway_disconnected", "gateway", "disconnected_s", reading,
                  rules.gateway_disconnected_s)
        )  # fmt: skip
    if rules.login_required_s is not None:
        reading = condition(facts.login_required, suppressed=suppressed)
        checks.append(
            Check("login_required", "gateway", "login_required_s", reading, rules.login_required_s)
        )
    if rules.stale_snapshot_s is not None:
        for account, age in sorted(feed.snapshot_age_s.items()):
            reading = threshold(age, below=None, above=rules.stale_snapshot_s)
            if suppressed and reading.past:
                reading = Reading(past=False, clear=False, value=age, limit=rules.stale_snapshot_s)
            checks.append(Check("stale_snapshot", account, "snapshot_age_s", reading, 0.0, account))
    if rules.breaker_open_s is not None:
        for process in BREAKER_PROCESSES:
            state = None if feed.quiet_for(process, silent_s) else feed.breakers.get(process)
            reading = condition(None if state is None else state != "closed")
            checks.append(
                Check("breaker_open", process, "breaker_open_s", reading, rules.breaker_open_s)
            )
    if rules.buffer_above_mb is not None:
        reading = threshold(
            facts.buffer_bytes / _MB,
            below=None,
            above=rules.buffer_above_mb,
            margin_above=rules.buffer_above_mb * 0.05,
        )
        checks.append(Check("buffer_large", "buffer", "buffer_mb", reading, 0.0))
    if dead_letters is not None:
        checks.append(Check("dead_letter", "dead letters", "dead_letters", dead_letters, 0.0))
    return checks
