"""The bridge's health, judged once: for `bridge-status`, `/healthz`, `/metrics` and the alerter.

`feed_conditions` reads the heartbeats once, as of one `now`, before any limit: how long each
process has been quiet, the gateway, each account's newest snapshot, each database breaker.
`judge_feed` judges them once, with one set of limits: each process silent or not, the gateway
disconnected or not, each account's snapshots stale or not, each breaker open or not, with the
age that made it so. `assess` words that judgement (with the spool, the buffer, the dead letters
and the database) as the findings of bridge-status, `/healthz` and `/metrics`; the alerter's
feed-health rules (alerter/checks.py) read the same verdicts and are durations over them: a rule
fires once its verdict has been bad for the rule's time, never while the verdict is good.

The limits that differ on purpose, each named (docs/design.md, "Health, judged once", says why):
bridge-status answers "is something wrong now?" for an operator who is already looking, so a
verdict turns bad at the first late interval; the alerter interrupts someone, so each rule waits
until the bad verdict has lasted.

- A process is silent after `silent_after_s` (3 of its promised intervals + 5 s); the alert
  `heartbeat_silent_s` (30 s) is how old a silent process's heartbeat must be: it fires at the
  later of the two.
- An account is stale after `stale_after_s` (3 poll intervals: 15 s at the 5 s poll); the alert
  `stale_snapshot_s` (60 s) is how old a stale account's snapshot must be: the later of the two.
- The gateway is disconnected, and a breaker open (or half-open: its one trial call, the outage
  is not over until that succeeds), at once; their alerts wait `gateway_disconnected_s` and
  `breaker_open_s` (60 s) of it. bridge-status words a breaker unhealthy while it is `open`
  only: a half-open one says open or closed at its next heartbeat.
- Whose word says a reset window is on: bridge-status takes the collector's (its heartbeat), the
  alerter its own reading of `IB_RESET_WINDOWS`, which it knows while the collector is silent.

Pure: the facts and `now` are arguments, so every rule is tested with plain values. A finding is
`unhealthy` when an operator must act (a process is silent, the database is unreachable, data
stopped arriving outside a reset window), `warning` when something needs a look but nothing is
being lost (dead letters, a backlog waiting for its replay period). The alerts the alerter has
firing (from its heartbeat) are warnings: the bridge works, the portfolio or the feed needs a look.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from shared.heartbeat_files import Gateway, Heartbeat

PROCESSES = ("collector", "writer", "replayer", "alerter")
BREAKER_PROCESSES = ("writer", "replayer")  # those that store through a database breaker
# The judgement's limits. A heartbeat may be this many refresh intervals late (plus slack)
# before the process is silent; a snapshot older than this many poll intervals means the
# account has stopped updating. The alerter's rules wait longer on top (see the docstring).
SILENT_AFTER_INTERVALS: Final = 3
SILENT_SLACK_S: Final = 5.0
STALE_AFTER_POLLS: Final = 3
DEFAULT_POLL_INTERVAL_S: Final = 5.0  # a collector heartbeat that does not say its own
SPOOL_LAG_LIMIT_S: Final = 30.0

Level = Literal["ok", "warning", "unhealthy"]


@dataclass(frozen=True)
class Finding:
    level: Level
    subject: str
    message: str


@dataclass(frozen=True)
class Facts:
    """What `bridge-status` could observe; None means it could not be observed."""

    heartbeats: dict[str, Heartbeat | None]
    spool_lag_records: int
    spool_lag_s: float | None
    buffer_bytes: int
    oldest_buffered_ts: datetime | None
    dead_letters: int
    rows_last_hour: int | None = None
    database_error: str | None = None
    buffer_max_bytes: int | None = None  # BRIDGE_BUFFER_MAX_BYTES, and its warning threshold
    buffer_warn_bytes: int | None = None
    notes: list[str] = field(default_factory=list)


def silent_after_s(interval_s: float) -> float:
    """The judgement's limit: a heartbeat this old means its process is silent."""
    return SILENT_AFTER_INTERVALS * interval_s + SILENT_SLACK_S


def stale_after_s(poll_interval_s: float) -> float:
    """The judgement's limit: a snapshot this old means its account stopped updating."""
    return STALE_AFTER_POLLS * poll_interval_s


@dataclass(frozen=True)
class FeedConditions:
    """The heartbeats read once, as of one `now`, before any limit is applied."""

    heartbeat_age_s: Mapping[str, float | None]  # None: no heartbeat (or an unreadable stamp)
    interval_s: Mapping[str, float]  # each process's promised refresh
    stopped: frozenset[str]  # the processes whose last heartbeat says they stopped
    gateway: Gateway | None  # as the collector last published it; None: no collector heartbeat
    poll_interval_s: float  # the collector's
    snapshot_age_s: Mapping[str, float]  # account -> seconds since its newest snapshot
    breakers: Mapping[str, str | None]  # writer, replayer -> the state last published

    def quiet_for(self, process: str, limit_s: float) -> bool:
        """Has `process` said nothing for more than `limit_s`, or said it stopped? Then what
        its last heartbeat says (the gateway, its breaker) is not news."""
        age = self.heartbeat_age_s.get(process)
        return age is None or age > limit_s or process in self.stopped


