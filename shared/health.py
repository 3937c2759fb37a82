"""Health rules for `bridge-status`: facts gathered from files and the database in, findings out.

Pure: the facts and `now` are arguments, so every rule is tested with plain values. A finding is
`unhealthy` when an operator must act (a process is silent, the database is unreachable, data
stopped arriving outside a reset window), `warning` when something needs a look but nothing is
being lost (dead letters, a backlog waiting for its replay period). The alerts the alerter has
firing (from its heartbeat) are warnings: the bridge works, the portfolio or the feed needs a look.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from shared.status import Gateway, Heartbeat

PROCESSES = ("collector", "writer", "replayer", "alerter")
BREAKER_PROCESSES = ("writer", "replayer")  # those that store through a database breaker
# A heartbeat may be this many refresh intervals late (plus slack) before the process is silent.
_HEARTBEAT_GRACE = 3
_HEARTBEAT_SLACK_S = 5.0
SPOOL_LAG_LIMIT_S = 30.0
# A snapshot older than this many poll intervals means the account has stopped updating.
_SNAPSHOT_GRACE = 3

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
    findings: list[Finding] = []
    for process in PROCESSES:
        findings += _process(process, facts.heartbeats.get(process), now)
    findings += _collector(facts.heartbeats.get("collector"), now)
    findings += _alerts(facts.heartbeats.get("alerter"))
    for process in BREAKER_PROCESSES:
        beat = facts.heartbeats.get(process)
        if beat is None:
            continue
        if beat.breaker == "open":
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


def _process(name: str, beat: Heartbeat | None, now: datetime) -> list[Finding]:
    if beat is None:
        return [Finding("unhealthy", name, "no heartbeat file: never started here?")]
    if beat.state == "stopped":
        return [Finding("unhealthy", name, "stopped")]
    age = age_s(beat.at, now)
    if age is None or age > _HEARTBEAT_GRACE * beat.interval_s + _HEARTBEAT_SLACK_S:
        silent = "unknown" if age is None else f"{age:.0f} s"
        return [Finding("unhealthy", name, f"silent: last heartbeat {silent} ago")]
    return []


def _collector(beat: Heartbeat | None, now: datetime) -> list[Finding]:
    if beat is None or beat.state == "stopped":
        return []
    gateway = beat.gateway or Gateway(connected=False)
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
    poll_s = float(beat.details.get("poll_interval_s") or 5.0)
    for account, stamp in sorted(beat.accounts.items()):
        age = age_s(stamp, now)
        if age is not None and age > _SNAPSHOT_GRACE * poll_s and not in_reset:
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
    for alert in (beat.details.get("firing") or []) if beat is not None else []:
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
