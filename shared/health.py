"""The bridge's health, judged once: for `bridge-status`, `/healthz`, `/metrics` and the alerter.

`feed_conditions` reads the heartbeats once, before any limit: how long each process has been
quiet, the gateway, each account's newest snapshot, each database breaker. `assess` judges them
(and the files, the database) now, for bridge-status, `/healthz` and `/metrics`; the alerter's
feed-health rules (alerter/checks.py) are durations over the same conditions, with limits of
their own: bridge-status says "unhealthy now" as soon as a heartbeat or a snapshot is late by
its promised interval (`silent_after_s`, `stale_after_s`: 15 s for a 5 s poll), the alerter
notifies once it has lasted its configured time (60 s by default). docs/design.md names both.

Pure: the facts and `now` are arguments, so every rule is tested with plain values. A finding is
`unhealthy` when an operator must act (a process is silent, the database is unreachable, data
stopped arriving outside a reset window), `warning` when something needs a look but nothing is
being lost (dead letters, a backlog waiting for its replay period). The alerts the alerter has
firing (from its heartbeat) are warnings: the bridge works, the portfolio or the feed needs a look.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from shared.heartbeat_files import Gateway, Heartbeat

PROCESSES = ("collector", "writer", "replayer", "alerter")
BREAKER_PROCESSES = ("writer", "replayer")  # those that store through a database breaker
# bridge-status's limits. A heartbeat may be this many refresh intervals late (plus slack)
# before the process is silent; a snapshot older than this many poll intervals means the
# account has stopped updating.
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
    """bridge-status's limit: a heartbeat this old means its process is silent."""
    return SILENT_AFTER_INTERVALS * interval_s + SILENT_SLACK_S


def stale_after_s(poll_interval_s: float) -> float:
    """bridge-status's limit: a snapshot this old means its account stopped updating."""
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


def assess(facts: Facts, now: datetime) -> list[Finding]:
    """bridge-status's judgement of `facts` as of `now`, with its own limits."""
    feed = feed_conditions(facts.heartbeats, now)
    findings: list[Finding] = []
    for process in PROCESSES:
        findings += _process(process, feed)
    findings += _collector(facts.heartbeats.get("collector"), feed)
    findings += _alerts(facts.heartbeats.get("alerter"))
    for process in BREAKER_PROCESSES:
        beat = facts.heartbeats.get(process)
        if beat is None:
            continue
        if feed.breakers.get(process) == "open":
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


def _process(name: str, feed: FeedConditions) -> list[Finding]:
    if name not in feed.interval_s:
        return [Finding("unhealthy", name, "no heartbeat file: never started here?")]
    if name in feed.stopped:
        return [Finding("unhealthy", name, "stopped")]
    if feed.quiet_for(name, silent_after_s(feed.interval_s[name])):
        age = feed.heartbeat_age_s.get(name)
        silent = "unknown" if age is None else f"{age:.0f} s"
        return [Finding("unhealthy", name, f"silent: last heartbeat {silent} ago")]
    return []


def _collector(beat: Heartbeat | None, feed: FeedConditions) -> list[Finding]:
    if beat is None or "collector" in feed.stopped:
        return []
    gateway = feed.gateway or Gateway(connected=False)
    in_reset = gateway.in_reset_window
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
    if not gateway.connected:
        level: Level = "warning" if in_reset else "unhealthy"
        why = " (inside a daily reset window: expected)" if in_reset else ""
        findings.append(Finding(level, "gateway", f"not connected{why}"))
    for account, age in sorted(feed.snapshot_age_s.items()):
        if age > stale_after_s(feed.poll_interval_s) and not in_reset:
            findings.append(
                Finding("unhealthy", f"account {account}", f"last snapshot {age:.0f} s ago")
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
