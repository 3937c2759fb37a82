"""What each rule reads now: the limits from the stored snapshots, the feed's health from the
heartbeats, the buffer, the dead letters and the connection's events.

The feed's health is judged once, by `shared.health.judge_feed`, the judgement bridge-status,
`/healthz` and `/metrics` word: the feed-health rules here are durations over its verdicts, not a
second judgement. A rule is past only while its verdict is bad, and fires once it has been for
the rule's time: `gateway_disconnected_s` and `breaker_open_s` of the episode's steady clock;
`heartbeat_silent_s` and `stale_snapshot_s` of the heartbeat's or the snapshot's own age, which
the verdict carries (a silent process, a stale account, older than the rule's limit). So an alert
fires at the later of the judgement's limit and the rule's (a stale snapshot: 3 poll intervals
there, 60 s here by default), and never while bridge-status calls the same thing healthy;
shared/health.py names each limit that differs and why. A heartbeat file never written cannot be
dated: its silence counts from the alerter's start.

The other rules read what the judgement does not: the login prompt (a database fact), the
buffer's size (bridge-status judges it against its cap, the alerter against `buffer_above_mb`:
an outage filling it, long before the cap) and the dead letters that are new (bridge-status
counts them all).

Pure: the observed facts and `now` come in, one `Check` per rule and subject comes out (a subject
is an account or a process). Inside one of IBKR's reset windows a disconnect, a login prompt and
stale snapshots are expected, so those rules read as suppressed there: their time does not run,
and an alert already firing stays firing until the feed is really back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from alerter.episodes import Reading, condition, threshold
from alerter.rules import HealthRules, LimitRule
from shared.health import BREAKER_PROCESSES, FeedConditions, Verdict, judge_feed

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
    in_reset_window: bool = False  # by IB_RESET_WINDOWS, known while the collector is silent
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
    """The feed-health rules that are on, each for its subjects, over the one judgement."""
    checks: list[Check] = []
    judged = judge_feed(
        facts.feed, in_reset_window=facts.in_reset_window, processes=WATCHED_PROCESSES
    )
    if rules.heartbeat_silent_s is not None:
        for process in WATCHED_PROCESSES:
            silent = judged.silent[process]
            age = silent.age_s
            if age is None and facts.started_at is not None:
                age = (now - facts.started_at).total_seconds()
            reading = _older(silent, age, rules.heartbeat_silent_s)
            checks.append(Check("heartbeat_silent", process, "heartbeat_age_s", reading, 0.0))
    if rules.gateway_disconnected_s is not None:
        disconnected = judged.disconnected
        reading = condition(disconnected.bad, suppressed=disconnected.expected)
        checks.append(
            Check("gateway_disconnected", "gateway", "disconnected_s", reading,
                  rules.gateway_disconnected_s)
        )  # fmt: skip
    if rules.login_required_s is not None:
        reading = condition(facts.login_required, suppressed=facts.in_reset_window)
        checks.append(
            Check("login_required", "gateway", "login_required_s", reading, rules.login_required_s)
        )
    if rules.stale_snapshot_s is not None:
        for account, stale in judged.stale.items():
            reading = _older(stale, stale.age_s, rules.stale_snapshot_s)
            checks.append(Check("stale_snapshot", account, "snapshot_age_s", reading, 0.0, account))
    if rules.breaker_open_s is not None:
        for process in BREAKER_PROCESSES:
            reading = condition(judged.breaker_open[process].bad)
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


def _older(verdict: Verdict, age_s: float | None, limit_s: float) -> Reading:
    """A silence or a staleness `age_s` old against the rule's `limit_s`: past only while the
    verdict is bad (the judgement's limit, longer with a slow poll, is not reached yet: clear),
    neither inside a reset window, where it is expected."""
    reading = threshold(age_s, below=None, above=limit_s)
    if reading.past and not verdict.bad:
        return replace(reading, past=False, clear=True)
    if reading.past and verdict.expected:
        return replace(reading, past=False, clear=False)
    return reading