def feed_conditions(
    heartbeats: Mapping[str, Heartbeat | None],
    now: datetime,
    *,
    stored_snapshots: Mapping[str, datetime] | None = None,
) -> FeedConditions:
    """`heartbeats` as of `now`; each account's newest snapshot is the later of the collector's
    heartbeat and `stored_snapshots` (what the database holds, when the caller read it)."""
    newest = dict(stored_snapshots or {})
    collector = heartbeats.get("collector")
    for account, produced in (collector.accounts if collector is not None else {}).items():
        if produced is not None:
            newest[account] = max(produced, newest.get(account, produced))
    return FeedConditions(
        heartbeat_age_s={
            process: age_s(beat.at, now) if beat is not None else None
            for process, beat in heartbeats.items()
        },
        interval_s={
            process: beat.interval_s for process, beat in heartbeats.items() if beat is not None
        },
        stopped=frozenset(
            process
            for process, beat in heartbeats.items()
            if beat is not None and beat.state == "stopped"
        ),
        gateway=collector.gateway if collector is not None else None,
        poll_interval_s=float(
            (collector.details.get("poll_interval_s") if collector is not None else None)
            or DEFAULT_POLL_INTERVAL_S
        ),
        snapshot_age_s={
            account: (now - stamp).total_seconds() for account, stamp in newest.items()
        },
        breakers={
            process: beat.breaker if (beat := heartbeats.get(process)) is not None else None
            for process in BREAKER_PROCESSES
        },
    )


def age_s(stamp: object, now: datetime) -> float | None:
    """Seconds from `stamp` (a datetime or an ISO 8601 string) to `now`; None when unreadable."""
    if isinstance(stamp, datetime):
        return (now - stamp).total_seconds()
    if not isinstance(stamp, str):
        return None
    try:
        return (now - datetime.fromisoformat(stamp)).total_seconds()
    except ValueError:
        return None


@dataclass(frozen=True)
class Verdict:
    """One condition of one subject (a process, the gateway, an account, a breaker), judged."""

    bad: bool | None  # None: cannot be told now (the process that would say is silent)
    age_s: float | None = None  # silent, stale: seconds since its heartbeat or snapshot
    expected: bool = False  # inside one of IBKR's reset windows, where it is expected


@dataclass(frozen=True)
class FeedJudgement:
    """The feed judged once, as of one `now`: what bridge-status words and the alerter times."""

    silent: Mapping[str, Verdict]  # process -> silent (no heartbeat file, stopped, or late)
    disconnected: Verdict  # the gateway, as a running collector last said
    stale: Mapping[str, Verdict]  # account -> its newest snapshot too old
    breaker_open: Mapping[str, Verdict]  # writer, replayer -> its database breaker not closed


def judge_feed(
    feed: FeedConditions, *, in_reset_window: bool, processes: Iterable[str] = PROCESSES
) -> FeedJudgement:
    """`feed` judged with the limits above: `processes` silent or not, the gateway, each account,
    each breaker. What a silent process's last heartbeat says (the gateway, its breaker) is not
    news: unknown. `in_reset_window`: the caller's word for it (the module's docstring)."""

    def silent(process: str) -> Verdict:
        interval_s = feed.interval_s.get(process)
        bad = interval_s is None or feed.quiet_for(process, silent_after_s(interval_s))
        return Verdict(bad, age_s=feed.heartbeat_age_s.get(process))

    def breaker(process: str) -> Verdict:
        state = None if silent(process).bad else feed.breakers.get(process)
        # Half-open is the breaker's one trial call: the outage lasts until it succeeds.
        return Verdict(None if state is None else state != "closed")

    connected = (
        None if silent("collector").bad else feed.gateway is not None and feed.gateway.connected
    )
    stale_s = stale_after_s(feed.poll_interval_s)
    return FeedJudgement(
        silent={process: silent(process) for process in processes},
        disconnected=Verdict(
            None if connected is None else not connected, expected=in_reset_window
        ),
        stale={
            account: Verdict(age > stale_s, age_s=age, expected=in_reset_window)
            for account, age in sorted(feed.snapshot_age_s.items())
        },
        breaker_open={process: breaker(process) for process in BREAKER_PROCESSES},
    )


def assess(facts: Facts, now: datetime) -> list[Finding]:
    """The judgement of `facts` as of `now`, worded for bridge-status, `/healthz` and `/metrics`."""
    feed = feed_conditions(facts.heartbeats, now)
    judged = judge_feed(
        feed, in_reset_window=feed.gateway is not None and feed.gateway.in_reset_window
    )
    findings: list[Finding] = []
    for process in PROCESSES:
        findings += _process(process, judged.silent[process], feed)
    findings += _collector(facts.heartbeats.get("collector"), feed, judged)
    findings += _alerts(facts.heartbeats.get("alerter"))
    for process in BREAKER_PROCESSES:
        beat = facts.heartbeats.get(process)
        if beat is None:
            continue
        # Open, not half-open: a trial call under way says open or closed at the next beat.
        if judged.breaker_open[process].bad and feed.breakers.get(process) == "open":
            reason = beat.last_db_error or "connection failures"
            findings.append(Finding("unhealthy", process, f"database breaker open: {reason}"))
        # Retried troubles (a full disk, a corrupt checkpoint): nothing lost yet, but an
        # operator must make room or look.
        for _subject, trouble in sorted(beat.troubles.items()):
            findings.append(Finding("unhealthy", process, str(trouble)))
    findings += _buffer_cap(facts)
    if facts.spool_lag_s is not None and facts.spool_lag_s > SPOOL_LAG_LIMIT_S:
        findings.append(
            Finding(
                "unhealthy",
                "spool",
                f"writer is {facts.spool_lag_s:.0f} s ({facts.spool_lag_records} records) behind",
            )
        )
    if facts.oldest_buffered_ts is not None:
        age = (now - facts.oldest_buffered_ts).total_seconds()
        findings.append(
            Finding(
                "warning",
                "buffer",
                f"{facts.buffer_bytes} bytes buffered, oldest record {age:.0f} s old",
            )
        )
    if facts.dead_letters:
        findings.append(
            Finding("warning", "dead letters", f"{facts.dead_letters} lines need an operator")
        )
    if facts.database_error is not None:
        findings.append(Finding("warning", "database", f"not queried: {facts.database_error}"))
    return findings


def _process(name: str, silent: Verdict, feed: FeedConditions) -> list[Finding]:
    if not silent.bad:
        return []
    if name not in feed.interval_s:
        return [Finding("unhealthy", name, "no heartbeat file: never started here?")]
    if name in feed.stopped:
        return [Finding("unhealthy", name, "stopped")]
    age = "unknown" if silent.age_s is None else f"{silent.age_s:.0f} s"
    return [Finding("unhealthy", name, f"silent: last heartbeat {age} ago")]


def _collector(
    beat: Heartbeat | None, feed: FeedConditions, judged: FeedJudgement
) -> list[Finding]:
    # A collector that never ran or stopped is its own finding, for its accounts too.
    if beat is None or "collector" in feed.stopped:
        return []
    findings = []
    spool = beat.details.get("spool") or {}
    if spool.get("error"):
        findings.append(
            Finding(
                "unhealthy",
                "collector",
                f"cannot append to the spool ({spool['error']}): "
                f"{spool.get('pending_in_memory', 0)} records held in memory",
            )
        )
    if spool.get("dropped"):
        findings.append(
            Finding(
                "warning",
                "collector",
                f"{spool['dropped']} records dropped while the spool could not be written "
                "(reported as gap events)",
            )
        )
    gateway = judged.disconnected
    if gateway.bad:
        level: Level = "warning" if gateway.expected else "unhealthy"
        why = " (inside a daily reset window: expected)" if gateway.expected else ""
        findings.append(Finding(level, "gateway", f"not connected{why}"))
    for account, stale in judged.stale.items():
        if stale.bad and not stale.expected:
            findings.append(
                Finding("unhealthy", f"account {account}", f"last snapshot {stale.age_s:.0f} s ago")
            )
    return findings


def _buffer_cap(facts: Facts) -> list[Finding]:
    cap, warn = facts.buffer_max_bytes, facts.buffer_warn_bytes
    if cap is None or warn is None:
        return []
    # The writer knows best: it says so when the next record would not fit.
    writer = facts.heartbeats.get("writer")
    refused = writer is not None and bool(writer.details.get("buffer_full"))
    if refused or facts.buffer_bytes >= cap:
        return [
            Finding(
                "unhealthy",
                "buffer",
                f"full: {facts.buffer_bytes} of {cap} bytes (BRIDGE_BUFFER_MAX_BYTES); "
                "while PostgreSQL is down new records wait in the spool",
            )
        ]
    if facts.buffer_bytes >= warn:
        return [
            Finding(
                "warning",
                "buffer",
                f"{facts.buffer_bytes} of {cap} bytes, past the warning threshold of {warn}",
            )
        ]
    return []


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, int | float) else "unknown"


def _alerts(beat: Heartbeat | None) -> list[Finding]:
    """One warning per alert firing, as the alerter published it."""
    findings = []
    for alert in (beat.firing or ()) if beat is not None else ():
        account = alert.get("account")
        what = f"{alert.get('figure')} of {account}" if account else str(alert.get("figure"))
        findings.append(
            Finding(
                "warning",
                f"alert {alert.get('rule')} ({alert.get('subject') or account})",
                f"{what} is {_number(alert.get('value'))}, limit {_number(alert.get('limit'))},"
                f" since {alert.get('since')}",
            )
        )
    return findings


def worst(findings: list[Finding]) -> Level:
    levels = {finding.level for finding in findings}
    if "unhealthy" in levels:
        return "unhealthy"
    return "warning" if "warning" in levels else "ok"
